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
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
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
    "multi_input_functional.keras": multi_input_functional,
    "mnist_classifier_keras2.h5": mnist_classifier_keras2,
}


def build(name: str, out_dir: str = HERE) -> str:
    """Build one sample and save it into out_dir; returns its path."""
    builder = SAMPLES[name]
    path = os.path.join(out_dir, name)
    if builder.__name__.endswith("keras2"):
        import tf_keras

        tf_keras.utils.set_random_seed(0)
        builder(tf_keras).save(path, save_format="h5")
    else:
        import keras

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
