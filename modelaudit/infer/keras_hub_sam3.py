"""keras_hub's SAM3 layers: keras_hub/src/models/sam3/ (SAM3VisionEncoder, SAM3TextEncoder,
SAM3GeometryEncoder, SAM3DetrEncoder, SAM3DetrDecoder, SAM3MaskDecoder).

Each saves only its constructor arguments; its build() creates Keras sublayers (Dense, Conv2D,
LayerNormalization...) and keras_hub's own blocks (SAM3Attention: four Dense; SAM3MLP: two). As in
infer/keras_hub.py, each sublayer is a `Part` whose own spec gives its weights, and a weight is listed
where Keras lists it in `layer.weights`: a layer's own variables, then its sublayers in the order
__init__ assigns them. Each sublayer is built on the shape build() hands it, which is not always the
shape call() feeds it (SAM3Attention builds o_proj on the value's width; the mask decoder's
projections on the first feature map's channels): the weights follow build(), since that is what
Keras creates and saves.

Output shapes are each layer's compute_output_shape(), which Keras 3 uses for the symbolic tensors it
records and builds the next layers on (none of these layers runs call() on symbolic inputs). The
image layers read channels_last: keras_hub saves no data_format for them, so a reloaded layer takes
Keras's default. MACs are left unknown: windowed and cross attention over data-dependent prompts are
not modelled.
"""

from __future__ import annotations

from modelaudit.infer.keras_hub import Part, _attention, _dense, _layer_norm, _sub, _with_last, hub
from modelaudit.infer.registry import LayerSpec, ShapeError, WeightSpec, fmt_shape

# SAM3FPNLayer's scale factors: the sublayers that resize the ViT grid before the two projections
FPN_SCALES = (4.0, 2.0, 1.0, 0.5)
# a bound on the blocks a config asks for (SAM3's largest stack is its ViT's 32 layers), against a hostile file
MAX_BLOCKS = 1024


def _count(config, key: str, layer: str) -> int:
    n = int(config[key])
    if n > MAX_BLOCKS:
        raise ShapeError(f"{layer}: {key} {n} is more than {MAX_BLOCKS}")
    return n


def _prefixed(prefix: str, weights) -> list[WeightSpec]:
    return [WeightSpec(f"{prefix}/{w.name}" if prefix else w.name, w.shape, w.trainable) for w in weights]


def _parts_weights(prefix: str, parts) -> list[WeightSpec]:
    return _prefixed(prefix, [w for part in parts for w in part.weights()])


def _shape(input_shapes, i: int, layer: str, what: str, rank=None) -> tuple:
    if len(input_shapes) <= i or input_shapes[i] is None:
        raise ShapeError(f"{layer} expects {what} (input {i})")
    shape = tuple(input_shapes[i])
    if rank is not None and len(shape) != rank:
        raise ShapeError(f"{layer} expects {what} of rank {rank} (batch included), got {fmt_shape(shape)}")
    return shape


def _features(shape, layer: str, what: str) -> int:
    # a Dense or LayerNormalization built on it needs its last dimension
    if not shape or shape[-1] is None:
        raise ShapeError(f"{layer}: the last dimension of {what} must be known, got {fmt_shape(shape)}")
    return int(shape[-1])


def _attention_parts(config, hidden: int, query, key, value) -> list[Part]:
    # sam3_layers.py SAM3Attention.build(query, key, value): q_proj on the query, k_proj on the key,
    # v_proj and o_proj both on the value; each Dense(hidden_dim)
    return [
        _dense("q_proj", config, hidden, query),
        _dense("k_proj", config, hidden, key),
        _dense("v_proj", config, hidden, value),
        _dense("o_proj", config, hidden, value),
    ]


def _mlp_parts(config, hidden: int, inner: int, shape) -> list[Part]:
    # sam3_layers.py SAM3MLP.build(): fc1 Dense(intermediate_dim) on the input, fc2 Dense(hidden_dim)
    return [_dense("fc1", config, inner, shape), _dense("fc2", config, hidden, _with_last(shape, inner))]


