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


# ---- zoo models for tests/differential/test_zoo.py (lookups, wrapped models, mask ops) -----------
# Each builder takes the Keras module. tf_keras 2.21's adapt() fails in this environment
# ('VocabWeightHandler' has no attribute 'name'), so its lookups get their vocabularies as arguments.

TEXTS = ["the cat sat", "the dog ran", "a cat and a dog"]


def lookup_layers(k):
    """Every lookup and categorical encoder, each output mode used somewhere; Keras 3's adapted."""
    import numpy as np

    L = k.layers
    adapt = k.__name__ == "keras"
    words = {} if adapt else {"vocabulary": ["the", "cat", "sat", "dog"]}
    text = k.Input((), dtype="string", name="text")
    tokens = L.TextVectorization(max_tokens=12, output_sequence_length=5, **words)
    bag = L.TextVectorization(output_mode="multi_hot", ngrams=2, **words)
    # tf_keras's TF-IDF weights have shape (None,), which the zoo's size sums cannot take:
    # test_specs_lookup.py checks that layer in tf_keras
    tfidf = L.TextVectorization(output_mode="tf_idf" if adapt else "count", **words)
    colours = L.StringLookup(output_mode="multi_hot", **({} if adapt else {"vocabulary": ["red", "blue"]}))
    if adapt:
        for layer in (tokens, bag, tfidf):
            layer.adapt(np.array(TEXTS))
        colours.adapt(np.array([["red"], ["blue"], ["red"]]))
    x = L.GlobalAveragePooling1D()(L.Embedding(12, 4)(tokens(text)))
    colour = k.Input((1,), dtype="string", name="colour")
    ids = k.Input((1,), dtype="int64", name="ids")
    num = k.Input((1,), name="num")
    parts = [
        x, bag(text), tfidf(text),
        L.StringLookup(vocabulary=["red", "green", "blue"], output_mode="one_hot", num_oov_indices=2)(colour),
        colours(colour),
        L.StringLookup(vocabulary=["red", "green"], output_mode="count", max_tokens=6, pad_to_max_tokens=True)(colour),
        L.IntegerLookup(vocabulary=[3, 5, 7], output_mode="multi_hot", mask_token=0)(ids),
        L.Flatten()(L.Embedding(6, 2)(L.IntegerLookup(vocabulary=[3, 5, 7])(ids))),
        L.Hashing(num_bins=6, output_mode="one_hot")(colour),
        L.CategoryEncoding(num_tokens=8, output_mode="count")(ids),
        L.HashedCrossing(num_bins=5, output_mode="one_hot")([colour, ids]),
        L.Discretization(bin_boundaries=[0.0, 1.0, 2.0], output_mode="one_hot")(num),
        L.Discretization(bin_boundaries=[0.5], output_mode="multi_hot")(num),
    ]
    out = L.Dense(1)(L.Concatenate()(parts))
    return k.Model({"text": text, "colour": colour, "ids": ids, "num": num}, out, name="lookup_layers")


def wrapped_models(k):
    """TimeDistributed over a small CNN Sequential, a Functional, a frozen Sequential without Input."""
    L = k.layers
    frame_cnn = k.Sequential(
        [k.Input((8, 8, 1)), L.Conv2D(2, 3), L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(), L.Dense(3)],
        name="frame_cnn",
    )
    step_in = k.Input((3,))
    step = k.Model(step_in, L.Dense(2, name="step_out")(L.Dense(5)(step_in)), name="step_model")
    frozen = k.Sequential([L.Dense(4), L.LayerNormalization()], name="frozen_steps")
    frozen.trainable = False
    frames = k.Input((4, 8, 8, 1))
    x = L.TimeDistributed(frame_cnn, name="per_frame")(frames)
    x = L.TimeDistributed(step, name="per_step")(x)
    x = L.TimeDistributed(frozen, name="frozen_per_step")(x)
    return k.Model(frames, L.LSTM(2)(x), name="wrapped_models")


def mask_ops(k):
    """Keras 3 op nodes of masking code: not_equal, comparisons, logical ops, where, cast."""
    L, ops = k.layers, k.ops
    tok = k.Input((6,), dtype="int32")
    keep = ops.not_equal(tok, 0)
    mixed = ops.logical_and(ops.logical_or(keep, ops.equal(tok, 3)),
                            ops.logical_not(ops.logical_and(ops.less(tok, 5), ops.greater(tok, 1))))
    mixed = ops.logical_or(mixed, ops.logical_and(ops.less_equal(tok, 2), ops.greater_equal(tok, 9)))
    weight = ops.cast(mixed, "float32")
    weight = ops.where(keep, weight, ops.zeros_like(weight))
    seq = L.LSTM(3)(L.Embedding(20, 4, mask_zero=True)(tok))
    anyk = ops.cast(ops.any(keep, axis=-1, keepdims=True), "float32")
    return k.Model(tok, L.Concatenate()([seq, weight, anyk]), name="mask_ops")


# For test_zoo.py: built with both Keras, and with Keras 3 only (classes or ops tf_keras lacks).
ZOO_BOTH = [lookup_layers, wrapped_models]
ZOO_KERAS3_ONLY = [mask_ops]
