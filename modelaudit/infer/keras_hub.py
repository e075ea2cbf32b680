"""keras_hub modeling layers: keras_hub/src/layers/modeling/ (TransformerEncoder, TransformerDecoder,
FNetEncoder, MaskedLMHead, the position embeddings and encodings, ReversibleEmbedding, ...).

A saved keras_hub layer is one node whose config holds only its constructor arguments; its build()
creates Keras sublayers (MultiHeadAttention, LayerNormalization, Dense). Each spec here lists those
sublayers as `Part`s and asks their own specs for weights, shapes and MACs, so a formula lives in one
place. Specs are registered under the registered name the file writes ("keras_hub>TransformerEncoder"),
never the bare class name, so a user's own class called TransformerEncoder is not mistaken for it.

keras_hub backbones and task models (BertBackbone, GPT2CausalLM...) save only constructor arguments,
no layer graph: they are read as opaque models from their stored weights (MA109, infer/stored.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from modelaudit.infer import registry
from modelaudit.infer.attention import MultiHeadAttentionSpec
from modelaudit.infer.core import ReversibleEmbeddingSpec
from modelaudit.infer.registry import LayerSpec, SameShapeSpec, ShapeError, WeightSpec, fmt_shape, register
from modelaudit.infer.registry import single_input


def hub(*class_names: str):
    """Register under keras_hub's registered names ("keras_hub>Class")."""
    return register(*(f"keras_hub>{name}" for name in class_names))


@dataclass(frozen=True)
class Part:
    """One sublayer build() creates: its attribute name, Keras class, config and input shapes."""

    name: str
    class_name: str
    config: dict
    input_shapes: list

    @property
    def spec(self) -> LayerSpec:
        return registry.get(self.class_name)

    def weights(self) -> list[WeightSpec]:
        return [
            WeightSpec(f"{self.name}/{w.name}", w.shape, w.trainable)
            for w in self.spec.weights(self.config, self.input_shapes)
        ]

    def output_shape(self):
        return self.spec.output_shapes(self.config, self.input_shapes)[0]

    def macs(self) -> Optional[int]:
        outs = self.spec.output_shapes(self.config, self.input_shapes)
        return self.spec.macs(self.config, self.input_shapes, outs)


def _sub(config: dict, **values) -> dict:
    # keras_hub passes dtype=self.dtype_policy to every sublayer it builds
    return {"dtype": config.get("dtype"), **values}


def _dense(name, config, units, shape) -> Part:
    return Part(name, "Dense", _sub(config, units=int(units)), [shape])


def _layer_norm(name, config, shape) -> Part:
    return Part(name, "LayerNormalization", _sub(config, axis=-1), [shape])


def _attention(name, config, heads, key_dim, query, value, value_dim=None) -> Part:
    cfg = _sub(config, num_heads=heads, key_dim=key_dim, value_dim=value_dim)
    return Part(name, "MultiHeadAttention", cfg, [query, value])


def _sequence(input_shapes, layer: str) -> tuple:
    """A (batch, sequence, features) input with known features, as the transformer blocks take."""
    shape = single_input(input_shapes, layer)
    if len(shape) != 3:
        raise ShapeError(f"{layer} expects (batch, sequence, features), got {fmt_shape(shape)}")
    if shape[-1] is None:
        raise ShapeError(f"{layer}: the feature dimension must be known, got {fmt_shape(shape)}")
    return shape


def _head_dim(hidden: int, heads: int, layer: str) -> int:
    # build(): "Attention `key_dim` computed cannot be zero"
    if hidden // heads == 0:
        raise ShapeError(f"{layer}: hidden size {hidden} must be at least num_heads {heads}")
    return hidden // heads


def _with_last(shape, last) -> tuple:
    return tuple(shape[:-1]) + (last,)


