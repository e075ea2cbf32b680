"""keras_hub backbones saved as `.keras` are opaque (MA109: constructor arguments, no layer graph);
their params come from the stored variables alone (infer/stored.py). Backbones whose layers create
float variables with trainable=False (Whisper's encoder position embedding, Moonshine's and SmolLM3's
RoPE inverse frequencies, DINOV2's source position embeddings), and any backbone saved frozen
(`trainable=False`), get Keras's own trainable / non-trainable split. Tiny random-weight backbones
built from small configs, never a downloaded preset.
"""

from __future__ import annotations

import math
import os

import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")

from modelaudit import formats  # noqa: E402
from modelaudit.infer.propagate import propagate  # noqa: E402
from tests.differential.test_quantized import _errors_and_warnings  # noqa: E402

M = keras_hub.models


def _smollm3(**kwargs):
    return M.SmolLM3Backbone(
        vocabulary_size=50, hidden_dim=8, intermediate_dim=16, num_layers=2, num_attention_heads=2,
        num_key_value_heads=1, attention_bias=False, attention_dropout=0.0, rope_layer_enabled_list=[True, False],
        layer_types=["attention", "attention"], mlp_bias=False, layer_norm_epsilon=1e-6,
        max_position_embeddings=32, rope_theta=10000.0, partial_rotary_factor=1.0, **kwargs)


BACKBONES = {
    "whisper": lambda: M.WhisperBackbone(
        vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, num_mels=4,
        max_encoder_sequence_length=16, max_decoder_sequence_length=8),
    "moonshine": lambda: M.MoonshineBackbone(
        vocabulary_size=50, filter_dim=8, encoder_num_layers=2, decoder_num_layers=2, hidden_dim=8,
        intermediate_dim=16, encoder_num_heads=2, decoder_num_heads=2, max_position_embeddings=32),
    "smollm3": _smollm3,
    # position embeddings of another size than the image's: the frozen and the interpolated differ
    "dinov2": lambda: M.DINOV2Backbone(
        patch_size=4, num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16,
        image_shape=(8, 8, 3), position_embedding_shape=(12, 12, 3)),
    # no mask token, register tokens: the frozen variable is at another position
    "dinov2-registers": lambda: M.DINOV2Backbone(
        patch_size=4, num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16, use_mask_token=False,
        num_register_tokens=2, image_shape=(8, 8, 3), position_embedding_shape=(8, 8, 3)),
    # a backbone saved frozen, as for fine-tuning a head on it
    "gpt2-frozen": lambda: M.GPT2Backbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=8, trainable=False),
    "smollm3-frozen": lambda: _smollm3(trainable=False),
    # no frozen variable: still all trainable
    "gpt2": lambda: M.GPT2Backbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=8),
}


def _size(variables) -> int:
    return sum(math.prod(int(d) for d in v.shape) for v in variables)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("hub_opaque"))
    out = {}
    for id_, build in BACKBONES.items():
        model = build()
        path = os.path.join(folder, f"{id_}.keras")
        keras.saving.save_model(model, path)
        out[id_] = (model, path)
    yield out
    keras.backend.clear_session()


@pytest.mark.parametrize("id_", list(BACKBONES))
def test_opaque_backbone_split_matches_keras(saved, id_):
    model, path = saved[id_]
    graph = formats.read(path)
    assert graph.opaque
    inferred = propagate(graph)
    keras_split = (_size(model.trainable_weights), _size(model.non_trainable_weights))
    assert (inferred.trainable_params, inferred.non_trainable_params) == keras_split
    assert inferred.total_params == model.count_params()
    assert _errors_and_warnings(path) == []


def test_the_frozen_variables_are_float(saved):
    """Not the integer rule already in stored.py: each of these freezes a float variable."""
    for id_ in ("whisper", "moonshine", "smollm3", "dinov2", "dinov2-registers"):
        model, _ = saved[id_]
        frozen = model.non_trainable_weights
        assert frozen and all("float" in str(v.dtype) for v in frozen), id_
