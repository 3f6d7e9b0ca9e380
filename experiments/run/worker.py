"""Worker processes: each holds exactly one backend and runs cells in it.

The driver never imports a framework. ``WorkerProcess`` starts
``python -m experiments.run.worker BACKEND RFD WFD``, a process of its own that loads
the backend once (``experiments.backend.load_backend``), then answers messages:
pickled ``(tag, payload)`` tuples, length-prefixed, over two pipes (the worker's
stdout and stderr go to a log file, so a library's printing cannot break the
protocol). JAX runs without preallocation (``jax_impl`` sets
``XLA_PYTHON_CLIENT_PREALLOCATE=false`` before it imports jax) so that its memory readings mean something.

Fresh workers: a process that has run no cell yet is *fresh*; ``execute`` tells
the cell so (``experiments.kinds.context``; ``MemoryMeter`` then labels a CPU reading ``cpu_rss_fresh``:
the resident-memory high-water mark holds this cell's pages alone, none that an
earlier cell freed) and records ``fresh_worker`` and ``worker_pid`` in the
record's ``env``. A cell with the ``fresh_worker`` resource runs in such a process
which is stopped right after it (``executors.LocalExecutor``).

A worker that dies (a segfault, the kernel's OOM killer) or hangs past the
cell's ``timeout_s`` is killed and its cell recorded (``oom`` when the kernel
counted an OOM kill meanwhile or its log ends in a failed allocation, else
``error`` with the end of the worker's log); the next cell gets a fresh worker.

Before it says ``ready`` a worker caps its own memory (``run.memory.apply_limit``:
an allocation past the cap fails inside the cell, which ends as ``oom``) and asks
its backend about every device it was started for (``experiments.backend.check_device``):
a device that cannot be had is a ``UserError`` before any cell runs.

A worker never outlives its driver: it asks the kernel for SIGKILL when the driver
dies (``PR_SET_PDEATHSIG``, Linux) and a thread checks the parent pid every 0.2 s
where that is not available. Its log folder is named
``seqbench-workers-<driver pid>-*``; ``remove_stale_log_dirs`` deletes those of dead drivers.

Test-only backends: ``SEQBENCH_TEST_BACKENDS="name=module,..."`` adds backends
under new names for the test suite (``tests/_driver_helpers.py``); it can never
replace ``torch`` or ``jax``, so it is no fallback for them.
"""

from __future__ import annotations

import gc
import importlib
import itertools
import os
import pickle
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from experiments.backend import (
    BACKENDS,
    TEST_BACKENDS_ENV,
    available_cores,
    backend_modules,
    check_device,
    load_backend,
)
from experiments.cell import CellResult, is_oom, jsonable
from experiments.errors import UserError
from experiments.kinds import get_kind
from experiments.kinds.context import begin_worker, count_cell, fresh_process
from experiments.records.envinfo import host_env
from experiments.run.memory import WORKER_LIMIT_ENV, apply_limit, limit_env, oom_in_log

_HEADER = struct.Struct("!Q")
LOG_TAIL_CHARS = 2000
CELL_MARK = "--- cell "
DEVICES_ENV = "SEQBENCH_WORKER_DEVICES"  # the devices a worker checks before it says ready
PDEATHSIG_ENV = "SEQBENCH_WORKER_PDEATHSIG"  # "1": the driver's main thread spawned it (see _die_with_parent)
LOG_DIR_PREFIX = "seqbench-workers-"
PARENT_POLL_S = 0.2


# Huge pages for malloc's blocks: a step's large temporaries (XLA:CPU's above all) are otherwise
# mmapped, freed and page-faulted in again every step. Both backends get it (fair comparisons) and
# records name it (env ``glibc_tunables``); measured in benchmarks/NOTES.md.
MALLOC_TUNABLES = "glibc.malloc.hugetlb=1"


def worker_env(backend: str) -> dict[str, str]:
    """Environment variables a worker for ``backend`` starts with (on top of the driver's)."""
    env = {"PYTHONUNBUFFERED": "1"}
    given = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" not in given:  # a setting of the user's wins
        env["GLIBC_TUNABLES"] = f"{given}:{MALLOC_TUNABLES}" if given else MALLOC_TUNABLES
    if backend == "jax":
        # one XLA CPU device per core the worker may use: jax_impl's training step splits a batch
        # over them (XLA otherwise runs a recurrent step on one core); OMP_NUM_THREADS=1 keeps one
        flags, cores = os.environ.get("XLA_FLAGS", ""), worker_cores()
        if cores > 1 and "xla_force_host_platform_device_count" not in flags:
            env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={cores}".strip()
    return env


