"""Attention layers: keras/src/layers/attention/ (MultiHeadAttention, Attention, AdditiveAttention).

Input shapes arrive as [query, value] or [query, value, key]: the order our graph passes them.
MACs: the projections (as EinsumDense), the query-key scores and the score-weighted sum of values;
softmax, scaling and masking are not multiply-accumulates of a weight.
"""

from __future__ import annotations

from typing import Optional

from modelaudit.infer.registry import LayerSpec, ShapeError, WeightSpec, fmt_shape, prod, register, use_bias


def _query_value_key(input_shapes, layer: str) -> tuple[tuple, tuple, tuple]:
    shapes = [tuple(s) for s in input_shapes if s is not None]
    if not shapes:
        raise ShapeError(f"{layer} expects a query and a value")
    query = shapes[0]
    value = shapes[1] if len(shapes) > 1 else query  # self-attention written with one tensor
    key = shapes[2] if len(shapes) > 2 else value  # call(): key defaults to value
    return query, value, key


def _same_rank(layer: str, min_rank: int, **shapes) -> None:
    ranks = {name: len(s) for name, s in shapes.items()}
    if len(set(ranks.values())) != 1:
        detail = ", ".join(f"{n} {fmt_shape(s)}" for n, s in shapes.items())
        raise ShapeError(f"{layer} expects query, value and key of the same rank, got {detail}")
    rank = next(iter(ranks.values()))
    if rank < min_rank:
        raise ShapeError(
            f"{layer} expects inputs of rank >= {min_rank} (batch, ..., features), got rank {rank} "
            f"{fmt_shape(shapes['query'])}"
        )


def _compatible(a: tuple, b: tuple) -> bool:
    """Equal dims, an unknown (None) dim matching anything."""
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _known(n: Optional[int], layer: str, what: str, shape) -> int:
    if n is None:
        raise ShapeError(f"{layer}: the last dimension of the {what} must be known, got {fmt_shape(shape)}")
    return int(n)


@register("MultiHeadAttention")
class MultiHeadAttentionSpec(LayerSpec):
    # multi_head_attention.py build(): EinsumDense projections query, key, [gate], value, each
    # (last dim, heads, key_dim|value_dim) + bias (heads, dim); attention_output (heads, value_dim,
    # *output_shape) + bias (*output_shape), output_shape defaulting to the query's last dim.

    @staticmethod
    def _dims(config):
        heads = int(config["num_heads"])
        key_dim = int(config["key_dim"])
        value_dim = int(config.get("value_dim") or key_dim)
        return heads, key_dim, value_dim

    @staticmethod
    def _out_dims(config, query) -> tuple:
        out = config.get("output_shape")
        if not out:
            return (query[-1],)
        if isinstance(out, int):  # Keras 2 keeps an int as given
            return (out,)
        return tuple(int(d) for d in out)

    def _shapes(self, input_shapes):
        query, value, key = _query_value_key(input_shapes, "MultiHeadAttention")
        _same_rank("MultiHeadAttention", 3, query=query, value=value, key=key)
        if not _compatible(value[1:-1], key[1:-1]):
            raise ShapeError(
                "MultiHeadAttention: all dimensions of value and key except the last must be equal, got "
                f"value {fmt_shape(value)} and key {fmt_shape(key)}"
            )
        return query, value, key

    # call(..., return_attention_scores=True) adds the scores as a second output. Their real shape is
    # (batch, *other axes, heads, *query attention axes, *key attention axes) (_build_attention), as
    # Keras 2 gives it; Keras 3's compute_output_spec says (batch, heads, Tq, Tq) whatever the key's
    # length, and builds the consuming layers on that, so a Keras 3 record of it wins.
    call_arguments = ("return_attention_scores",)
    recorded_outputs = (1,)
    # call(query, value, key=None, attention_mask=None, ...): the mask does not shape the output
    tensor_arguments = ("query", "value", "key")

    def output_shapes(self, config, input_shapes):
        query, _, key = self._shapes(input_shapes)
        axes = self._attention_axes(config, len(query))
        outputs = [tuple(query[:-1]) + self._out_dims(config, query)]
        if config.get("return_attention_scores") is True:
            heads = int(config["num_heads"])
            others = tuple(query[i] for i in range(1, len(query) - 1) if i not in axes)
            q_axes, k_axes = tuple(query[i] for i in axes), tuple(key[i] for i in axes)
            outputs.append((query[0],) + others + (heads,) + q_axes + k_axes)
        return outputs

    def _attention_axes(self, config, rank: int) -> tuple:
        """Axes of the input (batch included) attention runs over; default: all but batch and features."""
        axes = config.get("attention_axes")
        if axes is None:
            return tuple(range(1, rank - 1))
        if isinstance(axes, int):
            axes = [axes]
        # _build_attention: a negative axis counts from the input's rank (the projection adds heads)
        norm = tuple(a if a >= 0 else rank + a for a in axes)
        for a in norm:
            if not 1 <= a <= rank - 2:
                raise ShapeError(
                    f"MultiHeadAttention: attention_axes {list(axes)} must name axes between the batch and "
                    f"the features of a rank-{rank} input"
                )
        return norm

    def _projections(self, config, input_shapes):
        """(name, input last dim, output dims) of each EinsumDense, in build() order."""
        query, value, key = self._shapes(input_shapes)
        heads, key_dim, value_dim = self._dims(config)
        q = _known(query[-1], "MultiHeadAttention", "query", query)
        v = _known(value[-1], "MultiHeadAttention", "value", value)
        k = _known(key[-1], "MultiHeadAttention", "key", key)
        out = self._out_dims(config, query)
        if None in out:
            raise ShapeError(f"MultiHeadAttention: the output's last dimension must be known, got {fmt_shape(query)}")
        proj = [("query", (q,), (heads, key_dim)), ("key", (k,), (heads, key_dim))]
        if config.get("use_gate", False):
            proj.append(("gate", (q,), (heads, value_dim)))
        proj.append(("value", (v,), (heads, value_dim)))
        proj.append(("attention_output", (heads, value_dim), out))
        return proj

    def weights(self, config, input_shapes):
        specs = []
        for name, bound, free in self._projections(config, input_shapes):
            specs.append(WeightSpec(f"{name}/kernel", bound + free))
            if use_bias(config):
                specs.append(WeightSpec(f"{name}/bias", free))
        return specs

    def macs(self, config, input_shapes, output_shapes):
        query, value, key = self._shapes(input_shapes)
        heads, key_dim, value_dim = self._dims(config)
        q_pos, v_pos, k_pos = prod(query[1:-1]), prod(value[1:-1]), prod(key[1:-1])
        if None in (q_pos, v_pos, k_pos, query[-1], value[-1], key[-1]):
            return None
        positions = {"query": q_pos, "key": k_pos, "gate": q_pos, "value": v_pos, "attention_output": q_pos}
        total = sum(
            positions[name] * prod(bound) * prod(free) for name, bound, free in self._projections(config, input_shapes)
        )
        # scores: for each non-attention position of the query (and head), every query attention
        # position against every key attention position, key_dim deep; the weighted sum likewise,
        # value_dim deep.
        axes = self._attention_axes(config, len(query))
        others = [i for i in range(1, len(query) - 1) if i not in axes]
        pairs = heads * prod(query[i] for i in others) * prod(query[i] for i in axes) * prod(key[i] for i in axes)
        return total + pairs * (key_dim + value_dim)

    def formula(self, config, input_shapes):
        terms = []
        bias = use_bias(config)
        for _name, bound, free in self._projections(config, input_shapes):
            b = "·".join(str(d) for d in bound)
            f = "·".join(str(d) for d in free)
            if bias:
                terms.append(f"({b} + 1)·{f}")
            else:
                terms.append(f"{b}·{f}")
        total = sum(w.size for w in self.weights(config, input_shapes))
        return f"{' + '.join(terms)} = {total}"


