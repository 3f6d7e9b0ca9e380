"""What runs inside a worker: the cell kinds (bench, train, probes) and what they share.

Importing this package registers every built-in kind. ``registry`` holds the
registry itself; ``context`` the worker-process state a kind may read;
``inputs`` the seeded random batches shared by kinds, verification and the
benchmarks; ``measure`` the measurement protocol.
"""

from __future__ import annotations

from experiments.kinds import bench, probes, train
from experiments.kinds.registry import CELL_KINDS, CellKind, get_kind, register_cell_kind

BUILTIN_KIND_MODULES = (bench, train, probes)

__all__ = ["BUILTIN_KIND_MODULES", "CELL_KINDS", "CellKind", "get_kind", "register_cell_kind"]
