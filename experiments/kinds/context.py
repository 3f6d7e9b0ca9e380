"""Where a cell runs: whether this process is a worker and whether it is still fresh.

A process that has run no cell yet is *fresh*: beyond its imports and backend
init, its memory holds nothing, no page an earlier cell freed. ``MemoryMeter``
then labels a CPU reading ``cpu_rss_fresh`` and the bench kind warms the
framework up before its meter starts. ``begin_worker`` is called by a worker's
main loop (or a Ray task); every cell or call it runs counts.
"""

from __future__ import annotations

_cells_run: int | None = None  # cells (and ``call``s) this worker has run; None: not a worker process


def begin_worker() -> None:
    """Mark this process as a worker: from here on it counts the cells it runs."""
    global _cells_run
    if _cells_run is None:
        _cells_run = 0


def count_cell() -> None:
    global _cells_run
    if _cells_run is not None:
        _cells_run += 1


def fresh_process() -> bool:
    """Whether this is a worker process that has run no cell yet. False outside a worker."""
    return _cells_run == 0
