"""Lookup and categorical preprocessing layers, TimeDistributed over whole models, and the Keras 3 op
nodes of masking code, against real Keras 3 and tf_keras.

Per layer (keras_check): output shapes, count_params() and the weights of StringLookup,
IntegerLookup, TextVectorization, Hashing, CategoryEncoding, HashedCrossing and Discretization in
every output mode and on inputs of rank 1 to 3. Whole saved models (the zoo builders of tests/zoo.py,
compared layer by layer with test_zoo.compare) and the full audit: no error or warning finding on a
`.keras` whose adapted vocabularies are assets/ members and whose TF-IDF weights are stored
variables count_params() leaves out, nor on the tf_keras `.h5` of a TF-IDF lookup.
"""

from __future__ import annotations

import os
import zipfile

import pytest

import keras
import tf_keras
import numpy as np

import modelaudit  # noqa: E402
from modelaudit import formats  # noqa: E402
from modelaudit.formats import live  # noqa: E402
from tests import zoo  # noqa: E402
from tests.differential import test_zoo  # noqa: E402
from tests.differential.keras_check import check_layer, check_layer_keras2  # noqa: E402

RANKS = [(None,), (None, 1), (None, 4), (None, 3, 4)]
ENCODINGS = ["one_hot", "multi_hot", "count"]
K2_RANKS = [(None,), (None, 1)]  # tf_keras encodes to rank 2 at most (and one_hot only a single value)


def _check_all(make, shapes):
    for shape in shapes:
        check_layer(make(), [shape] if isinstance(shape, tuple) else shape)


def _check_all_keras2(make, shapes, dtype):
    for shape in shapes:
        check_layer_keras2(make(), [shape] if isinstance(shape, tuple) else shape, dtype=dtype)


@pytest.mark.parametrize("mode", ["int", *ENCODINGS, "tf_idf"])
def test_string_and_integer_lookup(mode):
    L = keras.layers
    idf = {"idf_weights": [1.0, 2.0, 3.0]} if mode == "tf_idf" else {}
    _check_all(lambda: L.StringLookup(vocabulary=["a", "b", "c"], output_mode=mode, **idf), RANKS)
    _check_all(lambda: L.IntegerLookup(vocabulary=[4, 5, 6], output_mode=mode, num_oov_indices=2, **idf), RANKS)

    def adapted():
        layer = L.StringLookup(output_mode=mode, mask_token="", num_oov_indices=2)
        layer.adapt(np.array([["a", "b"], ["c", "a"]]))
        return layer

    _check_all(adapted, [(None, 4)])
    _check_all(lambda: L.IntegerLookup(vocabulary=[4, 5], output_mode=mode, max_tokens=9, pad_to_max_tokens=True, **(
        {"idf_weights": [1.0, 2.0]} if idf else {})), [(None, 3)])
    _check_all(lambda: L.StringLookup(output_mode=mode), [(None, 4)])  # no vocabulary yet: depth unknown


@pytest.mark.parametrize("mode", ["int", "multi_hot", "count", "tf_idf"])
def test_text_vectorization(mode):
    L = keras.layers
    texts = np.array(zoo.TEXTS)

    def adapted(**kw):
        def make():
            layer = L.TextVectorization(output_mode=mode, **kw)
            layer.adapt(texts)
            return layer

        return make

    _check_all(adapted(max_tokens=20, ngrams=2), [(None,), (None, 1)])
    _check_all(adapted(split=None), [(None,), (None, 1)])
    _check_all(adapted(max_tokens=20, pad_to_max_tokens=True), [(None,), (None, 1)])
    if mode == "int":
        _check_all(adapted(output_sequence_length=7), [(None,), (None, 1)])
        _check_all(adapted(output_sequence_length=3, split="character"), [(None,)])


@pytest.mark.parametrize("mode", ["int", *ENCODINGS])
def test_hashing_discretization_category_encoding(mode):
    L = keras.layers
    _check_all(lambda: L.Hashing(num_bins=7, output_mode=mode), RANKS)
    _check_all(lambda: L.Discretization(bin_boundaries=[0.0, 1.0, 2.0], output_mode=mode), RANKS)

    def adapted():
        layer = L.Discretization(num_bins=5, output_mode=mode)
        layer.adapt(np.random.default_rng(0).random((20, 4)))
        return layer

    _check_all(adapted, [(None, 4)])
    if mode != "int":
        _check_all(lambda: L.CategoryEncoding(num_tokens=6, output_mode=mode), RANKS)


