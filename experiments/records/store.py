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
- ``repair()`` (the runner calls it before each run) says what it repaired: a torn last
  line is cut ("repaired a torn last line: cell K will rerun"); a complete line that does
  not parse (a disk error, a hand edit) is moved to ``records.jsonl.quarantine`` beside
  the store, so that every line of ``records.jsonl`` parses. That move is the one rewrite:
  the cleaned file replaces the old one (write, fsync, rename) under the lock, and a writer
  that opened the old file re-opens the new one (``_open_locked`` compares inodes).
- ``check_writable()`` refuses a results folder that is a file or cannot be written, as a
  ``UserError`` before any worker starts.

``iter_records(results_dir)`` reads every record under a results folder.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from experiments.cell import config_key
from experiments.errors import UserError

RECORDS = "records.jsonl"
QUARANTINE = RECORDS + ".quarantine"
_KEY = re.compile(rb'"key"\s*:\s*"([^"]+)"')


def _say_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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


def _parses(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


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

    def __init__(self, results_dir: str | Path, run_name: str, say: Callable[[str], None] | None = None) -> None:
        """``say``: where the store reports what it repaired (default: standard error)."""
        self.results_dir = Path(results_dir)
        self.dir = self.results_dir / run_name
        self.path = self.dir / RECORDS
        self.quarantine = self.dir / QUARANTINE
        self.locks_dir = self.dir / ".locks"
        self._say = say or _say_stderr
        self._offset = 0
        self._inode: int | None = None
        self._status: dict[str, set[str]] = {}
        self._locks: dict[str, int] = {}

    def check_writable(self) -> None:
        """``UserError`` (field ``--results``) unless records can be written here: a folder that is
        a file, or one this user cannot write, is refused before any worker starts."""
        for folder in (self.results_dir, self.dir):
            if folder.exists() and not folder.is_dir():
                raise UserError("--results", f"{folder} is a file, not a folder", "give a folder: --results DIR")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=self.dir)
            os.close(fd)
            os.unlink(probe)
            if self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND))
        except OSError as exc:
            where = exc.filename or self.dir
            raise UserError(
                "--results", f"cannot write {where}: {exc.strerror}", "give a folder you can write: --results DIR"
            ) from None

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
            stat = os.fstat(fd)
            size = stat.st_size
            if size < self._offset or stat.st_ino != self._inode:  # truncated or replaced (repair): start over
                self._offset, self._status, self._inode = 0, {}, stat.st_ino
            data = os.pread(fd, size - self._offset, self._offset) if size > self._offset else b""
        finally:
            if own:
                os.close(fd)
        records, used = parse_lines(data)
        self._offset += used
        for rec in records:
            if "key" in rec:
                self._status.setdefault(rec["key"], set()).add(rec.get("status"))
                now = _current_key(rec)
                if now is not None and now != rec["key"]:  # a setting added since, at its default
                    self._status.setdefault(now, set()).add(rec.get("status"))
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
        fd = self._open_locked(create=True)
        try:
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

    def _open_locked(self, create: bool = False) -> int:
        """The store's file, open for appending under the exclusive lock; re-opened while the
        path names another file than the one locked (``repair`` replaced it meanwhile)."""
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
        while True:
            fd = os.open(self.path, flags, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def _repair_tail(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        chunk = 1 << 16
        pos, cut = size, 0
        while pos > 0:  # find the last newline: everything after it is a dead writer's torn line
            start = max(0, pos - chunk)
            idx = os.pread(fd, pos - start, start).rfind(b"\n")
            if idx >= 0:
                cut = start + idx + 1
                break
            pos = start
        key = _KEY.search(os.pread(fd, min(size - cut, 1 << 20), cut))
        os.ftruncate(fd, cut)
        cell = key.group(1).decode(errors="replace") if key else "(its key was cut off)"
        self._say(f"{self.path}: repaired a torn last line ({size - cut} bytes): cell {cell} will rerun")

    def repair(self) -> None:
        """Cut a torn tail left by a killed writer (``append`` does it too) and move every complete
        line that does not parse to the quarantine file; each repair is reported through ``say``."""
        if not self.path.exists():
            return
        fd = self._open_locked()
        try:
            self._repair_tail(fd)
            data = os.pread(fd, os.fstat(fd).st_size, 0)
            lines = data.splitlines(keepends=True)
            bad = [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not _parses(line)]
            if bad:
                self._quarantine(fd, lines, bad)
        finally:
            os.close(fd)

    def _quarantine(self, fd: int, lines: list[bytes], bad: list[tuple[int, bytes]]) -> None:
        """Under the lock: the bad lines appended to the quarantine file, the rest replacing the store."""
        with open(self.quarantine, "ab") as q:
            q.writelines(line for _, line in bad)
            q.flush()
            os.fsync(q.fileno())
        drop = {n for n, _ in bad}
        kept = b"".join(line for n, line in enumerate(lines, 1) if n not in drop)
        tmp = self.path.with_name(f".{RECORDS}.repair-{os.getpid()}")
        with open(tmp, "wb") as out:
            out.write(kept)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, os.fstat(fd).st_mode & 0o777)
        os.replace(tmp, self.path)  # writers waiting on the old file's lock re-open the new one
        numbers = ", ".join(str(n) for n, _ in bad[:10]) + (" ..." if len(bad) > 10 else "")
        keys = [m.group(1).decode(errors="replace") for _, line in bad if (m := _KEY.search(line))]
        rerun = f"cell {', '.join(keys[:10])} will rerun unless stored again" if keys else "their keys are unreadable"
        self._say(f"{self.path}: moved {len(bad)} corrupt line(s) (line {numbers}) to {self.quarantine.name}; {rerun}")

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


def _current_key(rec: dict[str, Any]) -> str | None:
    """The key the record's stored config hashes to under today's rules (``cell.KEY_NEUTRAL_SETTINGS``)."""
    config = rec.get("config")
    if not isinstance(config, dict):
        return None
    try:
        return config_key(config)
    except (TypeError, ValueError):
        return None
