"""Preprocessing layers: keras/src/layers/preprocessing/ (Rescaling, the lookups and encoders) and
image_preprocessing/.

None has weights. Resizing, CenterCrop and RandomCrop set height and width (RandomCrop in training
and inference alike); the random augmentations keep the shape (and are the identity at inference).
Keras reads a rank-3 input as one unbatched image, so in a graph (batch included) the image layers
need rank 4: a (batch, height, width) tensor would be cropped or flipped along the wrong axes.
MACs: Rescaling does one multiply-add per element; resampling and augmentation count 0.
Normalization lives in normalization.py.

The lookup and encoding layers (StringLookup, IntegerLookup, TextVectorization, Hashing,
CategoryEncoding, HashedCrossing, Discretization) have no weights either: a vocabulary is a lookup
table (stored in the config or as a .keras asset), and a TF-IDF layer's idf_weights is a plain
tf.Variable that `layer.weights` and count_params() leave out. Their output shapes follow each
class's Keras 3 compute_output_shape() (compute_output_spec() for Hashing), quirks included: a
multi_hot encoding of a rank-1 input drops the batch axis, as Keras's symbolic shape does.
"""

from __future__ import annotations

from modelaudit.infer.geometry import data_format
from modelaudit.infer.registry import LayerSpec, ShapeError, fmt_shape, prod, register, single_input


def _image(input_shapes, layer: str) -> tuple:
    shape = single_input(input_shapes, layer)
    if len(shape) != 4:
        hint = " (Keras would read it as one unbatched image)" if len(shape) == 3 else ""
        raise ShapeError(
            f"{layer} expects a batch of images of rank 4 (batch, height, width, channels), got rank "
            f"{len(shape)} {fmt_shape(shape)}{hint}"
        )
    return shape


@register("Rescaling")
class RescalingSpec(LayerSpec):
    # rescaling.py: inputs * scale + offset, any rank
    def output_shapes(self, config, input_shapes):
        return [single_input(input_shapes, "Rescaling")]

    def macs(self, config, input_shapes, output_shapes):
        return prod(single_input(input_shapes, "Rescaling")[1:])


class _ShapeKeepingImage(LayerSpec):
    """The random augmentations: each compute_output_shape() returns input_shape."""

    def output_shapes(self, config, input_shapes):
        return [_image(input_shapes, self.name)]


@register("RandomFlip")
class RandomFlipSpec(_ShapeKeepingImage):
    pass


@register("RandomRotation")
class RandomRotationSpec(_ShapeKeepingImage):
    pass


@register("RandomZoom")
class RandomZoomSpec(_ShapeKeepingImage):
    pass


@register("RandomContrast")
class RandomContrastSpec(_ShapeKeepingImage):
    pass


@register("RandomTranslation")
class RandomTranslationSpec(_ShapeKeepingImage):
    pass


@register("RandomBrightness")
class RandomBrightnessSpec(_ShapeKeepingImage):
    pass


class _SetHeightWidth(LayerSpec):
    """Resizing / CenterCrop / RandomCrop: compute_output_shape() sets the height and width axes."""

    def output_shapes(self, config, input_shapes):
        shape = list(_image(input_shapes, self.name))
        h, w = (2, 3) if data_format(config) == "channels_first" else (1, 2)
        shape[h], shape[w] = int(config["height"]), int(config["width"])
        return [tuple(shape)]


@register("Resizing")
class ResizingSpec(_SetHeightWidth):
    pass


@register("CenterCrop")
class CenterCropSpec(_SetHeightWidth):
    pass


@register("RandomCrop")
class RandomCropSpec(_SetHeightWidth):
    pass


# ---- lookups and categorical encoders -----------------------------------------------------------


def _mode(config: dict) -> str:
    # Keras 2 spells it "tf-idf" too; both mean the same encoding
    mode = config.get("output_mode") or "int"
    return "tf_idf" if mode == "tf-idf" else str(mode)


def _int_or_none(value):
    return None if value is None else int(value)


def _encoded(shape: tuple, depth, mode: str) -> tuple:
    """The categorical encoding Keras's layers share: one_hot appends a depth axis (replacing a last
    axis of 1 when the rank is above 1); multi_hot, count and tf_idf replace the last axis."""
    if mode == "one_hot":
        if len(shape) > 1 and shape[-1] == 1:
            return shape[:-1] + (depth,)
        return shape + (depth,)
    return shape[:-1] + (depth,)


