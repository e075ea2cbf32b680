"""Real models for the reader tests, built with Keras 3 (`keras`) and Keras 2 (`tf_keras`).

Each builder takes the Keras module and returns a model. `save_all` writes a model in every format
that writer supports, so one model is read back from each.
"""

from __future__ import annotations

import os


def k3_sequential(keras):
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="k3_sequential",
    )


def k3_sequential_built(keras):
    """A Sequential with no Input layer, built with build(input_shape): no InputLayer in its config."""
    model = keras.Sequential([keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)], name="k3_built")
    model.build((None, 6))
    return model


def k3_functional(keras):
    """Two inputs, a shared layer called twice, nested Sequential and Functional models, dict outputs,
    a frozen nested model, a layer called with a tensor keyword argument."""
    a = keras.Input((8,), name="a")
    b = keras.Input((8,), name="b")
    shared = keras.layers.Dense(8, name="shared")
    x = keras.layers.Add(name="add")([shared(a), shared(b)])
    seq = keras.Sequential([keras.Input((8,)), keras.layers.Dense(6, name="seq_dense")], name="inner_seq")
    ii = keras.Input((6,))
    deep = keras.Sequential([keras.Input((6,)), keras.layers.Dense(6, name="deepest")], name="deep")
    inner_func = keras.Model(ii, keras.layers.Dense(5, name="func_dense")(deep(ii)), name="inner_func")
    inner_func.trainable = False
    y = inner_func(seq(x))
    seq_in = keras.layers.Reshape((5, 1), name="to_seq")(y)
    att = keras.layers.MultiHeadAttention(2, 4, name="mha")(seq_in, seq_in, key=seq_in)
    z = keras.layers.Flatten(name="flat")(att)
    o1 = keras.layers.Dense(1, activation="sigmoid", name="o1")(z)
    o2 = keras.layers.Dense(3, activation="softmax", name="o2")(z)
    model = keras.Model([a, b], {"o1": o1, "o2": o2}, name="k3_functional")
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss={"o1": "binary_crossentropy", "o2": keras.losses.CategoricalCrossentropy(from_logits=False)},
        metrics={"o1": ["accuracy"], "o2": ["categorical_accuracy"]},
    )
    return model


def k2_sequential(tf_keras):
    model = tf_keras.Sequential(
        [
            tf_keras.layers.Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1)),
            tf_keras.layers.BatchNormalization(),
            tf_keras.layers.MaxPooling2D(),
            tf_keras.layers.Flatten(),
            tf_keras.layers.Dense(10, activation="softmax"),
        ],
        name="k2_sequential",
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def k2_functional(tf_keras):
    a = tf_keras.Input((8,), name="a")
    b = tf_keras.Input((8,), name="b")
    shared = tf_keras.layers.Dense(8, name="shared")
    x = tf_keras.layers.Add(name="add")([shared(a), shared(b)])
    seq = tf_keras.Sequential([tf_keras.layers.Dense(6, input_shape=(8,), name="seq_dense")], name="inner_seq")
    ii = tf_keras.Input((6,))
    inner_func = tf_keras.Model(ii, tf_keras.layers.Dense(5, name="func_dense")(ii), name="inner_func")
    inner_func.trainable = False
    y = inner_func(seq(x))
    seq_in = tf_keras.layers.Reshape((5, 1), name="to_seq")(y)
    att = tf_keras.layers.MultiHeadAttention(2, 4, name="mha")(seq_in, seq_in)
    z = tf_keras.layers.Flatten(name="flat")(att)
    o1 = tf_keras.layers.Dense(1, activation="sigmoid", name="o1")(z)
    o2 = tf_keras.layers.Dense(3, name="o2")(z)
    model = tf_keras.Model([a, b], [o1, o2], name="k2_functional")
    model.compile(
        optimizer="adam",
        loss=["binary_crossentropy", tf_keras.losses.CategoricalCrossentropy(from_logits=True)],
    )
    return model


def k2_long_names(tf_keras):
    """Enough long layer names that legacy h5 splits `layer_names` into layer_names0, layer_names1..."""
    layers = [tf_keras.layers.InputLayer((4,))]
    for i in range(700):
        layers.append(tf_keras.layers.Activation("linear", name=f"an_activation_with_a_deliberately_long_name_{i:04d}_" + "x" * 50))
    layers.append(tf_keras.layers.Dense(2, name="head"))
    return tf_keras.Sequential(layers, name="k2_long_names")


KERAS3 = {"k3_sequential": k3_sequential, "k3_sequential_built": k3_sequential_built, "k3_functional": k3_functional}
KERAS2 = {"k2_sequential": k2_sequential, "k2_functional": k2_functional, "k2_long_names": k2_long_names}


def save_all(name: str, model, folder: str, keras2: bool) -> dict[str, str]:
    """Save `model` in every format its Keras writes; returns {format: path}."""
    out = {}
    # JSON first: Keras 3's legacy-h5 save drops the optimizer from the model's compile config.
    path = os.path.join(folder, f"{name}.json")
    with open(path, "w") as f:
        f.write(model.to_json())
    out["json-config"] = path
    if keras2:
        path = os.path.join(folder, f"{name}.h5")
        model.save(path, save_format="h5")
        out["keras-h5"] = path
    else:
        import keras

        path = os.path.join(folder, f"{name}.keras")
        keras.saving.save_model(model, path)
        out["keras-v3"] = path
        path = os.path.join(folder, f"{name}.h5")
        keras.saving.save_model(model, path)
        out["keras-h5"] = path
    return out
