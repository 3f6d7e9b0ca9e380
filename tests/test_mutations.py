"""The checker catches real mistakes: one backend is broken on purpose, and the
check that must report it fails (while the checks it cannot touch still pass).

Each mutation is a trap from DESIGN.md or a classic porting bug, injected into
one side only: a wrapper around a backend that rewrites what goes in or comes
out, or (for the mask) a patched helper inside the torch backend.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from _verify_helpers import table

from experiments.backend import ForwardResult, Gradients
from experiments.verify import RandomChooser, compare, draw_case, failures, observe


class Wrapped:
    """A backend that forwards everything to ``inner``; subclasses break one thing."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


def _gate_rows(name: str, value: np.ndarray, spec: Any) -> bool:
    """An LSTM weight or bias: 4H rows in the order i, f, g, o."""
    return name.startswith("rnn.") and value.shape[0] == 4 * spec.hidden_size


class SwappedGates(Wrapped):
    """The LSTM's input and forget gate blocks exchanged (i, f, g, o read as f, i, g, o)."""

    def build(self, spec, params, **kw):
        h = spec.hidden_size
        swapped = {}
        for name, value in params.items():
            if _gate_rows(name, value, spec):
                value = np.concatenate([value[h : 2 * h], value[:h], value[2 * h :]])
            swapped[name] = value
        return self.inner.build(spec, swapped, **kw)


class NoHiddenResetBias(Wrapped):
    """GRU without ``b_hn`` (flax.nnx.GRUCell): the n block of ``bias_hh`` dropped."""

    def build(self, spec, params, **kw):
        h = spec.hidden_size
        params = dict(params)
        for name in params:
            if "bias_hh" in name:
                params[name] = params[name].copy()
                params[name][2 * h :] = 0.0
        return self.inner.build(spec, params, **kw)


class FlaxLayerNormEps(Wrapped):
    """LayerNorm eps 1e-6 (Flax's default) on this side, torch's 1e-5 on the other."""

    def build(self, spec, params, **kw):
        return self.inner.build(dataclasses.replace(spec, layer_norm_eps=1e-6), params, **kw)


def _map_states(fwd: ForwardResult, fn: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]) -> ForwardResult:
    return dataclasses.replace(fwd, final_states=fn(dict(fwd.final_states)))


class DirectionMajorStates(Wrapped):
    """h_n ordered (direction, layer) instead of torch's index 2 * layer + direction."""

    def forward(self, model, batch, **kw):
        def reorder(states):
            out = {}
            for name, s in states.items():
                layers = s.shape[0] // 2
                out[name] = s.reshape(layers, 2, *s.shape[1:]).swapaxes(0, 1).reshape(s.shape)
            return out

        return _map_states(self.inner.forward(model, batch, **kw), reorder)


class CarryOrder(Wrapped):
    """Flax's LSTM carry (c, h) read as torch's (h, c)."""

    def forward(self, model, batch, **kw):
        return _map_states(self.inner.forward(model, batch, **kw), lambda s: {"h": s["c"], "c": s["h"]})


@dataclass
class _State:
    inner: Any
    initial: dict[str, np.ndarray]


class MergedRecurrentBias(Wrapped):
    """Flax's merged ``b_ih + b_hh``: one bias moves once where torch moves both, and ``b_hh``
    gets no gradient of its own (it lives inside ``b_ih``)."""

    def make_train_state(self, model, optimizer, **kw):
        return _State(self.inner.make_train_state(model, optimizer, **kw), self.inner.export_params(model))

    def prepare_batch(self, state, batch):
        return self.inner.prepare_batch(state.inner if isinstance(state, _State) else state, batch)

    def train_step(self, state, batch):
        return self.inner.train_step(state.inner, batch)

    def state_params(self, state):
        params = self.inner.state_params(state.inner)
        return {k: (state.initial[k] if "bias_hh" in k else v) for k, v in params.items()}

    def loss_and_grads(self, model, batch):
        grads = self.inner.loss_and_grads(model, batch)
        params = {k: (np.zeros_like(v) if "bias_hh" in k else v) for k, v in grads.params.items()}
        return Gradients(loss=grads.loss, params=params, inputs=grads.inputs)


class OptaxAdamWDecay(Wrapped):
    """AdamW with optax's default weight decay (1e-4) where torch's is 1e-2."""

    def make_train_state(self, model, optimizer, **kw):
        if optimizer.name == "adamw":
            optimizer = dataclasses.replace(optimizer, weight_decay=1e-4)
        return self.inner.make_train_state(model, optimizer, **kw)