class _Composite(LayerSpec):
    """A layer whose weights are those of the sublayers build() creates (`parts`), plus `own` ones."""

    layer = ""

    def parts(self, config, input_shapes) -> list[Part]:
        return []

    def own(self, config, input_shapes) -> list[WeightSpec]:
        return []

    def weights(self, config, input_shapes):
        specs = list(self.own(config, input_shapes))
        for part in self.parts(config, input_shapes):
            specs.extend(part.weights())
        return specs

    def macs(self, config, input_shapes, output_shapes):
        values = [part.macs() for part in self.parts(config, input_shapes)]
        return None if any(v is None for v in values) else sum(values)

    def formula(self, config, input_shapes):
        terms = [f"{w.name} {w.size}" for w in self.own(config, input_shapes)]
        terms += [f"{p.name} {sum(w.size for w in p.weights())}" for p in self.parts(config, input_shapes)]
        total = sum(w.size for w in self.weights(config, input_shapes))
        return f"{' + '.join(terms)} = {total}" if terms else None


# ---- transformer blocks ----------------------------------------------------------------------


def _feedforward(config, shape, intermediate_dense: str, output_dense: str) -> list[Part]:
    # Dense(intermediate_dim) on the input, Dense(hidden_dim) back on the intermediate shape
    inner = int(config["intermediate_dim"])
    return [
        _dense(intermediate_dense, config, inner, shape),
        _dense(output_dense, config, shape[-1], _with_last(shape, inner)),
    ]


@hub("TransformerEncoder")
class TransformerEncoderSpec(_Composite):
    # transformer_encoder.py build(): MultiHeadAttention(num_heads, key_dim=hidden // num_heads) on
    # (input, input); LayerNormalization x2; Dense(intermediate_dim); Dense(hidden). Output: the input.
    layer = "TransformerEncoder"

    def output_shapes(self, config, input_shapes):
        shape = _sequence(input_shapes, self.layer)
        self.parts(config, input_shapes)  # raises on a head count the hidden size cannot split
        return [shape]

    def parts(self, config, input_shapes):
        shape = _sequence(input_shapes, self.layer)
        heads = int(config["num_heads"])
        head_dim = _head_dim(shape[-1], heads, self.layer)
        return [
            _attention("self_attention_layer", config, heads, head_dim, shape, shape),
            _layer_norm("self_attention_layer_norm", config, shape),
            _layer_norm("feedforward_layer_norm", config, shape),
            *_feedforward(config, shape, "feedforward_intermediate_dense", "feedforward_output_dense"),
        ]


@hub("TransformerDecoder")
class TransformerDecoderSpec(_Composite):
    # transformer_decoder.py build(decoder_sequence_shape, encoder_sequence_shape=None): a
    # CachedMultiHeadAttention self-attention and LayerNormalization; with an encoder sequence, a
    # cross-attention (key_dim = value_dim = hidden // num_heads) on (decoder, encoder) and its
    # LayerNormalization; Dense(intermediate_dim), Dense(hidden), LayerNormalization. Output: the
    # decoder sequence's shape.
    layer = "TransformerDecoder"
    # call(decoder_sequence, encoder_sequence=None, masks..., caches...): masks do not shape the output
    tensor_arguments = ("decoder_sequence", "encoder_sequence")

    def _shapes(self, config, input_shapes):
        decoder = _sequence(input_shapes, self.layer)
        encoder = tuple(input_shapes[1]) if len(input_shapes) > 1 and input_shapes[1] is not None else None
        if encoder is not None and (len(encoder) != 3 or encoder[-1] is None):
            raise ShapeError(f"{self.layer}: the encoder sequence must be (batch, sequence, features), got "
                             f"{fmt_shape(encoder)}")
        # from_config builds the layer from the shapes it was built on; call() then refuses a
        # different number of sequences ("The number of call arguments ... should not change")
        if config.get("decoder_sequence_shape") and bool(config.get("encoder_sequence_shape")) != (encoder is not None):
            built = "with" if config.get("encoder_sequence_shape") else "without"
            raise ShapeError(f"{self.layer} was built {built} cross-attention but is called "
                             f"{'with' if encoder is not None else 'without'} an encoder sequence")
        return decoder, encoder

    def output_shapes(self, config, input_shapes):
        decoder, _ = self._shapes(config, input_shapes)
        self.parts(config, input_shapes)
        return [decoder]

    def parts(self, config, input_shapes):
        decoder, encoder = self._shapes(config, input_shapes)
        heads = int(config["num_heads"])
        head_dim = _head_dim(decoder[-1], heads, self.layer)
        parts = [
            _attention("self_attention", config, heads, head_dim, decoder, decoder),
            _layer_norm("self_attention_layer_norm", config, decoder),
        ]
        if encoder is not None:
            parts.append(_attention("cross_attention", config, heads, head_dim, decoder, encoder, value_dim=head_dim))
            parts.append(_layer_norm("cross_attention_layer_norm", config, decoder))
        parts += _feedforward(config, decoder, "feedforward_intermediate_dense", "feedforward_output_dense")
        parts.append(_layer_norm("feedforward_layer_norm", config, decoder))
        return parts


