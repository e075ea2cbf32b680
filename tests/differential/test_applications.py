"""Every architecture in `keras.applications` (weights=None) against Keras itself, layer by layer.

Each model is built once per test session by the `application` fixture (tests/conftest.py), which keeps
only what the tests read (Keras's own counts and shapes, our graphs of the model) and frees the model:
building all of them is most of this file's runtime, and tests/test_architecture.py audits the same
cached graphs instead of building them again. Those not saved are built with uninitialized variables
(no weight values, so the largest never take gigabytes); the saved ones are built both ways and must
record the same. Each is checked through `live.read`; the small ones are
also saved as .keras and legacy .h5 and read back from disk, where the stored weights must match the
recomputed ones exactly. For every node of the graph at every depth — layers, nested models,
InputLayers and the Keras ops the applications apply to tensors directly (`x + 3.0` in MobileNetV3, the
residual `inputs + x` in ConvNeXt) — params, trainable and non-trainable params and the output shapes
of the first call must equal Keras's, every row must be recomputed (no fallback to the file's shapes),
and totals must equal the model's.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from dataclasses import dataclass, field

import pytest

from modelaudit import formats
from modelaudit.formats import live
from modelaudit.formats.manifest import generic_keys
from modelaudit.infer.propagate import propagate

APPLICATIONS = [
    "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge",
    "DenseNet121", "DenseNet169", "DenseNet201",
    "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3",
    "EfficientNetB4", "EfficientNetB5", "EfficientNetB6", "EfficientNetB7",
    "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3",
    "EfficientNetV2L", "EfficientNetV2M", "EfficientNetV2S",
    "InceptionResNetV2", "InceptionV3",
    "MobileNet", "MobileNetV2", "MobileNetV3Large", "MobileNetV3Small",
    "NASNetLarge", "NASNetMobile",
    "ResNet101", "ResNet101V2", "ResNet152", "ResNet152V2", "ResNet50", "ResNet50V2",
    "VGG16", "VGG19", "Xception",
]

# Saved to disk as well: small files (11-34 MB each), and between them every reader path these
# architectures exercise: ops nodes (MobileNetV3), Normalization/Rescaling variables (EfficientNet),
# deep concatenations (DenseNet), Cropping2D and separable convs (NASNet), ZeroPadding/ReLU(6).
SAVED = {"MobileNetV3Small", "MobileNetV2", "EfficientNetB0", "DenseNet121", "NASNetMobile"}


def test_the_list_is_every_application_keras_exports():
    import inspect

    import keras

    exported = sorted(
        name for name in dir(keras.applications)
        if name[:1].isupper() and callable(getattr(keras.applications, name))
        and not inspect.ismodule(getattr(keras.applications, name))
    )
    assert exported == sorted(APPLICATIONS)


# ---- what Keras says, built once ------------------------------------------------------------------


def _dims(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _flat(obj) -> list:
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _flat(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _flat(v)]
    return [obj]


def _size(variables) -> int:
    return sum(math.prod(int(d) for d in v.shape) for v in variables)


def _nodes(model, prefix=""):
    """(path, node) for every node of the graph at every depth, in graph order.

    A functional model's `operations` holds its layers and the ops applied to tensors directly; a
    Sequential has no `operations` and hides its InputLayer from `.layers`, but our graph (like its
    config) has one, so it is compared too.
    """
    import keras

    nodes = model.operations if hasattr(model, "operations") else model._layers
    for node in nodes:
        path = f"{prefix}/{node.name}" if prefix else node.name
        yield path, node
        if isinstance(node, keras.Model):
            yield from _nodes(node, path)


@dataclass(frozen=True)
class KerasNode:
    """One node as Keras counts it: params, and the output shapes of its first call."""

    path: str
    kind: str  # the Keras class name, for messages
    params: int
    trainable: int
    non_trainable: int
    output_shapes: list


@dataclass(frozen=True)
class KerasTruth:
    """Keras's own answers for a model, small enough to keep once the model is gone."""

    nodes: list  # [KerasNode] in graph order, every depth
    total: int
    trainable: int
    non_trainable: int
    output_shapes: list


def keras_truth(model) -> KerasTruth:
    import keras

    nodes = []
    for path, node in _nodes(model):
        is_layer = isinstance(node, keras.layers.Layer)  # an op (ops.numpy.Add...) has no weights
        nodes.append(KerasNode(
            path, type(node).__name__,
            node.count_params() if is_layer else 0,
            _size(node.trainable_weights) if is_layer else 0,
            _size(node.non_trainable_weights) if is_layer else 0,
            [_dims(t) for t in _flat(node.output)],
        ))
    return KerasTruth(nodes, model.count_params(), _size(model.trainable_weights),
                      _size(model.non_trainable_weights), [_dims(t) for t in model.outputs])