def worker_cores() -> int:
    """The cores a worker may use: OMP_NUM_THREADS where set (``reproduce --threads``), else its affinity."""
    omp = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, int(omp)) if omp.isdigit() else available_cores()


# -- inside a worker --------------------------------------------------------------------

_loaded: dict[str, Any] = {}


def load_named_backend(name: str) -> Any:
    """The backend object, imported once per process; a second, different backend is refused."""
    if name in _loaded:
        return _loaded[name]
    if _loaded:
        raise RuntimeError(f"this process already holds the {next(iter(_loaded))!r} backend; {name!r} needs its own")
    for key, value in worker_env(name).items():
        os.environ.setdefault(key, value)
    modules = backend_modules()
    if name in BACKENDS:
        backend = load_backend(name)
    elif name in modules:
        try:
            backend = importlib.import_module(modules[name]).BACKEND
        except (ImportError, AttributeError) as exc:
            raise UserError("backend", f"{name} cannot load ({exc})", f"check {TEST_BACKENDS_ENV}") from exc
    else:
        raise UserError("backend", f"unknown backend {name!r}", f"use one of {', '.join(modules)}")
    _loaded[name] = backend
    return backend


_described: dict[tuple[str, str], dict[str, Any]] = {}


def _describe(backend: Any, device: str, precision: str) -> dict[str, Any]:
    key = (device, precision)
    if key not in _described:
        try:
            info = dict(backend.describe(device, precision))
        except Exception as exc:  # a describe failure must not lose the cell
            info = {"describe_error": f"{type(exc).__name__}: {exc}"}
        _described[key] = {**host_env(), "backend": getattr(backend, "name", None), **info}
    return _described[key]