@hub("FNetEncoder")
class FNetEncoderSpec(_Composite):
    # f_net_encoder.py build(): LayerNormalization x2, Dense(intermediate_dim), Dense(features); the
    # Fourier mixing has no weights (its FFT is not a multiply-accumulate of a weight). Output: the input.
    layer = "FNetEncoder"

    def output_shapes(self, config, input_shapes):
        return [self._shape(input_shapes)]

    def _shape(self, input_shapes):
        shape = single_input(input_shapes, self.layer)
        if len(shape) < 2 or shape[-1] is None:
            raise ShapeError(f"{self.layer} expects (batch, ..., features) with known features, got {fmt_shape(shape)}")
        return shape

    def parts(self, config, input_shapes):
        shape = self._shape(input_shapes)
        return [
            _layer_norm("mixing_layer_norm", config, shape),
            _layer_norm("output_layer_norm", config, shape),
            *_feedforward(config, shape, "intermediate_dense", "output_dense"),
        ]


@hub("MaskedLMHead")
class MaskedLMHeadSpec(_Composite):
    # masked_lm_head.py build(): Dense(feature size) and LayerNormalization on the gathered positions,
    # then output_kernel (feature size, vocabulary) unless a token_embedding is tied in, and
    # output_bias (vocabulary,). The feature size is the tied embedding's output_dim, else the
    # input's. A tied embedding is another layer's: its weights are counted there, and the file
    # stores them there. Output: (*mask_positions, vocabulary_size).
    layer = "MaskedLMHead"
    tensor_arguments = ("inputs", "mask_positions")

    def _shapes(self, input_shapes):
        if len(input_shapes) < 2 or input_shapes[1] is None:
            raise ShapeError(f"{self.layer} expects the sequence and the mask positions")
        inputs, positions = tuple(input_shapes[0]), tuple(input_shapes[1])
        if len(inputs) != 3 or inputs[-1] is None:
            raise ShapeError(f"{self.layer} expects (batch, sequence, features) with known features, got "
                             f"{fmt_shape(inputs)}")
        if len(positions) != 2:
            raise ShapeError(f"{self.layer} expects mask positions of shape (batch, masks), got {fmt_shape(positions)}")
        return inputs, positions

    @staticmethod
    def _embedding(config) -> dict:
        tied = config.get("token_embedding")
        return (tied.get("config") or {}) if isinstance(tied, dict) else {}

    def _vocabulary(self, config) -> int:
        tied = self._embedding(config)
        return int(tied["input_dim"] if tied else config["vocabulary_size"])

    def output_shapes(self, config, input_shapes):
        _, positions = self._shapes(input_shapes)
        return [positions + (self._vocabulary(config),)]

    def parts(self, config, input_shapes):
        inputs, positions = self._shapes(input_shapes)
        tied = self._embedding(config)
        features = int(tied["output_dim"]) if tied else inputs[-1]
        gathered = (inputs[0], positions[1], inputs[-1])
        return [
            _dense("intermediate_dense", config, features, gathered),
            _layer_norm("intermediate_layer_norm", config, _with_last(gathered, features)),
        ]

    def own(self, config, input_shapes):
        inputs, _ = self._shapes(input_shapes)
        vocabulary = self._vocabulary(config)
        specs = []
        if not self._embedding(config):
            specs.append(WeightSpec("output_kernel", (inputs[-1], vocabulary)))
        specs.append(WeightSpec("output_bias", (vocabulary,)))
        return specs

    def macs(self, config, input_shapes, output_shapes):
        inputs, positions = self._shapes(input_shapes)
        head = super().macs(config, input_shapes, output_shapes)
        tied = self._embedding(config)
        features = int(tied["output_dim"]) if tied else inputs[-1]
        if head is None or positions[1] is None:
            return None
        return head + positions[1] * features * self._vocabulary(config)


