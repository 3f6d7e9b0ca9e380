"""Seeded random inputs for cells without a task, for verification and for the benchmarks.

One place draws a batch's targets for each head kind, so that a bench cell, a
probe, ``seqbench verify`` and ``benchmarks/`` feed the models the same kind of
data from the same seed.
"""

from __future__ import annotations

import numpy as np

from experiments.backend import Batch
from experiments.spec import ArchSpec


def random_targets(spec: ArchSpec, batch: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """Targets matching the head: class ids (B,) or (B, T), or standard-normal values (B, O) or (B, T, O)."""
    head = spec.head
    if head.kind == "classify":
        return rng.integers(0, head.out_size, size=batch).astype(np.int64)  # (B,)
    if head.kind == "regress":
        return rng.standard_normal((batch, head.out_size))  # (B, O)
    if head.kind == "per_step_classify":
        return rng.integers(0, head.out_size, size=(batch, seq_len)).astype(np.int64)  # (B, T)
    return rng.standard_normal((batch, seq_len, head.out_size))  # (B, T, O)


def random_batch(spec: ArchSpec, batch: int, seq_len: int, rng: np.random.Generator) -> Batch:
    """Standard-normal inputs (B, T, I), full lengths, then random targets matching the head."""
    x = rng.standard_normal((batch, seq_len, spec.input_size))  # (B, T, I)
    lengths = np.full(batch, seq_len, dtype=np.int64)
    return Batch(x=x, lengths=lengths, y=random_targets(spec, batch, seq_len, rng))
