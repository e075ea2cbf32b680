"""Recurrent layers: keras/src/layers/rnn/ (SimpleRNN, LSTM, GRU, RNN, Bidirectional, TimeDistributed).

Weights follow each cell's `build()` (kernel, recurrent_kernel, bias); output shapes follow
rnn.py `RNN.compute_output_shape`, bidirectional.py and time_distributed.py; a wrapped Sequential or
Functional model (TimeDistributed(cnn); Keras refuses one in Bidirectional) is propagated from the
wrapper's config like a nested model. MACs count the gate
matmuls only (input and recurrent kernels, once per timestep); bias adds and the element-wise gate
products are not multiply-accumulates of a weight matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from modelaudit.infer import registry
from modelaudit.infer.registry import LayerSpec, ShapeError, WeightSpec, fmt_shape, inner_layer, register
from modelaudit.infer.registry import single_input, use_bias

# ---- cells ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """What a cell's build() makes of its config: gate count, bias layout, number of states."""

    units: int
    gates: int  # kernel and recurrent kernel are (input_dim, gates·units) and (units, gates·units)
    bias_rows: int  # 0: no bias; 2: GRU reset_after keeps separate input and recurrent biases
    states: int

    def weights(self, input_dim, prefix: str = "") -> list[WeightSpec]:
        u, g = self.units, self.gates
        specs = [
            WeightSpec(prefix + "kernel", (input_dim, g * u)),
            WeightSpec(prefix + "recurrent_kernel", (u, g * u)),
        ]
        if self.bias_rows == 1:
            specs.append(WeightSpec(prefix + "bias", (g * u,)))
        elif self.bias_rows == 2:
            specs.append(WeightSpec(prefix + "bias", (2, g * u)))
        return specs

    def step_macs(self, input_dim: int) -> int:
        return self.gates * (input_dim + self.units) * self.units

    def formula_lhs(self, input_dim) -> str:
        terms = f"{input_dim} + {self.units}" + (f" + {self.bias_rows}" if self.bias_rows else "")
        inner = f"({terms})·{self.units}"
        return inner if self.gates == 1 else f"{self.gates}·({inner})"

    def size(self, input_dim: int) -> int:
        return self.gates * (input_dim + self.units + self.bias_rows) * self.units


_GATES = {"SimpleRNN": (1, 1), "LSTM": (4, 2), "GRU": (3, 1)}  # class -> (gates, states)


def make_cell(class_name: str, config: dict) -> Cell:
    """A layer (LSTM) or a cell (LSTMCell) config -> its Cell."""
    kind = class_name[:-4] if class_name.endswith("Cell") else class_name
    if kind not in _GATES:
        raise NotImplementedError(f"no spec for recurrent cell {class_name!r}")
    gates, states = _GATES[kind]
    bias_rows = 0
    if use_bias(config):
        # GRU: reset_after (Keras 3 and TF 2 default True) keeps input and recurrent biases apart
        bias_rows = 2 if kind == "GRU" and config.get("reset_after", True) else 1
    return Cell(int(config["units"]), gates, bias_rows, states)


def cells_of(class_name: str, config: dict) -> list[Cell]:
    """The cells a recurrent layer runs in order: one, or several for RNN(StackedRNNCells)."""
    if class_name != "RNN":
        return [make_cell(class_name, config)]
    cell = config.get("cell")
    if isinstance(cell, list):  # a list of cells, as RNN([...]) is sometimes written
        return [make_cell(c.get("class_name", ""), c.get("config") or {}) for c in cell]
    if not isinstance(cell, dict):
        raise NotImplementedError("RNN without a serialized cell")
    name, cfg = cell.get("class_name", ""), cell.get("config") or {}
    if name == "StackedRNNCells":
        cells = [make_cell(c.get("class_name", ""), c.get("config") or {}) for c in cfg.get("cells") or []]
        if not cells:
            raise NotImplementedError("RNN with an empty StackedRNNCells")
        return cells
    return [make_cell(name, cfg)]


def _sequence(input_shapes, layer: str, config: dict) -> tuple:
    """(batch, timesteps, features) of the input sequence; Keras 2 time_major swaps the first two."""
    shape = single_input(input_shapes, layer)
    if len(shape) != 3:
        raise ShapeError(
            f"{layer} expects a sequence of rank 3 (batch, timesteps, features), got rank {len(shape)} "
            f"{fmt_shape(shape)}"
        )
    if config.get("time_major"):
        return shape[1], shape[0], shape[2]
    return shape[0], shape[1], shape[2]


