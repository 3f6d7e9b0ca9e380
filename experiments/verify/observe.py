"""Observations: a case (or a training trajectory) run through one backend, as the arrays of each check.

A backend is either an object implementing ``experiments.backend.Backend``
(tests pass one, or a deliberately broken wrapper around one) or a name, loaded
in the calling process. ``seqbench verify`` runs :func:`observe_case` in one
worker process per backend (``experiments.verify.workers``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from experiments.backend import Backend, Batch, load_backend
from experiments.spec import ArchSpec, OptimizerSpec
from experiments.verify.cases import Case
from experiments.verify.checks import Observation


def _valid_steps(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.where(mask.reshape(mask.shape + (1,) * (values.ndim - 2)), values, 0.0)


@contextmanager
def _jit_context(backend: Backend, jit: bool) -> Iterator[None]:
    """Run the jax backend op by op (``jax.disable_jit``) when ``jit`` is False."""
    if jit or backend.name != "jax":
        yield
        return
    import jax  # only a jax worker (or a test) ever gets here

    with jax.disable_jit():
        yield


def _as_backend(backend: Backend | str) -> Backend:
    return load_backend(backend) if isinstance(backend, str) else backend


def _f64(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.asarray(value, dtype=np.float64) for name, value in arrays.items()}


def observe(
    backend: Backend | str,
    case: Case,
    *,
    device: str = "cpu",
    jit: bool = True,
    checks: Sequence[str] | None = None,
) -> Observation:
    """Run ``case`` through ``backend``: the arrays of every check in ``checks`` (default: the case's)."""
    backend = _as_backend(backend)
    checks = case.checks if checks is None else checks
    spec, batch, precision = case.spec, case.batch, case.precision
    mask = batch.mask
    obs: Observation = {}
    with _jit_context(backend, jit):
        model = backend.build(spec, case.params, precision=precision, device=device)
        if "roundtrip" in checks:
            exported = backend.export_params(model)
            obs["roundtrip"] = {name: np.asarray(value) for name, value in exported.items()}
        if {"outputs", "final_states", "pooled", "logits"} & set(checks):
            fwd = backend.forward(model, batch)
            obs["outputs"] = {"outputs": _valid_steps(fwd.outputs, mask)}
            obs["final_states"] = _f64(fwd.final_states)
            obs["pooled"] = {"pooled": np.asarray(fwd.pooled, dtype=np.float64)}
            logits = np.asarray(fwd.logits, dtype=np.float64)
            obs["logits"] = {"logits": _valid_steps(logits, mask) if spec.head.per_step else logits}
        if {"loss", "grad_inputs", "grad_params"} & set(checks):
            grads = backend.loss_and_grads(model, batch)
            obs["loss"] = {"loss": np.asarray(grads.loss, dtype=np.float64)}
            obs["grad_inputs"] = {"inputs": np.asarray(grads.inputs, dtype=np.float64)}
            obs["grad_params"] = _f64(grads.params)
        for check, optimizer in (("sgd_step", case.sgd), ("adam_step", case.adam)):
            if check in checks:
                obs[check] = _optimizer_steps(backend, case, optimizer, device, case.steps)
    return {name: arrays for name, arrays in obs.items() if name in checks}


def observe_case(backend: Backend, case: Case, device: str = "cpu", jit: bool = True) -> Observation:
    """:func:`observe` with every check of the case: what ``seqbench verify`` calls in a backend's worker
    (``WorkerProcess.call`` passes its arguments by position)."""
    return observe(backend, case, device=device, jit=jit)


def _optimizer_steps(
    backend: Backend, case: Case, optimizer: OptimizerSpec, device: str, steps: int
) -> dict[str, np.ndarray]:
    model = backend.build(case.spec, case.params, precision=case.precision, device=device)
    state = backend.make_train_state(model, optimizer, seed=0)
    prepared = backend.prepare_batch(state, case.batch)
    for _ in range(steps):
        backend.train_step(state, prepared)
    after = backend.state_params(state)
    return {name: np.asarray(after[name], dtype=np.float64) - case.params[name] for name in after}


def observe_trajectory(
    backend: Backend | str,
    spec: ArchSpec,
    params: dict[str, np.ndarray],
    batches: Sequence[Batch],
    optimizer: OptimizerSpec,
    *,
    precision: str = "float64",
    device: str = "cpu",
) -> Observation:
    """Train on ``batches`` in order, one step each: the loss curve and the final parameters."""
    backend = _as_backend(backend)
    model = backend.build(spec, params, precision=precision, device=device)
    state = backend.make_train_state(model, optimizer, seed=0)
    prepared = [backend.prepare_batch(state, b) for b in batches]
    losses = [backend.train_step(state, b) for b in prepared]
    curve = np.asarray([backend.loss_value(loss) for loss in losses], dtype=np.float64)
    return {"loss_curve": {"loss": curve}, "final_params": _f64(backend.state_params(state))}
