"""Small pieces every JAX model shares: dtypes, torch-layout Linear and LayerNorm, the head, losses, masks.

Every model in ``jax_impl`` is an NNX module whose ``nnx.Param`` leaves sit at the
paths of the canonical parameter names (``rnn.weight_ih_l0``, ``layers.0.norm1.weight``,
...): joining a leaf's path with dots gives its canonical name. The math itself is
written as pure functions of a flat dict ``{canonical name: array}``, so that a
training step is one ``jax.jit`` over a plain pytree (no graph traversal per step),
and the module's ``__call__`` is those same functions applied to its own parameters.

``torch_impl/layers.py`` has the same public names with the same signatures (``precision_dtype``,
``resolve_device``, ``valid_mask``, ``DeviceBatch``, ``SequenceModel``, ``head_loss``, ``load_params``,
``export_params``, ``to_numpy``); what only one framework needs is marked so in its docstring.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.errors import UserError
from experiments.spec import ArchSpec
from experiments.spec.common import HeadSpec

Array = jax.Array
Params = dict[str, Array]

DTYPES: dict[str, Any] = {
    "float64": jnp.float64,
    "float32": jnp.float32,
    "tf32": jnp.float32,
    "bfloat16": jnp.bfloat16,
}
# jax.default_matmul_precision names: float32 means true IEEE float32 (no TF32 on GPU).
MATMUL_PRECISION: dict[str, str] = {
    "float64": "highest",
    "float32": "highest",
    "tf32": "default",
    "bfloat16": "default",
}


def precision_dtype(precision: str) -> Any:
    """The parameter/compute dtype of a named precision."""
    if precision not in DTYPES:
        raise UserError("precision", f"unknown precision {precision!r}", f"use one of {', '.join(DTYPES)}")
    if precision == "float64" and not jax.config.jax_enable_x64:
        raise RuntimeError("float64 needs jax_enable_x64 (jax_impl turns it on at import)")
    return DTYPES[precision]


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """(jax only) Trace (or run) under the matmul precision a named precision asks for."""
    with jax.default_matmul_precision(MATMUL_PRECISION[precision]):
        yield


def resolve_device(device: str) -> jax.Device:
    if device == "cpu":
        return jax.devices("cpu")[0]
    if device == "cuda":
        try:
            return jax.devices("gpu")[0]
        except RuntimeError as exc:
            raise UserError("device", "no CUDA device visible to jax", "install jax[cuda] or use --device cpu") from exc
    raise UserError("device", f"unknown device {device!r}", "use cpu or cuda")


def to_numpy(tree: Any) -> Any:
    """Host copies of every array in a pytree (bfloat16 stays bfloat16: ml_dtypes has it)."""
    return jax.tree.map(lambda a: np.asarray(a), tree)


def valid_mask(lengths: Array, seq_len: int) -> Array:
    """(B, T) bool, True at valid steps (our convention, never a framework's)."""
    return jnp.arange(seq_len)[None, :] < lengths[:, None]


class DeviceBatch(NamedTuple):
    """A batch on the model's device and dtype: ``lengths`` (B,) int32; targets int32 or the dtype.
    A pytree, so that a data-parallel step can place it whole (``optim.place_batch``)."""

    x: Array  # (B, T, I)
    lengths: Array
    y: Array


def param(value: Any, dtype: Any) -> nnx.Param:
    """An ``nnx.Param`` holding ``value`` as exactly ``dtype`` (never Flax's float32 default)."""
    arr = jnp.asarray(np.asarray(value), dtype=dtype)
    assert arr.dtype == jnp.dtype(dtype), (arr.dtype, dtype)
    return nnx.Param(arr)


def set_param(var: nnx.Param, value: Any) -> None:
    """Replace a parameter's value keeping its dtype explicitly (``var[...] = x`` would cast silently)."""
    old = var.get_value()
    arr = jnp.asarray(np.asarray(value), dtype=old.dtype)
    if arr.shape != old.shape:
        raise ValueError(f"shape {arr.shape} != {old.shape}")
    var.set_value(arr)


# -- canonical names <-> module ----------------------------------------------------
def param_vars(module: nnx.Module) -> dict[str, nnx.Param]:
    """``{canonical name: nnx.Param}`` of a model, in the module's path order."""
    state = nnx.state(module, nnx.Param)
    out = {}
    for path, var in nnx.to_flat_state(state):
        out[".".join(str(p) for p in path)] = var
    return out


def param_arrays(module: nnx.Module) -> Params:
    return {name: var.get_value() for name, var in param_vars(module).items()}


def load_params(model: nnx.Module, params: Mapping[str, Any]) -> None:
    """Load canonical ``params`` (exactly the module's names) cast to the model's dtype, and assert
    every dtype after (``var[...] = x`` would keep the old one silently)."""
    variables = param_vars(model)
    missing, extra = set(variables) - set(params), set(params) - set(variables)
    if missing or extra:
        raise KeyError(f"parameter names differ: missing {sorted(missing)}, unexpected {sorted(extra)}")
    for name, var in variables.items():
        set_param(var, params[name])
    check_dtypes(model, precision_dtype(model.precision))


def export_params(model: nnx.Module) -> dict[str, np.ndarray]:
    """Canonical parameters in schema order, host copies in the model's dtype."""
    arrays = param_arrays(model)
    return {name: np.asarray(arrays[name]) for name in model.spec.param_schema()}


def check_dtypes(module: nnx.Module, dtype: Any) -> None:
    for name, var in param_vars(module).items():
        got = var.get_value().dtype
        if got != jnp.dtype(dtype):
            raise TypeError(f"{name} is {got}, expected {jnp.dtype(dtype)}")


# -- the model base -----------------------------------------------------------------
class SequenceModel(nnx.Module):
    """What every model holds: its spec, precision, device and resolved execution path, its canonical
    parameters, and the pure function of them that ``__call__``, the backend's jits and the train step run.

    A subclass sets ``apply``, the family's ``(spec, params, x, lengths, *, path, train, key,
    return_extras, **options) -> dict`` (outputs, pooled, logits, final_states, extras), and defines
    ``choose_path`` (the switch or a path name -> the path it runs) and ``create_params`` (its
    parameter modules, at the canonical names). ``options`` are static keyword arguments of
    ``apply`` beyond the path (the recurrent ``unroll``), part of ``static_key``, which names one
    compiled configuration. ``params`` None: the spec's ``init_params(0)``.
    """

    apply: Callable[..., dict[str, Any]]

    def __init__(
        self,
        spec: ArchSpec,
        params: Mapping[str, Any] | None = None,
        *,
        precision: str = "float32",
        path: str = "auto",
        device: str = "cpu",
        **options: Any,
    ) -> None:
        self.spec = spec
        self.precision = precision
        self.device = device
        self.path = self.choose_path(path)
        self.options = tuple(self.static_options(**options).items())
        self.create_params(self.dtype)
        load_params(self, spec.init_params(0) if params is None else params)

    def choose_path(self, requested: str) -> str:
        raise NotImplementedError

    def static_options(self, **options: Any) -> dict[str, Any]:
        """The static options with their defaults filled in; none unless a family has some."""
        if options:
            raise TypeError(f"{type(self).__name__} takes no options {sorted(options)}")
        return {}

    def create_params(self, dtype: Any) -> None:
        raise NotImplementedError

    @property
    def dtype(self) -> Any:
        return precision_dtype(self.precision)

    def execution_path(self) -> str:
        return self.path

    def static_key(self) -> tuple:
        return (type(self).__name__, self.spec, self.precision, self.path, *(v for _, v in self.options))

    def pure(self, *, train: bool = False, return_extras: bool = False) -> Callable[..., dict[str, Any]]:
        """A pure function ``(params, x, lengths, key) -> dict`` of this model's static config."""
        return partial(
            _pure_call, type(self).apply, self.spec, self.precision, self.path, dict(self.options), train, return_extras
        )

    def __call__(self, x: Array, lengths: Array, *, train: bool = False, key: Array | None = None,
                 return_extras: bool = False) -> dict[str, Any]:  # fmt: skip
        return self.pure(train=train, return_extras=return_extras)(param_arrays(self), x, lengths, key)


def _pure_call(apply, spec, precision, path, options, train, return_extras, params, x, lengths, key):
    with matmul_precision(precision):
        return apply(spec, params, x, lengths, path=path, train=train, key=key, return_extras=return_extras, **options)


# -- modules holding torch-layout parameters ---------------------------------------
class Linear(nnx.Module):
    """``weight`` (out, in), ``bias`` (out,) as torch's ``nn.Linear``; y = x W^T + b."""

    def __init__(self, in_features: int, out_features: int, dtype: Any, *, bias: bool = True) -> None:
        self.weight = param(np.zeros((out_features, in_features)), dtype)
        if bias:
            self.bias = param(np.zeros((out_features,)), dtype)


class LayerNorm(nnx.Module):
    """``weight`` and ``bias`` (d,); the eps comes from the spec, never a framework default."""

    def __init__(self, features: int, dtype: Any) -> None:
        self.weight = param(np.ones((features,)), dtype)
        self.bias = param(np.zeros((features,)), dtype)


# -- pure functions over arrays ----------------------------------------------------
def linear(x: Array, weight: Array, bias: Array | None = None) -> Array:
    y = jnp.einsum("...i,oi->...o", x, weight)
    return y if bias is None else y + bias


def layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    var = jnp.mean(centred * centred, axis=-1, keepdims=True)  # biased, as torch
    return centred * jax.lax.rsqrt(var + jnp.asarray(eps, x.dtype)) * weight + bias


def dropout(x: Array, rate: float, key: Array | None) -> Array:
    """Inverted dropout; identity when ``key`` is None (eval) or the rate is 0."""
    if key is None or rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / jnp.asarray(1.0 - rate, x.dtype), jnp.zeros((), x.dtype))


