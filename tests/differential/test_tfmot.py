"""tensorflow-model-optimization wrappers against tf_keras itself, layer by layer.

Each tf_keras model (Dense, Conv2D, a BatchNormalization block) is wrapped by each tfmot API —
prune_low_magnitude, quantize_model, quantize_annotate_model, a QuantizeWrapper (v1) built by hand,
cluster_weights — and by strip_pruning / strip_clustering, saved as `.keras` and `.h5`, and read back:
params, the trainable / non-trainable split and the output shapes of every layer must equal
tf_keras's own (`count_params()`, `trainable_weights`, the layer's output), and `modelaudit.audit`
must find no error and no warning. A wrapped kernel counts once, as Keras counts it.
"""

from __future__ import annotations

import os

import pytest

import modelaudit
from modelaudit import formats
from modelaudit.formats import live
from modelaudit.infer.propagate import propagate
from tests.differential.test_zoo import K2, Built, compare

import tf_keras


@pytest.fixture(scope="module")
def tfmot():
    # tfmot sets TF_USE_LEGACY_KERAS=1 for the whole process on import (keras/compat.py): put the
    # environment back so that later tests (and their child processes) see Keras 3 as before
    before = os.environ.get("TF_USE_LEGACY_KERAS")
    import tensorflow_model_optimization as module

    if before is None:
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
    else:
        os.environ["TF_USE_LEGACY_KERAS"] = before
    return module


def dense(k):
    return k.Sequential([k.Input((8,)), k.layers.Dense(16, activation="relu"), k.layers.Dense(4, activation="softmax")])


def conv(k):
    return k.Sequential([k.Input((12, 12, 3)), k.layers.Conv2D(4, 3, activation="relu"), k.layers.Flatten(),
                         k.layers.Dense(3)])


def batchnorm(k):
    inputs = k.Input((10, 10, 3))
    x = k.layers.Conv2D(4, 3)(inputs)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.ReLU()(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inputs, k.layers.Dense(2, activation="sigmoid")(x))


def mixed(k):
    # more of the layer classes tfmot's registries name: separable and depthwise convolutions,
    # Dense on a sequence, normalization, merges, pooling and activation layers
    tokens = k.Input((6, 4))
    seq = k.layers.Dense(8, activation="relu")(tokens)
    seq = k.layers.GlobalMaxPooling1D()(seq)
    image = k.Input((9, 9, 3))
    x = k.layers.DepthwiseConv2D(3, depth_multiplier=2)(image)
    x = k.layers.SeparableConv2D(4, 3)(x)
    x = k.layers.MaxPooling2D()(x)
    x = k.layers.Activation("relu")(x)
    x = k.layers.Dropout(0.1)(k.layers.Flatten()(x))
    x = k.layers.Concatenate()([x, seq])
    x = k.layers.Add()([k.layers.Dense(5)(x), k.layers.Dense(5, activation="tanh")(x)])
    return k.Model([tokens, image], k.layers.Dense(2, activation="softmax")(x))


def sequence(k):
    # tfmot prunes and clusters an Embedding's table and a Conv1D's kernel; its quantization
    # registry has neither, nor LayerNormalization
    tokens = k.Input((6,), dtype="int32")
    x = k.layers.Conv1D(4, 3, activation="relu")(k.layers.Embedding(20, 8)(tokens))
    x = k.layers.LayerNormalization()(x)
    return k.Model(tokens, k.layers.Dense(2)(k.layers.GlobalAveragePooling1D()(x)))


BASES = {"dense": dense, "conv": conv, "batchnorm": batchnorm, "mixed": mixed, "sequence": sequence}


def _prune(t, m):
    return t.sparsity.keras.prune_low_magnitude(m, pruning_schedule=t.sparsity.keras.ConstantSparsity(0.5, 0))


def _cluster(t, m):
    init = t.clustering.keras.CentroidInitialization.LINEAR
    return t.clustering.keras.cluster_weights(m, number_of_clusters=3, cluster_centroids_init=init)


def _cluster_per_channel(t, m):
    init = t.clustering.keras.CentroidInitialization.LINEAR
    return t.clustering.keras.cluster_weights(m, number_of_clusters=3, cluster_centroids_init=init,
                                              cluster_per_channel=True)


def _quantize_v1(t, m):
    # QuantizeWrapper (v1) is only built by hand: on every Dense of a plain model
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry,
    )

    q = t.quantization.keras
    config = registry.Default8BitQuantizeConfig(["kernel"], ["activation"], False)

    def wrap(layer):
        if isinstance(layer, tf_keras.layers.Dense):
            return q.QuantizeWrapper(layer, quantize_config=config)
        return layer

    return tf_keras.models.clone_model(m, clone_function=wrap)