# ---- embeddings ------------------------------------------------------------------------------


# keras_hub's ReversibleEmbedding subclasses Keras's own unchanged: one spec (infer/core.py) under both names
hub("ReversibleEmbedding")(ReversibleEmbeddingSpec)


def _positions_fit(shape, sequence_length: int, layer: str) -> None:
    # call() slices the first `sequence length` rows of the embeddings: a longer input cannot fit
    if shape[-2] is not None and shape[-2] > sequence_length:
        raise ShapeError(f"{layer}: a sequence of {shape[-2]} is longer than sequence_length {sequence_length}")


@hub("PositionEmbedding")
class PositionEmbeddingSpec(LayerSpec):
    # position_embedding.py build(): embeddings (sequence_length, features). Output: the input.
    layer = "PositionEmbedding"

    def _shape(self, config, input_shapes):
        shape = single_input(input_shapes, self.layer)
        if len(shape) < 3:
            raise ShapeError(f"{self.layer} expects (batch, sequence, features), got {fmt_shape(shape)}")
        _positions_fit(shape, int(config["sequence_length"]), self.layer)
        return shape

    def output_shapes(self, config, input_shapes):
        return [self._shape(config, input_shapes)]

    def weights(self, config, input_shapes):
        shape = self._shape(config, input_shapes)
        if shape[-1] is None:
            raise ShapeError(f"{self.layer}: the feature dimension must be known, got {fmt_shape(shape)}")
        return [WeightSpec("embeddings", (int(config["sequence_length"]), shape[-1]))]

    def formula(self, config, input_shapes):
        (w,) = self.weights(config, input_shapes)
        return f"{w.shape[0]}·{w.shape[1]} = {w.size}"


@hub("TokenAndPositionEmbedding")
class TokenAndPositionEmbeddingSpec(_Composite):
    # token_and_position_embedding.py: a ReversibleEmbedding(vocabulary_size, embedding_dim,
    # tie_weights) and a PositionEmbedding(sequence_length) on its output. Output: (*input, embedding_dim).
    layer = "TokenAndPositionEmbedding"

    def output_shapes(self, config, input_shapes):
        return [self.parts(config, input_shapes)[-1].input_shapes[0]]

    def parts(self, config, input_shapes):
        shape = single_input(input_shapes, self.layer)
        token = _sub(
            config, input_dim=int(config["vocabulary_size"]), output_dim=int(config["embedding_dim"]),
            tie_weights=config.get("tie_weights", True),
        )
        embedded = shape + (int(config["embedding_dim"]),)
        position = _sub(config, sequence_length=int(config["sequence_length"]))
        return [
            Part("token_embedding", "keras_hub>ReversibleEmbedding", token, [shape]),
            Part("position_embedding", "keras_hub>PositionEmbedding", position, [embedded]),
        ]


# ---- weightless encodings and biases, and the rest ------------------------------------------


@hub("SinePositionEncoding")
class SinePositionEncodingSpec(SameShapeSpec):
    # sine_position_encoding.py: sin/cos of (sequence, features), broadcast to the input. No weights.
    def check_input(self, config, shape):
        if len(shape) < 3:
            raise ShapeError(f"SinePositionEncoding expects (batch, sequence, features), got {fmt_shape(shape)}")


