"""The LRU, stacked: the math of ``experiments/spec/lru.py``, twin of ``torch_impl/lru.py``.

Two paths over the same parameters (``encoder.*``, ``layers.{l}.*``, ``head.*``):

- ``parallel_scan`` (``auto`` and ``on``): ``jax.lax.associative_scan`` over the pairs (lambda^k, x)
  with the operator (a_1, b_1) . (a_2, b_2) = (a_2 a_1, a_2 b_1 + b_2), O(log T) depth.
- ``reference`` (``off``): the step loop x_t = lambda x_{t-1} + b_t as a ``lax.scan``.

There is no fused vendor kernel for the LRU, so ``on`` always holds (nothing can refuse it) and
``auto`` is ``on``; ``off`` and ``reference`` are the loop. ``extras`` is empty. The parameters
are real; lambda, B, C and the state are complex (complex128 for float64, complex64 for float32).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.errors import UserError
from experiments.spec.lru import LRUSpec
from jax_impl.layers import (
    Array,
    KeyStream,
    Linear,
    Params,
    SequenceModel,
    dropout,
    head_forward,
    last_step,
    linear,
    param,
)

EXECUTION_PATHS = ("parallel_scan", "reference")  # what ``execution_path`` names


def resolve_path(path: str) -> str:
    """``auto``/``on``/``parallel_scan`` -> parallel_scan; ``off``/``reference`` -> reference."""
    if path in ("auto", "on", "parallel_scan"):
        return "parallel_scan"
    if path in ("off", "reference"):
        return "reference"
    raise UserError(
        "path", f"unknown path choice {path!r}", f"use auto, on, off or one of {', '.join(EXECUTION_PATHS)}"
    )


def combine(left: tuple[Array, Array], right: tuple[Array, Array]) -> tuple[Array, Array]:
    """The pair (a_1, b_1) followed by (a_2, b_2): x -> a_2 (a_1 x + b_1) + b_2."""
    a1, b1 = left
    a2, b2 = right
    return a2 * a1, a2 * b1 + b2


def parallel_scan(lam: Array, b: Array) -> Array:
    """x_t = lam x_{t-1} + b_t from x_0 = 0 for all t at once: lam (N,), b (B, T, N) -> (B, T, N)."""
    a = jnp.broadcast_to(lam, b.shape)  # (B, T, N): lambda at every step
    _, x = jax.lax.associative_scan(combine, (a, b), axis=1)
    return x


def step_loop(lam: Array, b: Array) -> Array:
    """The same recurrence one step at a time (the reference): (B, T, N)."""

    def step(x, b_t):
        x = lam * x + b_t  # (B, N)
        return x, x

    _, xs = jax.lax.scan(step, jnp.zeros_like(b[:, 0]), jnp.swapaxes(b, 0, 1))
    return jnp.swapaxes(xs, 0, 1)  # (B, T, N)


def coefficients(p: Params, prefix: str, u: Array) -> tuple[Array, Array]:
    """lambda (N,) and b = gamma * (B u) (B, T, N), complex; u (B, T, H) real."""
    modulus = jnp.exp(-jnp.exp(p[prefix + "nu_log"]))  # (N,) |lambda|
    phase = jnp.exp(p[prefix + "theta_log"])  # (N,)
    lam = jax.lax.complex(modulus * jnp.cos(phase), modulus * jnp.sin(phase))  # (N,)
    gamma = jnp.exp(p[prefix + "gamma_log"])[:, None]  # (N, 1)
    b = jax.lax.complex(linear(u, p[prefix + "B_re"] * gamma), linear(u, p[prefix + "B_im"] * gamma))  # (B, T, N)
    return lam, b


def readout(p: Params, prefix: str, x: Array, u: Array) -> Array:
    """y = Re(C x) + D * u: (B, T, H)."""
    return linear(jnp.real(x), p[prefix + "C_re"]) - linear(jnp.imag(x), p[prefix + "C_im"]) + p[prefix + "D"] * u


def lru_apply(
    spec: LRUSpec,
    p: Params,
    x: Array,
    lengths: Array,
    *,
    path: str,
    train: bool = False,
    key: Array | None = None,
    return_extras: bool = False,
) -> dict[str, Any]:
    keys = KeyStream(key if train else None)
    valid = (jnp.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
    x = jnp.where(valid, x, 0.0)  # garbage at padded steps enters no product
    u = jnp.where(valid, linear(x, p["encoder.weight"], p["encoder.bias"]), 0.0)  # (B, T, H)
    finals = []
    for layer in range(spec.num_layers):
        prefix = f"layers.{layer}."
        lam, b = coefficients(p, prefix, u)  # (N,), (B, T, N)
        if path == "parallel_scan":
            states = parallel_scan(lam, b)  # (B, T, N) complex
        else:
            states = step_loop(lam, b)  # (B, T, N) complex
        z = jax.nn.gelu(readout(p, prefix, states, u), approximate=False)  # (B, T, H), exact as torch's
        z = dropout(z, spec.dropout, keys.next())
        u = u + linear(z, p[prefix + "mlp.weight"], p[prefix + "mlp.bias"])  # (B, T, H), the skip
        u = jnp.where(valid, u, 0.0)  # zero at padded steps
        finals.append(last_step(u, lengths))
    h_n = jnp.stack(finals)  # (L, B, H)
    pooled = h_n[-1]  # (B, H)
    logits = head_forward(p, u if spec.head.per_step else pooled)
    return {"outputs": u, "pooled": pooled, "logits": logits, "final_states": {"h": h_n}, "extras": {}}


class LRULayer(nnx.Module):
    """One block's parameters, at the schema's names (``nu_log``, ..., ``mlp.weight``, ``mlp.bias``)."""

    def __init__(self, spec: LRUSpec, dtype: Any) -> None:
        for name, shape in spec.layer_schema(0).items():
            if not name.startswith("layers.0.mlp."):
                setattr(self, name.removeprefix("layers.0."), param(np.zeros(shape), dtype))
        self.mlp = Linear(spec.hidden_size, spec.hidden_size, dtype)


class LRUModel(SequenceModel):
    """``lru``: a linear ``encoder``, LRU + MLP residual blocks under ``layers`` and a linear ``head``."""

    apply = staticmethod(lru_apply)

    def choose_path(self, requested: str) -> str:
        return resolve_path(requested)

    def create_params(self, dtype: Any) -> None:
        spec = self.spec
        self.encoder = Linear(spec.input_size, spec.hidden_size, dtype)
        self.layers = nnx.List([LRULayer(spec, dtype) for _ in range(spec.num_layers)])
        self.head = Linear(spec.head_features(), spec.head.out_size, dtype)