WRAPS = {
    "prune": _prune,
    "strip_pruning": lambda t, m: t.sparsity.keras.strip_pruning(_prune(t, m)),
    "quantize": lambda t, m: t.quantization.keras.quantize_model(m),
    "quantize_annotate": lambda t, m: t.quantization.keras.quantize_annotate_model(m),
    "quantize_v1": _quantize_v1,
    "cluster": _cluster,
    "cluster_per_channel": _cluster_per_channel,
    "strip_clustering": lambda t, m: t.clustering.keras.strip_clustering(_cluster(t, m)),
}
# cluster_per_channel needs a Conv2D; quantize_model refuses Embedding, Conv1D, LayerNormalization
SKIP = {("dense", "cluster_per_channel"), ("sequence", "cluster_per_channel")}
SKIP |= {("sequence", w) for w in WRAPS if w.startswith("quantize")}
CASES = [(b, w) for b in BASES for w in WRAPS if (b, w) not in SKIP]


@pytest.fixture(scope="module")
def wrapped(tfmot, tmp_path_factory):
    """get(base, wrap) -> Built: the wrapped model, saved as .keras and .h5 on first use."""
    folder = tmp_path_factory.mktemp("tfmot")
    cache = {}

    def get(base, wrap):
        key = f"{base}-{wrap}"
        if key not in cache:
            model = WRAPS[wrap](tfmot, BASES[base](tf_keras))
            files = {}
            for fmt, ext in (("keras-v3", "keras"), ("keras-h5", "h5")):
                path = str(folder / f"{key}.{ext}")
                model.save(path)
                files[fmt] = path
            cache[key] = Built(key, K2, model, files)
        return cache[key]

    return get


def _audit_problems(built: Built, target, where: str) -> list[str]:
    """Every error or warning finding of a full audit (every rule), and any failure to read."""
    problems = []
    for fr in modelaudit.audit(target).files:
        if fr.error:
            problems.append(f"{built.id} [{where}]: cannot read: {fr.error}")
        problems.extend(f"{built.id} [{where}]: internal error: {e}" for e in fr.internal_errors)
        problems.extend(
            f"{built.id} [{where}] {f.layer}: {f.code} [{f.severity.value}] {f.message}"
            for f in fr.findings
            if f.severity.value in ("error", "warning")
        )
    return problems


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
@pytest.mark.filterwarnings("ignore:distutils Version classes are deprecated")
@pytest.mark.parametrize(("base", "wrap"), CASES, ids=[f"{b}-{w}" for b, w in CASES])
def test_tfmot_model_matches_tf_keras(wrapped, base, wrap):
    built = wrapped(base, wrap)
    problems = compare(built, live.read(built.model), "live")
    for fmt, path in built.files.items():
        graph = formats.read(path)
        assert graph.format == fmt, f"{built.id}: {path} read as {graph.format}"
        problems += compare(built, graph, fmt)
        problems += _audit_problems(built, path, fmt)
    assert not problems, "\n".join(problems)


def test_wrapped_kernel_counts_once(wrapped):
    """The tf_keras .keras writer lists a pruned or quantized kernel under the wrapper and again
    under the wrapped layer: the stored total is still tf_keras's count_params(), not twice the kernel."""
    for wrap in ("prune", "quantize"):
        built = wrapped("dense", wrap)
        inferred = propagate(formats.read(built.files["keras-v3"]))
        assert inferred.stored_params == built.model.count_params(), built.id


SAVEDMODEL_CASES = [("dense", "prune"), ("batchnorm", "quantize"), ("conv", "cluster")]


@pytest.mark.filterwarnings("ignore:distutils Version classes are deprecated")
@pytest.mark.parametrize(("base", "wrap"), SAVEDMODEL_CASES, ids=[f"{b}-{w}" for b, w in SAVEDMODEL_CASES])
def test_tfmot_savedmodel_matches_tf_keras(wrapped, tmp_path, base, wrap):
    """The same models saved as a tf_keras SavedModel folder: its variables are listed once each."""
    built = wrapped(base, wrap)
    folder = str(tmp_path / built.id)
    built.model.save(folder, save_format="tf")
    problems = compare(built, formats.read(folder), "savedmodel") + _audit_problems(built, folder, "savedmodel")
    assert not problems, "\n".join(problems)
