"""Executors: where cells run. The driver alone writes the store; executors only return results.

- ``local`` (default): one ``WorkerProcess`` per backend, reused across cells,
  one cell at a time (timings are not disturbed by a neighbour). A cell whose
  ``fresh_worker`` resource is true (default: ``bench`` cells on CPU) runs in a
  worker of its own instead, started for it and stopped right after it, so that
  its CPU memory reading (peak RSS) holds no page an earlier cell freed. The
  pooled worker serves as that fresh worker while it has run no cell (the one
  ``start`` loaded to check the backend), so an all-fresh grid starts no extra one.
- ``ray``: each cell is a Ray task asking for the CPUs/GPUs it needs
  (``cpus``/``gpus`` grid keys). The driver starts a local Ray unless given an
  address. Tasks of different backends carry different ``runtime_env``s, and Ray
  never shares a worker process between runtime environments, so torch and jax
  never meet in one process (``run.worker.load_named_backend`` refuses it anyway).
  A Ray worker keeps its backend loaded across the cells it runs, unless the cell
  asks for ``fresh_worker``: Ray reuses its worker processes across tasks, so such
  a cell runs as a task with ``max_calls=1`` (its Ray worker exits after it) in a
  runtime env of its own (no worker that ran other cells serves it); the worker
  itself tells whether it ran a cell before (``kinds.context.fresh_process``). Several
  cells may run at once, so CPU timings under Ray share the machine.

Both expose ``start(backends, devices)`` (load every backend first and ask it about
every device its cells need: a missing framework or a device that cannot be had is a
``UserError`` before any cell runs), ``submit(cells)`` / ``results()`` (an iterator of
``(cell, result)`` as they finish) and ``close()``.

A driver killed with ``kill -9`` runs no ``close``: local workers die with it
(``run.worker``), their log folders go at the next start (``remove_stale_log_dirs``), and a
Ray started here is stopped by a reaper process (``run.reaper``) that outlives the driver
by the second it takes to notice, and by ``atexit`` on an ordinary exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from experiments.backend import TEST_BACKENDS_ENV, check_device
from experiments.errors import UserError
from experiments.kinds.context import begin_worker
from experiments.run.memory import apply_limit, limit_env
from experiments.run.worker import (
    WorkerDied,
    WorkerProcess,
    execute,
    failure_result,
    load_named_backend,
    new_log_dir,
    worker_env,
)

Devices = Mapping[str, Iterable[str]]  # backend -> the devices its cells run on

EXECUTORS: tuple[str, ...] = ("local", "ray")


class LocalExecutor:
    name = "local"

    def __init__(self) -> None:
        self.workers: dict[str, WorkerProcess] = {}
        self._log_dir = new_log_dir()  # worker logs; removed by close() (or by the next driver, after kill -9)
        self._queue: list[Any] = []
        self._fresh: WorkerProcess | None = None  # the fresh worker running a cell now
        self._devices: dict[str, tuple[str, ...]] = {}

    def worker(self, backend: str) -> WorkerProcess:
        if backend not in self.workers:
            self.workers[backend] = WorkerProcess(backend, self._log_dir, self._devices.get(backend, ()))
        return self.workers[backend]

    def start(self, backends: Iterable[str], devices: Devices | None = None) -> None:
        """Start the workers side by side (their imports overlap), then wait for each. ``devices``:
        what each backend's cells run on; each worker checks them before it is ready and, when none
        is cuda, runs under the memory limit (``run.memory``). Without ``devices`` (a caller that
        does not say, such as ``verify``) a worker checks nothing and runs without a limit."""
        backends = list(backends)
        for b in backends:
            self._devices[b] = tuple(sorted(set((devices or {}).get(b, ()))))
            if b in self.workers and self.workers[b].devices != self._devices[b]:
                self.workers.pop(b).stop()  # started for other devices: check again
        starting = [self.worker(b) for b in backends if not self.worker(b).alive]
        for w in starting:
            w.spawn()
        try:
            for w in starting:
                w.wait_ready()
        except BaseException:
            for w in starting:
                w.kill()
            raise

    def run(self, cell: Any) -> dict[str, Any]:
        timeout = cell.resources.get("timeout_s")
        if cell.resources.get("fresh_worker"):
            return self._run_fresh(cell, timeout)
        return self.worker(cell.backend).run(cell, timeout=timeout)

    def _run_fresh(self, cell: Any, timeout: float | None) -> dict[str, Any]:
        """The cell in a worker that has run no cell before, stopped after it."""
        pooled = self.workers.get(cell.backend)
        if pooled is not None and pooled.alive and pooled.cells_run == 0:
            worker = self.workers.pop(cell.backend)  # still fresh: it only loaded the backend
        else:
            worker = WorkerProcess(cell.backend, self._log_dir, self._devices.get(cell.backend, (cell.device,)))
        self._fresh = worker
        started = time.perf_counter()
        try:
            if not worker.alive:
                worker.start()
            return worker.run(cell, timeout=timeout)
        except (WorkerDied, TimeoutError) as exc:  # the new worker failed to start: the cell's result
            return failure_result("error", str(exc), started)
        except BaseException:
            worker.kill()
            raise
        finally:
            worker.stop()
            self._fresh = None

    def submit(self, cells: Iterable[Any]) -> None:
        self._queue.extend(cells)

    def results(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        while self._queue:
            cell = self._queue.pop(0)
            yield cell, self.run(cell)

    @property
    def capacity(self) -> int:
        return 1

    def close(self, force: bool = False) -> None:
        """Stop the workers (``force``: kill them at once, e.g. on Ctrl-C) and remove their logs."""
        for w in [*self.workers.values(), *([self._fresh] if self._fresh else [])]:
            w.kill() if force else w.stop()
        self.workers.clear()
        self._fresh = None
        shutil.rmtree(self._log_dir, ignore_errors=True)


def _ray_run_cell(cell: Any) -> dict[str, Any]:
    """Body of a Ray task: runs in a Ray worker process dedicated to the cell's backend."""
    apply_limit()  # the runtime env carries the driver's limit (none for cuda cells)
    backend = load_named_backend(cell.backend)
    begin_worker()
    return execute(backend, cell)