@pytest.mark.parametrize("mode", ["int", "one_hot"])
def test_hashed_crossing(mode):
    pairs = [[(None,), (None,)], [(None, 1), (None, 1)], [(None, 4), (None, 4)]]
    _check_all(lambda: keras.layers.HashedCrossing(num_bins=9, output_mode=mode), pairs)


@pytest.mark.parametrize("mode", ["int", *ENCODINGS])
def test_keras2_lookups_and_encoders(mode):
    L = tf_keras.layers
    shapes = K2_RANKS + ([] if mode in ("int", "one_hot") else [(None, 4)])
    _check_all_keras2(lambda: L.StringLookup(vocabulary=["a", "b", "c"], output_mode=mode), shapes, "string")
    _check_all_keras2(lambda: L.IntegerLookup(vocabulary=[4, 5], output_mode=mode, mask_token=0), shapes, "int64")
    hashed = shapes[1:] if mode == "one_hot" else shapes  # tf_keras one-hot encodes (batch,) to (batch, bins)
    _check_all_keras2(lambda: L.Hashing(num_bins=7, output_mode=mode), hashed, "string")
    _check_all_keras2(lambda: L.Discretization(bin_boundaries=[0.0, 1.0], output_mode=mode), shapes, "float32")
    if mode != "int":
        _check_all_keras2(lambda: L.CategoryEncoding(num_tokens=6, output_mode=mode), shapes, "int64")
        if mode != "one_hot":  # not a TextVectorization mode
            vectorizer = lambda: L.TextVectorization(vocabulary=["a", "b"], output_mode=mode)  # noqa: E731
            _check_all_keras2(vectorizer, K2_RANKS, "string")
            split_none = lambda: L.TextVectorization(vocabulary=["a b"], split=None, output_mode=mode)  # noqa: E731
            _check_all_keras2(split_none, K2_RANKS, "string")
    else:
        text = lambda: L.TextVectorization(vocabulary=["a", "b"], output_sequence_length=4)  # noqa: E731
        _check_all_keras2(text, K2_RANKS, "string")
    if mode in ("int", "one_hot"):
        crossing = lambda: L.HashedCrossing(num_bins=5, output_mode=mode)  # noqa: E731
        _check_all_keras2(crossing, [[(None, 1), (None, 1)]], "int64")


# ---- saved models ----------------------------------------------------------------------------------


def _no_findings(target) -> list[str]:
    """Every error or warning finding of the full audit (integrity, architecture and security rules)."""
    report = modelaudit.audit(target)
    problems = []
    for fr in report.files:
        problems += [f"cannot read: {fr.error}"] if fr.error else []
        problems += [f"internal error: {e}" for e in fr.internal_errors]
        problems += [f"{f.code} [{f.severity.value}] {f.layer}: {f.message}" for f in fr.findings
                     if f.severity.value in ("error", "warning")]
    return problems


def _saved(tmp_path, name, model, flavour):
    files = {}
    if flavour == test_zoo.K3:
        files["keras-v3"] = str(tmp_path / f"{name}.keras")
        keras.saving.save_model(model, files["keras-v3"])
        files["keras-h5"] = str(tmp_path / f"{name}.h5")
        keras.saving.save_model(model, files["keras-h5"])
    else:
        files["keras-h5"] = str(tmp_path / f"{name}.h5")
        model.save(files["keras-h5"], save_format="h5")
    return test_zoo.Built(name, flavour, model, files)


def _compare_everywhere(built) -> list[str]:
    problems = test_zoo.compare(built, live.read(built.model), "live")
    for fmt, path in built.files.items():
        problems += test_zoo.compare(built, formats.read(path), fmt)
        problems += [f"{fmt}: {p}" for p in _no_findings(path)]
    return problems


@pytest.fixture(scope="module")
def lookups_k3(tmp_path_factory):
    built = _saved(tmp_path_factory.mktemp("lookups"), "lookups", zoo.lookup_layers(keras), test_zoo.K3)
    yield built
    keras.backend.clear_session()