@hub("RotaryEmbedding")
class RotaryEmbeddingSpec(SameShapeSpec):
    # rotary_embedding.py call(): sequence_axis and feature_axis within the rank and distinct; the
    # rotated feature dimension even. No weights; output: the input.
    def check_input(self, config, shape):
        rank = len(shape)
        axes = []
        for key, default in (("sequence_axis", 1), ("feature_axis", -1)):
            axis = int(config.get(key, default))
            if not -rank <= axis < rank:
                raise ShapeError(f"RotaryEmbedding: {key} {axis} is out of range for input {fmt_shape(shape)}")
            axes.append(axis % rank)
        if axes[0] == axes[1]:
            raise ShapeError("RotaryEmbedding: sequence_axis and feature_axis must be different")
        features = shape[axes[1]]
        if features is not None and features % 2:
            raise ShapeError(f"RotaryEmbedding: the rotary (feature) dimension must be even, got {features}")


@hub("AlibiBias")
class AlibiBiasSpec(SameShapeSpec):
    # alibi_bias.py call(): attention scores (batch, heads, query, key) plus a fixed bias. No weights.
    def check_input(self, config, shape):
        if len(shape) != 4:
            raise ShapeError(f"AlibiBias expects attention scores (batch, heads, query, key), got {fmt_shape(shape)}")


@hub("RMSNormalization")
class HubRMSNormalizationSpec(LayerSpec):
    # rms_normalization.py __init__(input_dim): scale (input_dim,), multiplied in by broadcasting on
    # the last axis; output: the input's shape, its last axis broadcast against input_dim
    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, "RMSNormalization")
        dim, last = int(config["input_dim"]), shape[-1] if shape else None
        if not shape or last not in (None, 1, dim) and dim != 1:
            raise ShapeError(f"RMSNormalization(input_dim={dim}) cannot scale an input {fmt_shape(shape)}")
        return [_with_last(shape, dim) if last == 1 else shape]

    def weights(self, config, input_shapes):
        return [WeightSpec("scale", (int(config["input_dim"]),))]


# ---- image converters ------------------------------------------------------------------------

# image_converter.py and the model-specific subclasses that only set defaults (backbone_cls, dtype,
# scale/offset); Gemma4's and Qwen3.5's resize by their own rules (their specs follow).
IMAGE_CONVERTERS = (
    "ImageConverter", "BASNetImageConverter", "BLIP2ImageConverter", "CLIPImageConverter",
    "CSPNetImageConverter", "DFineImageConverter", "DINOV2ImageConverter", "DINOV3ImageConverter",
    "DeepLabV3ImageConverter", "DeiTImageConverter", "DenseNetImageConverter", "DepthAnythingImageConverter",
    "EfficientNetImageConverter", "Gemma3ImageConverter", "Gemma3nImageConverter", "HGNetV2ImageConverter",
    "MetaCLIP2ImageConverter", "MiTImageConverter", "MobileNetImageConverter", "MobileNetV5ImageConverter",
    "PARSeqImageConverter", "PaliGemmaImageConverter", "ResNetImageConverter", "RetinaNetImageConverter",
    "SAM3ImageConverter", "SAMImageConverter", "SegFormerImageConverter", "SigLIPImageConverter",
    "SwinTransformerImageConverter", "T5Gemma2ImageConverter", "VGGImageConverter", "ViTImageConverter",
    "VideoPrismImageConverter", "XceptionImageConverter",
)


@hub(*IMAGE_CONVERTERS)
class ImageConverterSpec(LayerSpec):
    # a keras.layers.Resizing(image_size) when image_size is set, then scale and offset per channel;
    # no weights. get_config() does not save data_format: a reloaded converter resizes channels_last.
    def output_shapes(self, config, input_shapes):
        size = config.get("image_size")
        if not size:
            return [single_input(input_shapes, "ImageConverter")]
        resize = _sub(config, height=int(size[0]), width=int(size[1]), data_format=config.get("data_format"))
        return [Part("resizing", "Resizing", resize, list(input_shapes)).output_shape()]


def _rank(shape, rank: int, layer: str, what: str) -> tuple:
    if len(shape) != rank:
        raise ShapeError(f"{layer} converts {what}, an input of rank {rank}; got {fmt_shape(shape)}")
    return shape