def _lookup_depth(config: dict):
    """index_lookup.py: the encoded depth is max_tokens when padded to it, else the vocabulary size
    (mask and OOV indices included as Keras counts them), which get_config() writes."""
    if config.get("pad_to_max_tokens") and config.get("max_tokens") is not None:
        return int(config["max_tokens"])
    return _int_or_none(config.get("vocabulary_size"))


class _Vocabulary(LayerSpec):
    """A lookup's TF-IDF weights are saved (Keras 3: `vars/idf_weights`, TextVectorization's and its
    inner lookup's alike; tf_keras .h5: `Variable:0`) but not counted."""

    def uncounted_variables(self, config):
        return frozenset({"idf_weights", "Variable"}) if _mode(config) == "tf_idf" else frozenset()


@register("StringLookup", "IntegerLookup")
class LookupSpec(_Vocabulary):
    # index_lookup.py compute_output_shape
    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, "lookup")
        mode = _mode(config)
        if mode == "int":
            return [shape]
        return [_encoded(shape, _lookup_depth(config), mode)]


@register("TextVectorization")
class TextVectorizationSpec(_Vocabulary):
    # text_vectorization.py compute_output_shape: int gives (batch, output_sequence_length); the
    # other modes encode the token axis (a split adds one; no split treats a rank-1 input as (batch, 1))
    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, "TextVectorization")
        mode = _mode(config)
        if mode == "int":
            return [(shape[0] if shape else None, _int_or_none(config.get("output_sequence_length")))]
        split = config.get("split", "whitespace") is not None
        if config.get("dtype") == "string":
            # tf.keras (whose layer dtype is "string"; Keras 3 writes a float policy) runs the layer:
            # a split squeezes a (batch, 1) input first, no split encodes the input as it is
            if split:
                shape = (shape[:-1] if len(shape) > 1 and shape[-1] == 1 else shape) + (None,)
        elif split:
            shape = shape + (None,)
        elif len(shape) <= 1:
            shape = shape + (1,)
        return [_encoded(shape, _lookup_depth(config), mode)]


@register("Hashing")
class HashingSpec(LayerSpec):
    # hashing.py compute_output_spec: every encoding replaces the last axis by num_bins
    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, "Hashing")
        if _mode(config) == "int":
            return [shape]
        return [shape[:-1] + (int(config["num_bins"]),)]


@register("CategoryEncoding")
class CategoryEncodingSpec(LayerSpec):
    # category_encoding.py compute_output_shape: one_hot keeps a rank-1 (batch,) input's axis
    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, "CategoryEncoding")
        depth = int(config["num_tokens"])
        if not shape:
            return [(depth,)]
        return [_encoded(shape, depth, _mode(config))]


@register("HashedCrossing")
class HashedCrossingSpec(LayerSpec):
    # hashed_crossing.py compute_output_shape: two inputs of one shape, crossed into num_bins
    def output_shapes(self, config, input_shapes):
        if len(input_shapes) != 2 or any(s is None for s in input_shapes):
            raise ShapeError("HashedCrossing expects a list of 2 inputs")
        first, second = (tuple(s) for s in input_shapes)
        if first and second and first[-1] is not None and second[-1] is not None and first[-1] != second[-1]:
            raise ShapeError(
                f"HashedCrossing expects inputs of one shape, got {fmt_shape(first)} and {fmt_shape(second)}"
            )
        if _mode(config) == "int":
            return [first]
        bins = int(config["num_bins"])
        return [first + (bins,) if first and first[-1] != 1 else first[:-1] + (bins,)]


@register("Discretization")
class DiscretizationSpec(LayerSpec):
    # discretization.py compute_output_shape: len(bin_boundaries) + 1 bins (num_bins until adapted);
    # multi_hot / count drop axis 1 of an input of rank >= 2 (matching the eager tensor)
    def uncounted_variables(self, config):
        # tf_keras keeps adapt()'s quantile summary, shape (2, None), as a variable it saves
        return frozenset({"summary"})

    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, "Discretization")
        mode = _mode(config)
        if mode == "int":
            return [shape]
        bounds = config.get("bin_boundaries")
        depth = len(bounds) + 1 if isinstance(bounds, list) else _int_or_none(config.get("num_bins"))
        if mode == "one_hot":
            return [_encoded(shape, depth, mode)]
        if len(shape) >= 2:
            return [(shape[0],) + shape[2:] + (depth,)]
        return [(depth,)]