@dataclass
class Built:
    """One model built once: Keras's truth, our graph of it live, and (when saved) our graphs of its files."""

    name: str
    truth: KerasTruth
    graph: object  # live.read(model)
    files: list = field(default_factory=list)  # (expected format, graph read back, weight-key problems)
    without_values: Built | None = None  # a saved one's record when built with uninitialized variables
    _inferred: object = None

    @property
    def inferred(self):
        """propagate(graph) of the live graph, computed once for every test that reads it."""
        if self._inferred is None:
            self._inferred = propagate(self.graph)
        return self._inferred


def record(name: str, model, folder, *, save: bool) -> Built:
    """Everything the tests need from a live model, so that the model itself can be freed."""
    built = Built(name, keras_truth(model), live.read(model))
    if save:
        for suffix, fmt in ((".keras", "keras-v3"), (".h5", "keras-h5")):
            path = os.path.join(str(folder), f"{name}{suffix}")
            model.save(path)
            graph = formats.read(path)
            keys = generic_key_problems(name, path, graph) if fmt == "keras-v3" else []
            built.files.append((fmt, graph, keys))
            os.remove(path)  # the next model's files need the room more than this one's
    return built


def build_application(name: str, folder) -> Built:
    """keras.applications.<name>(weights=None), recorded and freed (the `application` fixture's builder).

    Only the saved ones need their weights' values (a file holds them). The others are built in a
    StatelessScope that leaves every variable uninitialized: the same layers, variables and shapes
    (Keras counts params from the shapes), without the values' memory: ConvNeXtXLarge's 1.4 GB,
    VGG's 0.5 GB. The saved ones are built both ways, and their test holds the two records equal.
    """
    import keras

    try:
        if name not in SAVED:
            return _build_without_values(name, folder)
        model = getattr(keras.applications, name)(weights=None)
        built = record(name, model, folder, save=True)
        del model
        keras.backend.clear_session()  # so that the second build's generated names are the first's
        built.without_values = _build_without_values(name, folder)
        return built
    finally:
        keras.backend.clear_session()  # its garbage collection frees the model's graph


def _build_without_values(name: str, folder) -> Built:
    import keras

    with keras.StatelessScope(initialize_variables=False):  # False: not even on leaving the scope
        model = getattr(keras.applications, name)(weights=None)
        assert all(v._value is None for v in model.weights), "Keras gave the variables values"
        return record(name, model, folder, save=False)


# ---- the comparison ------------------------------------------------------------------------------


def compare(name: str, truth: KerasTruth, graph, where: str, *, stored: bool, inferred=None) -> list[str]:
    """Every disagreement between modelaudit's recomputation of `graph` and Keras, one line each."""
    problems = []

    def bad(path, what, ours, theirs):
        problems.append(f"{name} [{where}] {path}: {what}: modelaudit {ours!r} != keras {theirs!r}")

    inferred = inferred or propagate(graph)
    rows = {r.path: r for r in inferred.rows}
    for node in truth.nodes:
        path = node.path
        row = rows.pop(path, None)
        if row is None:
            problems.append(f"{name} [{where}] {path}: no row for this Keras {node.kind}")
            continue
        if row.params != node.params:
            bad(path, "params", row.params, node.params)
        if row.trainable_params != node.trainable:
            bad(path, "trainable params", row.trainable_params, node.trainable)
        if row.non_trainable_params != node.non_trainable:
            bad(path, "non-trainable params", row.non_trainable_params, node.non_trainable)
        ours = [None if s is None else tuple(s) for s in row.first_output_shapes]
        if ours != node.output_shapes:
            bad(path, "output shapes of call 0", ours, node.output_shapes)
        if not row.recomputed:
            problems.append(f"{name} [{where}] {path}: not recomputed ({row.unknown_reason})")
        if row.shape_error:
            problems.append(f"{name} [{where}] {path}: shape error: {row.shape_error}")
        if row.non_positive:
            problems.append(f"{name} [{where}] {path}: non-positive dimension in {row.non_positive}")
        if row.recorded_mismatch:
            problems.append(f"{name} [{where}] {path}: conflicts with recorded shapes: {row.recorded_mismatch}")
        for issue in row.weight_issues:
            expected = issue.expected and (issue.expected.name, issue.expected.shape)
            found = issue.stored and (issue.stored.path, issue.stored.shape)
            problems.append(f"{name} [{where}] {path}: weight {issue.kind}: expected {expected}, stored {found}")
        if stored and row.stored_params != row.params:
            problems.append(f"{name} [{where}] {path}: stored params {row.stored_params} != recomputed {row.params}")
    for path, row in rows.items():
        problems.append(f"{name} [{where}] {path}: a row ({row.layer.class_name}) with no Keras node")

    bad_totals = [
        ("total params", inferred.total_params, truth.total),
        ("trainable params", inferred.trainable_params, truth.trainable),
        ("non-trainable params", inferred.non_trainable_params, truth.non_trainable),
        ("model output shapes", [tuple(s) for s in inferred.output_shapes], truth.output_shapes),
    ]
    if stored:
        bad_totals.append(("stored params", inferred.stored_params, truth.total))
    for what, ours, theirs in bad_totals:
        if ours != theirs:
            bad("<model>", what, ours, theirs)
    if graph.unassigned_weights:
        problems.append(f"{name} [{where}]: weights assigned to no layer: {graph.unassigned_weights[:5]}")
    return problems


