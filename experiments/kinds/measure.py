"""The measurement protocol (DESIGN.md): warm-up, compile time, timed steps, statistics, memory, peak FLOP/s.

Framework-free: everything reaches the framework through a ``Backend``.

- Warm-up runs steps, alternating the input batches, until at least
  ``warmup_steps`` (>= 3) have run and the step time has settled: the last two
  warm-up steps each within ``SETTLED`` x the fastest warm-up step so far
  (first-call compilation, autotuning and allocator growth are then behind us),
  or ``max_warmup_steps`` / ``MAX_WARMUP_S`` are spent.
- ``compile_s`` is what the warm-up cost beyond steady state:
  ``sum(warm-up step times) - n_warmup * median(timed step)``, at least 0.
- Timed steps: each one synchronised (``backend.synchronize``), alternating the
  batches, until at least ``min_timed_steps`` steps AND ``min_time_s`` seconds
  have passed (``max_timed_steps`` caps the count). How loaded the host was
  meanwhile is read around them (``experiments.kinds.host``).
- Statistics: median, interquartile range (q75 - q25), coefficient of variation
  (sample standard deviation / mean) of the per-step times.
- Memory: on a GPU, the backend's device peak after a reset (``device_peak``);
  on CPU, the worker's peak resident set size since a reset of the kernel's
  high-water mark, minus the resident set size just before the model was built:
  ``cpu_rss_fresh`` in a worker that has run no cell before (the grid resource
  ``fresh_worker``: the peak is this cell's alone), else ``cpu_rss_delta`` (a
  reused worker: pages that earlier cells freed are reused, so it can read far
  below the step's need).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.kinds import host
from experiments.kinds.context import fresh_process

SETTLED = 2.0  # a warm-up step is "settled" within this factor of the fastest one so far
MAX_WARMUP_S = 60.0


@dataclass
class StepStats:
    median: float
    iqr: float
    cv: float
    mean: float
    min: float
    n: int


def step_stats(times: Sequence[float]) -> StepStats:
    t = np.asarray(times, dtype=np.float64)
    if t.size == 0:
        raise ValueError("no step times")
    q25, med, q75 = np.percentile(t, [25, 50, 75])
    mean = float(t.mean())
    cv = float(t.std(ddof=1) / mean) if t.size > 1 and mean > 0 else 0.0
    return StepStats(median=float(med), iqr=float(q75 - q25), cv=cv, mean=mean, min=float(t.min()), n=int(t.size))


@dataclass
class Timing:
    warmup_times: list[float]
    times: list[float]
    stats: StepStats
    compile_s: float
    last_loss: Any  # the backend's device value of the last timed step
    host: dict[str, Any]  # how loaded the host was while the steps were timed (``host.host_metrics``)


def time_steps(
    step: Callable[[Any], Any],
    sync: Callable[[], None],
    batches: Sequence[Any],
    *,
    warmup_steps: int = 3,
    max_warmup_steps: int = 50,
    min_timed_steps: int = 20,
    min_time_s: float = 1.0,
    max_timed_steps: int = 100_000,
    clock: Callable[[], float] = time.perf_counter,
) -> Timing:
    """Warm up, then time ``step(batch)`` calls, each followed by ``sync()``, cycling through ``batches``."""
    if not batches:
        raise ValueError("time_steps needs at least one batch")
    n_batches = len(batches)
    warm: list[float] = []
    loss = None
    start = clock()
    i = 0
    while True:
        t0 = clock()
        loss = step(batches[i % n_batches])
        sync()
        warm.append(clock() - t0)
        i += 1
        if len(warm) >= max(warmup_steps, 1):
            fastest = min(warm)
            if all(t <= SETTLED * fastest for t in warm[-2:]):
                break
        if len(warm) >= max_warmup_steps or clock() - start > MAX_WARMUP_S:
            break
    times: list[float] = []
    host_before = host.sample()
    began = clock()
    while True:
        t0 = clock()
        loss = step(batches[i % n_batches])
        sync()
        t1 = clock()
        times.append(t1 - t0)
        i += 1
        if (len(times) >= min_timed_steps and t1 - began >= min_time_s) or len(times) >= max_timed_steps:
            break
    load = host.host_metrics(host_before, host.sample())
    stats = step_stats(times)
    compile_s = max(0.0, sum(warm) - len(warm) * stats.median)
    return Timing(warmup_times=warm, times=times, stats=stats, compile_s=compile_s, last_loss=loss, host=load)


# -- memory -------------------------------------------------------------------


def _proc_status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes() -> int | None:
    return _proc_status("VmRSS")


def reset_rss_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to the current RSS; False where the OS cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def rss_peak_bytes() -> int | None:
    return _proc_status("VmHWM")


class MemoryMeter:
    """Peak memory of what happens between ``start()`` and ``read()``.

    GPU: the backend's peak after ``reset_peak_memory`` (``mem_kind="device_peak"``).
    CPU: peak RSS since a high-water-mark reset, minus the RSS at ``start()``:
    ``mem_kind="cpu_rss_fresh"`` when ``fresh`` (this process has run no earlier
    cell; default: ``experiments.kinds.context.fresh_process()``), else ``"cpu_rss_delta"``;
    where the high-water mark cannot be reset, the process's lifetime peak minus the
    RSS at start (``"cpu_rss_lifetime_delta"``, fresh or not).
    """

    def __init__(self, backend: Any, device: str, fresh: bool | None = None) -> None:
        self.backend = backend
        self.device = device
        self.fresh = fresh
        self.kind = "device_peak" if device != "cpu" else "cpu_rss_delta"
        self._base: int | None = None

    def start(self) -> None:
        if self.device != "cpu":
            self.backend.reset_peak_memory(self.device)
            return
        if self.fresh is None:
            self.fresh = fresh_process()
        if not reset_rss_peak():
            self.kind = "cpu_rss_lifetime_delta"
        elif self.fresh:
            self.kind = "cpu_rss_fresh"
        self._base = rss_bytes()

    def read(self) -> int | None:
        if self.device != "cpu":
            value = self.backend.peak_memory_bytes(self.device)
            return None if value is None else int(value)
        peak = rss_peak_bytes()
        if peak is None or self._base is None:
            return None
        return max(0, peak - self._base)


# -- peak FLOP/s ----------------------------------------------------------------

_PEAKS: dict[tuple[int, str, str], float] = {}


def peak_flops(backend: Any, device: str, precision: str) -> float | None:
    """The device's peak FLOP/s at ``precision``: 2 n^3 over the BEST time of ``backend.gemm_times``
    (a peak is the best the machine does; both backends' GEMMs go through this one statistic),
    measured once per worker process and (backend, device, precision). None when not measurable."""
    key = (id(backend), device, precision)
    if key not in _PEAKS:
        try:
            n, times = backend.gemm_times(device, precision)
            best = min(times)
            value = 2.0 * n**3 / best if best > 0 else math.nan
        except NotImplementedError:
            value = math.nan
        _PEAKS[key] = value
    value = _PEAKS[key]
    return value if math.isfinite(value) and value > 0 else None
