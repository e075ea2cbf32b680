"""keras_hub's SAM3 layers (infer/keras_hub_sam3.py) against Keras.

A tiny SAM3 wired as SAM3PromptableConceptBackbone wires it (vision encoder, text encoder and a
projection, geometry encoder, DETR encoder and decoder, mask decoder, the ops between them), as a plain
Keras 3 Functional model saved as `.keras` and legacy `.h5`, read back and compared with Keras layer by
layer through test_zoo's `compare` and audited with no error or warning finding. The model must run,
which ties most widths together (SAM3Attention builds o_proj on the value's width but feeds it the
hidden width), so each layer is also built directly on inputs of unequal widths, where our weights
(shape and trainability, in Keras's order), params and output shapes must equal Keras's.
"""

from __future__ import annotations


import keras
import keras_hub
import pytest
from keras import ops

import modelaudit
from modelaudit import formats
from modelaudit.infer import registry
from modelaudit.infer.registry import ShapeError
from tests.differential.keras_check import json_config
from tests.differential.test_keras_hub import FORMATS, save_models
from tests.differential.test_zoo import _size, audit_problems, compare

H = keras_hub.layers

# every spec of infer/keras_hub_sam3.py: held to this file's model and direct builds, not test_keras_hub.py's
HELD = frozenset(
    n for n in registry.known_classes() if type(registry.get(n)).__module__ == "modelaudit.infer.keras_hub_sam3"
)

HIDDEN = 16  # the prompt / DETR / mask width; GroupNormalization(8) in the pixel decoder needs a multiple of 8


def _vision(**kw):
    args = dict(image_shape=(28, 28, 3), patch_size=7, num_layers=2, hidden_dim=24, intermediate_dim=20, num_heads=2,
                fpn_hidden_dim=HIDDEN, fpn_scale_factors=[4.0, 2.0, 1.0, 0.5], pretrain_image_shape=(14, 21, 3),
                window_size=2, global_attn_indexes=[1])
    return H.SAM3VisionEncoder(**{**args, **kw})


def sam3():
    """SAM3PromptableConceptBackbone's wiring (sam3_pc_backbone.py) less its unexported heads."""
    vision = _vision(name="vision")
    text = H.SAM3TextEncoder(vocabulary_size=30, embedding_dim=12, hidden_dim=12, num_layers=1, num_heads=2,
                             intermediate_dim=20, max_sequence_length=8, name="text")
    geometry = H.SAM3GeometryEncoder(num_layers=1, hidden_dim=HIDDEN, intermediate_dim=20, num_heads=2, roi_size=3,
                                     name="geometry")
    detr_encoder = H.SAM3DetrEncoder(num_layers=1, hidden_dim=HIDDEN, intermediate_dim=20, num_heads=2,
                                     name="detr_encoder")
    detr_decoder = H.SAM3DetrDecoder(image_shape=(28, 28, 3), patch_size=7, num_layers=2, hidden_dim=HIDDEN,
                                     intermediate_dim=20, num_heads=2, num_queries=5, name="detr_decoder")
    masks = H.SAM3MaskDecoder(num_upsampling_stages=3, hidden_dim=HIDDEN, num_heads=2, name="mask_decoder")

    pixels = keras.Input((28, 28, 3), name="pixel_values")
    tokens = keras.Input((8,), dtype="int32", name="token_ids")
    padding = keras.Input((8,), dtype="int32", name="padding_mask")
    boxes = keras.Input((None, 5), name="boxes")
    labels = keras.Input((None,), dtype="int32", name="box_labels")
    box_masks = ops.cast(ops.where(ops.not_equal(labels, -10), 1, 0), dtype="bool")
    fpn, positions = vision(pixels)
    fpn, positions = fpn[:-1], positions[:-1]
    words = keras.layers.Dense(HIDDEN, name="text_projection")(text(tokens, padding))
    prompts, prompt_masks = geometry(boxes, labels, box_masks, fpn_hidden_states=fpn[-1],
                                     fpn_position_encodings=positions[-1])
    prompt = ops.concatenate([words, prompts], axis=1)
    prompt_mask = ops.concatenate([ops.cast(padding, "bool"), prompt_masks], axis=1)
    encoded = detr_encoder(vision_features=fpn[-1], text_features=prompt, vision_pos_embeds=positions[-1],
                           text_masks=prompt_mask)
    decoded = detr_decoder(vision_features=encoded[0], text_features=prompt, vision_pos_encodings=encoded[1],
                           text_masks=prompt_mask)
    pred_masks, semantic = masks(decoder_queries=decoded[0][:, -1], backbone_features=fpn,
                                 encoder_hidden_states=encoded[0], prompt_features=prompt, prompt_masks=prompt_mask)
    return keras.Model([pixels, tokens, padding, boxes, labels], [pred_masks, semantic, *decoded], name="sam3")