class KeyStream:
    """Successive dropout keys from one key (None in eval: every draw is None)."""

    def __init__(self, key: Array | None) -> None:
        self.key = key
        self.count = 0

    def next(self) -> Array | None:
        if self.key is None:
            return None
        self.count += 1
        return jax.random.fold_in(self.key, self.count)


def last_step(outputs: Array, lengths: Array) -> Array:
    """Outputs at each sequence's own last step: (B, H). A gather from the outputs, so a final state
    taken this way is the same bits as the output it came from (no separately masked carry)."""
    return jnp.take_along_axis(outputs, (lengths - 1)[:, None, None], axis=1)[:, 0]


def head_forward(p: Params, features: Array) -> Array:
    return linear(features, p["head.weight"], p["head.bias"])


def head_loss(head: HeadSpec, logits: Array, y: Array, mask: Array) -> Array:
    """The head's loss (``HeadSpec``); targets at padded steps are ignored."""
    if head.kind == "classify":
        return jnp.mean(_cross_entropy(logits, y))
    if head.kind == "regress":
        diff = logits - y.astype(logits.dtype)
        return jnp.mean(diff * diff)
    maskf = mask.astype(logits.dtype)
    count = jnp.maximum(jnp.sum(maskf), 1.0)
    if head.kind == "per_step_classify":
        ce = _cross_entropy(logits, jnp.where(mask, y, 0))
        return jnp.sum(ce * maskf) / count
    if head.kind == "per_step_regress":
        # replaced, not multiplied by zero: a NaN target at a padded step would give NaN gradients (as torch's)
        diff = logits - jnp.where(mask[..., None], y.astype(logits.dtype), 0.0)
        per_step = jnp.sum(diff * diff, axis=-1)
        return jnp.sum(per_step * maskf) / (count * logits.shape[-1])
    raise ValueError(f"unknown head {head.kind!r}")


def _cross_entropy(logits: Array, y: Array) -> Array:
    logz = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, y[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return logz - picked


def sinusoidal_table(seq_len: int, d_model: int, dtype: Any) -> Array:
    """The spec's table (computed in float64 in NumPy, then cast)."""
    from experiments.spec import sinusoidal_positions

    return jnp.asarray(sinusoidal_positions(seq_len, d_model), dtype=dtype)
