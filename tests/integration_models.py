"""Small real models for the integration tests (reports, pre-commit, API), saved by real Keras.

`classifier` is a correct, compiled model; `broken_copy` rewrites a saved .keras file's config so that
the last Dense claims more units than its stored weights hold (MA101 weight-shape-mismatch), the way a
hand-edited or mis-assembled file would. Retraining is imitated by saving with another seed: the
bytes change, the architecture does not.
"""

from __future__ import annotations

import json
import zipfile


def classifier(seed: int = 0, name: str = "classifier"):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((8,), name="features"),
            keras.layers.Dense(4, activation="relu", name="hidden"),
            keras.layers.Dense(3, activation="softmax", name="probs"),
        ],
        name=name,
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def save_classifier(path: str, seed: int = 0) -> str:
    import keras

    keras.saving.save_model(classifier(seed), str(path))
    return str(path)


def broken_copy(src: str, dst: str, layer: str = "probs", units: int = 5) -> str:
    """A copy of a .keras file whose config gives `layer` another number of units than its weights."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                for entry in config["config"]["layers"]:
                    if entry["config"].get("name") == layer:
                        entry["config"]["units"] = units
                data = json.dumps(config).encode("utf-8")
            zout.writestr(item, data)
    return str(dst)


def unknown_layer_json(path: str) -> str:
    """A model.to_json() file whose Dense is renamed to a custom class: an MA107 info finding."""
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="proj")], name="custom")
    config = json.loads(model.to_json())
    entry = next(e for e in config["config"]["layers"] if e["config"].get("name") == "proj")
    entry["class_name"] = "MyProjection"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f)
    return str(path)
