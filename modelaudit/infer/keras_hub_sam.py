"""keras_hub's Segment Anything layers: SAMPromptEncoder and SAMMaskDecoder
(keras_hub/src/models/sam/sam_prompt_encoder.py, sam_mask_decoder.py, sam_transformer.py, sam_layers.py).

Both build every sublayer from their constructor arguments alone (build() ignores the input shapes),
so their weights are a function of the config. Their calls return dicts, which Keras flattens by
sorted key: the prompt encoder's outputs are (prompt_dense_embeddings,
prompt_dense_positional_embeddings, prompt_sparse_embeddings), the mask decoder's (iou_pred, masks).

The pieces other SAM-like layers reuse (the downsampling attention, the MLP, the two-way transformer)
are module-level functions returning `Part`s, named by the attribute path of each sublayer.
"""

from __future__ import annotations

from typing import Optional

from modelaudit.infer.keras_hub import Part, _Composite, _dense, _layer_norm, _sub, hub
from modelaudit.infer.registry import EVERY_ARGUMENT, ShapeError, WeightSpec, fmt_shape


MAX_REPEATS = 1024  # blocks, mask tokens or MLP layers one config may ask for: a hostile count is declined


def repeats(value, what: str, layer: str) -> int:
    """A count of repeated sublayers read from the config, bounded."""
    value = int(value)
    if value > MAX_REPEATS:
        raise NotImplementedError(f"{layer} with {value} {what} (more than {MAX_REPEATS}) is not modelled")
    return value


def positive(value: int, what: str, layer: str) -> int:
    # Keras refuses a Dense, Conv or Embedding of zero units when the layer is constructed
    if value <= 0:
        raise ShapeError(f"{layer}: {what} is {value}, and Keras cannot build a sublayer of no units")
    return value


def _embedding(name, config, rows, width) -> Part:
    return Part(name, "Embedding", _sub(config, input_dim=int(rows), output_dim=int(width)), [(None,)])


def mlp(name, config, hidden, out, depth, in_dim, layer) -> list[Part]:
    """sam_layers.py MLP(hidden_dim, output_dim, num_layers): Dense(hidden) x (num_layers - 1), then
    Dense(output_dim), built on (None, ..., in_dim)."""
    parts, width = [], int(in_dim)
    for i, units in enumerate([int(hidden)] * max(repeats(depth, "MLP layers", layer) - 1, 0) + [int(out)]):
        positive(units, f"{name} units", layer)
        parts.append(_dense(f"{name}/dense_{i}", config, units, (None, None, width)))
        width = units
    return parts