def _ray_run_cell_fresh(cell: Any) -> dict[str, Any]:
    """``_ray_run_cell`` as a task with ``max_calls=1``: its Ray worker process exits after the cell."""
    return _ray_run_cell(cell)


def _ray_load(backend: str, devices: tuple[str, ...] = ("cpu",)) -> str:
    loaded = load_named_backend(backend)
    for device in devices:
        check_device(loaded, device)
    begin_worker()
    return backend


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise UserError(
                "--executor", "ray is not installed", "pip install 'seqbench[ray]' or use --executor local"
            ) from exc
        self.ray = ray
        self._started_here = not ray.is_initialized()
        if self._started_here:
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": "ERROR",
                "configure_logging": False,
            }
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
            ray.init(**kwargs)
            atexit.register(self._shutdown)  # an ordinary exit that skipped close()
            self._reaper = _start_reaper()  # kill -9 of this driver skips both
        self._pending: dict[Any, tuple[Any, float]] = {}
        self._failed: list[tuple[Any, dict[str, Any]]] = []
        self._total = ray.cluster_resources()
        self._run = ray.remote(_ray_run_cell)
        self._run_fresh = ray.remote(max_calls=1)(_ray_run_cell_fresh)  # max_calls cannot go in .options()
        self._load = ray.remote(_ray_load)

    def _options(self, backend: str, cpus: float = 1, gpus: float = 0, fresh: bool = False) -> dict[str, Any]:
        env = {**worker_env(backend), **limit_env({"cuda"} if gpus else {"cpu"}), "SEQBENCH_RAY_BACKEND": backend}
        if fresh:  # a runtime env of its own: such a task never lands in a worker that ran other cells
            env["SEQBENCH_FRESH_WORKER"] = "1"
        if os.environ.get(TEST_BACKENDS_ENV):
            env[TEST_BACKENDS_ENV] = os.environ[TEST_BACKENDS_ENV]
        if os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        return {"num_cpus": cpus, "num_gpus": gpus, "max_retries": 0, "runtime_env": {"env_vars": env}}

    def start(self, backends: Iterable[str], devices: Devices | None = None) -> None:
        refs = []
        for b in backends:
            wanted = tuple(sorted(set((devices or {}).get(b, ("cpu",)))))
            gpus = 1 if "cuda" in wanted else 0
            if gpus > self._total.get("GPU", 0):  # a task asking for it would wait forever
                have = f"{self._total.get('GPU', 0):g}"
                raise UserError("device", f"the Ray cluster has {have} GPUs; cuda cells need one", "use --device cpu")
            refs.append(self._load.options(**self._options(b, gpus=gpus)).remote(b, wanted))
        for ref in refs:
            try:
                self.ray.get(ref)
            except self.ray.exceptions.RayTaskError as exc:
                cause = exc.cause if hasattr(exc, "cause") else None
                if isinstance(cause, UserError):
                    raise UserError(cause.field, cause.problem, cause.fix) from None
                raise

    def submit(self, cells: Iterable[Any]) -> None:
        for cell in cells:
            cpus, gpus = cell.resources.get("cpus", 1), cell.resources.get("gpus", 0)
            if cpus > self._total.get("CPU", 0) or gpus > self._total.get("GPU", 0):
                have = f"{self._total.get('CPU', 0):g} CPUs and {self._total.get('GPU', 0):g} GPUs"
                message = f"the Ray cluster has {have}; the cell asks for {cpus} CPUs and {gpus} GPUs"
                self._failed.append((cell, failure_result("error", message, time.perf_counter())))
                continue
            opts = self._options(cell.backend, cpus, gpus, fresh=bool(cell.resources.get("fresh_worker")))
            ref = (self._run_fresh if cell.resources.get("fresh_worker") else self._run).options(**opts).remote(cell)
            self._pending[ref] = (cell, time.perf_counter())

    @property
    def capacity(self) -> int:
        """Cells in flight at once: the cluster's CPUs (Ray queues what does not fit)."""
        return max(1, int(self._total.get("CPU", 1)))

    def results(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        ray = self.ray
        while self._pending or self._failed:
            if self._failed:
                yield self._failed.pop(0)
                continue
            timeouts = [c.resources.get("timeout_s") for c, _ in self._pending.values()]
            wait_s = min((t for t in timeouts if t), default=None)
            done, _ = ray.wait(list(self._pending), num_returns=1, timeout=wait_s)
            if not done:  # the oldest cell ran past its timeout
                ref = min(self._pending, key=lambda r: self._pending[r][1])
                cell, started = self._pending[ref]
                if time.perf_counter() - started < (cell.resources.get("timeout_s") or float("inf")):
                    continue
                ray.cancel(ref, force=True)
                del self._pending[ref]
                yield cell, failure_result("error", f"timed out after {cell.resources.get('timeout_s')} s", started)
                continue
            for ref in done:
                cell, started = self._pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the Ray worker died (crash, OOM) or the task failed
                    text = f"{type(exc).__name__}: {exc}".replace("\n", " | ")[:2000]
                    oom = "OutOfMemory" in type(exc).__name__ or "out of memory" in text.lower()
                    result = failure_result("oom" if oom else "error", text, started)
                yield cell, result

    def close(self, force: bool = False) -> None:
        for ref in list(self._pending):
            self.ray.cancel(ref, force=True)
        self._pending.clear()
        self._shutdown()

    def _shutdown(self) -> None:
        if self._started_here and self.ray.is_initialized():
            self.ray.shutdown()
        reaper = getattr(self, "_reaper", None)
        if reaper is not None and reaper.poll() is None:
            reaper.terminate()  # Ray is down: nothing left to reap
            reaper.wait()
        self._reaper = None


def _start_reaper() -> subprocess.Popen | None:
    """``python -m experiments.run.reaper PID``: stops this driver's Ray processes when it dies."""
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "experiments.run.reaper", str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a kill of the driver's process group must not take it too
        )
    except OSError:
        return None


def make_executor(name: str, *, address: str | None = None) -> LocalExecutor | RayExecutor:
    if name == "local":
        if address:
            raise UserError("--ray-address", "only the ray executor takes an address", "add --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address=address)
    raise UserError("--executor", f"unknown executor {name!r}", f"use one of {', '.join(EXECUTORS)}")
