"""keras_hub against modelaudit: real Keras 3 Functional models built from keras_hub's modeling layers
(small dimensions), saved as `.keras` and legacy `.h5`, read back and compared with Keras layer by layer through
test_zoo's `compare` (params == `count_params()`, trainable split, output shapes of every layer and
of the model, stored weights paired with the recomputed ones) and audited with no error or warning.

keras_hub backbones and task models save only their constructor arguments: a tiny one (random
weights, built from a small config, never a preset) reads as an opaque model whose totals and
trainable split come from its stored weights and equal Keras's.
"""

from __future__ import annotations

import os

import keras
import keras_hub
import pytest

import modelaudit
from modelaudit import formats
from modelaudit.infer import registry
from modelaudit.infer.propagate import propagate
from tests.differential.test_zoo import K3, Built, _size, audit_problems, compare

H = keras_hub.layers


def encoders():
    tokens = keras.Input((12,), dtype="int32", name="tokens")
    x = H.TokenAndPositionEmbedding(40, 12, 16, name="embed")(tokens)
    x = H.TransformerEncoder(32, 4, name="post_norm")(x)
    # 16 features over 3 heads: key_dim 16 // 3 = 5, projected back to 16
    x = H.TransformerEncoder(24, 3, normalize_first=True, activation="gelu", name="pre_norm")(x)
    x = H.FNetEncoder(20, name="fnet")(x)
    return keras.Model(tokens, x, name="encoders")


def decoders():
    target = keras.Input((5, 16), name="target")
    source = keras.Input((7, 12), name="source")  # cross-attention on another length and width
    x = H.TransformerDecoder(24, 4, name="cross")(target, source)
    x = H.TransformerDecoder(24, 2, name="self_only")(x)
    x = H.TransformerDecoder(16, 2, normalize_first=True, name="cross_kw")(x, encoder_sequence=source)
    return keras.Model([target, source], x, name="decoders")


def embeddings():
    tokens = keras.Input((12,), dtype="int32", name="tokens")
    untied = H.ReversibleEmbedding(30, 8, tie_weights=False, name="untied")
    x = untied(tokens)
    x = H.PositionEmbedding(20, name="positions")(x)  # room for 20, fed 12
    x = H.SinePositionEncoding(name="sine")(x)
    masked = H.TokenAndPositionEmbedding(30, 12, 8, tie_weights=False, mask_zero=True, name="untied_tape")(tokens)
    x = keras.layers.Add()([x, masked])
    logits = untied(x, reverse=True)  # the shared embedding's second call: (None, 12, 30)
    heads = keras.layers.Reshape((12, 2, 4))(x)
    rotated = H.RotaryEmbedding(max_wavelength=100, name="rotary")(heads)
    return keras.Model(tokens, [logits, rotated], name="embeddings")


def heads():
    sequence = keras.Input((10, 16), name="sequence")
    positions = keras.Input((3,), dtype="int32", name="positions")
    scores = keras.Input((2, 5, 5), name="scores")
    predicted = H.MaskedLMHead(vocabulary_size=25, activation="softmax", name="mlm")(sequence, mask_positions=positions)
    attended = H.CachedMultiHeadAttention(num_heads=2, key_dim=4, name="cached_mha")(sequence, sequence)
    scaled = H.RMSNormalization(16)(attended)
    biased = H.AlibiBias(name="alibi")(scores)
    encoder = H.TransformerEncoder(8, 2, name="frozen")
    frozen = encoder(scaled)
    # frozen once built: trainable=False passed to the constructor leaves the variables build()
    # creates trainable, and then Keras's layer (0) and model (all) trainable counts disagree
    encoder.trainable = False
    return keras.Model([sequence, positions, scores], [predicted, frozen, biased], name="heads")


def image_converters():
    from modelaudit.infer.keras_hub import IMAGE_CONVERTERS

    images = keras.Input((20, 24, 3), name="images")
    outputs = [H.ImageConverter(name="no_resize")(images)]
    for i, name in enumerate(IMAGE_CONVERTERS):  # every converter our spec names, each its own size
        outputs.append(getattr(H, name)(image_size=(6 + i, 5), name=f"c{i}")(images))
    return keras.Model(images, outputs, name="image_converters")


MODELS = [encoders, decoders, embeddings, heads, image_converters]
FORMATS = {"keras-v3": "keras", "keras-h5": "h5"}  # Keras 3 writes keras_hub layers to a legacy .h5 too


