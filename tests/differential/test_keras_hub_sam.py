"""keras_hub's Segment Anything layers (SAMPromptEncoder, SAMMaskDecoder: infer/keras_hub_sam.py) and
the converters that resize by their own rules (Gemma4's and Qwen3.5's image and video converters, the
VideoConverter: infer/keras_hub.py) against Keras: real Functional models (small dimensions) saved as
`.keras` and legacy `.h5`, compared layer by layer through test_zoo's `compare` (params ==
`count_params()`, trainable split, output shapes of each call, stored weights paired with the
recomputed ones) and audited with no error or warning.
"""

from __future__ import annotations

import pytest

import keras
import keras_hub

from modelaudit import formats  # noqa: E402
from modelaudit.infer import registry  # noqa: E402
from modelaudit.infer.registry import ShapeError  # noqa: E402
from tests.differential.test_quantized import _errors_and_warnings  # noqa: E402
from tests.differential.test_keras_hub import FORMATS, save_models  # noqa: E402
from tests.differential.test_zoo import K3, Built, audit_problems, compare  # noqa: E402

H = keras_hub.layers

# the converters whose specs are held to this file's models rather than test_keras_hub.py's
CONVERTERS = {f"keras_hub>{name}" for name in (
    "Gemma4ImageConverter", "Gemma4VideoConverter", "Qwen3_5ImageConverter", "Qwen3_5VideoConverter",
    "VideoConverter")}
# every spec this file holds (test_keras_hub.py's coverage test leaves these to it)
HELD = CONVERTERS | {n for n in registry.known_classes()
                     if type(registry.get(n)).__module__ == "modelaudit.infer.keras_hub_sam"}


def _decoder(**kwargs):
    sizes = dict(hidden_size=8, num_layers=2, intermediate_dim=16, num_heads=2, embedding_dim=8,
                 num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=8)
    return H.SAMMaskDecoder(**{**sizes, **kwargs})


def sam():
    """The prompt encoder called as SAMBackbone calls it (every prompt by keyword, the images too,
    which it ignores), its dict outputs into a mask decoder; a second encoder given points only."""
    images = keras.Input((32, 32, 3), name="images")
    points = keras.Input((None, 2), name="points")
    labels = keras.Input((None,), name="labels")
    boxes = keras.Input((None, 2, 2), name="boxes")
    masks = keras.Input((None, None, None, 1), name="masks")
    embeddings = keras.Input((4, 4, 8), name="image_embeddings")
    encoder = H.SAMPromptEncoder(hidden_size=8, image_embedding_size=(4, 4), input_image_size=(32, 32),
                                 mask_in_channels=8, name="prompt_encoder")
    prompts = encoder(images=images, points=points, labels=labels, boxes=boxes, masks=masks)
    decoded = _decoder(name="mask_decoder")(embeddings, prompts["prompt_dense_positional_embeddings"],
                                            prompts["prompt_sparse_embeddings"], prompts["prompt_dense_embeddings"])
    # rectangular embeddings, an odd hidden size (hidden // 2 frequencies), points alone
    points_only = H.SAMPromptEncoder(hidden_size=6, image_embedding_size=(3, 5), input_image_size=(24, 40),
                                     mask_in_channels=4, activation="relu", name="points_only")(points=points)
    return keras.Model([images, points, labels, boxes, masks, embeddings],
                       {**decoded, "points_only": points_only["prompt_sparse_embeddings"]}, name="sam")


def sam_decoders():
    """Decoders on other sizes, by keyword, with fixed batches: the prompts' batch of 2 reaches both
    outputs through the dense prompts' broadcast; one layer, a one-Dense IoU head, five masks."""
    image = keras.Input((3, 5, 16), name="image")
    positional = keras.Input((3, 5, 16), name="positional")
    sparse = keras.Input((7, 16), name="sparse")
    dense = keras.Input((3, 5, 16), batch_size=2, name="dense")
    one = _decoder(hidden_size=16, num_layers=1, intermediate_dim=24, num_heads=4, embedding_dim=16,
                   num_multimask_outputs=4, iou_head_depth=1, iou_head_hidden_dim=8, name="one_layer")
    a = one(image_embeddings=image, prompt_dense_positional_embeddings=positional,
            prompt_sparse_embeddings=sparse, prompt_dense_embeddings=dense)
    unknown = keras.Input((None, None, 16), name="unknown_size")
    b = _decoder(hidden_size=16, num_heads=4, embedding_dim=16, name="unknown")(unknown, unknown, sparse, unknown)
    # an encoder given boxes alone, in a batch of 3: every output takes that batch
    boxes = keras.Input((2, 2, 2), batch_size=3, name="boxes")
    c = H.SAMPromptEncoder(hidden_size=4, image_embedding_size=(2, 2), input_image_size=(16, 16), mask_in_channels=4,
                           name="boxes_only")(boxes=boxes)
    return keras.Model([image, positional, sparse, dense, unknown, boxes],
                       [a["masks"], a["iou_pred"], b["masks"], *keras.tree.flatten(c)], name="sam_decoders")


def converters():
    """Gemma4's converters with their default token budgets (get_config() saves only patch_size of the
    image converter's), the VideoConverter with and without a size."""
    images = keras.Input((20, 24, 3), name="images")
    video = keras.Input((3, 20, 24, 3), batch_size=2, name="video")
    outputs = [
        H.Gemma4ImageConverter(patch_size=4, name="gemma4")(images),
        H.Gemma4ImageConverter(patch_size=2, scale=1 / 255.0, offset=[0.1, 0.2, 0.3], name="gemma4_scaled")(images),
        H.Gemma4VideoConverter(patch_size=4, max_soft_tokens=5, pooling_kernel_size=2, num_frames=2,
                               name="gemma4_video")(video),
        H.VideoConverter(image_size=(6, 5), name="video_resized")(video),
        H.VideoConverter(name="video_as_is")(video),
    ]
    return keras.Model([images, video], [t for out in outputs for t in keras.tree.flatten(out)], name="converters")