def _input_dims(cells: list[Cell], features) -> list:
    # a stacked cell reads the previous cell's output (StackedRNNCells.build)
    dims = [features]
    for c in cells[:-1]:
        dims.append(c.units)
    return dims


def _require_features(features, layer: str, shape) -> None:
    if features is None:
        raise ShapeError(f"{layer}: the last (features) dimension of the input must be known, got {fmt_shape(shape)}")


# ---- SimpleRNN, LSTM, GRU, RNN ---------------------------------------------------------------


# RNN is the generic wrapper: the cell (or StackedRNNCells) in config["cell"] says what is built
@register("SimpleRNN", class_name="SimpleRNN")
@register("LSTM", class_name="LSTM")
@register("GRU", class_name="GRU")
@register("RNN", class_name="RNN")
class RecurrentSpec(LayerSpec):
    """Shared by the recurrent layers; each registration names its Keras class (for the cells and the
    messages: a QKeras QLSTM is computed as an LSTM)."""

    class_name = ""

    def output_shapes(self, config, input_shapes):
        batch, steps, _ = _sequence(input_shapes, self.class_name, config)
        cells = cells_of(self.class_name, config)
        units = cells[-1].units
        if config.get("return_sequences", False):
            out = (steps, batch, units) if config.get("time_major") else (batch, steps, units)
        else:
            out = (batch, units)
        shapes = [out]
        if config.get("return_state", False):
            # states in cell order, each cell's own states in order (LSTM: h then c)
            for c in cells:
                shapes.extend([(batch, c.units)] * c.states)
        return shapes

    def weights(self, config, input_shapes):
        shape = single_input(input_shapes, self.class_name)
        _, _, features = _sequence(input_shapes, self.class_name, config)
        _require_features(features, self.class_name, shape)
        cells = cells_of(self.class_name, config)
        if len(cells) == 1:
            return cells[0].weights(features)
        specs = []
        for i, (c, dim) in enumerate(zip(cells, _input_dims(cells, features))):
            specs.extend(c.weights(dim, prefix=f"cells/{i}/"))
        return specs

    def macs(self, config, input_shapes, output_shapes):
        _, steps, features = _sequence(input_shapes, self.class_name, config)
        if steps is None or features is None:
            return None
        cells = cells_of(self.class_name, config)
        return steps * sum(c.step_macs(d) for c, d in zip(cells, _input_dims(cells, features)))

    def formula(self, config, input_shapes):
        _, _, features = _sequence(input_shapes, self.class_name, config)
        if features is None:
            return None
        cells = cells_of(self.class_name, config)
        dims = _input_dims(cells, features)
        lhs = " + ".join(c.formula_lhs(d) for c, d in zip(cells, dims))
        return f"{lhs} = {sum(c.size(d) for c, d in zip(cells, dims))}"


# ---- wrappers ---------------------------------------------------------------------------------


def _inner_spec(class_name: str, wrapper: str) -> LayerSpec:
    if class_name in MODEL_CLASSES:
        return _InnerModelSpec(wrapper)
    spec = registry.get(class_name)
    if spec is None:
        raise NotImplementedError(f"{wrapper}: no spec for the wrapped layer class {class_name!r}")
    return spec


MODEL_CLASSES = ("Sequential", "Functional", "Model")


class _InnerModelSpec(LayerSpec):
    """A Sequential or Functional model wrapped as a layer (TimeDistributed(cnn)): its graph is read
    from the wrapper's config and propagated like a nested model; its weights are its layers'."""

    def __init__(self, wrapper: str):
        self.wrapper = wrapper

    def output_shapes(self, config, input_shapes):
        return list(_inner_model(self.wrapper, config, input_shapes)[0])

    def weights(self, config, input_shapes):
        return list(_inner_model(self.wrapper, config, input_shapes)[1])

    def macs(self, config, input_shapes, output_shapes):
        return _inner_model(self.wrapper, config, input_shapes)[2]


