"""What stored variables alone say, where no spec recomputes a layer (a class without a spec, a layer
whose input shape is unknown, a subclassed model's weights): how many params, and which are trainable.

Keras marks a BatchNormalization's moving mean and variance non-trainable; a count that calls them
trainable disagrees with `model.summary()` on every such file. Files name variables three ways: by
variable name (`moving_mean:0` in a legacy .h5), by position (`vars/2` in a Keras 3 weights file, under
the layer's generic key or a subclassed model's attribute name), or with an explicit flag (a
SavedModel's variables): each is read here, once. An opaque model (a keras_hub backbone) is read with
its file config: saved frozen, or a class known to freeze some float variables (FROZEN_IN_MODEL).
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

from modelaudit.graph import Weight

# Variables Keras creates with trainable=False, by the name it gives them.
NON_TRAINABLE_NAMES = frozenset({"moving_mean", "moving_variance"})
# Keras 3 weights files list a layer's variables by position: BatchNormalization's are gamma, beta,
# moving_mean, moving_variance (keras/src/layers/normalization/batch_normalization.py build()).
NON_TRAINABLE_POSITIONS = {"BatchNormalization": {2, 3}, "SyncBatchNormalization": {2, 3}}
_GENERIC_BN = re.compile(r"(sync_)?batch_normalization(_\d+)?$")


# keras_hub models read as opaque (MA109) whose layers create float variables with trainable=False, by
# the registered name the file writes: (the owner group of the variables, its position; None: all,
# negative: from the end). Nested layers are keyed by attribute name, the model's own by generic key.
FROZEN_IN_MODEL = {
    # whisper_backbone.py: encoder_position_embedding, a PositionEmbedding built with trainable=False
    # (the decoder's sits inside token_and_position_embedding)
    "keras_hub>WhisperBackbone": ((re.compile(r"layers/position_embedding"), None),),
    # moonshine_layers.py MoonshineRotaryEmbedding: its one variable, inv_freq
    "keras_hub>MoonshineBackbone": ((re.compile(r"layers/moonshine_rotary_embedding(_\d+)?"), None),),
    # smollm3_layers.py SmolLM3RotaryEmbedding (each decoder layer's self_attn.rotary_embedding): inv_freq
    "keras_hub>SmolLM3Backbone": (
        (re.compile(r"layers/smol_lm3_decoder_layer(_\d+)?/self_attn/rotary_embedding"), None),
    ),
    # dinov2_layers.py DINOV2Embedding: its one frozen variable, position_embeddings (Keras saves a
    # layer's trainable variables first, so the frozen one is last)
    "keras_hub>DINOV2Backbone": ((re.compile(r"layers/dinov2_embedding"), -1),),
    # gemma4_decoder_block.py: each text decoder block's own layer_scalar; gemma4_layers.py: a
    # Gemma4ClippableDense / ClippableEinsumDense's input/output min and max (its kernel sits in its
    # `dense`), a Gemma4FrozenNorm's scale (the audio conformer's norms); gemma4_vision_encoder.py
    # Gemma4VisionOutput's std_bias and std_scale
    "keras_hub>Gemma4Backbone": (
        (re.compile(r"layers/gemma4_text_decoder_block(_\d+)?"), None),
        (re.compile(r"layers/gemma4_vision_encoder/layers/gemma4_vision_encoder_block/encoder_blocks/"
                    r"gemma4_vision_decoder_block(_\d+)?/(attention/(query|key|value|output)_dense|ffw_linear|"
                    r"gating_ffw(_2)?)"), None),
        (re.compile(r"layers/gemma4_vision_encoder/layers/gemma4_vision_output"), None),
        (re.compile(r"layers/gemma4_audio_encoder/conformer_blocks/gemma4_audio_conformer_block(_\d+)?/"
                    r"(attention/attn/[qkv]_proj|attention/out_proj|ffw_(start|end)/ffw_[12]|lconv/linear_(start|end)"
                    r"|attention/(pre_attn|post)_norm|ffw_(start|end)/(pre|post)_norm|lconv/(pre|conv)_norm|norm)"),
         None),
    ),
    # sam_layers.py RandomFrequencyPositionalEmbeddings (the prompt encoder's positional_embedding_layer)
    "keras_hub>SAMBackbone": ((re.compile(r"layers/sam_prompt_encoder/positional_embedding_layer"), None),),
    # d_fine_decoder.py DFineDecoder's own reg_scale and upsampling_factor; d_fine_attention.py each
    # decoder layer's encoder_attn num_points_scale (its projections are sublayers)
    "keras_hub>DFineBackbone": (
        (re.compile(r"layers/d_fine_decoder"), None),
        (re.compile(r"layers/d_fine_decoder/decoder_layers/d_fine_decoder_layer(_\d+)?/encoder_attn"), None),
    ),
    # sam3_vision_encoder.py: the ViT embeddings' pretraining position_embeddings (created after the
    # class token, so last) and each layer's SAM3RotaryEmbedding tables, rope_embeddings_cos/sin
    "keras_hub>SAM3PromptableConceptBackbone": (
        (re.compile(r"layers/sam3_vision_encoder/backbone/embeddings"), -1),
        (re.compile(r"layers/sam3_vision_encoder/backbone/layers/sam3_vi_t_layer(_\d+)?/rotary_emb"), None),
    ),
    # rqvae_layers.py VectorQuantizerEMA: its codebook and EMA statistics, updated by EMA, not by
    # gradients. keras_hub does not export the class: the file registers it by its bare name.
    "RQVAEBackbone": (
        (re.compile(r"layers/residual_vector_quantizer/quantizers/vector_quantizer_ema(_\d+)?"), None),
    ),
}


def split_model(weights: Iterable[Weight], config: dict) -> tuple[int, int]:
    """(trainable, non-trainable) sizes of the stored `weights` of an opaque model whose raw file
    config is `config`: a model saved with trainable False (a frozen keras_hub backbone) holds no
    trainable variable; a known keras_hub class freezes the variables FROZEN_IN_MODEL names."""
    weights = list(weights)
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    if inner.get("trainable") is False:
        return 0, sum(w.size for w in weights)
    frozen = _frozen_in_model(weights, FROZEN_IN_MODEL.get(str(config.get("registered_name")), ()))
    rest = [w for i, w in enumerate(weights) if i not in frozen]
    trainable, non_trainable = split(rest)
    return trainable, non_trainable + sum(weights[i].size for i in frozen)


def _frozen_in_model(weights: list[Weight], rules) -> set:
    """Indices of the float variables the model's rules say its layers create frozen."""
    if not rules:
        return set()
    members: dict[str, list[int]] = {}
    for i, w in enumerate(weights):
        head, _, last = w.path.rpartition("/")
        owner, _, kind = head.rpartition("/")
        if kind == "vars" and last.isdigit():
            members.setdefault(owner, []).append(i)
    out = set()
    for owner, indices in members.items():
        for pattern, position in rules:
            if not pattern.fullmatch(owner):
                continue
            ordered = sorted(indices, key=lambda i: int(weights[i].path.rpartition("/")[2]))
            if position is None:
                out.update(ordered)
            elif -len(ordered) <= position < len(ordered):
                out.add(ordered[position])
    return out


