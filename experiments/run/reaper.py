"""``python -m experiments.run.reaper DRIVER_PID``: stop a killed driver's Ray processes.

A driver that starts a local Ray (``executors.RayExecutor``) owns a GCS, a raylet and
Ray's worker processes. ``kill -9`` of the driver runs neither ``ray.shutdown`` nor
``atexit``, and Ray's workers (``ray::IDLE``) were seen alive a minute later, adopted by
init. This process, in a session of its own (a kill of the driver's process group
misses it), notes the driver's descendants every ``POLL_S`` seconds; when the driver is
gone it kills every one it noted that is still the same process (pid and start time),
and their own descendants, then exits. The driver stops it once Ray is shut down.

Linux only (``/proc``); elsewhere it exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

POLL_S = 0.5


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of ``pid`` from ``/proc/PID/stat``; None when it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # the name may hold spaces and parentheses
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def _processes() -> dict[int, tuple[int, int]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                out[int(entry.name)] = stat
    return out


def descendants(root: int, table: dict[int, tuple[int, int]]) -> dict[int, int]:
    """pid -> start time of every process below ``root`` in ``table``."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found[pid] = table[pid][1]
            todo += children.get(pid, [])
    return found


def reap(driver: int, poll_s: float = POLL_S) -> int:
    """Wait for ``driver`` to end, then kill what it left; the number of processes killed."""
    me = os.getpid()
    seen: dict[int, int] = {}
    first = _stat(driver)

    def same_driver() -> bool:  # the same process: its start time (a reused pid is another)
        now = _stat(driver)
        return first is not None and now is not None and now[1] == first[1]

    while same_driver():
        seen.update(descendants(driver, _processes()))
        seen.pop(me, None)
        time.sleep(poll_s)
    table = _processes()
    for pid in list(seen):  # what those spawned since the last look
        seen.update(descendants(pid, table))
    killed = 0
    for pid, started in seen.items():
        if pid != me and table.get(pid, (0, -1))[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    return killed


if __name__ == "__main__":
    if sys.platform.startswith("linux") and len(sys.argv) == 2 and sys.argv[1].isdigit():
        reap(int(sys.argv[1]))