@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    yield save_models(tmp_path_factory.mktemp("keras_hub_sam3"), [sam3])["sam3"]
    keras.backend.clear_session()


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_sam3_model_matches_keras(saved, fmt):
    path = saved.files[fmt]
    graph = formats.read(path)
    assert graph.format == fmt
    problems = compare(saved, graph, fmt) + audit_problems(saved, path, fmt)
    report = modelaudit.audit(path)  # every rule, not only the MA1 integrity ones
    problems += [f"{f.layer}: {f.code} [{f.severity.value}] {f.message}" for fr in report.files for f in fr.findings
                 if f.severity.value in ("error", "warning")]
    assert not problems, "\n".join(problems)


def test_sam3_model_reloads_with_the_same_totals(saved):
    # the saved file is one Keras itself reads back: the layers rebuild from their configs alone
    reloaded = keras.models.load_model(saved.files["keras-v3"])
    assert reloaded.count_params() == saved.model.count_params()
    assert _size(reloaded.trainable_weights) == _size(saved.model.trainable_weights) < saved.model.count_params()


# ---- each layer built directly, widths unequal -------------------------------------------------


def _flat(x) -> list:
    return [t for y in x for t in _flat(y)] if isinstance(x, (list, tuple)) else [x]


def _global_vision():
    return _vision(image_shape=(24, 36, 3), patch_size=4, num_layers=1, hidden_dim=16, num_heads=1, fpn_hidden_dim=8,
                   fpn_scale_factors=[0.5, 4.0], pretrain_image_shape=(336, 336, 3), window_size=0,
                   global_attn_indexes=[])


def _masks(hidden):
    return H.SAM3MaskDecoder(num_upsampling_stages=3, hidden_dim=hidden, num_heads=2)