class _DotAttentionBase(LayerSpec):
    """Attention / AdditiveAttention: output (*query[:-1], value[-1]) (base_dense_attention)."""

    layer = ""

    def _shapes(self, input_shapes):
        query, value, key = _query_value_key(input_shapes, self.layer)
        _same_rank(self.layer, 3, query=query, value=value, key=key)
        if None not in (query[-1], key[-1]) and query[-1] != key[-1]:
            raise ShapeError(
                f"{self.layer}: query and key need the same last dimension, got {fmt_shape(query)} and {fmt_shape(key)}"
            )
        if None not in (value[-2], key[-2]) and value[-2] != key[-2]:
            raise ShapeError(
                f"{self.layer}: value and key need the same number of timesteps, got {fmt_shape(value)} and "
                f"{fmt_shape(key)}"
            )
        return query, value, key

    # call(..., return_attention_scores=True) adds the scores (*query[:-1], Tv) as a second output
    call_arguments = ("return_attention_scores",)

    def output_shapes(self, config, input_shapes):
        query, value, key = self._shapes(input_shapes)
        outputs = [tuple(query[:-1]) + (value[-1],)]
        if config.get("return_attention_scores") is True:
            outputs.append(tuple(query[:-1]) + (key[-2],))
        return outputs

    def macs(self, config, input_shapes, output_shapes):
        # scores: Tq·Tv·dim (a dot product, or a scaled tanh sum); weighted sum: Tq·Tv·value dim
        query, value, key = self._shapes(input_shapes)
        pairs = prod(tuple(query[1:-1]) + (key[-2],))
        if pairs is None or query[-1] is None or value[-1] is None:
            return None
        return pairs * (query[-1] + value[-1])

    def formula(self, config, input_shapes):
        ws = self.weights(config, input_shapes)
        if not ws:
            return None
        return f"{' + '.join('·'.join(str(d) for d in w.shape) or '1' for w in ws)} = {sum(w.size for w in ws)}"


@register("Attention")
class AttentionSpec(_DotAttentionBase):
    # attention.py build(): scalar `scale` if use_scale, scalar `concat_score_weight` if concat
    layer = "Attention"

    def weights(self, config, input_shapes):
        self._shapes(input_shapes)
        specs = []
        if config.get("use_scale", False):
            specs.append(WeightSpec("scale", ()))
        if config.get("score_mode", "dot") == "concat":
            specs.append(WeightSpec("concat_score_weight", ()))
        return specs


@register("AdditiveAttention")
class AdditiveAttentionSpec(_DotAttentionBase):
    # additive_attention.py build(): `scale` of shape (query dim,) if use_scale (default True)
    layer = "AdditiveAttention"

    def weights(self, config, input_shapes):
        query, _, _ = self._shapes(input_shapes)
        if not config.get("use_scale", True):
            return []
        return [WeightSpec("scale", (_known(query[-1], self.layer, "query", query),))]