def qwen_converters():
    """Qwen3.5's converters take ONE image (height, width, channels) or one video (frames, height,
    width, channels): in a Functional model the batch axis is the image's height, the video's frames."""
    image = keras.Input((24, 3), batch_size=20, name="image")
    video = keras.Input((20, 24, 3), batch_size=5, name="video")
    small = dict(patch_size=4, min_pixels=64, max_pixels=4096)
    outputs = [
        H.Qwen3_5ImageConverter(**small, name="qwen_image")(image),
        H.Qwen3_5ImageConverter(**small, temporal_patch_size=1, spatial_merge_size=1, name="qwen_image_t1")(image),
        H.Qwen3_5VideoConverter(**small, name="qwen_video")(video),
    ]
    return keras.Model([image, video], [t for out in outputs for t in keras.tree.flatten(out)], name="qwen_converters")


MODELS = [sam, sam_decoders, converters, qwen_converters]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    yield save_models(tmp_path_factory.mktemp("keras_hub_sam"), MODELS)
    keras.backend.clear_session()


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("name", [b.__name__ for b in MODELS])
def test_sam_layers_and_converters_match_keras(saved, name, fmt):
    built = saved[name]
    path = built.files[fmt]
    graph = formats.read(path)
    assert graph.format == fmt
    problems = compare(built, graph, fmt) + audit_problems(built, path, fmt) + _errors_and_warnings(path)
    assert not problems, "\n".join(problems)


def test_the_prompt_encoders_frequencies_are_frozen(saved):
    """Not an integer variable: the float gaussian matrix is created trainable=False."""
    encoder = saved["sam"].model.get_layer("prompt_encoder")
    (frozen,) = encoder.non_trainable_weights
    assert "float" in str(frozen.dtype) and tuple(frozen.shape) == (2, 4)


def test_every_spec_of_this_file_is_in_a_model(saved):
    written = {layer.registered_name for b in saved.values() for layer in formats.read(b.files["keras-v3"]).layers}
    assert {"keras_hub>SAMPromptEncoder", "keras_hub>SAMMaskDecoder"} <= HELD
    assert HELD - written == set()


def test_a_reloaded_gemma4_converter_has_the_default_budget(tmp_path):
    """get_config() leaves out max_soft_tokens and pooling_kernel_size: Keras reloads the file with
    the defaults (2520 patches), and the file is read as Keras reloads it."""
    images = keras.Input((20, 24, 3))
    model = keras.Model(images, H.Gemma4ImageConverter(patch_size=4, max_soft_tokens=5, pooling_kernel_size=2)(images))
    path = str(tmp_path / "gemma4.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert [tuple(t.shape) for t in reloaded.outputs] != [tuple(t.shape) for t in model.outputs]
    built = Built("gemma4_reloaded", K3, reloaded, {"keras-v3": path})
    assert compare(built, formats.read(path), "keras-v3") == []
    assert _errors_and_warnings(path) == []


# ---- configurations Keras cannot build: the spec says why ------------------------------------------


def _spec(name):
    return registry.get(f"keras_hub>{name}")


@pytest.mark.parametrize("kwargs", [
    dict(hidden_size=9, num_heads=2, embedding_dim=8),  # 2 heads of 4: the final norm is on 9 features
    dict(hidden_size=8, num_heads=8, embedding_dim=8),  # key_dim 1 // downsample rate 2: a Dense of 0 units
])
def test_a_decoder_keras_cannot_build_is_a_shape_error(kwargs):
    inputs = [keras.Input(s) for s in ((4, 4, 8), (4, 4, 8), (None, 8), (4, 4, 8))]
    with pytest.raises(Exception):
        _decoder(**kwargs)(*inputs)
    config = {**_decoder(name="d").get_config(), **kwargs}
    shapes, spec = [tuple(t.shape) for t in inputs], _spec("SAMMaskDecoder")
    with pytest.raises(ShapeError):
        spec.output_shapes(config, shapes)
        spec.weights(config, shapes)


def test_a_decoder_on_other_features_is_a_shape_error():
    inputs = [keras.Input(s) for s in ((4, 4, 8), (4, 4, 8), (None, 6), (4, 4, 8))]
    layer = _decoder()
    with pytest.raises(Exception):
        layer(*inputs)
    with pytest.raises(ShapeError, match="6 features"):
        _spec("SAMMaskDecoder").output_shapes(layer.get_config(), [tuple(t.shape) for t in inputs])


def test_batched_images_into_qwen_converter_is_a_shape_error():
    with pytest.raises(Exception):
        H.Qwen3_5ImageConverter(patch_size=4)(keras.Input((20, 24, 3)))
    with pytest.raises(ShapeError, match="one image"):
        _spec("Qwen3_5ImageConverter").output_shapes({"patch_size": 4}, [(None, 20, 24, 3)])


@pytest.mark.parametrize("key", ["num_layers", "num_multimask_outputs", "iou_head_depth"])
def test_a_hostile_count_of_sublayers_is_declined(key):
    # a config asking for a billion blocks is not modelled (propagation then reads the stored weights)
    config = {**_decoder(name="d").get_config(), key: 10**9}
    shapes = [(None, 4, 4, 8), (None, 4, 4, 8), (None, None, 8), (None, 4, 4, 8)]
    with pytest.raises(NotImplementedError, match="not modelled"):
        spec = _spec("SAMMaskDecoder")
        spec.output_shapes(config, shapes)
        spec.weights(config, shapes)
