"""The result store: append-only JSONL, one record a line, ``results/<run-name>/records.jsonl``.

- One record = one ``os.write`` of one complete line to a file opened with
  ``O_APPEND``, under an exclusive ``flock``. Lines are never rewritten.
- A line is complete when it ends in a newline. A writer killed inside its
  ``write`` (``kill -9``) can leave a torn tail without one; readers ignore it and
  the next writer, holding the lock, cuts it off before appending (it can only
  be the unfinished line of a dead writer: a live one holds the lock).
- ``append`` is append-if-absent: under the lock it reads what other drivers
  appended since, and skips a record whose key is already done, so two drivers
  on one store neither lose nor duplicate records.
- ``reserve(key)`` takes a per-cell lock file (``.locks/<key>``, ``flock``), so that
  two drivers do not run the same cell at once; a dead driver's locks vanish with it.
- Non-finite floats are written as ``null``: every line is strict JSON.

``iter_records(results_dir)`` reads every record under a results folder.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RECORDS = "records.jsonl"


def strict(value: Any) -> Any:
    """NaN and infinities to None, recursively (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(strict(record), separators=(",", ":"), allow_nan=False) + "\n").encode()


def parse_lines(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """Records of the complete lines in ``data`` and the number of bytes they span."""
    end = data.rfind(b"\n") + 1
    records = []
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line that is not a record (never written by this module)
        if isinstance(rec, dict):
            records.append(rec)
    return records, end


class Store:
    """The records of one run: ``<results_dir>/<run_name>/records.jsonl``."""

    def __init__(self, results_dir: str | Path, run_name: str) -> None:
        self.dir = Path(results_dir) / run_name
        self.path = self.dir / RECORDS
        self.locks_dir = self.dir / ".locks"
        self._offset = 0
        self._status: dict[str, set[str]] = {}
        self._locks: dict[str, int] = {}

    # -- reading -----------------------------------------------------------------------
    def _read_new(self, fd: int | None = None) -> list[dict[str, Any]]:
        """Records appended since the last read (complete lines only)."""
        own = fd is None
        if own:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return []
        try:
            size = os.fstat(fd).st_size
            if size < self._offset:  # truncated by hand: start over
                self._offset, self._status = 0, {}
            data = os.pread(fd, size - self._offset, self._offset) if size > self._offset else b""
        finally:
            if own:
                os.close(fd)
        records, used = parse_lines(data)
        self._offset += used
        for rec in records:
            if "key" in rec:
                self._status.setdefault(rec["key"], set()).add(rec.get("status"))
        return records

    def refresh(self) -> None:
        self._read_new()

    def records(self) -> list[dict[str, Any]]:
        """Every complete record in the file, in order."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return parse_lines(data)[0]

    def done(self, key: str, retry_errors: bool = False) -> bool:
        """Whether ``key`` has a record (with ``retry_errors``: one whose status is not ``error``)."""
        statuses = self._status.get(key, set())
        if retry_errors:
            statuses = statuses - {"error"}
        return bool(statuses)

    def keys(self) -> set[str]:
        self._read_new()
        return set(self._status)

    # -- writing -------------------------------------------------------------------------
    def append(self, record: dict[str, Any], retry_errors: bool = False) -> bool:
        """Append ``record`` unless its key is already done; True when written."""
        line = encode(record)
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._repair_tail(fd)
            self._read_new(fd)
            if self.done(record["key"], retry_errors):
                return False
            view = memoryview(line)
            while view:  # one write in practice; a short write is finished under the lock
                view = view[os.write(fd, view) :]
            self._read_new(fd)
            return True
        finally:
            os.close(fd)  # releases the lock

    def _repair_tail(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        chunk = 1 << 16
        pos = size
        while pos > 0:  # find the last newline: everything after it is a dead writer's torn line
            start = max(0, pos - chunk)
            idx = os.pread(fd, pos - start, start).rfind(b"\n")
            if idx >= 0:
                os.ftruncate(fd, start + idx + 1)
                return
            pos = start
        os.ftruncate(fd, 0)

    def repair(self) -> None:
        """Cut a torn tail left by a killed writer (``append`` does it too)."""
        if not self.path.exists():
            return
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._repair_tail(fd)
        finally:
            os.close(fd)

    # -- per-cell locks --------------------------------------------------------------------
    def reserve(self, key: str, wait: bool = False) -> bool:
        """Take the per-cell lock; False when another live driver holds it (and ``wait`` is off)."""
        if key in self._locks:
            return True
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.locks_dir / key, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        self._locks[key] = fd
        return True

    def release(self, key: str) -> None:
        fd = self._locks.pop(key, None)
        if fd is None:
            return
        try:
            os.unlink(self.locks_dir / key)
        except OSError:
            pass
        os.close(fd)

    def release_all(self) -> None:
        for key in list(self._locks):
            self.release(key)


def iter_records(results_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Every record under ``results_dir`` (each ``*/records.jsonl``), run by run, in file order."""
    for path in sorted(Path(results_dir).glob(f"*/{RECORDS}")):
        yield from parse_lines(path.read_bytes())[0]