@hub("Gemma4ImageConverter")
class Gemma4ImageConverterSpec(LayerSpec):
    # gemma4_image_converter.py: an aspect-ratio-preserving resize (its size depends on the image),
    # patches padded to max_soft_tokens · pooling_kernel_size² and tf.ensure_shape'd to that count.
    # Outputs by sorted key: pixel_position_ids (batch, patches, 2), pixel_values (batch, patches,
    # 3 · patch_size²). get_config() saves patch_size only: a reloaded converter has the defaults.
    layer = "Gemma4ImageConverter"

    def _patches(self, config) -> tuple[int, int]:
        patch = int(config.get("patch_size", 16))
        return int(config.get("max_soft_tokens", 280)) * int(config.get("pooling_kernel_size", 3)) ** 2, patch

    def output_shapes(self, config, input_shapes):
        shape = _rank(single_input(input_shapes, self.layer), 4, self.layer, "a batch of images")
        patches, patch = self._patches(config)
        return [(shape[0], patches, 2), (shape[0], patches, 3 * patch * patch)]


@hub("Gemma4VideoConverter")
class Gemma4VideoConverterSpec(Gemma4ImageConverterSpec):
    # gemma4_video_converter.py: num_frames frames sampled from (batch, frames, height, width,
    # channels), each converted by a Gemma4ImageConverter (max_soft_tokens 70 by default)
    layer = "Gemma4VideoConverter"

    def output_shapes(self, config, input_shapes):
        shape = _rank(single_input(input_shapes, self.layer), 5, self.layer, "a batch of videos")
        patches, patch = self._patches({"max_soft_tokens": 70, **config})
        frames = int(config.get("num_frames", 32))
        return [(shape[0], frames, patches, 2), (shape[0], frames, patches, 3 * patch * patch)]


@hub("Qwen3_5ImageConverter")
class Qwen3_5ImageConverterSpec(LayerSpec):
    # qwen3_5_image_converter.py: ONE image (height, width, channels), resized to a pixel budget and
    # cut into patches whose number depends on the resize (unknown statically). Outputs by sorted
    # key: grid_thw (3,), patches (patches, temporal_patch_size, patch_size, patch_size, 3).
    # input_rank: the whole input's, not `rank` (a spatial spec's number of spatial axes)
    layer, input_rank, what = "Qwen3_5ImageConverter", 3, "one image (height, width, channels)"

    def output_shapes(self, config, input_shapes):
        _rank(single_input(input_shapes, self.layer), self.input_rank, self.layer, self.what)
        patch = int(config.get("patch_size", 16))
        return [(3,), (None, int(config.get("temporal_patch_size", 2)), patch, patch, 3)]


@hub("Qwen3_5VideoConverter")
class Qwen3_5VideoConverterSpec(Qwen3_5ImageConverterSpec):
    # qwen3_5_video_converter.py: the same for ONE video (frames, height, width, channels)
    layer, input_rank, what = "Qwen3_5VideoConverter", 4, "one video (frames, height, width, channels)"


@hub("VideoConverter")
class VideoConverterSpec(LayerSpec):
    # video_converter.py: (batch, frames, height, width, channels) flattened to frames, each
    # converted by an ImageConverter(image_size, scale, offset), reshaped back to (batch, frames, ...)
    layer = "VideoConverter"

    def output_shapes(self, config, input_shapes):
        shape = _rank(single_input(input_shapes, self.layer), 5, self.layer, "a batch of videos")
        converter = _sub(config, image_size=config.get("image_size"))
        frames = Part("image_converter", "keras_hub>ImageConverter", converter, [(None,) + shape[2:]]).output_shape()
        return [shape[:2] + tuple(frames[1:])]


@hub("CachedMultiHeadAttention")
class CachedMultiHeadAttentionSpec(MultiHeadAttentionSpec):
    # cached_multi_head_attention.py: keras.layers.MultiHeadAttention with a key/value cache in call();
    # build() and the weights are MultiHeadAttention's
    pass