class Float32Params(Wrapped):
    """A float64 model whose parameters were stored in float32 (``param_dtype``'s default)."""

    def export_params(self, model):
        return {k: v.astype(np.float32) for k, v in self.inner.export_params(model).items()}


@dataclass
class Mutation:
    name: str
    arch: str
    wrap: type[Wrapped] | None  # None: patched in place by the test (the mask)
    expect: tuple[str, ...]  # checks that must fail
    unaffected: tuple[str, ...] = ()  # checks that must still pass
    fixed: dict[str, Any] = field(default_factory=dict)
    precision: str = "float64"


# One case per architecture, shared by its mutations (and so are jax's compilations):
# ragged lengths with a length-1 row, non-zero biases, AdamW with torch's decay.
SHARED = {
    "lengths": "ragged",
    "seq_len": 5,
    "batch": 3,
    "input_scale": 1.0,
    "params": "random",
    "adam.name": "adamw",
    "adam.weight_decay": 1e-2,
    "bilstm.num_layers": 2,
}
MUTATIONS = [
    Mutation("lstm gate blocks swapped", "lstm", SwappedGates, ("outputs", "final_states", "grad_params")),
    Mutation("gru without b_hn", "gru", NoHiddenResetBias, ("outputs", "logits", "roundtrip")),  # nothing to export
    Mutation(
        "layernorm eps on one side only (float32)",
        "transformer",
        FlaxLayerNormEps,
        ("outputs", "pooled", "logits"),
        ("roundtrip",),
        {"transformer.positional": "none", "transformer.layer_norm_eps": 1e-5, "input_scale": 1e-3, "param_scale": 0.1},
        precision="float32",
    ),
    Mutation("mask polarity (transformer)", "transformer", None, ("outputs",), ("roundtrip",)),
    Mutation("mask polarity (attention pooling)", "attention_lstm", None, ("pooled", "logits"), ("roundtrip",)),
    Mutation(
        "h_n direction-major", "bilstm", DirectionMajorStates, ("final_states",), ("outputs", "pooled", "grad_params")
    ),
    Mutation("carry (c, h) for (h, c)", "lstm", CarryOrder, ("final_states",), ("outputs", "pooled", "logits")),
    Mutation(
        "merged b_ih + b_hh",
        "gru",
        MergedRecurrentBias,
        ("sgd_step", "adam_step", "grad_params"),
        ("outputs", "loss", "grad_inputs"),
    ),
    Mutation("adamw default weight decay", "lstm", OptaxAdamWDecay, ("adam_step",), ("sgd_step", "grad_params")),
    Mutation("float64 parameters kept in float32", "rnn", Float32Params, ("roundtrip",), ("outputs", "grad_params")),
]


def _flip_torch_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every torch_impl module's ``valid_mask`` returns True at padded steps instead of valid ones."""
    import torch_impl.layers

    original = torch_impl.layers.valid_mask
    patched = 0
    for name, module in list(sys.modules.items()):
        if name.startswith("torch_impl") and getattr(module, "valid_mask", None) is original:
            monkeypatch.setattr(module, "valid_mask", lambda *a, **k: ~original(*a, **k))
            patched += 1
    assert patched, "torch_impl no longer builds masks with layers.valid_mask: update this mutation"


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_checker_names_the_broken_check(backends, monkeypatch, mutation: Mutation) -> None:
    chooser = RandomChooser(np.random.default_rng(5), {**SHARED, **mutation.fixed})
    case = draw_case(mutation.arch, chooser, mutation.precision)
    torch_backend, jax_backend = backends["torch"], backends["jax"]
    case.checks = (*mutation.expect, *mutation.unaffected)  # only what this mutation is about
    ref, other = observe(torch_backend, case), observe(jax_backend, case)
    control = compare(ref, other, case.precision)
    assert not failures(control), f"unmutated backends must agree on this case\n{table(control)}"
    if mutation.wrap is None:
        _flip_torch_mask(monkeypatch)
        ref = observe(torch_backend, case)
    else:
        other = observe(mutation.wrap(jax_backend), case)
    results = compare(ref, other, case.precision)
    failed = failures(results)
    report = f"{mutation.name}: {case.describe()}\n{table(results)}"
    for check in mutation.expect:
        assert check in failed, f"{check} did not catch it\n{report}"
    for check in mutation.unaffected:
        assert check not in failed, f"{check} failed, but this mutation cannot touch it\n{report}"