def _inner_model(wrapper: str, config: dict, input_shapes) -> tuple:
    # Cached: output_shapes, weights and macs each ask, and a wrapper nested in a wrapped model would
    # otherwise propagate its inner model once per question at every depth. Keyed by the config
    # object, which the entry keeps alive so that its id cannot be reused.
    key = (wrapper, id(config), tuple(tuple(s) for s in input_shapes))
    hit = _INNER_CACHE.get(key)
    if hit is None or hit[0] is not config:
        try:
            hit = (config, _propagate_inner(wrapper, config, key[2]))
        except (ShapeError, NotImplementedError) as exc:  # a failure is asked about as often
            hit = (config, exc)
        _INNER_CACHE[key] = hit
        while len(_INNER_CACHE) > 64:
            _INNER_CACHE.pop(next(iter(_INNER_CACHE)))
    if isinstance(hit[1], Exception):
        raise hit[1]
    return hit[1]


_INNER_CACHE: dict = {}


def _propagate_inner(wrapper: str, config: dict, input_shapes: tuple) -> tuple:
    from modelaudit.errors import ModelReadError
    from modelaudit.formats.json_config import graph_from_config
    from modelaudit.infer.propagate import propagate_submodel

    functional = "input_layers" in config
    if not functional and not config.get("build_input_shape") and len(input_shapes) == 1:
        # a Sequential with no Input that the wrapper built: it is built on what the wrapper feeds it
        config = dict(config, build_input_shape=list(input_shapes[0]))
    try:
        graph = graph_from_config({"class_name": "Functional" if functional else "Sequential", "config": config},
                                  format="wrapped")
    except ModelReadError as exc:
        raise NotImplementedError(f"{wrapper}: its wrapped model cannot be read: {exc}") from None
    outputs, rows = propagate_submodel(graph, list(input_shapes))
    weights, macs = [], 0
    for row in rows:
        if row.layer.submodel is not None or row.layer.class_name == "InputLayer":
            continue
        if row.shape_error:
            raise ShapeError(f"{wrapper}: in its wrapped model, layer '{row.path}': {row.shape_error}")
        if not row.recomputed or row.expected_weights is None:
            raise NotImplementedError(f"{wrapper}: layer '{row.path}' of its wrapped model is not recomputed "
                                      f"({row.unknown_reason})")
        live = row.trainable_params > 0  # 0 when the layer (or a model holding it) is frozen
        weights += [WeightSpec(f"{row.path}/{w.name}", tuple(w.shape), w.trainable and live)
                    for w in row.expected_weights]
        macs = None if macs is None or row.macs is None else macs + row.macs
    if any(o is None for o in outputs):
        raise NotImplementedError(f"{wrapper}: the output shape of its wrapped model is unknown")
    return tuple(tuple(o) for o in outputs), tuple(weights), macs


def _inner_weights(spec: LayerSpec, config: dict, input_shapes, prefix: str = "") -> list[WeightSpec]:
    # trainable=False on the wrapped layer freezes its variables (the wrapper's own flag is
    # applied by propagation, as for any layer)
    frozen = config.get("trainable", True) is False
    return [
        WeightSpec(prefix + w.name, tuple(w.shape), w.trainable and not frozen)
        for w in spec.weights(config, input_shapes)
    ]


def _lhs(formula: Optional[str]) -> Optional[str]:
    return None if formula is None else formula.rsplit(" = ", 1)[0]


