"""Writes the QKeras and Larq fixtures in tests/data/qkeras/ and tests/data/larq/ (issue 13).

Run in a separate virtualenv (larq 0.14.0 needs numpy < 2, and both need Keras 2):

    python -m venv /tmp/qk
    /tmp/qk/bin/pip install tf_keras==2.21.* tensorflow==2.21.* qkeras==0.9.0 larq==0.14.0 pyparsing
    TF_USE_LEGACY_KERAS=1 /tmp/qk/bin/python tests/data/make_qkeras_larq.py

Each model is saved as .h5 and .keras, and beside it a JSON of what the library itself reports at
generation time (count_params(), trainable / non-trainable counts, output shapes and weight shapes of
every layer): the truth tests/differential/test_qkeras_larq.py compares modelaudit with.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf
import tf_keras

HERE = os.path.dirname(os.path.abspath(__file__))
keras = tf.keras


def _shape(s):
    return [None if d is None else int(d) for d in s]


def _outputs(layer):
    shape = layer.output_shape
    if isinstance(shape, list):
        return [_shape(s) for s in shape]
    return [_shape(shape)]


def _count(weights):
    return int(sum(np.prod(w.shape) for w in weights))


def truth(model, library):
    layers = []
    for layer in model.layers:
        layers.append({
            "name": layer.name,
            "class": type(layer).__name__,
            "params": int(layer.count_params()),
            "trainable_params": _count(layer.trainable_weights),
            "non_trainable_params": _count(layer.non_trainable_weights),
            "output_shapes": _outputs(layer),
            "weights": [{"name": w.name, "shape": _shape(w.shape), "trainable": bool(w.trainable)}
                        for w in layer.weights],
        })
    return {
        "library": library,
        "writer": f"tf_keras {tf_keras.__version__} (TF_USE_LEGACY_KERAS=1), tensorflow {tf.__version__}",
        "total_params": int(model.count_params()),
        "trainable_params": _count(model.trainable_weights),
        "non_trainable_params": _count(model.non_trainable_weights),
        "layers": layers,
    }


def save(model, folder, stem, library, version):
    os.makedirs(folder, exist_ok=True)
    model.save(os.path.join(folder, stem + ".h5"))
    model.save(os.path.join(folder, stem + ".keras"))
    data = truth(model, f"{library} {version}")
    with open(os.path.join(folder, stem + ".json"), "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


def qkeras_models():
    import qkeras
    from qkeras import QConv2DBatchnorm, QDepthwiseConv2DBatchnorm
    from qkeras import (QActivation, QAveragePooling2D, QBatchNormalization, QConv1D, QConv2D,
                        QDense, QDepthwiseConv2D, QGlobalAveragePooling2D,
                        QSeparableConv1D, QSeparableConv2D, quantized_bits)

    q4 = "quantized_bits(4,0,1)"
    x = keras.Input((10, 10, 3), name="image")
    y = QConv2D(4, 3, kernel_quantizer=q4, bias_quantizer=q4, name="qconv2d")(x)
    y = QBatchNormalization(name="qbn")(y)
    y = QActivation("quantized_relu(4)", name="qrelu")(y)
    y = QDepthwiseConv2D(3, depthwise_quantizer=quantized_bits(4, 0, 1), bias_quantizer=q4, name="qdw")(y)
    y = QSeparableConv2D(5, 2, depthwise_quantizer=q4, pointwise_quantizer=q4, bias_quantizer=q4,
                         name="qsep2d")(y)
    y = QAveragePooling2D(name="qavg")(y)
    y = QGlobalAveragePooling2D(name="qgap")(y)
    y = QDense(6, kernel_quantizer=q4, bias_quantizer=q4, name="qdense")(y)
    y = QActivation("quantized_bits(8,0,1)", name="qbits")(y)
    image = keras.Model(x, y, name="qkeras_image")

    f = keras.Input((9, 9, 2), name="folded_input")
    g = QConv2DBatchnorm(3, 3, kernel_quantizer=q4, bias_quantizer=q4, name="qconv_bn")(f)
    g = QDepthwiseConv2DBatchnorm(3, depthwise_quantizer=q4, name="qdw_bn")(g)
    folded = keras.Model(f, g, name="qkeras_folded")

    image.compile(optimizer="adam", loss="mse")

    s = keras.Input((12, 3), name="signal")
    z = QConv1D(4, 3, kernel_quantizer=q4, bias_quantizer=q4, name="qconv1d")(s)
    z = QSeparableConv1D(6, 3, depth_multiplier=2, depthwise_quantizer=q4, pointwise_quantizer=q4,
                         use_bias=False, name="qsep1d")(z)
    z = keras.layers.Flatten(name="flatten")(z)
    z = QDense(2, kernel_quantizer="binary", use_bias=False, name="qdense_binary")(z)
    signal = keras.Model(s, z, name="qkeras_signal")
    return qkeras.__version__ if hasattr(qkeras, "__version__") else "0.9.0", [
        ("image", image), ("signal", signal), ("folded", folded), ("recurrent", qkeras_recurrent())]


def _tf_renames():
    """qkeras 0.9.0 calls TensorFlow functions under names TF has since dropped: nest.is_sequence
    (renamed is_nested), array_ops.stack and array_ops.unstack (tf.stack, tf.unstack). Restore the
    old names; the layers' own code and math run unchanged."""
    from tensorflow.python.ops import array_ops
    from tensorflow.python.util import nest

    nest.is_sequence = getattr(nest, "is_sequence", nest.is_nested)
    array_ops.stack = getattr(array_ops, "stack", tf.stack)
    array_ops.unstack = getattr(array_ops, "unstack", tf.unstack)


