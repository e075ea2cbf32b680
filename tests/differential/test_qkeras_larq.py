"""QKeras and Larq models, layer by layer, against what the libraries themselves reported.

larq 0.14.0 needs numpy < 2 and both libraries need Keras 2 (TF_USE_LEGACY_KERAS=1), so neither can
join the test environment: the models were written once, in a separate virtualenv, by
tests/data/make_qkeras_larq.py (see tests/data/README.md), as .h5 and .keras. The JSON beside each
file is the truth: count_params(), trainable / non-trainable counts, output shapes and weight shapes
of every layer, as tf_keras reported them at generation time. Nothing here is copied from our output.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import modelaudit
from modelaudit import formats
from modelaudit.infer.propagate import propagate

DATA = Path(__file__).resolve().parent.parent / "data"
FIXTURES = [
    (library, stem, ext)
    for library, stems in (("qkeras", ("image", "signal", "folded", "recurrent")), ("larq", ("image", "signal")))
    for stem in stems
    for ext in (".h5", ".keras")
]


def _ids(item):
    library, stem, ext = item
    return f"{library}-{stem}{ext}"


@pytest.fixture(scope="module", params=FIXTURES, ids=_ids)
def fixture(request):
    library, stem, ext = request.param
    path = DATA / library / f"{stem}{ext}"
    truth = json.loads((DATA / library / f"{stem}.json").read_text())
    return path, truth


def _size(shape) -> int:
    return math.prod(int(d) for d in shape)


def test_every_layer_agrees_with_the_library(fixture):
    path, truth = fixture
    inferred = propagate(formats.read(str(path)))
    rows = {r.path: r for r in inferred.rows}
    problems = []
    for layer in truth["layers"]:
        if layer["class"] == "InputLayer":
            continue
        row = rows[layer["name"]]
        where = f"{path.name} {layer['name']} ({layer['class']})"
        if not row.recomputed:
            problems.append(f"{where}: not recomputed ({row.unknown_reason})")
            continue
        ours = (row.params, row.trainable_params, row.non_trainable_params)
        theirs = (layer["params"], layer["trainable_params"], layer["non_trainable_params"])
        if ours != theirs:
            problems.append(f"{where}: params/trainable/non-trainable {ours} != {theirs}")
        shapes = [list(s) for s in row.output_shapes[0]]
        if shapes != layer["output_shapes"]:
            problems.append(f"{where}: output shapes {shapes} != {layer['output_shapes']}")
        expected = sorted((tuple(w.shape), w.trainable) for w in row.expected_weights)
        keras = sorted((tuple(w["shape"]), w["trainable"]) for w in layer["weights"])
        if expected != keras:
            problems.append(f"{where}: weights {expected} != {keras}")
        if row.shape_error or row.weight_issues or row.recorded_mismatch:
            problems.append(f"{where}: {row.shape_error} {row.weight_issues} {row.recorded_mismatch}")
    assert not problems, "\n".join(problems)
    totals = (inferred.total_params, inferred.trainable_params, inferred.non_trainable_params)
    assert totals == (truth["total_params"], truth["trainable_params"], truth["non_trainable_params"])
    assert sum(_size(w["shape"]) for layer in truth["layers"] for w in layer["weights"]) == truth["total_params"]


def test_correct_models_draw_no_error_or_warning(fixture):
    path, _ = fixture
    report = modelaudit.audit(str(path))
    loud = [f for f in report.files[0].findings if f.severity.name.lower() in ("error", "warning")]
    assert report.files[0].error is None
    assert not loud, [f"{f.code} {f.layer}: {f.message}" for f in loud]
    assert not [f for f in report.files[0].findings if f.code == "MA107"]


def test_the_fixtures_cover_every_class_the_issue_names():
    classes = {
        layer["class"]
        for library, stem, _ in FIXTURES
        for layer in json.loads((DATA / library / f"{stem}.json").read_text())["layers"]
    }
    named = {"QDense", "QConv1D", "QConv2D", "QDepthwiseConv2D", "QSeparableConv2D", "QActivation",
             "QBatchNormalization", "QAveragePooling2D", "QuantDense", "QuantConv1D", "QuantConv2D",
             "QuantConv3D", "QuantDepthwiseConv2D", "QuantSeparableConv2D", "QuantConv2DTranspose"}
    assert named <= classes


# Larq's QuantLocallyConnected layers are tf_keras's LocallyConnected layers (which Keras 3 dropped):
# their spec is checked against tf_keras itself, for all three kernel implementations.
LOCAL_CASES = [
    ("1D", dict(filters=3, kernel_size=3, implementation=1), (None, 9, 4)),
    ("1D", dict(filters=2, kernel_size=2, strides=2, implementation=2, padding="same"), (None, 9, 4)),
    ("1D", dict(filters=2, kernel_size=4, strides=3, implementation=3, padding="same"), (None, 10, 3)),
    ("1D", dict(filters=2, kernel_size=3, implementation=2, data_format="channels_first"), (None, 4, 9)),
    ("1D", dict(filters=2, kernel_size=3, implementation=3, use_bias=False), (None, 7, 2)),
    ("2D", dict(filters=3, kernel_size=(3, 2), implementation=1), (None, 6, 5, 2)),
    ("2D", dict(filters=2, kernel_size=3, strides=2, implementation=2, padding="same"), (None, 7, 6, 2)),
    ("2D", dict(filters=2, kernel_size=(2, 3), strides=(1, 2), implementation=3, padding="same"), (None, 5, 6, 3)),
    ("2D", dict(filters=2, kernel_size=2, implementation=2, data_format="channels_first"), (None, 3, 5, 4)),
]


@pytest.mark.parametrize("rank,kwargs,shape", LOCAL_CASES)
def test_locally_connected_agrees_with_tf_keras(rank, kwargs, shape):
    import tf_keras

    from tests.differential.keras_check import check_layer_keras2

    layer = getattr(tf_keras.layers, f"LocallyConnected{rank}")(**kwargs)
    check_layer_keras2(layer, [shape])


def _library_classes(path: Path, library: str) -> set:
    """Every (module, class) of the library that the saved config names, found by a walk of our own."""
    import zipfile

    import h5py

    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
    else:
        with h5py.File(path, "r") as f:
            config = json.loads(f.attrs["model_config"])
    found, stack = set(), [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if str(node.get("module") or "").startswith(library + "."):
                found.add(f"{node['module']}.{node['class_name']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def test_custom_objects_are_reported_once_per_class(fixture):
    path, _ = fixture
    library = path.parent.name
    classes = _library_classes(path, library)
    custom = [f for f in modelaudit.audit(str(path)).files[0].findings if f.code == "MA407"]
    named = [next(c for c in classes if f"`{c}`" in f.message) for f in custom]
    assert sorted(named) == sorted(classes)


def test_every_qkeras_and_larq_spec_is_held_to_a_real_layer():
    from modelaudit.infer import registry

    ours = {n for n in registry.known_classes()
            if type(registry.get(n)).__module__ in ("modelaudit.infer.qkeras", "modelaudit.infer.larq")}
    in_fixtures = {
        layer["class"]
        for library, stem, _ in FIXTURES
        for layer in json.loads((DATA / library / f"{stem}.json").read_text())["layers"]
    }
    checked_with_tf_keras = {f"LocallyConnected{rank}" for rank, _, _ in LOCAL_CASES}
    # qkeras 0.9.0's QConv2DTranspose cannot be built on TensorFlow 2.21 (tests/data/README.md): its
    # spec is Conv2DTranspose's, which test_specs_conv.py holds to Keras.
    unbuildable = {"QConv2DTranspose"}
    assert sorted(ours - in_fixtures - checked_with_tf_keras - unbuildable) == []
