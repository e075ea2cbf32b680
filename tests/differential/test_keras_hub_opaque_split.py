"""keras_hub backbones saved as `.keras` are opaque (MA109: constructor arguments, no layer graph);
their params come from the stored variables alone (infer/stored.py). Backbones whose layers create
float variables with trainable=False (Whisper's encoder position embedding, Moonshine's and SmolLM3's
RoPE inverse frequencies, DINOV2's source position embeddings, Gemma4's layer scalars, clipping bounds,
frozen norms and vision standardization, SAM's prompt frequencies, SAM3's ViT position and rotary tables, D-FINE's decoder scales, RQVAE's
EMA codebooks), and any backbone saved frozen
(`trainable=False`), get Keras's own trainable / non-trainable split. Tiny random-weight backbones
built from small configs, never a downloaded preset.
"""

from __future__ import annotations

import math
import os

import pytest

import keras
import keras_hub

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


def _gemma4():
    # a vision encoder (clipped linears, standardized output) and an audio encoder (frozen norms)
    vision = M.Gemma4VisionEncoder(
        image_size=16, patch_size=4, num_heads=2, hidden_dim=8, num_layers=2, intermediate_dim=16, head_dim=4,
        output_dim=8, pool_size=2, position_embedding_size=8, standardize=True)
    audio = M.Gemma4AudioEncoder(
        input_feat_size=8, hidden_size=8, num_heads=2, num_layers=1, chunk_size=4, context_left=5,
        sscp_conv_channels=(4, 4), output_proj_dims=8, output_dim=8)
    return M.Gemma4Backbone(
        vocabulary_size=50, image_size=16, num_layers=2, num_query_heads=2, num_key_value_heads=1, hidden_dim=8,
        intermediate_dim=16, head_dim=4, sliding_window_size=4, sliding_window_pattern=2, vision_encoder=vision,
        audio_encoder=audio, num_audio_tokens_per_clip=4)


def _sam():
    encoder = M.ViTDetBackbone(
        hidden_size=8, num_layers=2, intermediate_dim=16, num_heads=2, global_attention_layer_indices=[1],
        patch_size=8, num_output_channels=8, window_size=2, image_shape=(32, 32, 3))
    prompts = keras_hub.layers.SAMPromptEncoder(
        hidden_size=8, image_embedding_size=(4, 4), input_image_size=(32, 32), mask_in_channels=8)
    masks = keras_hub.layers.SAMMaskDecoder(
        num_layers=1, hidden_size=8, intermediate_dim=16, num_heads=2, embedding_dim=8, iou_head_depth=2,
        iou_head_hidden_dim=8)
    return M.SAMBackbone(image_encoder=encoder, prompt_encoder=prompts, mask_decoder=masks)


def _d_fine():
    features = M.HGNetV2Backbone(
        stem_channels=[3, 8, 8], stackwise_stage_filters=[[8, 8, 16, 1, 1, 3], [16, 8, 16, 1, 1, 3]],
        apply_downsample=[False, True], use_lightweight_conv_block=[False, True], depths=[1, 1], hidden_sizes=[16, 16],
        embedding_size=8, use_learnable_affine_block=True, hidden_act="relu", image_shape=(32, 32, 3),
        out_features=["stage1", "stage2"])
    return M.DFineBackbone(
        backbone=features, decoder_in_channels=[8, 8], encoder_hidden_dim=8, num_denoising=0, num_labels=3,
        hidden_dim=8, learn_initial_query=False, num_queries=4, anchor_image_size=(32, 32), feat_strides=[4, 8],
        num_feature_levels=2, encoder_in_channels=[16, 16], encode_proj_layers=[1], num_attention_heads=2,
        encoder_ffn_dim=16, num_encoder_layers=1, hidden_expansion=0.5, depth_multiplier=0.5, eval_idx=-1,
        num_decoder_layers=2, decoder_attention_heads=2, decoder_ffn_dim=16, decoder_n_points=[2, 2],
        lqe_hidden_dim=8, num_lqe_layers=2, out_features=["stage1", "stage2"], image_shape=(32, 32, 3))


def _rqvae():
    from keras_hub.src.models.rqvae.rqvae_backbone import RQVAEBackbone  # not exported by keras_hub 0.32

    return RQVAEBackbone(input_dim=10, encoder_layer_dims=[8], output_dim=4, decoder_layer_dims=[8],
                         num_embeddings=6, num_quantizers=2)


def _siglip():
    vision = M.SigLIPVisionEncoder(
        patch_size=4, hidden_dim=8, num_layers=1, num_heads=2, intermediate_dim=16, image_shape=(8, 8, 3))
    text = M.SigLIPTextEncoder(
        vocabulary_size=30, embedding_dim=8, hidden_dim=8, num_layers=1, num_heads=2, intermediate_dim=16,
        max_sequence_length=6)
    return M.SigLIPBackbone(vision, text)


def _sam3():
    # test_keras_hub_sam3.py's tiny layers, wired by keras_hub's own backbone
    from tests.differential.test_keras_hub_sam3 import HIDDEN, _vision

    H = keras_hub.layers
    return M.SAM3PromptableConceptBackbone(
        _vision(),
        H.SAM3TextEncoder(vocabulary_size=30, embedding_dim=12, hidden_dim=12, num_layers=1, num_heads=2,
                          intermediate_dim=20, max_sequence_length=8),
        H.SAM3GeometryEncoder(num_layers=1, hidden_dim=HIDDEN, intermediate_dim=20, num_heads=2, roi_size=3),
        H.SAM3DetrEncoder(num_layers=1, hidden_dim=HIDDEN, intermediate_dim=20, num_heads=2),
        H.SAM3DetrDecoder(image_shape=(28, 28, 3), patch_size=7, num_layers=2, hidden_dim=HIDDEN,
                          intermediate_dim=20, num_heads=2, num_queries=5),
        H.SAM3MaskDecoder(num_upsampling_stages=3, hidden_dim=HIDDEN, num_heads=2))


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
    "gemma4": _gemma4,
    "sam": _sam,
    "sam3": _sam3,  # frozen pretraining position embeddings and rotary tables
    "d_fine": _d_fine,  # its BatchNormalization statistics besides
    "rqvae": _rqvae,
    # integer position ids only (the rule stored.py already has): no float variable frozen
    "siglip": _siglip,
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
    for id_ in ("whisper", "moonshine", "smollm3", "dinov2", "dinov2-registers", "gemma4", "sam", "rqvae"):
        model, _ = saved[id_]
        frozen = model.non_trainable_weights
        assert frozen and all("float" in str(v.dtype) for v in frozen), id_
