"""Models quantized by Keras 3 itself (`model.quantize(mode)`), saved by Keras, read by modelaudit.

For every mode Keras 3.15 has (keras/src/dtype_policies QUANTIZATION_MODES: int8, float8, int4 per
channel and in sub-channel blocks, gptq, awq) and every layer class it quantizes (Dense, EinsumDense,
Embedding; Keras quantizes no conv layer): params, the trainable / non-trainable split and every output
shape equal Keras's layer by layer, the variables each layer is expected to hold are the ones Keras
builds when it loads the file (names, order, shapes, trainability), and `modelaudit.audit` finds no
error or warning. GPTQ and AWQ files are the exception Keras itself makes: their writer leaves out
each layer's zero point, Keras cannot load them back, and modelaudit says so (MA102, nothing else).
A quantized kernel edited to another shape still draws MA101.
"""

from __future__ import annotations

import os
import warnings

import pytest

import keras
import numpy as np

import modelaudit  # noqa: E402
from modelaudit import formats  # noqa: E402
from modelaudit.formats import live  # noqa: E402
from modelaudit.infer.propagate import propagate  # noqa: E402
from tests.differential.test_tampered import edit_h5, edit_keras, replace_dataset  # noqa: E402
from tests.differential.test_zoo import K3, Built, compare  # noqa: E402

L = keras.layers


def build_mixed():
    """One of each quantizable class, with odd sizes (packing int4 pairs rounds up) and both biases."""
    inp = keras.Input((6,), dtype="int32", name="tokens")
    x = L.Embedding(30, 10, name="emb")(inp)  # (6, 10)
    x = L.EinsumDense("abc,cd->abd", output_shape=(6, 7), bias_axes="d", activation="relu", name="proj")(x)
    x = L.EinsumDense("abc,cde->abde", output_shape=(6, 2, 5), bias_axes="de", activation="relu", name="heads")(x)
    x = L.Reshape((6, 10), name="merge")(x)
    x = L.Dense(9, activation="relu", use_bias=False, name="hidden")(x)
    x = L.GlobalAveragePooling1D(name="pool")(x)
    out = L.Dense(3, activation="softmax", name="head")(x)
    model = keras.Model(inp, out, name="mixed")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


# mode id -> (mode, config): every int4 flavour Keras writes (its default is blocks of 128)
SIMPLE = {
    "int8": ("int8", None),
    "float8": ("float8", None),
    "int4": ("int4", None),
    "int4-per-channel": ("int4", lambda: keras.quantizers.Int4QuantizationConfig(block_size=-1)),
    "int4-block4": ("int4", lambda: keras.quantizers.Int4QuantizationConfig(block_size=4)),
}


def _quantize_quietly(model, mode, config=None):
    import gc
    from unittest import mock

    # Keras warns once per layer it cannot quantize (InputLayer, Reshape, float8 Embedding ...), and
    # runs a full gc.collect() for every float variable it replaces (to free a device's buffer): a
    # second or more each in a long test run's heap. The next ordinary collection frees them instead.
    with warnings.catch_warnings(), mock.patch.object(gc, "collect", lambda *args: 0):
        warnings.simplefilter("ignore", UserWarning)
        model.quantize(mode, config=config)


def build_calibrated(mode):
    """GPTQ / AWQ calibrate block by block: every Dense/EinsumDense is inside the one block, so that
    all of them are calibrated (an uncalibrated layer keeps its float kernel in memory)."""
    inp = keras.Input((8,), dtype="int32", name="tokens")
    emb = L.Embedding(40, 16, name="emb")
    block_in = keras.Input((8, 16), name="block_in")
    y = L.Dense(24, activation="relu", name="up")(block_in)
    y = L.EinsumDense("abc,cde->abde", output_shape=(8, 2, 8), bias_axes="de", activation="relu", name="ein")(y)
    y = L.Reshape((8, 16), name="merge")(y)
    y = L.Dense(16, activation="relu", name="down")(y)
    block = keras.Model(block_in, y, name="block")
    out = L.GlobalAveragePooling1D(name="pool")(block(emb(inp)))
    model = keras.Model(inp, out, name="calibrated")
    structure = {"pre_block_layers": [emb], "sequential_blocks": [block]}
    # the model's own hook, as keras_hub models define it (a structure in the config cannot be saved)
    model.get_quantization_layer_structure = lambda _mode: structure

    def tokenize(x):
        return np.asarray(x, dtype=np.int64)[None, :]

    tokenize.tokenize = tokenize
    rng = np.random.default_rng(0)
    data = [rng.integers(0, 40, size=(8,)) for _ in range(4)]
    config_class = keras.quantizers.GPTQConfig if mode == "gptq" else keras.quantizers.AWQConfig
    config = config_class(dataset=data, tokenizer=tokenize, num_samples=4, sequence_length=8, group_size=8)
    _quantize_quietly(model, mode, config)
    return model


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """mode id -> Built, each model quantized and saved (.keras, and .h5 where Keras writes it) once."""
    folder = str(tmp_path_factory.mktemp("quantized"))
    out = {}
    for id_, (mode, config) in SIMPLE.items():
        model = build_mixed()
        _quantize_quietly(model, mode, config() if config else None)
        files = {"keras-v3": os.path.join(folder, f"{id_}.keras"), "keras-h5": os.path.join(folder, f"{id_}.h5")}
        for path in files.values():
            keras.saving.save_model(model, path)
        out[id_] = Built(id_, K3, model, files)
    for mode in ("gptq", "awq"):
        model = build_calibrated(mode)
        files = {"keras-v3": os.path.join(folder, f"{mode}.keras")}  # Keras's .h5 writer fails on these
        keras.saving.save_model(model, files["keras-v3"])
        out[mode] = Built(mode, K3, model, files)
    yield out
    keras.backend.clear_session()