def test_keras3_lookup_model_assets_and_idf_weights(lookups_k3):
    """Adapted vocabularies are assets/ members of the .keras, TF-IDF weights stored variables that
    count_params() leaves out: modelaudit agrees with Keras layer by layer and the full audit
    (archive checks included) is silent."""
    names = zipfile.ZipFile(lookups_k3.files["keras-v3"]).namelist()
    assert any(n.startswith("assets/") and n.endswith("vocabulary.txt") for n in names), names
    tfidf = next(layer for layer in lookups_k3.model.layers if layer.get_config().get("output_mode") == "tf_idf")
    assert tfidf.count_params() == 0 and tfidf.weights == []
    stored = [w for layer in formats.read(lookups_k3.files["keras-v3"]).layers if layer.name == tfidf.name
              for w in layer.weights]
    assert stored and all(w.path.endswith("idf_weights") for w in stored), stored
    assert _compare_everywhere(lookups_k3) == []


def test_keras2_tf_idf_h5(tmp_path):
    """tf_keras stores a TF-IDF layer's weights as `Variable:0` of shape (vocabulary,), which its
    count_params() counts as 0 (the variable's shape is (None,))."""
    L = tf_keras.layers
    text = tf_keras.Input((1,), dtype="string")
    a = L.StringLookup(vocabulary=["a", "b"], idf_weights=[1.0, 2.0], output_mode="tf_idf")(text)
    b = L.TextVectorization(vocabulary=["a", "b", "c"], idf_weights=[1.0, 2.0, 3.0], output_mode="tf_idf")(text)
    model = tf_keras.Model(text, L.Dense(2)(L.Concatenate()([a, b])))
    path = str(tmp_path / "tfidf.h5")
    model.save(path, save_format="h5")
    graph = formats.read(path)
    stored = {layer.name: [(w.path, w.shape) for w in layer.weights] for layer in graph.layers}
    lookup, vectorizer = model.layers[1], model.layers[2]
    assert [s for _, s in stored[lookup.name]] == [(3,)] and [s for _, s in stored[vectorizer.name]] == [(4,)]
    inferred = test_zoo.propagate(graph)
    rows = {r.path: r for r in inferred.rows}
    for layer in (lookup, vectorizer):
        assert rows[layer.name].params == layer.count_params() == 0
        assert rows[layer.name].weight_issues == []
        assert rows[layer.name].output_shapes[0] == [tuple(layer.output.shape)]
    assert inferred.total_params == model.count_params()
    assert _no_findings(path) == []


def test_keras2_adapted_discretization_h5(tmp_path):
    """tf_keras saves an adapted Discretization's quantile summary, a variable of shape (2, None)
    that its count_params() counts as 0."""
    layer = tf_keras.layers.Discretization(num_bins=4, output_mode="multi_hot")
    layer.adapt(np.random.default_rng(0).random((30, 1)))
    inp = tf_keras.Input((1,))
    model = tf_keras.Model(inp, tf_keras.layers.Dense(2)(layer(inp)))
    path = str(tmp_path / "discretization.h5")
    model.save(path, save_format="h5")
    stored = [w for held in formats.read(path).layers if held.name == layer.name for w in held.weights]
    assert [w.path.rsplit("/", 1)[1] for w in stored] == ["summary:0"] and layer.count_params() == 0
    inferred = test_zoo.propagate(formats.read(path))
    row = next(r for r in inferred.rows if r.path == layer.name)
    assert row.params == 0 and row.weight_issues == [] and row.output_shapes[0] == [tuple(layer.output.shape)]
    assert inferred.total_params == model.count_params()
    assert _no_findings(path) == []


