"""The benchmark's models, built with real Keras into a cache folder outside the repository.

    python bench/models.py [--workdir DIR] [--only NAME ...]

Default folder: $MODELAUDIT_BENCH_DIR, else ~/.cache/modelaudit-bench. Nothing here is committed: the
largest file (ConvNeXtXLarge, about 1.4 GB) is rebuilt on demand. The applications are built with
`weights=None` (this machine reaches no model hub): random weights have the same shapes and the same
bytes on disk as the trained ones, and modelaudit never reads their values unless --scan-weights.
A model already in the folder is not rebuilt. The `.keras` models are written by Keras 3; the legacy
`.h5` and the SavedModel by tf_keras (Keras 2), whose own formats they are.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def default_workdir() -> str:
    return os.environ.get("MODELAUDIT_BENCH_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "modelaudit-bench")


def _application(name):
    def build(keras):
        return getattr(keras.applications, name)(weights=None)
    return build


def synthetic(n_layers: int):
    """A functional model of exactly `n_layers` layers (InputLayer included): residual blocks of
    Dense -> LayerNormalization -> Activation -> Add, small weights, so the layer count dominates."""
    def build(keras):
        width = 16
        inputs = keras.Input((width,), name="x")
        x = inputs
        left = n_layers - 2  # the input, and the head below
        i = 0
        while left >= 4:
            h = keras.layers.Dense(width, name=f"dense_{i}")(x)
            h = keras.layers.LayerNormalization(name=f"norm_{i}")(h)
            h = keras.layers.Activation("gelu", name=f"act_{i}")(h)
            x = keras.layers.Add(name=f"add_{i}")([x, h])
            left -= 4
            i += 1
        for j in range(left):
            x = keras.layers.Dense(width, name=f"extra_{j}")(x)
        outputs = keras.layers.Dense(10, activation="softmax", name="head")(x)
        model = keras.Model(inputs, outputs, name=f"synthetic_{n_layers}")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        assert len(model.layers) == n_layers, (len(model.layers), n_layers)
        return model
    return build


# name -> (file name, builder). The .h5 is ResNet50 saved in the legacy HDF5 format, the folder a
# SavedModel; both written by tf_keras (TF_KERAS below).
MODELS = {
    "resnet50": ("resnet50.keras", _application("ResNet50")),
    # the same network with a 10-class head: the other side of `modelaudit diff` (bench.py DIFF_CASES)
    "resnet50_head10": ("resnet50_head10.keras", lambda keras: keras.applications.ResNet50(weights=None, classes=10)),
    "resnet50_h5": ("resnet50_tf_keras.h5", _application("ResNet50")),
    "resnet50_savedmodel": ("resnet50_tf_keras_savedmodel", _application("ResNet50")),
    "efficientnetv2l": ("efficientnetv2l.keras", _application("EfficientNetV2L")),
    "convnextbase": ("convnextbase.keras", _application("ConvNeXtBase")),
    "convnextxlarge": ("convnextxlarge.keras", _application("ConvNeXtXLarge")),
    "synthetic_1000": ("synthetic_1000.keras", synthetic(1000)),
    "synthetic_2000": ("synthetic_2000.keras", synthetic(2000)),
    "synthetic_5000": ("synthetic_5000.keras", synthetic(5000)),
    "synthetic_10000": ("synthetic_10000.keras", synthetic(10000)),
}
TF_KERAS = {"resnet50_h5", "resnet50_savedmodel"}  # built and loaded (the baseline) with tf_keras
FOLDER = "small200"  # a folder of 200 small models
FOLDER_COUNT = 200


def path_of(workdir: str, name: str) -> str:
    if name == FOLDER:
        return os.path.join(workdir, FOLDER)
    return os.path.join(workdir, MODELS[name][0])


def _small(keras, i: int):
    """Small models of a few kinds, each one different (units vary with i)."""
    kind = i % 4
    u = 8 + i % 13
    if kind == 0:
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(u, 3, activation="relu"),
                                  keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                                  keras.layers.Dense(10, activation="softmax")], name=f"cnn_{i}")
        model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    elif kind == 1:
        inputs = keras.Input((20,))
        h = keras.layers.Dense(u, activation="relu")(inputs)
        h = keras.layers.Dropout(0.2)(h)
        model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h), name=f"mlp_{i}")
        model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    elif kind == 2:
        inputs = keras.Input((None,), dtype="int32")
        h = keras.layers.Embedding(1000, u)(inputs)
        h = keras.layers.LSTM(u)(h)
        model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(h), name=f"rnn_{i}")
        model.compile("adam", "sparse_categorical_crossentropy")
    else:
        a, b = keras.Input((16,), name="a"), keras.Input((8,), name="b")
        h = keras.layers.Concatenate()([keras.layers.Dense(u)(a), keras.layers.Dense(u)(b)])
        h = keras.layers.BatchNormalization()(h)
        model = keras.Model([a, b], keras.layers.Dense(3)(h), name=f"two_inputs_{i}")
        model.compile("adam", "mse")
    return model


def build(name: str, workdir: str, force: bool = False) -> str:
    path = path_of(workdir, name)
    if os.path.exists(path) and not force:
        return path
    if name in TF_KERAS:
        import tf_keras as keras
    else:
        import keras

    os.makedirs(workdir, exist_ok=True)
    t0 = time.perf_counter()
    if name == FOLDER:
        tmp = path + ".partial"
        os.makedirs(tmp, exist_ok=True)
        for i in range(FOLDER_COUNT):
            target = os.path.join(tmp, f"model_{i:03d}.keras")
            if not os.path.exists(target):
                keras.saving.save_model(_small(keras, i), target)
            if i % 20 == 0:
                keras.backend.clear_session()
        os.replace(tmp, path)
    else:
        model = MODELS[name][1](keras)
        tmp = path + ".partial" + os.path.splitext(path)[1]
        if os.path.isdir(tmp):  # a SavedModel half-written by an interrupted build
            import shutil

            shutil.rmtree(tmp)
        model.save(tmp)  # tf_keras: `.h5` -> legacy HDF5, no suffix -> a SavedModel folder
        os.replace(tmp, path)
        del model
        keras.backend.clear_session()
    print(f"built {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


ALL = list(MODELS) + [FOLDER]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=default_workdir())
    parser.add_argument("--only", nargs="*", choices=ALL, help="build only these")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    for name in args.only or ALL:
        build(name, args.workdir, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
