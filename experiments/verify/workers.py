"""``seqbench verify``'s worker processes: one ``WorkerProcess`` per backend, and what runs in them.

The workers start side by side (``LocalExecutor.start``: a backend that cannot
load is a ``UserError`` there); each first builds a tiny model on the device
(:func:`describe_device`), so that a device that cannot be had is a person's
error too, before any case runs. Then each case's observation is a
``WorkerProcess.call`` of :func:`experiments.verify.observe.observe_case`, made
from one thread per backend so that the two workers compute at the same time;
an error in a worker comes back as text, in the exception the future holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from experiments.backend import Backend
from experiments.errors import UserError
from experiments.run.executors import LocalExecutor
from experiments.spec import ARCHITECTURES, make_spec, size_fields
from experiments.verify.cases import Case
from experiments.verify.checks import OTHER, REFERENCE, Observation
from experiments.verify.suite import Observer

OBSERVE = "experiments.verify.observe.observe_case"
DESCRIBE = "experiments.verify.workers.describe_device"


def describe_device(backend: Backend, device: str, precision: str) -> dict[str, Any]:
    """Runs in a worker: a tiny model built on the device first, so that a device that
    cannot be had fails here, as a person's error, before any case runs."""
    spec = make_spec(ARCHITECTURES[0], input_size=1, **size_fields(ARCHITECTURES[0], 2))
    backend.build(spec, spec.init_params(0), precision=precision, device=device)
    return backend.describe(device=device, precision=precision)


@contextmanager
def worker_observers(
    device: str, precision: str, backends: Sequence[str] = (REFERENCE, OTHER)
) -> Iterator[tuple[Observer, dict[str, dict[str, Any]]]]:
    """One worker process per backend: (submit, each backend's ``describe()``)."""
    executor = LocalExecutor()
    threads = {name: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"verify-{name}") for name in backends}

    def call(backend: str, function: str, *args: Any) -> Future[Any]:
        return threads[backend].submit(executor.worker(backend).call, function, *args)

    def submit(backend: str, case: Case) -> Future[Observation]:
        return call(backend, OBSERVE, case, device)

    try:
        executor.start(backends)
        described = {name: call(name, DESCRIBE, device, precision) for name in backends}
        env = {}
        for name, future in described.items():
            try:
                env[name] = future.result()
            except UserError as exc:  # the backend's own word on the device
                raise UserError("--device", f"{name} cannot run on {device}: {exc.problem}", exc.fix) from None
            except RuntimeError as exc:  # another error in the call, or the worker's death, as text
                raise UserError("--device", f"{name} cannot run on {device}: {exc}") from None
        yield submit, env
    except BaseException:
        for pool in threads.values():
            pool.shutdown(wait=False, cancel_futures=True)
        executor.close(force=True)  # a call still running ends with its worker
        raise
    finally:
        for pool in threads.values():
            pool.shutdown(wait=True)
        executor.close()