def _errors_and_warnings(target) -> list[str]:
    report = modelaudit.audit(target)
    problems = []
    for fr in report.files:
        if fr.error:
            problems.append(f"cannot read: {fr.error}")
        problems.extend(f"internal error: {e}" for e in fr.internal_errors)
        problems.extend(f"{f.layer}: {f.code} [{f.severity.value}] {f.message}" for f in fr.findings
                        if f.severity.value in ("error", "warning"))
    return problems


def _quantized_layers(model):
    return [layer for layer in model.layers if getattr(layer, "quantization_mode", None)]


@pytest.mark.parametrize("mode_id", list(SIMPLE))
def test_quantized_model_matches_keras(quantized, mode_id):
    built = quantized[mode_id]
    assert _quantized_layers(built.model), f"{mode_id}: Keras quantized nothing"
    problems = compare(built, live.read(built.model), "live")
    problems += [f"live: {p}" for p in _errors_and_warnings(built.model)]
    for fmt, path in built.files.items():
        graph = formats.read(path)
        assert graph.format == fmt
        problems += compare(built, graph, fmt)
        problems += [f"{fmt}: {p}" for p in _errors_and_warnings(path)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("mode_id", list(SIMPLE))
def test_expected_variables_are_the_ones_keras_builds_on_load(quantized, mode_id):
    """Names, order, shapes and trainability, against the model Keras loads from the same file."""
    path = quantized[mode_id].files["keras-v3"]
    loaded = keras.saving.load_model(path)
    rows = {r.path: r for r in propagate(formats.read(path)).rows}
    for layer in _quantized_layers(loaded):
        theirs = [(w.name, tuple(w.shape), bool(w.trainable)) for w in layer.weights]
        ours = [(w.name, tuple(w.shape), w.trainable) for w in rows[layer.name].expected_weights]
        assert ours == theirs, f"{mode_id} {layer.name}"


@pytest.mark.parametrize("mode", ["gptq", "awq"])
def test_calibrated_file_lacks_the_zero_points_keras_needs(quantized, mode):
    built = quantized[mode]
    path = built.files["keras-v3"]
    # In memory the model is whole: every number agrees and nothing is reported.
    assert compare(built, live.read(built.model), "live") == []
    assert _errors_and_warnings(built.model) == []
    # Keras's writer skips kernel_zero (its LoRA merge returns no zero point for gptq/awq), and its
    # loader then refuses the file: the one thing wrong is what modelaudit reports.
    with warnings.catch_warnings(), pytest.raises(ValueError, match="expected .* variables, but received"):
        warnings.simplefilter("ignore", UserWarning)  # its notes on the containers it skips
        keras.saving.load_model(path)
    layers = {f"block/{layer.name}": layer for layer in built.model.get_layer("block").layers
              if getattr(layer, "quantization_mode", None) == mode}
    assert len(layers) == 3
    zero_names = {"Dense": "kernel_zero", "EinsumDense": "zero_point"}
    expected = [f"{mode} [keras-v3] {lp}: weight missing: expected ('{zero_names[type(layer).__name__]}', "
                f"{tuple(layer.kernel_zero.shape)}), stored None" for lp, layer in layers.items()]
    total = built.model.count_params()
    missing = sum(int(np.prod(layer.kernel_zero.shape)) for layer in layers.values())
    expected.append(f"{mode} [keras-v3] <model>: stored params: modelaudit {total - missing} != keras {total}")
    problems = compare(built, formats.read(path), "keras-v3")
    assert problems == expected, "\n".join(problems)
    findings = [(f.code, f.layer) for f in modelaudit.audit(path).findings if f.severity.value != "info"]
    assert sorted(findings) == sorted(("MA102", lp) for lp in layers)


def test_tampered_quantized_kernel_is_a_shape_mismatch(quantized, tmp_path):
    """The int4 block kernel of 'hidden' (9 units packed into 5 columns) edited to 4 columns."""
    built = quantized["int4-block4"]
    layer = built.model.get_layer("hidden")
    packed = tuple(int(d) for d in layer._kernel.shape)
    bad = (packed[0], packed[1] - 1)
    keras_path, h5_path = str(tmp_path / "bad.keras"), str(tmp_path / "bad.h5")
    edit_keras(built.files["keras-v3"], keras_path,
               weights=lambda h5: replace_dataset(h5, "layers/dense/vars/0", bad))
    edit_h5(built.files["keras-h5"], h5_path,
            weights=lambda g: replace_dataset(g, "hidden/hidden/kernel", bad))
    for path in (keras_path, h5_path):
        findings = [f for f in modelaudit.audit(path, config={"select": ["MA1"]}).findings
                    if f.severity.value != "info"]
        assert [(f.code, f.layer) for f in findings] == [("MA101", "hidden")], [f.message for f in findings]
        assert str(bad) in findings[0].message and str(packed) in findings[0].message


def test_quantized_softmax_head_under_mixed_precision_still_draws_ma210(tmp_path):
    """A quantized policy computes in the dtype of the policy it came from: MA210 reads that one."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        inp = keras.Input((6,))
        out = L.Dense(3, activation="softmax", name="head")(L.Dense(8, activation="relu")(inp))
        model = keras.Model(inp, out)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        _quantize_quietly(model, "int8")
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.get_layer("head").dtype_policy.compute_dtype == "bfloat16"
    path = str(tmp_path / "mixed_int8.keras")
    keras.saving.save_model(model, path)
    findings = [(f.code, f.layer) for f in modelaudit.audit(path).findings if f.severity.value != "info"]
    assert findings == [("MA210", "head")]