def _decoder_mlp(config, depth: int, hidden: int, out: int, shape) -> list[Part]:
    # sam3_layers.py SAM3DecoderMLP: layer1 .. layer{depth}, Dense(hidden_dim) but the last Dense(output_dim)
    parts = []
    for i in range(1, depth + 1):
        units = out if i == depth else hidden
        parts.append(_dense(f"layer{i}", config, units, shape))
        shape = _with_last(shape, units)
    return parts


class _SAM3Spec(LayerSpec):
    """A SAM3 layer: its weights are `groups` (name, weights) in Keras's order."""

    layer = ""

    def groups(self, config, input_shapes) -> list[tuple[str, list[WeightSpec]]]:
        return []

    def weights(self, config, input_shapes):
        return [w for _, ws in self.groups(config, input_shapes) for w in ws]

    def macs(self, config, input_shapes, output_shapes):
        return None

    def formula(self, config, input_shapes):
        groups = [(name, sum(w.size for w in ws)) for name, ws in self.groups(config, input_shapes) if ws]
        if not groups:
            return None
        return " + ".join(f"{name} {n}" for name, n in groups) + f" = {sum(n for _, n in groups)}"


# ---- SAM3VisionEncoder: a ViT with rotary windowed attention, then an FPN neck ----------------


def _int3(value, what: str, layer: str) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ShapeError(f"{layer}: {what} must be (height, width, channels), got {value!r}")
    return tuple(int(v) for v in value)


def _vit_layer_weights(config, i: int, grid, hidden: int, heads: int, shape) -> list[WeightSpec]:
    # sam3_vision_encoder.py SAM3ViTLayer: layer_norm1, rotary_emb (rope cos and sin, not
    # trainable, (end_x·end_y, head_dim): the whole grid for a global layer, one window otherwise),
    # attention (SAM3RoPEAttention: four Dense(hidden) on the grid), layer_norm2, mlp
    window = int(config.get("window_size") or 0)
    global_layers = [int(g) for g in config.get("global_attn_indexes") or ()]
    window = 0 if i in global_layers else window
    rope = grid[0] * grid[1] if window == 0 else window * window
    head_dim = hidden // heads
    attention = [_dense(n, config, hidden, shape) for n in ("q_proj", "k_proj", "v_proj", "o_proj")]
    return [
        *_parts_weights("", [_layer_norm("layer_norm1", config, shape)]),
        WeightSpec("rotary_emb/rope_embeddings_cos", (rope, head_dim), trainable=False),
        WeightSpec("rotary_emb/rope_embeddings_sin", (rope, head_dim), trainable=False),
        *_parts_weights("attention", attention),
        *_parts_weights("", [_layer_norm("layer_norm2", config, shape)]),
        *_parts_weights("mlp", _mlp_parts(config, hidden, int(config["intermediate_dim"]), shape)),
    ]


