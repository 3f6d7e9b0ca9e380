"""How loaded the host was while a cell's steps were timed, and whether that disturbed the timing.

A timing on a shared machine is only as good as the machine was quiet. Around the
timed steps this reads, from Linux's ``/proc/stat`` and the process's own CPU clock:

- ``load_avg_1m``: the 1-minute load average when timing began;
- ``cpu_over_wall``: this process's CPU time over the wall time of the timed steps
  (about its thread count when it computes alone; well below it when it waits);
- ``host_other_busy``: the fraction of the host's CPU time, over all cores, that went to
  anything but this process (other processes, the kernel's own work, and hypervisor steal);
- ``host_steal``: the fraction stolen by the hypervisor (a VM's neighbours).

A timing is **disturbed** when others used more than ``DISTURBED_OTHER_BUSY`` of the host
or the hypervisor stole more than ``DISTURBED_STEAL``. The record says so (``disturbed``),
and the cost claims leave a disturbed record out where an undisturbed repeat of the same
point exists. Where ``/proc/stat`` cannot be read the fractions are None and nothing is
flagged.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

DISTURBED_OTHER_BUSY = 0.10  # of the host's CPU time (all cores) used by others while this cell was timed
DISTURBED_STEAL = 0.05
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class HostSample:
    wall: float
    own_cpu: float  # this process, all threads, seconds
    busy: float | None  # the host's non-idle CPU seconds, all cores (None: no /proc/stat)
    steal: float | None
    total: float | None  # every CPU second the host's cores had, idle included
    load_avg_1m: float | None


def _proc_stat() -> tuple[float, float, float] | None:
    """(busy, steal, total) CPU seconds of the host since boot, from the aggregate ``cpu`` line."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal (guest time is already inside user/nice)
    values = [int(v) / _CLOCK_TICKS for v in fields[1:9]]
    values += [0.0] * (8 - len(values))
    idle = values[3] + values[4]
    total = sum(values)
    return total - idle, values[7], total


def sample() -> HostSample:
    stat = _proc_stat()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    busy, steal, total = stat if stat is not None else (None, None, None)
    return HostSample(time.perf_counter(), time.process_time(), busy, steal, total, load)


def host_metrics(before: HostSample, after: HostSample) -> dict[str, float | bool | None]:
    """The load metrics of the interval between two samples, and whether it was disturbed."""
    wall = after.wall - before.wall
    own = after.own_cpu - before.own_cpu
    out: dict[str, float | bool | None] = {
        "load_avg_1m": before.load_avg_1m,
        "cpu_over_wall": own / wall if wall > 0 else None,
        "host_other_busy": None,
        "host_steal": None,
        "disturbed": False,
    }
    if None in (before.busy, after.busy, before.total, after.total):
        return out
    total = after.total - before.total
    if total <= 0:
        return out
    other = max(0.0, (after.busy - before.busy) - own) / total
    steal = max(0.0, after.steal - before.steal) / total
    out.update(host_other_busy=other, host_steal=steal)
    out["disturbed"] = other > DISTURBED_OTHER_BUSY or steal > DISTURBED_STEAL
    return out