def downsampling_attention(name, config, heads, key_dim, rate, layer) -> list[Part]:
    """sam_layers.py MultiHeadAttentionWithDownsampling: query/key/value projections to
    heads * (key_dim // rate) from heads * key_dim features, and an output projection back."""
    width = heads * key_dim
    inner = heads * positive(key_dim // int(rate), f"{name} key_dim // downsample_rate", layer)
    projections = [_dense(f"{name}/{proj}", config, inner, (None, None, width))
                   for proj in ("query_proj", "key_proj", "value_proj")]
    return projections + [_dense(f"{name}/out_proj", config, width, (None, None, inner))]


def two_way_transformer(name, config, layers, hidden, heads, intermediate, layer, rate=2) -> list[Part]:
    """sam_transformer.py TwoWayTransformer: `layers` TwoWayMultiHeadAttention blocks (self-attention
    without downsampling, token-to-image and image-to-token cross-attention, a two-layer MLP, four
    LayerNormalizations) on heads * (hidden // heads) features, a final token-to-image attention and
    a LayerNormalization on hidden_size."""
    key_dim = positive(int(hidden) // int(heads), "hidden_size // num_heads", layer)
    width = (None, None, heads * key_dim)
    parts = []
    for i in range(repeats(layers, "transformer blocks", layer)):
        block = f"{name}/layers_{i}"
        parts += downsampling_attention(f"{block}/self_attention", config, heads, key_dim, 1, layer)
        parts.append(_layer_norm(f"{block}/layer_norm1", config, width))
        parts += downsampling_attention(f"{block}/cross_attention_token_to_image", config, heads, key_dim, rate, layer)
        parts.append(_layer_norm(f"{block}/layer_norm2", config, width))
        parts += mlp(f"{block}/mlp_block", config, intermediate, heads * key_dim, 2, heads * key_dim, layer)
        parts.append(_layer_norm(f"{block}/layer_norm3", config, width))
        parts += downsampling_attention(f"{block}/cross_attention_image_to_token", config, heads, key_dim, rate, layer)
        parts.append(_layer_norm(f"{block}/layer_norm4", config, width))
    parts += downsampling_attention(f"{name}/final_attention_token_to_image", config, heads, key_dim, rate, layer)
    parts.append(_layer_norm(f"{name}/final_layer_norm", config, (None, None, int(hidden))))
    return parts


def broadcast(a: Optional[int], b: Optional[int], what: str, layer: str) -> Optional[int]:
    """One dimension of two broadcast tensors, as TensorFlow infers it statically (an unknown one
    against a known one other than 1 is the known one)."""
    if a == b:
        return a
    if a is None or b is None:
        known = b if a is None else a
        return None if known == 1 else known
    if 1 in (a, b):
        return b if a == 1 else a
    raise ShapeError(f"{layer}: {what} {a} and {b} cannot be broadcast together")


def _chain(parts: list[Part]) -> list[Part]:
    """Sequential sublayers: each Part after the first takes the previous one's output shape."""
    out = [parts[0]]
    for part in parts[1:]:
        out.append(Part(part.name, part.class_name, part.config, [out[-1].output_shape()]))
    return out


class _Grouped(_Composite):
    """A composite whose formula sums its sublayers by top-level attribute (transformer, mask_downscaler),
    not one term per Dense of a block."""

    def formula(self, config, input_shapes):
        groups: dict[str, int] = {}
        for w in self.weights(config, input_shapes):
            head = w.name.split("/", 1)[0]
            groups[head] = groups.get(head, 0) + w.size
        return " + ".join(f"{name} {n}" for name, n in groups.items()) + f" = {sum(groups.values())}"


# ---- SAMPromptEncoder ------------------------------------------------------------------------------

PROMPT_ARGUMENTS = ("images", "points", "labels", "boxes", "masks")  # call()'s signature, in order


@hub("SAMPromptEncoder")
class SAMPromptEncoderSpec(_Grouped):
    # sam_prompt_encoder.py: a RandomFrequencyPositionalEmbeddings (one frozen (2, hidden // 2)
    # gaussian matrix), six Embedding(1, hidden) and a mask_downscaler Sequential built on
    # (4·H, 4·W, 1) masks: Conv2D(mask_in_channels // 4, 2, strides 2), LayerNormalization,
    # Conv2D(mask_in_channels, 2, strides 2), LayerNormalization, Conv2D(hidden, 1).
    # compute_output_shape(): batch from the first of points, labels, boxes, masks passed.
    layer = "SAMPromptEncoder"
    call_arguments = EVERY_ARGUMENT  # every prompt is optional and passed by keyword
    tensor_arguments = EVERY_ARGUMENT

    def _prompts(self, config, input_shapes) -> dict:
        """Argument name -> shape of each tensor the call passes (positional ones by signature)."""
        from modelaudit.infer.tf_ops import Tensor, call_values

        args, kwargs = call_values(config, input_shapes)
        bound = dict(zip(PROMPT_ARGUMENTS, args))
        bound.update({k: v for k, v in kwargs.items() if k in PROMPT_ARGUMENTS})
        return {k: v.shape for k, v in bound.items() if isinstance(v, Tensor)}

    def output_shapes(self, config, input_shapes):
        prompts = self._prompts(config, input_shapes)
        batch = next((prompts[k][0] for k in PROMPT_ARGUMENTS[1:] if prompts.get(k)), None)
        hidden = int(config.get("hidden_size", 256))
        height, width = (int(d) for d in config.get("image_embedding_size", (64, 64)))
        dense = (batch, height, width, hidden)
        return [dense, dense, (batch, None, hidden)]

    def parts(self, config, input_shapes):
        hidden = positive(int(config.get("hidden_size", 256)), "hidden_size", self.layer)
        channels = int(config.get("mask_in_channels", 16))
        height, width = (int(d) for d in config.get("image_embedding_size", (64, 64)))
        embeds = [_embedding(name, config, 1, hidden) for name in (
            "foreground_point_embed", "background_point_embed", "top_left_corner_embed",
            "bottom_right_corner_embed", "not_a_point_embed")]
        conv = {"kernel_size": 2, "strides": 2}
        downscaler = _chain([
            Part("mask_downscaler/conv2d", "Conv2D",
                 _sub(config, filters=positive(channels // 4, "mask_in_channels // 4", self.layer), **conv),
                 [(None, 4 * height, 4 * width, 1)]),
            Part("mask_downscaler/layer_normalization", "LayerNormalization", _sub(config, axis=-1), []),
            Part("mask_downscaler/conv2d_1", "Conv2D",
                 _sub(config, filters=positive(channels, "mask_in_channels", self.layer), **conv), []),
            Part("mask_downscaler/layer_normalization_1", "LayerNormalization", _sub(config, axis=-1), []),
            Part("mask_downscaler/conv2d_2", "Conv2D", _sub(config, filters=hidden, kernel_size=1), []),
        ])
        return embeds + downscaler + [_embedding("no_mask_embed", config, 1, hidden)]

    def own(self, config, input_shapes):
        # created in __init__ with trainable=False: random frequencies, never trained
        hidden = int(config.get("hidden_size", 256))
        return [WeightSpec("positional_embedding_layer/positional_encoding_gaussian_matrix", (2, hidden // 2), False)]

    def macs(self, config, input_shapes, output_shapes):
        return None  # depends on how many prompts and masks a call passes


# ---- SAMMaskDecoder --------------------------------------------------------------------------------


@hub("SAMMaskDecoder")
class SAMMaskDecoderSpec(_Grouped):
    # sam_mask_decoder.py: a TwoWayTransformer, iou_token Embedding(1, embedding_dim), mask_tokens
    # Embedding(num_multimask_outputs + 1, embedding_dim), output_upscaling (Conv2DTranspose
    # (embedding_dim // 4, 2, strides 2), LayerNormalization, Conv2DTranspose(embedding_dim // 8, 2,
    # strides 2)), one MLP(embedding_dim, embedding_dim // 8, 3) per mask token and an
    # MLP(iou_head_hidden_dim, mask tokens, iou_head_depth). Outputs: iou_pred (batch, mask tokens),
    # masks (batch, mask tokens, 4·H, 4·W), H and W those of the image embeddings.
    layer = "SAMMaskDecoder"
    tensor_arguments = ("image_embeddings", "prompt_dense_positional_embeddings", "prompt_sparse_embeddings",
                        "prompt_dense_embeddings")

    @staticmethod
    def _sizes(config) -> tuple[int, int, int, int]:
        """(embedding_dim, hidden_size, num_heads, mask tokens)."""
        return (int(config.get("embedding_dim", 256)), int(config["hidden_size"]), int(config["num_heads"]),
                positive(repeats(int(config.get("num_multimask_outputs", 3)) + 1, "mask tokens", "SAMMaskDecoder"),
                         "num_multimask_outputs + 1 mask tokens", "SAMMaskDecoder"))

    def _inputs(self, config, input_shapes):
        if len(input_shapes) != 4 or any(s is None for s in input_shapes):
            raise ShapeError(f"{self.layer} expects image embeddings, dense positional, sparse and dense prompt "
                             "embeddings")
        image, positional, sparse, dense = (tuple(s) for s in input_shapes)
        for shape, rank, what in ((image, 4, "image embeddings"), (positional, 4, "dense positional embeddings"),
                                  (sparse, 3, "sparse prompt embeddings"), (dense, 4, "dense prompt embeddings")):
            if len(shape) != rank:
                raise ShapeError(f"{self.layer}: the {what} must have rank {rank}, got {fmt_shape(shape)}")
        embedding_dim, hidden, heads, _ = self._sizes(config)
        # the Dense, LayerNormalization and Conv2DTranspose sublayers are built on these widths
        if heads * (hidden // heads) != embedding_dim or hidden != embedding_dim:
            raise ShapeError(f"{self.layer}: hidden_size {hidden} over {heads} heads does not give embedding_dim "
                             f"{embedding_dim} features")
        for shape, what in ((image, "image embeddings"), (sparse, "sparse prompt embeddings"),
                            (dense, "dense prompt embeddings")):
            if shape[-1] is not None and shape[-1] != embedding_dim:
                raise ShapeError(f"{self.layer}: the {what} have {shape[-1]} features, not embedding_dim "
                                 f"{embedding_dim}: {fmt_shape(shape)}")
        return image, positional, sparse, dense

    def output_shapes(self, config, input_shapes):
        image, _, sparse, dense = self._inputs(config, input_shapes)
        _, _, _, tokens = self._sizes(config)
        # the image embeddings are broadcast to the prompts' batch, then the dense prompts added
        batch = broadcast(sparse[0], dense[0], "batch sizes", self.layer)
        height, width = (broadcast(image[i], dense[i], "spatial sizes", self.layer) for i in (1, 2))
        upscaled = tuple(None if d is None else 4 * d for d in (height, width))
        return [(batch, tokens), (batch, tokens) + upscaled]

    def parts(self, config, input_shapes):
        embedding_dim, hidden, heads, tokens = self._sizes(config)
        parts = two_way_transformer("transformer", config, int(config["num_layers"]), hidden, heads,
                                    int(config["intermediate_dim"]), self.layer)
        parts += [_embedding("iou_token", config, 1, embedding_dim),
                  _embedding("mask_tokens", config, tokens, embedding_dim)]
        upscale = {"kernel_size": 2, "strides": 2}
        parts += _chain([
            Part("output_upscaling/conv2d_transpose", "Conv2DTranspose",
                 _sub(config, filters=positive(embedding_dim // 4, "embedding_dim // 4", self.layer), **upscale),
                 [(None, None, None, embedding_dim)]),
            Part("output_upscaling/layer_normalization", "LayerNormalization", _sub(config, axis=-1), []),
            Part("output_upscaling/conv2d_transpose_1", "Conv2DTranspose",
                 _sub(config, filters=positive(embedding_dim // 8, "embedding_dim // 8", self.layer), **upscale), []),
        ])
        for i in range(tokens):
            parts += mlp(f"output_hypernetworks_mlps/{i}", config, embedding_dim, embedding_dim // 8, 3, embedding_dim,
                         self.layer)
        parts += mlp("iou_prediction_head", config, int(config.get("iou_head_hidden_dim", 256)), tokens,
                     int(config.get("iou_head_depth", 3)), embedding_dim, self.layer)
        return parts

    def macs(self, config, input_shapes, output_shapes):
        return None  # the attention's cost depends on the number of prompts