def save_models(folder, builders) -> dict:
    """name -> Built: each builder's model built once and saved in every FORMATS format into `folder`."""
    out = {}
    for builder in builders:
        model = builder()
        files = {fmt: os.path.join(folder, f"{builder.__name__}.{ext}") for fmt, ext in FORMATS.items()}
        for path in files.values():
            model.save(path)
        out[builder.__name__] = Built(builder.__name__, K3, model, files)
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name -> Built: each model built and saved once for the module."""
    yield save_models(tmp_path_factory.mktemp("keras_hub"), MODELS)
    keras.backend.clear_session()


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("name", [b.__name__ for b in MODELS])
def test_keras_hub_layers_match_keras(saved, name, fmt):
    built = saved[name]
    path = built.files[fmt]
    graph = formats.read(path)
    assert graph.format == fmt
    problems = compare(built, graph, fmt) + audit_problems(built, path, fmt)
    report = modelaudit.audit(path)  # every rule, not only the MA1 integrity ones
    problems += [f"{f.layer}: {f.code} [{f.severity.value}] {f.message}" for fr in report.files for f in fr.findings
                 if f.severity.value in ("error", "warning")]
    assert not problems, "\n".join(problems)


def test_every_keras_hub_spec_is_in_a_model(saved):
    written = {layer.registered_name for b in saved.values() for layer in formats.read(b.files["keras-v3"]).layers}
    ours = {name for name in registry.known_classes() if name.startswith("keras_hub>")}
    # the SAM layers and the Gemma4 / Qwen3.5 / video converters are held to test_keras_hub_sam.py's models
    from tests.differential.test_keras_hub_sam import HELD
    from tests.differential.test_keras_hub_sam3 import HELD as SAM3_HELD  # SAM3's: test_keras_hub_sam3.py

    assert ours - written - HELD - SAM3_HELD == set()


def test_tied_masked_lm_head_counts_its_own_weights(tmp_path):
    # MaskedLMHead(token_embedding=emb) reuses emb's matrix: Keras's head.count_params() includes it,
    # the model counts it once, and the file stores it under the embedding only
    tokens = keras.Input((12,), dtype="int32")
    positions = keras.Input((3,), dtype="int32")
    embedding = H.ReversibleEmbedding(50, 16, name="embedding")
    head = H.MaskedLMHead(token_embedding=embedding, name="head")
    model = keras.Model([tokens, positions], head(embedding(tokens), mask_positions=positions))
    path = str(tmp_path / "tied.keras")
    model.save(path)

    inferred = propagate(formats.read(path))
    rows = {r.path: r for r in inferred.rows}
    shared = {id(w) for w in embedding.weights}
    own = _size(w for w in head.weights if id(w) not in shared)
    assert rows["head"].params == own == head.count_params() - embedding.count_params()
    assert not rows["head"].weight_issues and rows["head"].recomputed
    assert rows["head"].output_shapes[0] == [tuple(head.output.shape)]
    assert (inferred.total_params, inferred.trainable_params) == (model.count_params(), _size(model.trainable_weights))
    assert audit_problems(Built("tied", K3, model, {}), path, "keras-v3") == []


# ---- backbones and task models: constructor arguments only, audited from their weights --------


def _backbones():
    hub = keras_hub.models
    bert = hub.BertBackbone(
        vocabulary_size=30, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=12
    )
    yield "bert", bert
    yield "gpt2", hub.GPT2Backbone(
        vocabulary_size=30, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=12
    )
    yield "bert_classifier", hub.BertTextClassifier(backbone=bert, num_classes=3, preprocessor=None)
    # BatchNormalization's moving statistics are non-trainable: the split comes from the weights file
    yield "resnet", hub.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 8],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        image_shape=(32, 32, 3),
    )
    # their integer position ids are non-trainable variables, named only by position in the file
    yield "clip_vision", hub.CLIPVisionEncoder(
        patch_size=4, hidden_dim=8, num_layers=1, num_heads=2, intermediate_dim=16, image_shape=(8, 8, 3)
    )
    yield "siglip_vision", hub.SigLIPVisionEncoder(
        patch_size=4, hidden_dim=8, num_layers=1, num_heads=2, intermediate_dim=16, image_shape=(8, 8, 3)
    )


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_hub_backbones")
    out = {}
    for name, model in _backbones():
        path = os.path.join(folder, f"{name}.keras")
        model.save(path)
        out[name] = (model, path)
    yield out
    keras.backend.clear_session()


@pytest.mark.parametrize("name", ["bert", "gpt2", "bert_classifier", "resnet", "clip_vision", "siglip_vision"])
def test_backbone_reads_as_opaque_with_keras_totals(backbones, name):
    model, path = backbones[name]
    graph = formats.read(path)
    assert graph.opaque and graph.class_name == type(model).__name__
    inferred = propagate(graph)
    trainable = _size(model.trainable_weights)
    assert (inferred.total_params, inferred.trainable_params, inferred.non_trainable_params) == (
        model.count_params(), trainable, model.count_params() - trainable
    )
    report = modelaudit.audit(path)
    (fr,) = report.files
    codes = {f.code for f in fr.findings}
    assert "MA109" in codes and fr.error is None and not fr.internal_errors
    assert [f.code for f in fr.findings if f.severity.value in ("error", "warning")] == []