def _fpn_parts(config, scale: float, hidden: int, fpn: int, shape) -> list[Part]:
    # sam3_vision_encoder.py SAM3FPNLayer: scale 4: Conv2DTranspose(hidden // 2, 2, 2), gelu,
    # Conv2DTranspose(hidden // 4, 2, 2); scale 2: the first alone; 1: nothing; 0.5: MaxPooling2D(2, 2);
    # then proj1 Conv2D(fpn, 1), ZeroPadding2D(1), proj2 Conv2D(fpn, 3)
    parts = []
    if scale in (4.0, 2.0):
        parts.append(Part("scale_layers_0", "Conv2DTranspose",
                          _sub(config, filters=hidden // 2, kernel_size=2, strides=2), [shape]))
    if scale == 4.0:
        parts.append(Part("scale_layers_2", "Conv2DTranspose",
                          _sub(config, filters=hidden // 4, kernel_size=2, strides=2), [parts[-1].output_shape()]))
    if scale == 0.5:
        parts.append(Part("scale_layers_0", "MaxPooling2D", _sub(config, pool_size=2, strides=2), [shape]))
    before = parts[-1].output_shape() if parts else shape
    proj1 = Part("proj1", "Conv2D", _sub(config, filters=fpn, kernel_size=1), [before])
    pad = Part("pad", "ZeroPadding2D", _sub(config, padding=1), [proj1.output_shape()])
    proj2 = Part("proj2", "Conv2D", _sub(config, filters=fpn, kernel_size=3), [pad.output_shape()])
    return [*parts, proj1, pad, proj2]


@hub("SAM3VisionEncoder")
class SAM3VisionEncoderSpec(_SAM3Spec):
    # sam3_vision_encoder.py: backbone (SAM3ViTEncoder: embeddings, layer_norm, layer_0..) on the
    # image, then vision_neck (SAM3VisionNeck: one SAM3FPNLayer per fpn_scale_factor) on the
    # (batch, image height // patch, image width // patch, hidden) grid the config gives. Outputs:
    # the FPN maps, then as many position encodings of the same shapes (compute_output_shape).
    layer = "SAM3VisionEncoder"
    tensor_arguments = ("pixel_values",)

    def _geometry(self, config, input_shapes):
        image = _shape(input_shapes, 0, self.layer, "images", rank=4)
        size = _int3(config["image_shape"], "image_shape", self.layer)
        patch, hidden, heads = int(config["patch_size"]), int(config["hidden_dim"]), int(config["num_heads"])
        grid = (size[0] // patch, size[1] // patch)
        if heads <= 0 or (hidden // heads) % 4:
            raise ShapeError(f"{self.layer}: head size hidden_dim // num_heads = {hidden // max(heads, 1)} "
                             "must be divisible by 4 for its axial rotary embedding")
        window = int(config.get("window_size") or 0)
        if window > 0 and (grid[0] % window or grid[1] % window):
            raise ShapeError(f"{self.layer}: the {grid[0]}x{grid[1]} patch grid is not divisible by "
                             f"window_size {window}")
        if len(config["fpn_scale_factors"]) > MAX_BLOCKS:
            raise ShapeError(f"{self.layer}: more than {MAX_BLOCKS} fpn_scale_factors")
        scales = [float(s) for s in config["fpn_scale_factors"]]
        bad = [s for s in scales if s not in FPN_SCALES]
        if bad:
            raise ShapeError(f"{self.layer}: fpn_scale_factors {bad} are not among {list(FPN_SCALES)}")
        return image, grid, hidden, heads, scales

    def _fpn(self, config, input_shapes) -> list[list[Part]]:
        image, grid, hidden, _, scales = self._geometry(config, input_shapes)
        shape = (image[0], grid[0], grid[1], hidden)
        return [_fpn_parts(config, s, hidden, int(config["fpn_hidden_dim"]), shape) for s in scales]

    def output_shapes(self, config, input_shapes):
        maps = [parts[-1].output_shape() for parts in self._fpn(config, input_shapes)]
        return maps + maps

    def groups(self, config, input_shapes):
        image, grid, hidden, heads, _ = self._geometry(config, input_shapes)
        patch = int(config["patch_size"])
        pretrain = _int3(config.get("pretrain_image_shape") or (336, 336, 3), "pretrain_image_shape", self.layer)
        # SAM3Embedding: tiled_position_embeddings (trainable, the image's patches), then
        # position_embeddings (not trainable, the pretraining image's), then the patch projection
        # Conv2D(hidden, patch, patch, no bias) on the image's channels
        projection = Part("projection", "Conv2D",
                          _sub(config, filters=hidden, kernel_size=patch, strides=patch, use_bias=False), [image])
        groups = [("embeddings", [
            WeightSpec("backbone/embeddings/tiled_position_embeddings", (1, grid[0] * grid[1], hidden)),
            WeightSpec("backbone/embeddings/position_embeddings",
                       (1, (pretrain[0] // patch) * (pretrain[1] // patch), hidden), trainable=False),
            *_parts_weights("backbone/embeddings/patch_embeddings", [projection]),
        ])]
        shape = (image[0], grid[0], grid[1], hidden)
        groups.append(("layer_norm", _parts_weights("backbone", [_layer_norm("layer_norm", config, shape)])))
        for i in range(_count(config, "num_layers", self.layer)):
            groups.append((f"layer_{i}", _prefixed(f"backbone/layer_{i}",
                                                   _vit_layer_weights(config, i, grid, hidden, heads, shape))))
        for i, parts in enumerate(self._fpn(config, input_shapes)):
            groups.append((f"fpn_layer_{i}", _parts_weights(f"vision_neck/fpn_layer_{i}", parts)))
        return groups


# ---- SAM3TextEncoder: a CLIP text encoder --------------------------------------------------


@hub("SAM3TextEncoder")
class SAM3TextEncoderSpec(_SAM3Spec):
    # sam3_text_encoder.py build(token_ids, padding_masks): embedding (TokenAndPositionEmbedding of
    # vocabulary_size, max_sequence_length, embedding_dim), encoder_layer_0.. (CLIPEncoderLayer), all
    # on the embedded (batch, sequence, embedding_dim), then layer_norm. Output: the embedded shape.
    layer = "SAM3TextEncoder"
    tensor_arguments = ("token_ids", "padding_masks")

    def _embedding(self, config, input_shapes) -> Part:
        tokens = _shape(input_shapes, 0, self.layer, "token ids")
        cfg = _sub(config, vocabulary_size=int(config["vocabulary_size"]), embedding_dim=int(config["embedding_dim"]),
                   sequence_length=int(config.get("max_sequence_length", 32)))
        return Part("embedding", "keras_hub>TokenAndPositionEmbedding", cfg, [tokens])

    def output_shapes(self, config, input_shapes):
        _shape(input_shapes, 1, self.layer, "the padding mask")
        return [self._embedding(config, input_shapes).output_shape()]

    def groups(self, config, input_shapes):
        embedding = self._embedding(config, input_shapes)
        shape = embedding.output_shape()
        hidden, heads = int(config["hidden_dim"]), int(config["num_heads"])
        if heads <= 0 or hidden // heads == 0:
            raise ShapeError(f"{self.layer}: hidden_dim {hidden} must be at least num_heads {heads}")
        inner = int(config["intermediate_dim"])
        # CLIPEncoderLayer.build(): layer_norm_1, attention (MultiHeadAttention, key_dim hidden //
        # num_heads, on the embedded sequence), layer_norm_2, dense_1 Dense(intermediate_dim), dense_2
        # Dense(hidden_dim)
        block = [
            _layer_norm("layer_norm_1", config, shape),
            _attention("attention", config, heads, hidden // heads, shape, shape),
            _layer_norm("layer_norm_2", config, shape),
            _dense("dense_1", config, inner, shape),
            _dense("dense_2", config, hidden, _with_last(shape, inner)),
        ]
        groups = [("embedding", embedding.weights())]
        for i in range(_count(config, "num_layers", self.layer)):
            groups.append((f"encoder_layer_{i}", _parts_weights(f"encoder_layer_{i}", block)))
        groups.append(("layer_norm", _layer_norm("layer_norm", config, shape).weights()))
        return groups


# ---- the prompt and DETR blocks: SAM3Attention and SAM3MLP around LayerNormalization ------------


def _block(config, hidden: int, order: list, shapes: dict) -> list[WeightSpec]:
    """One transformer block's weights: `order` names its sublayers as __init__ assigns them,
    ("attention", name, query, key, value) / ("norm", name, shape) / ("mlp", name, shape), the
    shapes by key in `shapes`."""
    inner = int(config["intermediate_dim"])
    weights = []
    for kind, name, *keys in order:
        if kind == "attention":
            query, key, value = (shapes[k] for k in keys)
            weights += _parts_weights(name, _attention_parts(config, hidden, query, key, value))
        elif kind == "norm":
            weights += _layer_norm(name, config, shapes[keys[0]]).weights()
        else:
            weights += _parts_weights(name, _mlp_parts(config, hidden, inner, shapes[keys[0]]))
    return weights


def _hidden(config) -> int:
    return int(config["hidden_dim"])


@hub("SAM3GeometryEncoder")
class SAM3GeometryEncoderSpec(_SAM3Spec):
    # sam3_geometry_encoder.py build(boxes, box_masks, box_labels, fpn_hidden_states,
    # fpn_position_encodings): label_embed Embedding(2, hidden), cls_embed Embedding(1, hidden),
    # boxes_direct_project Dense(hidden) on the box's coordinates (its last dim less the batch
    # index), boxes_pool_project Conv2D(hidden, roi_size) on (roi, roi, map channels),
    # boxes_pos_enc_project Dense(hidden) on map channels + 2, vision_layer_norm on the map,
    # final_proj Dense(hidden), prompt_layer_norm, layer_0.. (SAM3GeometryEncoderLayer), output_layer_norm.
    # Outputs: prompt embeddings (batch, boxes + 1, hidden) and their mask (batch, boxes + 1): one
    # CLS token joins the boxes.
    layer = "SAM3GeometryEncoder"
    tensor_arguments = ("box_embeddings", "box_masks", "box_labels", "fpn_hidden_states", "fpn_position_encodings")

    def _inputs(self, input_shapes):
        boxes = _shape(input_shapes, 0, self.layer, "boxes (batch, boxes, 1 + 4)", rank=3)
        for i, what in ((1, "the box mask"), (2, "the box labels"), (4, "the FPN position encoding")):
            _shape(input_shapes, i, self.layer, what)
        fpn = _shape(input_shapes, 3, self.layer, "an FPN map (batch, height, width, channels)", rank=4)
        return boxes, fpn

    def output_shapes(self, config, input_shapes):
        boxes, fpn = self._inputs(input_shapes)
        length = None if boxes[1] is None else boxes[1] + 1
        return [(fpn[0], length, _hidden(config)), (fpn[0], length)]

    def groups(self, config, input_shapes):
        boxes, fpn = self._inputs(input_shapes)
        hidden, roi = _hidden(config), int(config["roi_size"])
        channels = _features(fpn, self.layer, "the FPN map")
        coordinates = _features(boxes, self.layer, "the boxes") - 1
        batch = fpn[0]
        prompt = (batch, None, hidden)
        parts = [
            Part("label_embed", "Embedding", _sub(config, input_dim=2, output_dim=hidden), [(batch, 1)]),
            Part("cls_embed", "Embedding", _sub(config, input_dim=1, output_dim=hidden), [(batch, 1)]),
            _dense("boxes_direct_project", config, hidden, _with_last(boxes, coordinates)),
            Part("boxes_pool_project", "Conv2D", _sub(config, filters=hidden, kernel_size=roi),
                 [(batch, roi, roi, channels)]),
            _dense("boxes_pos_enc_project", config, hidden, (batch, None, channels + 2)),
            _layer_norm("vision_layer_norm", config, fpn),
            _dense("final_proj", config, hidden, prompt),
            _layer_norm("prompt_layer_norm", config, prompt),
        ]
        groups = [(p.name, p.weights()) for p in parts]
        # SAM3GeometryEncoderLayer.build(): self-attention on the prompt, cross-attention from the
        # prompt to the flattened map (its channels wide)
        shapes = {"prompt": prompt, "vision": (batch, None, channels)}
        order = [("norm", "layer_norm1", "prompt"), ("attention", "self_attn", "prompt", "prompt", "prompt"),
                 ("attention", "cross_attn", "prompt", "vision", "vision"), ("norm", "layer_norm2", "prompt"),
                 ("mlp", "mlp", "prompt"), ("norm", "layer_norm3", "prompt")]
        for i in range(_count(config, "num_layers", self.layer)):
            groups.append((f"layer_{i}", _prefixed(f"layer_{i}", _block(config, hidden, order, shapes))))
        groups.append(("output_layer_norm", _layer_norm("output_layer_norm", config, prompt).weights()))
        return groups


def _flat_map(shape) -> tuple:
    # (batch, height, width, channels) -> (batch, height·width, channels); None where unknown
    area = None if shape[1] is None or shape[2] is None else shape[1] * shape[2]
    return (shape[0], area, shape[-1])


def _detr_inputs(input_shapes, layer: str, vision_layout: str, vision_rank: int) -> tuple:
    """(vision, text) shapes of a DETR encoder's or decoder's four tensor arguments: the vision
    features, the prompt features, the vision position encoding and the prompt mask."""
    vision = _shape(input_shapes, 0, layer, f"the vision features {vision_layout}", rank=vision_rank)
    text = _shape(input_shapes, 1, layer, "the prompt features (batch, prompts, features)")
    _shape(input_shapes, 2, layer, "the vision position encoding")
    _shape(input_shapes, 3, layer, "the prompt mask")
    return vision, text


@hub("SAM3DetrEncoder")
class SAM3DetrEncoderSpec(_SAM3Spec):
    # sam3_detr_encoder.py build(vision_features, text_features, vision_pos_embeds, text_masks):
    # layer_0.. (SAM3DetrEncoderLayer) on the flattened map: self-attention on it, cross-attention
    # from it to the prompt (text) features. Outputs: the flattened map and its flattened position
    # encoding, both (batch, height·width, channels).
    layer = "SAM3DetrEncoder"
    tensor_arguments = ("vision_features", "text_features", "vision_pos_embeds", "text_masks")

    def _inputs(self, input_shapes):
        return _detr_inputs(input_shapes, self.layer, "(batch, height, width, channels)", 4)

    def output_shapes(self, config, input_shapes):
        vision, _ = self._inputs(input_shapes)
        return [_flat_map(vision), _flat_map(vision)]

    def groups(self, config, input_shapes):
        vision, text = self._inputs(input_shapes)
        _features(vision, self.layer, "the vision features")
        _features(text, self.layer, "the prompt features")
        shapes = {"vision": _flat_map(vision), "text": text}
        order = [("norm", "layer_norm1", "vision"), ("attention", "self_attn", "vision", "vision", "vision"),
                 ("attention", "cross_attn", "vision", "text", "text"), ("norm", "layer_norm2", "vision"),
                 ("mlp", "mlp", "vision"), ("norm", "layer_norm3", "vision")]
        return [(f"layer_{i}", _prefixed(f"layer_{i}", _block(config, _hidden(config), order, shapes)))
                for i in range(_count(config, "num_layers", self.layer))]


@hub("SAM3DetrDecoder")
class SAM3DetrDecoderSpec(_SAM3Spec):
    # sam3_detr_decoder.py build(vision_features, text_features, vision_pos_encodings, text_masks):
    # layer_0.. (SAM3DetrDecoderLayer) on the presence token and the queries (1 + num_queries,
    # hidden), output_layer_norm, box_head (3 Dense, to 4), query_embed Embedding(num_queries,
    # hidden), reference_points Embedding(num_queries, 4), presence_token Embedding(1, hidden),
    # presence_head (3 Dense, to 1), presence_layer_norm, ref_point_head (2 Dense on the queries'
    # sine box encoding, hidden // 2 · 4 wide), box_rpb_embed_x and _y (2 Dense on (dx, dy) pairs, to
    # num_heads). Outputs, per decoder layer: the queries (batch, layers, queries, hidden), their
    # boxes (batch, layers, queries, 4) and presence logits (batch, layers, 1).
    layer = "SAM3DetrDecoder"
    tensor_arguments = ("vision_features", "text_features", "vision_pos_encodings", "text_masks")

    def _inputs(self, input_shapes):
        return _detr_inputs(input_shapes, self.layer, "(batch, positions, channels)", 3)

    def output_shapes(self, config, input_shapes):
        vision, _ = self._inputs(input_shapes)
        batch, layers, queries = vision[0], _count(config, "num_layers", self.layer), int(config["num_queries"])
        return [(batch, layers, queries, _hidden(config)), (batch, layers, queries, 4), (batch, layers, 1)]

    def groups(self, config, input_shapes):
        vision, text = self._inputs(input_shapes)
        _features(vision, self.layer, "the vision features")
        _features(text, self.layer, "the prompt features")
        hidden, queries, heads = _hidden(config), int(config["num_queries"]), int(config["num_heads"])
        batch = vision[0]
        # SAM3DetrDecoderLayer.build(): self-attention on the queries, text cross-attention to the
        # prompt, vision cross-attention (its key projection on the queries' width, its value and
        # output projections on the map's), each with its LayerNormalization, then mlp, mlp_layer_norm
        shapes = {"queries": (batch, 1 + queries, hidden), "text": text, "vision": vision}
        order = [("attention", "self_attn", "queries", "queries", "queries"),
                 ("norm", "self_attn_layer_norm", "queries"),
                 ("attention", "text_cross_attn", "queries", "text", "text"),
                 ("norm", "text_cross_attn_layer_norm", "queries"),
                 ("attention", "vision_cross_attn", "queries", "queries", "vision"),
                 ("norm", "vision_cross_attn_layer_norm", "queries"), ("mlp", "mlp", "queries"),
                 ("norm", "mlp_layer_norm", "queries")]
        groups = [(f"layer_{i}", _prefixed(f"layer_{i}", _block(config, hidden, order, shapes)))
                  for i in range(_count(config, "num_layers", self.layer))]
        query, presence = (batch, queries, hidden), (batch, 1, hidden)

        def embedding(name, rows, width):
            return Part(name, "Embedding", _sub(config, input_dim=rows, output_dim=width), [(1,)])

        # a SAM3DecoderMLP's Dense sit under its name; a single sublayer names its own weights
        tail = [
            [_layer_norm("output_layer_norm", config, query)],
            ("box_head", _decoder_mlp(config, 3, hidden, 4, query)),
            [embedding("query_embed", queries, hidden)],
            [embedding("reference_points", queries, 4)],
            [embedding("presence_token", 1, hidden)],
            ("presence_head", _decoder_mlp(config, 3, hidden, 1, presence)),
            [_layer_norm("presence_layer_norm", config, presence)],
            ("ref_point_head", _decoder_mlp(config, 2, hidden, hidden, (batch, queries, hidden // 2 * 4))),
            ("box_rpb_embed_x", _decoder_mlp(config, 2, hidden, heads, (batch, queries, None, 2))),
            ("box_rpb_embed_y", _decoder_mlp(config, 2, hidden, heads, (batch, queries, None, 2))),
        ]
        for entry in tail:
            name, parts = entry if isinstance(entry, tuple) else (entry[0].name, entry)
            groups.append((name, _parts_weights(name, parts) if isinstance(entry, tuple) else entry[0].weights()))
        return groups


# ---- SAM3MaskDecoder: a pixel decoder over the FPN maps, queries dotted with pixel embeddings ----


@hub("SAM3MaskDecoder")
class SAM3MaskDecoderSpec(_SAM3Spec):
    # sam3_mask_decoder.py build(decoder_queries, backbone_features, encoder_hidden_states,
    # prompt_features, prompt_masks): pixel_decoder (SAM3PixelDecoder: for each FPN map but the last,
    # coarsest first, conv_layer_i Conv2D(hidden, 3) on that map's channels and norm_i
    # GroupNormalization(8)), mask_embedder (3 Dense(hidden) on the queries), instance_projection
    # Conv2D(hidden, 1) and semantic_projection Conv2D(1, 1) on the first map's shape,
    # prompt_cross_attn (SAM3Attention from the encoder states to the prompt), prompt_cross_attn_norm.
    # Outputs (compute_output_shape): masks (batch, height, width, hidden) and semantic maps
    # (batch, height, width, 1) at the first map's size. The masks' real last axis is the number of
    # queries (an einsum of queries and pixels); Keras records hidden_dim, and so do we.
    layer = "SAM3MaskDecoder"
    # backbone_features is a list: every tensor between the queries and the last three is one map
    tensor_arguments = ("decoder_queries", "backbone_features", "encoder_hidden_states", "prompt_features",
                        "prompt_masks")

    def _inputs(self, input_shapes):
        if len(input_shapes) < 6 or any(s is None for s in input_shapes):
            raise ShapeError(f"{self.layer} expects the queries, at least two FPN maps, the encoder states, "
                             f"the prompt features and the prompt mask; got {len(input_shapes)} inputs")
        queries, *maps, encoder, prompt, _ = (tuple(s) for s in input_shapes)
        for shape in maps:
            if len(shape) != 4:
                raise ShapeError(f"{self.layer} expects FPN maps (batch, height, width, channels), "
                                 f"got {fmt_shape(shape)}")
        return queries, maps, encoder, prompt

    def output_shapes(self, config, input_shapes):
        _, maps, encoder, _ = self._inputs(input_shapes)
        height, width = maps[0][1], maps[0][2]
        return [(encoder[0], height, width, _hidden(config)), (encoder[0], height, width, 1)]

    def groups(self, config, input_shapes):
        queries, maps, encoder, prompt = self._inputs(input_shapes)
        hidden = _hidden(config)
        stages = list(reversed(maps[:-1]))
        if len(stages) > int(config["num_upsampling_stages"]):
            raise ShapeError(f"{self.layer}: {len(maps)} FPN maps need {len(stages)} upsampling stages, "
                             f"num_upsampling_stages is {config['num_upsampling_stages']}")
        pads = [Part("pad", "ZeroPadding2D", _sub(config, padding=1), [shape]) for shape in stages]
        convs = [Part(f"conv_layer_{i}", "Conv2D", _sub(config, filters=hidden, kernel_size=3), [pad.output_shape()])
                 for i, pad in enumerate(pads)]
        norms = [Part(f"norm_{i}", "GroupNormalization", _sub(config, groups=8, axis=-1), [c.output_shape()])
                 for i, c in enumerate(convs)]
        for shape, what in ((queries, "the decoder queries"), (prompt, "the prompt features"),
                            (encoder, "the encoder states")):
            _features(shape, self.layer, what)
        embedder = [_dense(f"layer_{i}", config, hidden, _with_last(queries, hidden) if i else queries)
                    for i in range(3)]
        # both projections are built on SAM3PixelDecoder.compute_output_shape: the first map's shape
        first = maps[0]
        instance = Part("instance_projection", "Conv2D", _sub(config, filters=hidden, kernel_size=1), [first])
        semantic = Part("semantic_projection", "Conv2D", _sub(config, filters=1, kernel_size=1), [first])
        return [
            ("pixel_decoder", _parts_weights("pixel_decoder", convs + norms)),
            ("mask_embedder", _parts_weights("mask_embedder", embedder)),
            ("instance_projection", instance.weights()),
            ("semantic_projection", semantic.weights()),
            ("prompt_cross_attn", _parts_weights("prompt_cross_attn",
                                                 _attention_parts(config, hidden, encoder, prompt, prompt))),
            ("prompt_cross_attn_norm", _layer_norm("prompt_cross_attn_norm", config, encoder).weights()),
        ]
