"""QKeras layers (qkeras 0.9.0, on Keras 2 / tf_keras): the float layers they subclass, plus known extras.

QKeras's quantizers (`kernel_quantizer: "quantized_bits(4,0,1)"` strings or serialized objects) only
change the values the layer computes with: they add no saved weight (BaseQuantizer hides its own
variables from `layer.weights`), so each spec is the float spec under the QKeras class name. The
folded layers (QConv2DBatchnorm, QDepthwiseConv2DBatchnorm) add a BatchNormalization's weights and a
scalar int64 training-step counter. Formulas: qkeras/qlayers.py, qconvolutional.py, qnormalization.py,
qpooling.py, qrecurrent.py, qconv2d_batchnorm.py, qdepthwiseconv2d_batchnorm.py.
"""

from __future__ import annotations

# the float families first: the specs below are their registered classes
from modelaudit.infer import conv, core, normalization, pooling, recurrent  # noqa: F401
from modelaudit.infer.registry import LayerSpec, WeightSpec, alias, register, spec_class

alias("Dense", "QDense")
alias("Conv1D", "QConv1D")
alias("Conv2D", "QConv2D")
alias("Conv2DTranspose", "QConv2DTranspose")
alias("DepthwiseConv2D", "QDepthwiseConv2D")
alias("SeparableConv1D", "QSeparableConv1D")
alias("SeparableConv2D", "QSeparableConv2D")
alias("BatchNormalization", "QBatchNormalization")
# qrecurrent.py: the cells quantize kernel, recurrent kernel and bias in call(); build() is Keras's
alias("SimpleRNN", "QSimpleRNN")
alias("LSTM", "QLSTM")
alias("GRU", "QGRU")
alias("Bidirectional", "QBidirectional")
alias("AveragePooling2D", "QAveragePooling2D")
alias("GlobalAveragePooling2D", "QGlobalAveragePooling2D")


@register("QActivation")
class QActivationSpec(LayerSpec):
    # an element-wise quantizer (quantized_relu, quantized_bits ...): same shape, no weights
    pass


class _FoldedBatchnorm:
    """qconv2d_batchnorm.py build(): the conv's weights, then its BatchNormalization (built on the
    conv's output, with the layer's own axis / center / scale) and `iteration` (int64, shape ())."""

    def weights(self, config, input_shapes):
        specs = super().weights(config, input_shapes)
        out = self.output_shapes(config, input_shapes)
        bn = normalization.BatchNormalizationSpec().weights(config, out)
        trainable = [w for w in bn if w.trainable]
        moving = [w for w in bn if not w.trainable]
        return specs + trainable + [WeightSpec("iteration", (), trainable=False)] + moving

    def formula(self, config, input_shapes):
        return None


@register("QConv2DBatchnorm")
class QConv2DBatchnormSpec(_FoldedBatchnorm, spec_class("Conv2D")):
    pass


@register("QDepthwiseConv2DBatchnorm")
class QDepthwiseConv2DBatchnormSpec(_FoldedBatchnorm, spec_class("DepthwiseConv2D")):
    pass
