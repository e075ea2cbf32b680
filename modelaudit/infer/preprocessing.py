"""Image preprocessing layers: keras/src/layers/preprocessing/ (Rescaling) and image_preprocessing/.

None has weights. Resizing, CenterCrop and RandomCrop set height and width (RandomCrop in training
and inference alike); the random augmentations keep the shape (and are the identity at inference).
Keras reads a rank-3 input as one unbatched image, so in a graph (batch included) the image layers
need rank 4: a (batch, height, width) tensor would be cropped or flipped along the wrong axes.
MACs: Rescaling does one multiply-add per element; resampling and augmentation count 0.
Normalization lives in normalization.py.
"""

from __future__ import annotations

from modelaudit.infer.registry import LayerSpec, ShapeError, fmt_shape, prod, register, single_input


def _data_format(config: dict) -> str:
    # null or missing (always, in Keras 2) means Keras's default image_data_format, channels_last
    return config.get("data_format") or "channels_last"


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

    layer = ""

    def output_shapes(self, config, input_shapes):
        return [_image(input_shapes, self.layer)]


for _name in ("RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast", "RandomTranslation", "RandomBrightness"):
    register(_name)(type(f"{_name}Spec", (_ShapeKeepingImage,), {"layer": _name}))


class _SetHeightWidth(LayerSpec):
    """Resizing / CenterCrop / RandomCrop: compute_output_shape() sets the height and width axes."""

    layer = ""

    def output_shapes(self, config, input_shapes):
        shape = list(_image(input_shapes, self.layer))
        h, w = (2, 3) if _data_format(config) == "channels_first" else (1, 2)
        shape[h], shape[w] = int(config["height"]), int(config["width"])
        return [tuple(shape)]


@register("Resizing")
class ResizingSpec(_SetHeightWidth):
    layer = "Resizing"


@register("CenterCrop")
class CenterCropSpec(_SetHeightWidth):
    layer = "CenterCrop"


@register("RandomCrop")
class RandomCropSpec(_SetHeightWidth):
    layer = "RandomCrop"