def _error_text(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    text = f"{type(exc).__name__}: {exc}".strip()
    return (text[:LOG_TAIL_CHARS] + where).replace("\n", " | ")


def execute(backend: Any, cell: Any) -> dict[str, Any]:
    """Run one cell in this process: ``{status, path, metrics, error, worker_env}``; never raises
    for the cell's own failures (they become its status)."""
    fresh = fresh_process()  # read by measure.MemoryMeter during the cell, too
    started = time.perf_counter()
    try:
        kind = get_kind(cell.kind)
        with backend.numerics():  # float32 subnormals flushed on CPU by both backends
            out = kind.fn(backend, cell)
        result = out if isinstance(out, CellResult) else CellResult(metrics=dict(out))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the cell's failure is its result
        traceback.print_exc()
        status = "oom" if is_oom(exc) else "nan" if isinstance(exc, FloatingPointError) else "error"
        result = CellResult(metrics={}, status=status, error=_error_text(exc))
    finally:
        count_cell()
        gc.collect()
    return {
        "status": result.status,
        "path": result.path,
        "metrics": jsonable(result.metrics),
        "error": result.error,
        "worker_env": {
            **_describe(backend, cell.device, cell.precision),
            "fresh_worker": fresh,
            "worker_pid": os.getpid(),
        },
        "cell_s": time.perf_counter() - started,
    }


def _send(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _recv(fd: int) -> Any:
    head = _read_exact(fd, _HEADER.size)
    if head is None:
        raise EOFError
    body = _read_exact(fd, _HEADER.unpack(head)[0])
    if body is None:
        raise EOFError
    return pickle.loads(body)


def _watch_parent(parent: int) -> None:
    """Exit when the driver is gone (kill -9 of the driver leaves no stray worker computing)."""
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(0)


def _die_with_parent(parent: int) -> None:
    """SIGKILL from the kernel the moment the driver dies: no wait for the GIL or a poll.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that spawned this process ends, so the
    driver asks for it only when its main thread spawned us (``PDEATHSIG_ENV``); the
    parent watch thread covers the rest."""
    if os.environ.get(PDEATHSIG_ENV) == "1" and sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the driver died before the request was in place
        os._exit(0)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def serve(backend_name: str, rfd: int, wfd: int, parent: int) -> None:
    """The worker's main loop."""
    _die_with_parent(parent)
    apply_limit()  # before the framework loads: all of the process's memory counts
    try:
        backend = load_named_backend(backend_name)
        for device in filter(None, os.environ.get(DEVICES_ENV, "").split(",")):
            check_device(backend, device)
        begin_worker()
    except UserError as exc:
        _send(wfd, ("user_error", (exc.field, exc.problem, exc.fix)))
        return
    except BaseException as exc:
        traceback.print_exc()
        _send(wfd, ("load_error", _error_text(exc)))
        return
    _send(wfd, ("ready", {"pid": os.getpid(), "backend": backend_name}))
    while True:
        try:
            tag, payload = _recv(rfd)
        except EOFError:
            return
        if tag == "stop":
            return
        if tag == "run":
            print(f"{CELL_MARK}{payload.key}: {payload.label()}", file=sys.stderr, flush=True)
            _send(wfd, ("result", execute(backend, payload)))
        elif tag == "call":  # (function path, args): for tools such as benchmarks/driver_overhead.py
            count_cell()  # whatever it allocated may stay cached: the process is no longer fresh
            module, _, func = payload[0].rpartition(".")
            try:
                value = getattr(importlib.import_module(module), func)(backend, *payload[1])
                _send(wfd, ("value", value))
            except UserError as exc:  # a person's mistake stays one: the caller re-raises it
                _send(wfd, ("user_error", (exc.field, exc.problem, exc.fix)))
            except Exception as exc:
                traceback.print_exc()
                _send(wfd, ("call_error", _error_text(exc)))


# -- the driver's side ---------------------------------------------------------------------


def oom_kill_count() -> int | None:
    """The kernel's count of OOM kills (Linux ``/proc/vmstat``), to tell an OOM death from a crash."""
    try:
        with open("/proc/vmstat") as fh:
            for line in fh:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


_LOG_NUMBERS = itertools.count(1)  # worker log files: several WorkerProcess objects may share a folder


class WorkerDied(RuntimeError):
    pass


class WorkerCallError(RuntimeError):
    """``WorkerProcess.call``'s function raised in the worker: ``text`` is its error, as the worker wrote it."""

    def __init__(self, backend: str, function: str, text: str) -> None:
        self.backend, self.function, self.text = backend, function, text
        super().__init__(f"{function} failed in the {backend} worker: {text}")


class WorkerProcess:
    """One worker subprocess for one backend, reused across cells."""

    def __init__(self, backend: str, log_dir: str | Path | None = None, devices: tuple[str, ...] | None = None) -> None:
        """``log_dir``: where the worker's output goes (default: a new temporary folder, removed when
        the worker stops). ``devices``: what it checks before it says ready (default: none)."""
        self.backend = backend
        self.devices = tuple(devices or ())
        self._own_log_dir = not log_dir
        self._log_dir = Path(log_dir) if log_dir else new_log_dir()
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._rfd = self._wfd = -1
        self.starts = 0
        self.cells_run = 0  # cells (and calls) sent to the current process: 0 = it is still fresh

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 300.0) -> None:
        """Start the process and wait until its backend is loaded; a load failure raises
        ``UserError`` (a person's mistake, e.g. a framework not installed) or ``WorkerDied``."""
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the process without waiting for it (``wait_ready`` waits)."""
        to_child_r, to_child_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        self.starts += 1
        self.cells_run = 0
        self._log_dir.mkdir(parents=True, exist_ok=True)  # an own folder is removed by stop()
        self.log_path = self._log_dir / f"worker-{self.backend}-{next(_LOG_NUMBERS)}.log"  # unique per log_dir user
        # devices not named: nothing to check, and no limit (the caller may touch CUDA)
        limits = limit_env(set(self.devices)) if self.devices else {}
        env = {**os.environ, **worker_env(self.backend), DEVICES_ENV: ",".join(self.devices)}
        env.pop(WORKER_LIMIT_ENV, None)  # never inherited: the limit is this driver's decision
        env.update(limits)
        if threading.current_thread() is threading.main_thread():
            env[PDEATHSIG_ENV] = "1"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "experiments.run.worker",
                    self.backend,
                    str(to_child_r),
                    str(to_parent_w),
                    str(os.getpid()),
                ],
                pass_fds=(to_child_r, to_parent_w),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        os.close(to_child_r)
        os.close(to_parent_w)
        self._wfd, self._rfd = to_child_w, to_parent_r

    def wait_ready(self, timeout: float = 300.0) -> None:
        tag, payload = self._receive(timeout, what="start")
        if tag == "user_error":
            self.close()
            raise UserError(*payload)
        if tag != "ready":
            self.close()
            raise WorkerDied(f"the {self.backend} worker failed to start: {payload}")

    def _receive(self, timeout: float | None, what: str) -> tuple[str, Any]:
        ready, _, _ = select.select([self._rfd], [], [], timeout)
        if not ready:
            self.kill()
            raise TimeoutError(f"the {self.backend} worker gave no answer to {what} within {timeout:.0f} s")
        try:
            return _recv(self._rfd)
        except (EOFError, OSError) as exc:
            code = self.proc.wait(timeout=30) if self.proc else None
            self.close()
            raise WorkerDied(self._death(code)) from exc

    def _death(self, code: int | None) -> str:
        if code is not None and code < 0:
            try:
                how = f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        tail = self.log_tail()
        return f"the {self.backend} worker {how}" + (f"; its log ends: {tail}" if tail else "")

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """The end of the worker's log since the last cell began."""
        try:
            text = self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""
        cut = text.rfind(CELL_MARK)
        if cut >= 0:
            text = text[cut:].partition("\n")[2]
        return text[-chars:].strip().replace("\n", " | ")

    def run(self, cell: Any, timeout: float | None = None) -> dict[str, Any]:
        """The cell's result; a worker death or a timeout becomes the cell's result too."""
        if not self.alive:
            self.start()
        ooms = oom_kill_count()
        started = time.perf_counter()
        self.cells_run += 1
        try:
            _send(self._wfd, ("run", cell))
            tag, payload = self._receive(timeout, what=f"cell {cell.key}")
        except TimeoutError as exc:
            return failure_result("error", f"timed out: {exc}", started)
        except (WorkerDied, BrokenPipeError) as exc:
            after = oom_kill_count()
            oom = (ooms is not None and after is not None and after > ooms) or oom_in_log(str(exc))
            return failure_result("oom" if oom else "error", str(exc), started)
        assert tag == "result", tag
        return payload

    def call(self, function: str, *args: Any, timeout: float | None = None) -> Any:
        """Run ``function(backend, *args)`` (a dotted path) in the worker and return its value.

        A ``UserError`` raised there is raised here as one; any other error raises
        ``WorkerCallError`` with the worker's text (some exceptions do not survive pickling)."""
        if not self.alive:
            self.start()
        self.cells_run += 1
        _send(self._wfd, ("call", (function, args)))
        tag, payload = self._receive(timeout, what=function)
        if tag == "user_error":
            raise UserError(*payload)
        if tag != "value":
            raise WorkerCallError(self.backend, function, str(payload))
        return payload

    def stop(self) -> None:
        if self.alive:
            try:
                _send(self._wfd, ("stop", None))
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self.close()
        self._remove_own_log_dir()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.wait()
        self.close()

    def _remove_own_log_dir(self) -> None:
        if self._own_log_dir:  # a shared folder belongs to its executor, which removes it
            shutil.rmtree(self._log_dir, ignore_errors=True)

    def close(self) -> None:
        for fd in (self._rfd, self._wfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._rfd = self._wfd = -1


def new_log_dir() -> Path:
    """A temporary folder for worker logs, named after this driver's pid; stale ones are removed first."""
    remove_stale_log_dirs()
    return Path(tempfile.mkdtemp(prefix=f"{LOG_DIR_PREFIX}{os.getpid()}-"))


_OWNER = re.compile(rf"^{LOG_DIR_PREFIX}(\d+)-")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_log_dirs(root: str | Path | None = None) -> list[Path]:
    """Delete the worker log folders of drivers that are gone (a ``kill -9`` skips their ``close``).

    A folder names its driver's pid; one whose pid is not running is stale. (A reused pid keeps
    its folder until that process ends too: harmless.) A folder named before pids were (no owner
    to ask) is stale once nothing in it changed for ``LEGACY_STALE_S``. Returns the folders removed."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(f"{LOG_DIR_PREFIX}*"):
        if not path.is_dir():
            continue
        match = _OWNER.match(path.name)
        stale = not _pid_alive(int(match.group(1))) if match else _untouched_for(path, LEGACY_STALE_S)
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


LEGACY_STALE_S = 86400.0


def _untouched_for(folder: Path, seconds: float) -> bool:
    try:
        newest = max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.iterdir())])
    except OSError:
        return False
    return time.time() - newest > seconds


def failure_result(status: str, message: str, started: float) -> dict[str, Any]:
    return {
        "status": status,
        "path": None,
        "metrics": {},
        "error": message,
        "worker_env": None,
        "cell_s": time.perf_counter() - started,
    }


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