def test_time_distributed_nested_and_unbuilt_models(tmp_path):
    """TimeDistributed over a Sequential holding a TimeDistributed, over a Sequential with no Input
    (built by the wrapper) and over a Functional, in both Keras."""
    for flavour, k in ((test_zoo.K3, keras), (test_zoo.K2, tf_keras)):
        L = k.layers
        inner = k.Sequential([k.Input((3, 4)), L.TimeDistributed(L.Dense(2)), L.Flatten()], name="inner_td")
        bare = k.Sequential([L.Dense(3), L.Dropout(0.1), L.Dense(2, use_bias=False)], name="bare")
        fin = k.Input((6,))
        func = k.Model(fin, L.Dense(4)(L.BatchNormalization()(fin)), name="func")
        x_in = k.Input((5, 3, 4))
        x = L.TimeDistributed(inner)(x_in)  # (5, 6)
        y = L.TimeDistributed(bare)(x)
        z = L.TimeDistributed(func)(x)
        model = k.Model(x_in, L.Concatenate()([y, z]), name=f"td_models_{flavour}")
        built = _saved(tmp_path, model.name, model, flavour)
        assert _compare_everywhere(built) == []


def test_bidirectional_refuses_a_model():
    """Keras itself cannot wrap a model in Bidirectional (it reads the layer's go_backwards), so no
    file holds one; the Bidirectional spec needs nothing for it."""
    for k in (keras, tf_keras):
        rnn = k.Sequential([k.Input((5, 3)), k.layers.LSTM(4, return_sequences=True)])
        with pytest.raises((AttributeError, KeyError, ValueError)):
            k.layers.Bidirectional(rnn)


def _inner_dense(cfg: dict) -> dict:
    wrapper = next(item for item in cfg["config"]["layers"] if item["config"]["name"] == "per_step")
    inner = wrapper["config"]["layer"]["config"]["layers"]
    return next(item for item in inner if item["config"]["name"] == "inner_dense")


def test_wrapped_model_weights_are_compared(tmp_path):
    """A wrapped model's weights are held against the file's: its inner Dense edited to use_bias=False
    leaves the stored bias unexpected (MA103, on the wrapper), and nothing else is reported."""
    from tests.differential.test_tampered import edit_h5, edit_keras

    for flavour, k in ((test_zoo.K3, keras), (test_zoo.K2, tf_keras)):
        inner = k.Sequential([k.Input((3,)), k.layers.Dense(4, name="inner_dense")], name="inner")
        x_in = k.Input((5, 3))
        model = k.Model(x_in, k.layers.Dense(2)(k.layers.TimeDistributed(inner, name="per_step")(x_in)))
        built = _saved(tmp_path, f"td_source_{flavour}", model, flavour)
        fmt, edit = ("keras-v3", edit_keras) if flavour == test_zoo.K3 else ("keras-h5", edit_h5)
        dst = str(tmp_path / f"td_no_bias_{flavour}{os.path.splitext(built.files[fmt])[1]}")
        edit(built.files[fmt], dst, config=lambda cfg: _inner_dense(cfg)["config"].update(use_bias=False))
        findings = [f for fr in modelaudit.audit(dst).files for f in fr.findings
                    if f.severity.value in ("error", "warning")]
        assert [(f.code, f.layer) for f in findings] == [("MA103", "per_step")], [f.message for f in findings]
        assert "(4,)" in findings[0].message


def test_deeply_nested_wrapped_models_propagate_once():
    """TimeDistributed(Sequential(TimeDistributed(Sequential(...)))) 35 deep, with no Input at any level:
    each inner model is read and propagated once (not once per question at every depth), so the
    file is recomputed in well under a second; the params are the innermost Dense's, as Keras counts
    TimeDistributed (one set of weights shared over the time axis)."""
    import time

    from modelaudit.formats.json_config import graph_from_config
    from modelaudit.infer.propagate import propagate

    depth = 35
    layer = {"class_name": "Dense", "config": {"name": "d", "units": 2}}
    for d in range(depth):
        inner = {"class_name": "Sequential", "config": {"name": f"s{d}", "layers": [layer]}}
        layer = {"class_name": "TimeDistributed", "config": {"name": f"td{d}", "layer": inner}}
    first = {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None] * 1 + [2] * (depth + 1)}}
    config = {"class_name": "Sequential", "config": {"name": "top", "layers": [first, layer]}}
    start = time.perf_counter()
    inferred = propagate(graph_from_config(config, format="json-config"))
    assert time.perf_counter() - start < 1.0
    wrapper = inferred.rows[-1]
    assert wrapper.recomputed and wrapper.output_shapes == [[(None,) + (2,) * (depth + 1)]]
    assert inferred.total_params == 2 * 2 + 2