def split(weights: Iterable[Weight], class_name: Optional[str] = None) -> tuple[int, int]:
    """(trainable, non-trainable) sizes of the stored `weights` of one layer of class `class_name`
    (None: the owner is not known, as in a subclassed model's weights file; a class without a
    known layout is read like an unknown one)."""
    weights = list(weights)
    trainable = non_trainable = 0
    groups = _groups(weights)
    for w in weights:
        if is_trainable(w, class_name, groups):
            trainable += w.size
        else:
            non_trainable += w.size
    return trainable, non_trainable


def is_trainable(weight: Weight, class_name: Optional[str], groups: dict) -> bool:
    if weight.trainable is not None:
        return weight.trainable
    # an integer variable takes no gradient: Keras's layers create them trainable=False (keras_hub's
    # CLIP and SigLIP position ids, a quantized layer's int8 kernel)
    if str(weight.dtype).startswith(("int", "uint", "bool")):
        return False
    head, _, last = weight.path.rpartition("/")
    if last.split(":", 1)[0] in NON_TRAINABLE_NAMES:
        return False
    owner, _, kind = head.rpartition("/")
    if kind != "vars" or not last.isdigit():
        return True
    position = int(last)
    if class_name in NON_TRAINABLE_POSITIONS:
        return position not in NON_TRAINABLE_POSITIONS[class_name]
    # A layer of unknown class, or a subclassed model: its groups are attribute names (`bn/vars/2`)
    # or generic class keys (`blocks/batch_normalization/vars/2`). A group of exactly four 1-D
    # variables of one size is a BatchNormalization's gamma, beta, moving mean and variance.
    name = owner.rpartition("/")[2]
    if _GENERIC_BN.match(name) or groups.get(owner) == "batch_normalization":
        return position not in NON_TRAINABLE_POSITIONS["BatchNormalization"]
    return True


def _groups(weights: list[Weight]) -> dict:
    """owner group -> "batch_normalization" where its variables look like one."""
    members: dict[str, list[Weight]] = {}
    for w in weights:
        head, _, last = w.path.rpartition("/")
        owner, _, kind = head.rpartition("/")
        if kind == "vars" and last.isdigit():
            members.setdefault(owner, []).append(w)
    out = {}
    for owner, ws in members.items():
        shapes = {tuple(w.shape) for w in ws}
        if len(ws) == 4 and len(shapes) == 1 and len(next(iter(shapes))) == 1:
            out[owner] = "batch_normalization"
    return out