# id -> (make the layer, input shapes in the signature's order, call(layer, *inputs) or None: positional)
DIRECT = {
    "vision": (lambda: _vision(hidden_dim=24, fpn_hidden_dim=12, num_layers=3), [(None, 28, 28, 5)], None),
    "vision_global": (_global_vision, [(3, 24, 36, 3)], None),
    "text": (lambda: H.SAM3TextEncoder(vocabulary_size=30, embedding_dim=12, hidden_dim=16, num_layers=2, num_heads=3,
                                       intermediate_dim=20, max_sequence_length=9), [(None, 8), (None, 8)], None),
    "text_kw": (lambda: H.SAM3TextEncoder(vocabulary_size=30, embedding_dim=12, hidden_dim=12, num_layers=1,
                                          num_heads=2, intermediate_dim=20), [(2, None), (2, None)],
                lambda layer, t, m: layer(token_ids=t, padding_masks=m)),
    "geometry": (lambda: H.SAM3GeometryEncoder(num_layers=2, hidden_dim=16, intermediate_dim=20, num_heads=2,
                                               roi_size=3),
                 [(None, 3, 5), (None, 3), (None, 3), (None, 4, 5, 12), (None, 4, 5, 12)], None),
    # no box count: the prompt length is unknown, as Keras records it
    "geometry_kw": (lambda: H.SAM3GeometryEncoder(num_layers=1, hidden_dim=16, intermediate_dim=20, num_heads=2,
                                                  roi_size=2),
                    [(2, None, 7), (2, None), (2, None), (2, 4, 4, 16), (2, 4, 4, 16)],
                    lambda layer, b, m, lab, f, p: layer(b, m, lab, fpn_hidden_states=f, fpn_position_encodings=p)),
    "detr_encoder": (lambda: H.SAM3DetrEncoder(num_layers=2, hidden_dim=16, intermediate_dim=20, num_heads=2),
                     [(None, 4, 5, 12), (None, 7, 10), (None, 4, 5, 12), (None, 7)],
                     lambda layer, v, t, p, m: layer(vision_features=v, text_features=t, vision_pos_embeds=p,
                                                     text_masks=m)),
    "detr_decoder": (lambda: H.SAM3DetrDecoder(image_shape=(28, 28, 3), patch_size=7, num_layers=2, hidden_dim=16,
                                               intermediate_dim=20, num_heads=2, num_queries=5),
                     [(None, 16, 12), (None, 7, 10), (None, 16, 12), (None, 7)], None),
    # three maps of three widths; queries, encoder states and prompts of three more
    "mask_decoder": (lambda: _masks(16),
                     [(None, 5, 10), (None, 16, 16, 12), (None, 8, 8, 20), (None, 4, 4, 24), (None, 16, 14),
                      (None, 9, 6), (None, 9)],
                     lambda layer, q, f0, f1, f2, e, p, m: layer(q, [f0, f1, f2], e, p, m)),
    "mask_decoder_kw": (lambda: _masks(8), [(2, 5, 8), (2, 12, 12, 8), (2, 6, 6, 8), (2, 36, 8), (2, 9, 8), (2, 9)],
                        lambda layer, q, f0, f1, e, p, m: layer(decoder_queries=q, backbone_features=[f0, f1],
                                                                encoder_hidden_states=e, prompt_features=p,
                                                                prompt_masks=m)),
}


@pytest.mark.parametrize("case", list(DIRECT))
def test_sam3_layer_built_directly_matches_keras(case):
    make, shapes, call = DIRECT[case]
    layer = make()
    inputs = [keras.Input(batch_shape=s) for s in shapes]
    outputs = _flat(call(layer, *inputs) if call else layer(*inputs))
    spec = registry.get(f"keras_hub>{type(layer).__name__}")
    config = json_config(layer)
    # `shapes` in the signature's order, as propagation hands a call's tensors to the spec
    ours = spec.weights(config, shapes)
    assert [tuple(s) for s in spec.output_shapes(config, shapes)] == [tuple(t.shape) for t in outputs]
    assert [(w.shape, w.trainable) for w in ours] == [(tuple(w.shape), w.trainable) for w in layer.weights]
    assert [w.name for w in ours] == [w.path.split("/", 1)[1] for w in layer.weights]
    assert sum(w.size for w in ours) == layer.count_params()
    assert sum(w.size for w in ours if w.trainable) == _size(layer.trainable_weights)
    formula = spec.formula(config, shapes)
    assert formula.endswith(f"= {layer.count_params()}")


def test_every_sam3_spec_is_held(saved):
    written = {layer.registered_name for layer in formats.read(saved.files["keras-v3"]).layers}
    direct = {f"keras_hub>{type(make()).__name__}" for make, _, _ in DIRECT.values()}
    assert len(HELD) == 6
    assert HELD <= written & direct



@pytest.mark.parametrize("bad", [{"window_size": 3}, {"num_heads": 4}, {"fpn_scale_factors": [3.0]}])
def test_sam3_vision_configs_keras_refuses_are_shape_errors(bad):
    # a 4x4 patch grid in windows of 3; head size 24 // 4 = 6, not a multiple of 4; no such FPN scale
    with pytest.raises(ValueError):
        _vision(**bad)
    config = {**json_config(_vision()), **bad}
    with pytest.raises(ShapeError):
        registry.get("keras_hub>SAM3VisionEncoder").output_shapes(config, [(None, 28, 28, 3)])


def test_sam3_hostile_layer_count_is_refused_not_looped():
    config = {**json_config(_vision()), "num_layers": 10**9}
    with pytest.raises(ShapeError):
        registry.get("keras_hub>SAM3VisionEncoder").weights(config, [(None, 28, 28, 3)])
