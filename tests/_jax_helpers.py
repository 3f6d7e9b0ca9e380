"""Shared tiny specs and batches for the JAX backend's tests (small shapes: jit compiles dominate)."""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments.backend import Batch
from experiments.spec import ArchSpec, make_spec, size_fields

# Small configurations; the tests reuse these so that the backend's jit cache serves most
# calls after the first compile. An architecture not named here gets :func:`derived_tiny`,
# its own spec's small size: adding an architecture edits no test file.
TINY: dict[str, dict[str, Any]] = {
    "rnn": {"input_size": 3, "hidden_size": 4},
    "lstm": {"input_size": 3, "hidden_size": 4},
    "gru": {"input_size": 3, "hidden_size": 4},
    "bilstm": {"input_size": 3, "hidden_size": 4, "num_layers": 2},
    "attention_lstm": {"input_size": 3, "hidden_size": 4, "bidirectional": True},
    "transformer": {"input_size": 3, "d_model": 8, "num_heads": 2, "d_ff": 12, "num_layers": 1},
}
# Named cases (arch, extra fields), shared across tests for the same reason. Between them
# they cover every head kind, both directions, both scores, both norm placements.
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "rnn": ("rnn", {}),
    "lstm": ("lstm", {"head_kind": "per_step_regress", "head_out": 2}),
    "gru": ("gru", {"head_kind": "per_step_classify", "head_out": 3}),
    "bilstm": ("bilstm", {}),
    "attention_lstm": ("attention_lstm", {}),
    "attention_dot": (
        "attention_lstm",
        {"score": "dot", "bidirectional": False, "head_kind": "regress", "head_out": 2},
    ),
    "transformer": ("transformer", {}),
    "transformer_pre": (
        "transformer",
        {
            "norm_first": True,
            "causal": True,
            "activation": "gelu",
            "positional": "learned",
            "max_len": 8,
            "layer_norm_eps": 1e-3,
            "num_layers": 2,
            "head_kind": "per_step_regress",
            "head_out": 2,
        },
    ),
}
LENGTHS = np.array([5, 2, 4], dtype=np.int64)  # ragged, and one full-length sequence (T = 5)


def derived_tiny(arch: str) -> dict[str, Any]:
    """A small spec from the registry alone: input 3 and the spec's ``fields_for_size(4)``."""
    return {"input_size": 3, **size_fields(arch, 4)}


def tiny_spec(arch: str, **fields: Any) -> ArchSpec:
    return make_spec(arch, **{**TINY.get(arch, derived_tiny(arch)), **fields})


def case_spec(case: str, **fields: Any) -> ArchSpec:
    arch, extra = CASES[case]
    return tiny_spec(arch, **{**extra, **fields})


def make_batch(spec: ArchSpec, lengths: np.ndarray = LENGTHS, seq_len: int | None = None, seed: int = 0) -> Batch:
    """Random inputs (noise at padded steps too, so that leaks show) and targets for the spec's head."""
    rng = np.random.default_rng(seed)
    batch, seq_len = len(lengths), seq_len or int(lengths.max())
    x = rng.standard_normal((batch, seq_len, spec.input_size))
    head = spec.head
    if head.kind == "classify":
        y = rng.integers(0, head.out_size, batch)
    elif head.kind == "regress":
        y = rng.standard_normal((batch, head.out_size))
    elif head.kind == "per_step_classify":
        y = rng.integers(0, head.out_size, (batch, seq_len))
    else:
        y = rng.standard_normal((batch, seq_len, head.out_size))
    return Batch(x=x, lengths=np.asarray(lengths, dtype=np.int64), y=y)


def single(batch: Batch, b: int, per_step: bool) -> Batch:
    """Sequence ``b`` alone, cut to its own length."""
    n = int(batch.lengths[b])
    y = None if batch.y is None else batch.y[b : b + 1]
    if y is not None and per_step:
        y = y[:, :n]
    return Batch(x=batch.x[b : b + 1, :n], lengths=batch.lengths[b : b + 1], y=y)


def embed(batch: Batch, b: int, at: int, seed: int) -> Batch:
    """Row ``b`` of ``batch`` moved to row ``at`` of an otherwise fresh batch of the same shape,
    with fresh noise at its padded steps and fresh rows (random lengths) around it."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(batch.x.shape)
    lengths = rng.integers(1, batch.x.shape[1] + 1, len(batch.lengths))
    n = int(batch.lengths[b])
    x[at, :n] = batch.x[b, :n]
    lengths[at] = n
    y = batch.y.copy()
    y[at] = batch.y[b]
    return Batch(x=x, lengths=lengths.astype(np.int64), y=y)