def generic_key_problems(name: str, path: str, graph) -> list[str]:
    """Our Keras 3 weight keys (layers/<generic name>/...) are exactly the groups Keras wrote."""
    import h5py

    def ours(g, prefix):
        out = set()
        keys = generic_keys(g)  # once per graph: it walks every layer (NASNetMobile has 771)
        for layer in g.layers:
            key = keys.get(layer.name)
            if key is None:
                continue
            out.add(f"{prefix}layers/{key}")
            if layer.submodel is not None:
                out |= ours(layer.submodel, f"{prefix}layers/{key}/")
        return out

    def theirs(group, prefix):
        out = set()
        if "layers" in group:
            for key, sub in group["layers"].items():
                out.add(f"{prefix}layers/{key}")
                out |= theirs(sub, f"{prefix}layers/{key}/")
        return out

    with zipfile.ZipFile(path) as zf, h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r") as h5:
        keras_keys = theirs(h5, "")
    our_keys = ours(graph, "")
    if our_keys == keras_keys:
        return []
    return [f"{name} [keras-v3]: weight keys only ours {sorted(our_keys - keras_keys)[:8]}, "
            f"only Keras's {sorted(keras_keys - our_keys)[:8]}"]


def check_built(built: Built) -> list[str]:
    problems = compare(built.name, built.truth, built.graph, "live", stored=True, inferred=built.inferred)
    for fmt, graph, key_problems in built.files:
        assert graph.format == fmt
        problems += compare(built.name, built.truth, graph, fmt, stored=True)
        problems += key_problems
    return problems


@pytest.mark.parametrize("name", APPLICATIONS)
def test_application_matches_keras(name, application):
    built = application(name)
    assert [fmt for fmt, _, _ in built.files] == (["keras-v3", "keras-h5"] if name in SAVED else [])
    if name in SAVED:  # the unsaved ones are built without weight values: that build records the same
        twin = built.without_values
        assert (twin.truth, twin.graph) == (built.truth, built.graph)
    problems = check_built(built)
    assert not problems, f"{len(problems)} disagreement(s) with Keras:\n" + "\n".join(problems[:60])


def test_small_convnext_with_stochastic_depth(tmp_path):
    """The exported ConvNeXts set drop_path_rate=0, so StochasticDepth never appears in them; the
    shared builder with a rate > 0 adds it, and this one is small enough to save cheaply (LayerScale,
    nested Sequentials and residual ops in a file)."""
    import keras
    from keras.src.applications.convnext import ConvNeXt

    model = ConvNeXt(
        depths=[1, 2, 1, 1], projection_dims=[8, 16, 16, 24], drop_path_rate=0.2, default_size=32,
        input_shape=(32, 32, 3), classes=10, name="convnext_mini",
    )
    try:
        classes = {type(layer).__name__ for layer in model.layers}
        assert {"StochasticDepth", "LayerScale", "Sequential"} <= classes
        built = record("convnext_mini", model, tmp_path, save=True)
    finally:
        del model
        keras.backend.clear_session()
    problems = check_built(built)
    assert not problems, "\n".join(problems)


# ---- the helper layers on their own, including shapes the applications never feed them ------------


N = None

# (id, module in keras.src.applications, class, constructor args, input shapes)
HELPERS = [
    ("layerscale-nhwc", "convnext", "LayerScale", (1e-6, 16), [(N, 7, 7, 16)]),
    ("layerscale-rank2", "convnext", "LayerScale", (0.5, 5), [(N, 5)]),
    ("layerscale-broadcasts-1", "convnext", "LayerScale", (0.5, 6), [(N, 3, 1)]),
    ("layerscale-unknown-last", "convnext", "LayerScale", (0.5, 4), [(N, 3, N)]),
    ("stochastic-depth", "convnext", "StochasticDepth", (0.1,), [(N, 8, 8, 4)]),
    ("custom-scale", "inception_resnet_v2", "CustomScaleLayer", (0.17,), [(N, 8, 8, 32), (N, 8, 8, 32)]),
    ("custom-scale-broadcast", "inception_resnet_v2", "CustomScaleLayer", (1.0,), [(N, 8, 1, 32), (N, 1, 5, 32)]),
    ("custom-scale-unknown", "inception_resnet_v2", "CustomScaleLayer", (0.1,), [(N, N, N, 3), (N, 4, 4, 3)]),
]


@pytest.mark.parametrize("module,cls,args,shapes", [h[1:] for h in HELPERS], ids=[h[0] for h in HELPERS])
def test_helper_layer_matches_keras(module, cls, args, shapes):
    import importlib

    from tests.differential.keras_check import check_layer

    layer_class = getattr(importlib.import_module(f"keras.src.applications.{module}"), cls)
    check_layer(layer_class(*args), shapes)