def qkeras_recurrent():
    from qkeras import QBidirectional, QConv2DTranspose, QGRU, QLSTM, QSimpleRNN

    _tf_renames()
    q4 = "quantized_bits(4,0,1)"
    both = dict(kernel_quantizer=q4, recurrent_quantizer=q4, bias_quantizer=q4)
    s = keras.Input((6, 4), name="sequence")
    y = QSimpleRNN(3, **both, return_sequences=True, name="qrnn")(s)
    y = QLSTM(5, **both, return_sequences=True, name="qlstm")(y)
    y = QBidirectional(QLSTM(3, **both, return_sequences=True), merge_mode="concat", name="qbi")(y)
    y = QGRU(2, **both, name="qgru")(y)  # qkeras's default reset_after=False: one bias vector
    g = QGRU(3, **both, reset_after=True, name="qgru_after")(s)
    i = keras.Input((4, 4, 2), name="image")
    t = QConv2DTranspose(3, 2, strides=2, kernel_quantizer=q4, bias_quantizer=q4, name="qconvt")(i)
    model = keras.Model([s, i], [y, g, t], name="qkeras_recurrent")
    model.compile(optimizer="adam", loss="mse")
    return model


def larq_models():
    import larq as lq

    kw = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
    x = keras.Input((10, 10, 3), name="image")
    y = lq.layers.QuantConv2D(4, 3, kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                              use_bias=False, name="qconv2d")(x)
    y = keras.layers.BatchNormalization(momentum=0.9, scale=False, name="bn")(y)
    y = lq.layers.QuantDepthwiseConv2D(3, input_quantizer="ste_sign", depthwise_quantizer="ste_sign",
                                       depthwise_constraint="weight_clip", name="qdw")(y)
    y = lq.layers.QuantSeparableConv2D(5, 2, input_quantizer=lq.quantizers.SteSign(),
                                       depthwise_quantizer="ste_sign", pointwise_quantizer="ste_sign",
                                       padding="same", pad_values=1.0, name="qsep2d")(y)
    y = lq.layers.QuantConv2DTranspose(3, 2, strides=2, **kw, name="qconvt")(y)
    y = lq.layers.QuantConv2D(3, 3, padding="same", pad_values=1.0, **kw, name="qconv2d_pad1")(y)
    y = keras.layers.Flatten(name="flatten")(y)
    y = lq.layers.QuantDense(4, input_quantizer=lq.quantizers.DoReFa(k_bit=2, mode="activations"),
                             kernel_quantizer=lq.quantizers.DoReFa(k_bit=2, mode="weights"), name="qdense")(y)
    image = keras.Model(x, y, name="larq_image")
    image.compile(optimizer="adam", loss="mse")

    s = keras.Input((12, 3), name="signal")
    z = lq.layers.QuantConv1D(4, 3, **kw, name="qconv1d")(s)
    z = lq.layers.QuantSeparableConv1D(6, 3, depth_multiplier=2, depthwise_quantizer="ste_sign",
                                       pointwise_quantizer="ste_sign", name="qsep1d")(z)
    z = lq.layers.QuantLocallyConnected1D(2, 3, **kw, name="qlocal1d")(z)
    z = keras.layers.Reshape((6, 2, 1), name="reshape")(z)
    z = lq.layers.QuantLocallyConnected2D(2, (3, 2), kernel_quantizer="ste_sign", name="qlocal2d")(z)
    z = keras.layers.Reshape((4, 1, 1, 2), name="reshape3d")(z)
    z = lq.layers.QuantConv3D(2, (2, 1, 1), kernel_quantizer="ste_tern", name="qconv3d")(z)
    z = lq.layers.QuantConv3DTranspose(2, (2, 1, 1), kernel_quantizer="ste_heaviside", name="qconv3dt")(z)
    signal = keras.Model(s, z, name="larq_signal")
    return lq.__version__ if hasattr(lq, "__version__") else "0.14.0", [("image", image), ("signal", signal)]


def main(only=()):
    """Write every fixture, or only the stems named on the command line (`recurrent`)."""
    assert os.environ.get("TF_USE_LEGACY_KERAS") == "1", "run with TF_USE_LEGACY_KERAS=1"
    for library, make in (("qkeras", qkeras_models), ("larq", larq_models)):
        version, models = make()
        for stem, model in models:
            if only and stem not in only:
                continue
            model.summary()
            save(model, os.path.join(HERE, library), stem, library, version)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
