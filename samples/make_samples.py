"""Regenerate the committed sample models with real Keras: `python samples/make_samples.py`.

Each sample is small (under 200 KB) and named for what it shows; samples/README.md says what each
one is for. Keras 2 samples are written with tf_keras. Needs the `test` extra.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))


def conv2d_textbook(keras):
    """Conv2D(32, (5,5), padding='valid') on 28x28x1: 5*5*1*32 + 32 = 832 params, output 24x24x32."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, (5, 5), padding="valid", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="conv2d_textbook",
    )


def mnist_classifier(keras):
    """A correct small CNN classifier: softmax output, categorical cross-entropy."""
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            # "same" padding keeps 28 -> 14 -> 7 even, so every pooling window tiles its input
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="mnist_classifier",
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def softmax_bce(keras):
    """The classic mistake: a 10-way softmax trained with binary cross-entropy."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="softmax_bce",
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def softmax_cce(keras):
    """The fix for softmax_bce: the same 10-way softmax, trained with categorical cross-entropy."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="softmax_cce",
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def multi_label_sigmoid(keras):
    """Also correct: 10 independent yes/no labels, sigmoid units with binary cross-entropy."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="sigmoid"),
        ],
        name="multi_label_sigmoid",
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["binary_accuracy"])
    return model


def single_unit_softmax(keras):
    """A yes/no classifier ending in Dense(1, softmax): the output is always 1.0, nothing learns."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="softmax"),
        ],
        name="single_unit_softmax",
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def single_unit_sigmoid(keras):
    """The fix for single_unit_softmax: one sigmoid unit with binary cross-entropy."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ],
        name="single_unit_sigmoid",
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def softmax_from_logits(keras):
    """A softmax output with a loss told it receives logits: softmax is applied twice."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="softmax_from_logits",
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def logits_from_logits(keras):
    """The fix for both softmax_from_logits and logits_without_from_logits: a linear output
    (logits) and a loss told so."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ],
        name="logits_from_logits",
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def logits_without_from_logits(keras):
    """A linear output (logits) with a loss that expects probabilities (from_logits=False, the default)."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ],
        name="logits_without_from_logits",
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def multi_input_functional(keras):
    """A correct Functional model: two inputs, a shared Dense, a nested Sequential, two outputs."""
    a = keras.Input((16,), name="features_a")
    b = keras.Input((16,), name="features_b")
    shared = keras.layers.Dense(16, activation="relu", name="shared_encoder")
    head = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="relu")], name="head")
    x = head(keras.layers.Add()([shared(a), shared(b)]))
    label = keras.layers.Dense(1, activation="sigmoid", name="label")(x)
    kind = keras.layers.Dense(4, activation="softmax", name="kind")(x)
    model = keras.Model([a, b], {"label": label, "kind": kind}, name="multi_input_functional")
    model.compile(optimizer="adam", loss={"label": "binary_crossentropy", "kind": "sparse_categorical_crossentropy"})
    return model


def mnist_classifier_keras2(tf_keras):
    """The correct classifier saved by Keras 2 (tf_keras) as legacy HDF5."""
    model = tf_keras.Sequential(
        [
            tf_keras.layers.Conv2D(16, 3, activation="relu", input_shape=(28, 28, 1)),
            tf_keras.layers.MaxPooling2D(),
            tf_keras.layers.Flatten(),
            tf_keras.layers.Dense(10, activation="softmax"),
        ],
        name="mnist_classifier_keras2",
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


# file name -> builder; the suffix decides the format, "keras2" builders get tf_keras
SAMPLES = {
    "conv2d_textbook.keras": conv2d_textbook,
    "mnist_classifier.keras": mnist_classifier,
    "softmax_bce.keras": softmax_bce,
    "softmax_cce.keras": softmax_cce,
    "multi_label_sigmoid.keras": multi_label_sigmoid,
    "single_unit_softmax.keras": single_unit_softmax,
    "single_unit_sigmoid.keras": single_unit_sigmoid,
    "softmax_from_logits.keras": softmax_from_logits,
    "logits_from_logits.keras": logits_from_logits,
    "logits_without_from_logits.keras": logits_without_from_logits,
    "multi_input_functional.keras": multi_input_functional,
    "mnist_classifier_keras2.h5": mnist_classifier_keras2,
}


def build(name: str, out_dir: str = HERE, fresh: bool = True) -> str:
    """Build one sample and save it into out_dir; returns its path.

    fresh: clear Keras's session first (keras.backend.clear_session(), which leaves live models
    working), so that generated layer names (dense, dense_1, ...) do not depend on what was built
    before: a sample rebuilt in a test is the committed one, layer names included.
    """
    builder = SAMPLES[name]
    path = os.path.join(out_dir, name)
    if builder.__name__.endswith("keras2"):
        import tf_keras

        if fresh:
            tf_keras.backend.clear_session()
        tf_keras.utils.set_random_seed(0)
        builder(tf_keras).save(path, save_format="h5")
    else:
        import keras

        if fresh:
            keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        keras.saving.save_model(builder(keras), path)
    return path


def main(argv: list[str]) -> int:
    names = argv or list(SAMPLES)
    for name in names:
        path = build(name)
        size = os.path.getsize(path)
        print(f"{name}: {size:,} bytes")
        if size > 200 * 1024:
            print(f"  {name} is over 200 KB: make it smaller", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