@register("Bidirectional")
class BidirectionalSpec(LayerSpec):
    # bidirectional.py: forward_layer = the given layer, backward_layer = backward_layer or a copy
    # with go_backwards flipped; weights are forward's then backward's.
    MERGE_MODES = ("concat", "sum", "mul", "ave", None)

    def _layers(self, config):
        fwd_cls, fwd_cfg = inner_layer(config)
        back = config.get("backward_layer")
        if isinstance(back, dict) and back.get("class_name"):
            bwd_cls, bwd_cfg = back["class_name"], back.get("config") or {}
        else:  # Keras 2 writes no backward_layer unless one was given
            bwd_cls, bwd_cfg = fwd_cls, dict(fwd_cfg, go_backwards=not fwd_cfg.get("go_backwards", False))
        return (fwd_cls, fwd_cfg), (bwd_cls, bwd_cfg)

    def output_shapes(self, config, input_shapes):
        shape = single_input(input_shapes, "Bidirectional")
        (fc, fcfg), (bc, bcfg) = self._layers(config)
        fwd = _inner_spec(fc, "Bidirectional").output_shapes(fcfg, [shape])
        bwd = _inner_spec(bc, "Bidirectional").output_shapes(bcfg, [shape])
        (y, *f_states), (y_rev, *b_states) = fwd, bwd
        mode = config.get("merge_mode", "concat")
        if mode not in self.MERGE_MODES:
            raise ShapeError(f"Bidirectional: unknown merge_mode {mode!r}")
        if mode == "concat":
            last = None if y[-1] is None or y_rev[-1] is None else y[-1] + y_rev[-1]
            outputs = [tuple(y[:-1]) + (last,)]
        elif mode is None:
            outputs = [tuple(y), tuple(y_rev)]
        else:
            if None not in (y[-1], y_rev[-1]) and y[-1] != y_rev[-1]:
                raise ShapeError(
                    f"Bidirectional merge_mode={mode!r} needs equal forward and backward outputs, got "
                    f"{fmt_shape(y)} and {fmt_shape(y_rev)}"
                )
            outputs = [tuple(y)]
        if fcfg.get("return_state", False):
            outputs += [tuple(s) for s in f_states] + [tuple(s) for s in b_states]
        return outputs

    def weights(self, config, input_shapes):
        shape = single_input(input_shapes, "Bidirectional")
        (fc, fcfg), (bc, bcfg) = self._layers(config)
        return _inner_weights(_inner_spec(fc, "Bidirectional"), fcfg, [shape], "forward_layer/") + _inner_weights(
            _inner_spec(bc, "Bidirectional"), bcfg, [shape], "backward_layer/"
        )

    def macs(self, config, input_shapes, output_shapes):
        shape = single_input(input_shapes, "Bidirectional")
        total = 0
        for cls, cfg in self._layers(config):
            spec = _inner_spec(cls, "Bidirectional")
            n = spec.macs(cfg, [shape], spec.output_shapes(cfg, [shape]))
            if n is None:
                return None
            total += n
        return total

    def formula(self, config, input_shapes):
        shape = single_input(input_shapes, "Bidirectional")
        (fc, fcfg), (bc, bcfg) = self._layers(config)
        f = _lhs(_inner_spec(fc, "Bidirectional").formula(fcfg, [shape]))
        b = _lhs(_inner_spec(bc, "Bidirectional").formula(bcfg, [shape]))
        if f is None or b is None:
            return None
        total = sum(w.size for w in self.weights(config, input_shapes))
        return f"2·({f}) = {total}" if f == b else f"{f} + {b} = {total}"


@register("TimeDistributed")
class TimeDistributedSpec(LayerSpec):
    # time_distributed.py: the inner layer sees (batch, *input_shape[2:]); its output gets the
    # timesteps axis back at position 1. Weights are the inner layer's.

    def _child(self, input_shapes):
        shape = single_input(input_shapes, "TimeDistributed")
        if len(shape) < 3:
            raise ShapeError(
                f"TimeDistributed expects an input of rank >= 3 (batch, timesteps, ...), got rank "
                f"{len(shape)} {fmt_shape(shape)}"
            )
        return shape, (shape[0],) + tuple(shape[2:])

    def output_shapes(self, config, input_shapes):
        shape, child = self._child(input_shapes)
        cls, cfg = inner_layer(config)
        outs = _inner_spec(cls, "TimeDistributed").output_shapes(cfg, [child])
        return [(o[0], shape[1]) + tuple(o[1:]) for o in outs]

    def weights(self, config, input_shapes):
        _, child = self._child(input_shapes)
        cls, cfg = inner_layer(config)
        return _inner_weights(_inner_spec(cls, "TimeDistributed"), cfg, [child])

    def macs(self, config, input_shapes, output_shapes):
        shape, child = self._child(input_shapes)
        cls, cfg = inner_layer(config)
        spec = _inner_spec(cls, "TimeDistributed")
        n = spec.macs(cfg, [child], spec.output_shapes(cfg, [child]))
        if n is None or shape[1] is None:
            return None
        return shape[1] * n

    def formula(self, config, input_shapes):
        _, child = self._child(input_shapes)
        cls, cfg = inner_layer(config)
        return _inner_spec(cls, "TimeDistributed").formula(cfg, [child])
