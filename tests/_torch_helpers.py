"""Shared bits of the torch backend tests: seeded batches, a relative comparison, and torch's own
``nn.TransformerEncoderLayer`` holding our parameters (the outside reference for the transformer)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from experiments.backend import Batch
from experiments.spec import ArchSpec
from experiments.spec.transformer import TransformerSpec

REL_F64 = 1e-12  # float64: two paths of the same math


def random_batch(spec: ArchSpec, batch: int, steps: int, seed: int, *, ragged: bool = True) -> Batch:
    """x ~ N(0, 1), lengths in [1, T] with at least one full and one short sequence, targets by head kind.
    Targets at padded steps hold garbage (out-of-range classes, NaN) that every loss must ignore."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, steps, spec.input_size))
    if ragged:
        lengths = rng.integers(1, steps + 1, size=batch)
        lengths[0], lengths[-1] = steps, max(1, steps // 3)
    else:
        lengths = np.full(batch, steps)
    lengths = lengths.astype(np.int64)
    head = spec.head
    if head.kind == "classify":
        y = rng.integers(0, head.out_size, size=batch)
    elif head.kind == "regress":
        y = rng.normal(size=(batch, head.out_size))
    elif head.kind == "per_step_classify":
        y = rng.integers(0, head.out_size, size=(batch, steps))
        y[np.arange(steps)[None, :] >= lengths[:, None]] = 10**6
    else:
        y = rng.normal(size=(batch, steps, head.out_size))
        y[np.arange(steps)[None, :] >= lengths[:, None]] = np.nan
    return Batch(x=x, lengths=lengths, y=y)


def rel_err(a: np.ndarray, b: np.ndarray, scale: float | None = None) -> float:
    """max |a - b| / max |b| (0 when both are zero). ``scale`` replaces max |b| where a quantity is
    zero by the math (a key bias's gradient) and only round-off is left: pass the size of the whole."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if scale is None:
        scale = float(np.max(np.abs(b))) if b.size else 0.0
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    return err / scale if scale > 0 else err


def assert_rel(a: np.ndarray, b: np.ndarray, tol: float = REL_F64, what: str = "", scale: float | None = None) -> None:
    err = rel_err(a, b, scale)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


def valid(lengths: np.ndarray, steps: int) -> np.ndarray:
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def assert_grads_rel(a: dict[str, np.ndarray], b: dict[str, np.ndarray], tol: float = REL_F64) -> None:
    """Every parameter's gradient, relative to the largest gradient entry of the model."""
    assert a.keys() == b.keys()
    scale = max(float(np.max(np.abs(v))) for v in b.values())
    for name in b:
        assert_rel(a[name], b[name], tol, what=f"dL/d{name}", scale=scale)


# -- the outside reference: torch's own encoder layer ------------------------------------------------
# The mapping of torch_impl/transformer.py's docstring: ``in_proj_weight`` (3d, d) is our q, k, v
# projections' weights stacked, ``in_proj_bias`` (3d,) their biases; the rest keeps its names.
LAYER_NAMES = (
    "self_attn.out_proj.weight",
    "self_attn.out_proj.bias",
    "linear1.weight",
    "linear1.bias",
    "linear2.weight",
    "linear2.bias",
    "norm1.weight",
    "norm1.bias",
    "norm2.weight",
    "norm2.bias",
)


def torch_layer_state(params: dict[str, np.ndarray], index: int) -> dict[str, torch.Tensor]:
    """Our canonical layer ``index`` as an ``nn.TransformerEncoderLayer`` state dict."""
    prefix = f"layers.{index}."
    state = {
        "self_attn.in_proj_weight": np.concatenate([params[f"{prefix}self_attn.{p}_proj.weight"] for p in "qkv"]),
        "self_attn.in_proj_bias": np.concatenate([params[f"{prefix}self_attn.{p}_proj.bias"] for p in "qkv"]),
        **{name: params[prefix + name] for name in LAYER_NAMES},
    }
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def torch_encoder_layer(spec: TransformerSpec, params: dict[str, np.ndarray], index: int) -> nn.TransformerEncoderLayer:
    """An ``nn.TransformerEncoderLayer`` (batch-first, float64) holding our layer ``index`` (strict: every
    tensor of the layer is set)."""
    layer = nn.TransformerEncoderLayer(
        d_model=spec.d_model,
        nhead=spec.num_heads,
        dim_feedforward=spec.d_ff,
        dropout=spec.dropout,
        activation=spec.activation,
        layer_norm_eps=spec.layer_norm_eps,
        batch_first=True,
        norm_first=spec.norm_first,
        dtype=torch.float64,
    )
    state = {k: v.to(layer.linear1.weight.dtype) for k, v in torch_layer_state(params, index).items()}
    layer.load_state_dict(state, strict=True)
    return layer
