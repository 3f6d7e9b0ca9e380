"""RNN (tanh), LSTM, GRU, uni- or bidirectional, stacked: the math of ``experiments/spec/recurrent.py``.

Parameters are torch's, unmerged: ``weight_ih`` (G*H, in), ``weight_hh`` (G*H, H),
``bias_ih`` and ``bias_hh`` (G*H,), gate blocks i, f, g, o (LSTM) and r, z, n (GRU,
reset applied to ``W_hn h + b_hn``). Keeping both biases matters: an optimizer step
on Flax's merged bias moves differently from torch's pair.

Execution paths (``execution_path``):

- ``scan``: the input projection of every step in one matmul before the recurrence,
  then ``lax.scan`` with only the hidden matmul and the fused gate math inside,
  both directions of a layer in the same scan, batch- or feature-major by the
  shapes (``scan_layout``; ``scan_batch`` / ``scan_feature`` force one).
  Its backward pass is a hand-written reverse scan (``jax.custom_vjp``) that keeps
  the per-step work to one matmul (W_hh^T dgates) and computes dW_hh afterwards as
  one large matmul over all steps, instead of accumulating it step by step.
- ``reference``: a plain scan, projection inside the step, differentiated by JAX
  itself. The control the fast path is tested against.
- ``cudnn`` (``jax.experimental.rnn``) is not provided: asking for it (``path="on"``)
  raises ``PathUnavailable``; ``auto`` is ``scan``.

Ragged batches: a step t >= length keeps the carry and outputs zero; the reverse
direction reverses each sequence within its own length (an index gather), runs
forward and is un-reversed, so final states are those at each sequence's length.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.errors import PathUnavailable
from experiments.spec.recurrent import GATES, EncoderFields, RecurrentSpec, encoder_schema
from jax_impl.layers import (
    Array,
    KeyStream,
    Linear,
    Params,
    dropout,
    dtype_of,
    head_forward,
    load_params,
    matmul_precision,
    param,
    param_arrays,
)

PATHS = ("scan", "scan_batch", "scan_feature", "reference")
WEIGHT_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
# lax.scan unroll of the fast path. Measured on the 2-core CPU (LSTM, H=128, T=100, B=32,
# benchmarks/recurrent_step.py): 1 and 2 within noise of each other, 4 and 8 slower and
# slower to compile; so 1.
DEFAULT_UNROLL = 1


def resolve_path(requested: str, cell: str, precision: str, device: str) -> str:
    """``auto`` -> scan; ``off`` -> reference; ``on`` -> cudnn, which this backend does not provide."""
    if requested in PATHS:
        return requested
    if requested == "auto":
        return "scan"
    if requested == "off":
        return "reference"
    if requested in ("on", "cudnn"):
        where = "on a CUDA device" if device == "cuda" else "on CPU"
        raise PathUnavailable(
            f"cudnn path for {cell} ({precision}) {where}: jax_impl provides no cuDNN recurrent path; "
            "use path='auto' (scan) or 'off' (reference)"
        )
    raise ValueError(f"unknown path {requested!r}")


# -- cell math ---------------------------------------------------------------------
def _cell(cell: str, a: Array, r: Array, h: Array, c: Array) -> tuple[Array, Array, Array]:
    """One step from a = W_ih x + b_ih and r = W_hh h + b_hh: (h_new, c_new, gates)."""
    hidden = h.shape[-1]
    if cell == "rnn":
        h_new = jnp.tanh(a + r)
        return h_new, c, h_new
    if cell == "lstm":
        z = a + r
        i = jax.nn.sigmoid(z[:, :hidden])
        f = jax.nn.sigmoid(z[:, hidden : 2 * hidden])
        g = jnp.tanh(z[:, 2 * hidden : 3 * hidden])
        o = jax.nn.sigmoid(z[:, 3 * hidden :])
        c_new = f * c + i * g
        h_new = o * jnp.tanh(c_new)
        return h_new, c_new, jnp.concatenate([i, f, g, o], axis=-1)
    if cell == "gru":
        rg = jax.nn.sigmoid(a[:, :hidden] + r[:, :hidden])
        zg = jax.nn.sigmoid(a[:, hidden : 2 * hidden] + r[:, hidden : 2 * hidden])
        n = jnp.tanh(a[:, 2 * hidden :] + rg * r[:, 2 * hidden :])
        h_new = (1.0 - zg) * n + zg * h
        return h_new, c, jnp.concatenate([rg, zg, n], axis=-1)
    raise ValueError(f"unknown cell {cell!r}")


# -- reference path ----------------------------------------------------------------
def _reference_direction(
    cell: str, x: Array, w_ih: Array, w_hh: Array, b_ih: Array, b_hh: Array, mask: Array
) -> tuple[Array, Array, Array, Array]:
    """x (T, B, I), mask (T, B, 1) -> outputs (T, B, H), h_T, c_T, gates (T, B, G*H)."""
    batch, hidden = x.shape[1], w_hh.shape[1]
    zeros = jnp.zeros((batch, hidden), x.dtype)

    def step(carry, inp):
        h, c = carry
        x_t, m = inp
        a = x_t @ w_ih.T + b_ih
        r = h @ w_hh.T + b_hh
        h_new, c_new, gates = _cell(cell, a, r, h, c)
        carry = (jnp.where(m, h_new, h), jnp.where(m, c_new, c))
        return carry, (jnp.where(m, h_new, 0.0), jnp.where(m, gates, 0.0))

    (h_t, c_t), (ys, gates) = jax.lax.scan(step, (zeros, zeros), (x, mask))
    return ys, h_t, c_t, gates


# -- fast path -----------------------------------------------------------------------
# Inside the scan a step's arrays are (D, ., .): the leading axis D is 1, or 2 for both
# directions of a bidirectional layer in one scan. Two layouts of the other two axes:
#   "batch":   states (D, B, H), gates (D, B, G*H), per-step matmul h @ W_hh^T;
#   "feature": states (D, H, B), gates (D, G*H, B), per-step matmul W_hh @ h.
# Which is faster depends on the matmul shapes XLA:CPU gets (2-core Xeon, LSTM fwd+bwd, T=100,
# input 8): batch-major at H=128 B=32 (18 vs 26 ms), H=512 B=128 (0.63 vs 0.85 s), feature-major
# at H=1024 B=32 (0.50 vs 0.71 s), even at H=512 B=32; ``scan_layout`` picks by H and B. Both
# compute the same function (tests/test_jax_models.py runs both against the reference).
#
# XLA:CPU cost notes that shaped the step functions (measured, jax 0.10.2):
# - an elementwise fusion that reads slices of a per-step slice of a stacked array runs
#   ~4x slower than one reading whole per-step arrays, so every residual is its own array;
# - a value read by two fusions is recomputed in both, so the gate activations and the gate
#   gradients pass through ``optimization_barrier`` to be computed once;
# - sigmoid is lowered to 1 / (1 + exp(-z)), 2.7x the time of tanh per element, so
#   sigmoid(z) = tanh(z / 2) / 2 + 1/2 (an absolute error of an ulp of 1/2 on the gate).
FEATURE_MAJOR_FROM_H_PER_B = 16  # measured crossover: H=512 B=32 equal, H=1024 B=32 feature, H=512 B=128 batch


def scan_layout(hidden: int, batch: int) -> str:
    return "feature" if hidden >= FEATURE_MAJOR_FROM_H_PER_B * batch else "batch"


# A small input is projected inside the step's matmul, W [x_t, 1, h] (K = I + 1 + H), rather than
# hoisted: the hoisted projection writes a (T, B, G*H) array that XLA:CPU also copies into the
# loop (measured 1.6 + 1.5 ms of a 17 ms LSTM step at I=8, H=128, B=32, T=100), for a K that
# grows by (I + 1) / H. Not for the GRU, whose n gate needs W_hn h apart from W_in x.
FOLD_INPUT_MAX_FRACTION = 0.25


def fold_width(cell: str, input_size: int, hidden: int) -> int:
    """The per-step input features folded into the step's matmul: I + 1 (x and the bias), or 0 (hoisted)."""
    if cell in ("lstm", "rnn") and input_size + 1 <= FOLD_INPUT_MAX_FRACTION * hidden:
        return input_size + 1
    return 0


_barrier = jax.lax.optimization_barrier


def _bmm(a: Array, b: Array) -> Array:
    """(D, M, K) @ (D, K, N) -> (D, M, N); a plain 2-D matmul when D = 1."""
    if a.shape[0] == 1:
        return (a[0] @ b[0])[None]
    return jnp.einsum("dmk,dkn->dmn", a, b)


def _direction_rows(rows: int, a: Array) -> list[Array]:
    """(T, D, B, F) -> one (T*B, F) array per direction."""
    return [a[:, d].reshape(rows, a.shape[-1]) for d in range(a.shape[1])]


def _sigmoid(z: Array) -> Array:
    return 0.5 * jnp.tanh(0.5 * z) + 0.5


class _Layout:
    """Axis bookkeeping of one layout: where the features are, how the step matmuls go."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fa = 2 if name == "batch" else 1  # feature axis of a (D, ., .) step array

    def block(self, a: Array, k: int, hidden: int) -> Array:
        """Gate block k (H features) of a (D, ., .) array of G*H features."""
        return jax.lax.slice_in_dim(a, k * hidden, (k + 1) * hidden, axis=self.fa)

    def cat(self, parts: list[Array]) -> Array:
        return jnp.concatenate(parts, axis=self.fa)

    def column(self, v: np.ndarray, dtype: Any) -> Array:
        """A per-feature constant (G*H,) shaped to broadcast against (D, ., .)."""
        return jnp.asarray(v.reshape(-1) if self.name == "batch" else v.reshape(-1, 1), dtype)

    def recur_mm(self, w: Array, h: Array) -> Array:
        """W_hh h for every column: ``w`` is (D, G*H, H) (feature) or its transpose (D, H, G*H) (batch)."""
        return _bmm(h, w) if self.name == "batch" else _bmm(w, h)

    def back_mm(self, w_t: Array, dz: Array) -> Array:
        """W_hh^T dz, ``w_t`` the transpose of what ``recur_mm`` takes (made once, outside the loop:
        XLA does not hoist a transpose out of a scan body, measured at 43 us a step at H=128)."""
        return _bmm(dz, w_t) if self.name == "batch" else _bmm(w_t, dz)

    def weight(self, w_hh: Array) -> Array:
        """torch's (D, G*H, K) W_hh (or [W_ih | b | W_hh]) in the form ``recur_mm`` takes."""
        return jnp.swapaxes(w_hh, 1, 2) if self.name == "batch" else w_hh

    def split_weight(self, w: Array, fold: int) -> tuple[Array, Array]:
        """``recur_mm``'s weight -> its first ``fold`` input features (x and the bias) and the rest (W_hh)."""
        if self.name == "batch":
            return w[:, :fold, :], w[:, fold:, :]
        return w[:, :, :fold], w[:, :, fold:]

    def input_grad(self, dz: Array, w_in: Array) -> Array:
        """(T, D, ., .) gate gradients through the folded input weights to the per-step inputs."""
        if self.name == "batch":
            return jnp.einsum("tdbg,dkg->tdbk", dz, w_in)
        return jnp.einsum("tdgb,dgk->tdkb", dz, w_in)

    def weight_grad(self, dz: Array, h_prev: Array) -> Array:
        """The gradient of W_hh in ``recur_mm``'s form: sum over steps and batch of dz h_prev^T,
        (T, D, ., .) x2 -> (D, G*H, H) feature-major, its transpose (D, H, G*H) batch-major
        (contracting over the leading (T, B) axes, so XLA transposes h_prev, not the 4x larger dz)."""
        if self.name == "batch":
            t, _, b, _ = dz.shape
            rows = partial(_direction_rows, t * b)  # (T, D, B, F) -> D x (T*B, F), a bitcast when D = 1
            return jnp.stack([hd.T @ gd for hd, gd in zip(rows(h_prev), rows(dz), strict=True)])
        return jnp.einsum("tdgb,tdhb->dgh", dz, h_prev)

    def project(self, xs: Array, w_ih: Array, bias: Array) -> Array:
        """Every step's input projection plus ``bias`` (D, G*H): (D, B, T, I) -> (T, D, ., .) of G*H features."""
        if self.name == "feature":
            return jnp.einsum("dbti,dgi->tdgb", xs, w_ih) + bias[None, :, :, None]
        # x to (T*B, I + 1) first (I is small): a ones column carries the bias into the matmul,
        # which writes (T*B, G*H) as the scan reads it; no separate pass over xp for the bias,
        # none for its gradient (measured: each such pass over a (T, B, G*H) array ~1.5 ms at H=128)
        dirs, b, t, _ = xs.shape
        xt = jnp.swapaxes(xs, 1, 2).reshape(dirs, t * b, -1)  # (D, T*B, I)
        xt = jnp.concatenate([xt, jnp.ones((dirs, t * b, 1), xs.dtype)], axis=-1)
        wt = jnp.concatenate([jnp.swapaxes(w_ih, 1, 2), bias[:, None, :]], axis=1)  # (D, I + 1, G*H)
        return jnp.stack([(x @ w).reshape(t, b, -1) for x, w in zip(xt, wt, strict=True)], axis=1)

    def step_batch_axis(self) -> int:
        """The batch axis of a stacked (T, D, ., .) array."""
        return 2 if self.name == "batch" else 3


def _lstm_gate_scale(hidden: int) -> np.ndarray:
    """1/2 on the sigmoid rows (i, f, o), 1 on g: all four gates are one tanh,
    ``acts = s * tanh(s * z) + (1 - s)``."""
    s = np.full((4, hidden), 0.5)
    s[2] = 1.0
    return s


def _fast_forward(lay: _Layout, cell: str, unroll: int, fold: int, u: Array, w: Array, b_hn: Array, mask: Array):
    """The recurrence over per-step inputs ``u`` (T, D, ., .).

    ``fold = 0``: ``u`` is the pre-projected input (G*H features, every bias but b_hn in it) and
    ``w`` is W_hh as ``lay.weight`` gives it. ``fold = I + 1``: ``u`` is [x_t, 1] and ``w`` is
    [W_ih | b | W_hh], so the projection happens inside the step's one matmul (lstm, rnn).
    ``mask`` (T, 1, ., .) broadcasts over features.
    Returns outputs (T, D, ., .) of H features, the final (h, c), and the per-step residuals the
    backward scan reads, each its own array: LSTM (i, f, g, o, c_{t-1}, tanh c_t), GRU (r, z, n,
    W_hn h + b_hn), rnn none (its activation is the output). h_{t-1} is not kept: it is the
    previous step's output (valid steps are a prefix of each sequence, and a padded step's
    gradient is zero whatever its h_{t-1}).
    """
    hidden = (w.shape[1] if lay.name == "batch" else w.shape[2]) - fold
    state_shape = list(u.shape[1:])
    state_shape[lay.fa] = hidden
    zeros = jnp.zeros(state_shape, u.dtype)
    blk = partial(lay.block, hidden=hidden)
    if cell == "lstm":
        scale = lay.column(_lstm_gate_scale(hidden), u.dtype)
    if cell == "gru":
        b_hn = b_hn[:, None, :] if lay.name == "batch" else b_hn[:, :, None]  # (D, H) -> (D, ., .)

    def step(carry, inp):
        h, c = carry
        xp_t, m = inp
        if fold:  # W [x_t, 1, h]: projection, biases and recurrence in one matmul
            pre = lay.recur_mm(w, lay.cat([xp_t, h]))
        else:
            r = lay.recur_mm(w, h)  # (D, ., .) of G*H features
            pre = None if cell == "gru" else xp_t + r
        if cell == "lstm":
            acts = _barrier(scale * jnp.tanh(scale * pre) + (1 - scale))
            i, f, g, o = (blk(acts, k) for k in range(4))
            c_new = f * c + i * g
            tc = jnp.tanh(c_new)
            h_new = o * tc
            res = (i, f, g, o, c, tc)
        elif cell == "gru":
            hn = blk(r, 2) + b_hn
            rz = _barrier(_sigmoid(lay.cat([blk(xp_t, 0), blk(xp_t, 1)]) + lay.cat([blk(r, 0), blk(r, 1)])))
            rg, zg = blk(rz, 0), blk(rz, 1)
            n = jnp.tanh(blk(xp_t, 2) + rg * hn)
            h_new = n + zg * (h - n)
            c_new = c
            res = (rg, zg, n, hn)
        else:
            h_new = jnp.tanh(pre)
            c_new = c
            res = ()
        carry = (jnp.where(m, h_new, h), jnp.where(m, c_new, c) if cell == "lstm" else c)
        return carry, (jnp.where(m, h_new, 0.0), res)

    (h_t, c_t), (ys, res) = jax.lax.scan(step, (zeros, zeros), (u, mask), unroll=unroll)
    return ys, h_t, c_t, res


def _gates_of(lay: _Layout, cell: str, ys: Array, res: tuple) -> Array:
    """The per-step gate activations (T, D, ., .) of G*H features from the forward's residuals."""
    if cell == "rnn":
        return ys
    return jnp.concatenate(res[: GATES[cell]], axis=lay.fa + 1)  # stacked over T: one axis further


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _fast_recur(layout: str, cell: str, unroll: int, fold: int, u: Array, w: Array, b_hn: Array, mask: Array):
    ys, h_t, c_t, _ = _fast_forward(_Layout(layout), cell, unroll, fold, u, w, b_hn, mask)
    return ys, h_t, c_t


def _fast_recur_fwd(layout, cell, unroll, fold, u, w, b_hn, mask):
    ys, h_t, c_t, res = _fast_forward(_Layout(layout), cell, unroll, fold, u, w, b_hn, mask)
    return (ys, h_t, c_t), (res, ys, u if fold else None, w, mask)


def _fast_recur_bwd(layout, cell, unroll, fold, saved, cts):
    """Reverse scan: per step only W_hh^T @ dgates; dW afterwards, one matmul over all steps."""
    lay = _Layout(layout)
    res, ys, u, w, mask = saved
    d_ys, d_ht, d_ct = cts
    hidden = ys.shape[lay.fa + 1]
    blk = partial(lay.block, hidden=hidden)
    one = jnp.ones((), w.dtype)
    w_in, w_hh = lay.split_weight(w, fold)
    w_t = jnp.swapaxes(w_hh, 1, 2)
    # h_{t-1} of every step: the previous output, zero before the first
    h_prev = jnp.concatenate([jnp.zeros_like(ys[:1]), ys[:-1]], axis=0)

    def step(carry, inp):
        dh, dc = carry
        dy, m, r = inp
        dh_new = jnp.where(m, dh + dy, 0.0)
        dh_pass = jnp.where(m, 0.0, dh)
        if cell == "lstm":
            i, f, g, o, c_prev, tc = r
            dc_new = jnp.where(m, dc, 0.0) + dh_new * o * (one - tc * tc)
            dz = _barrier(
                lay.cat(
                    [
                        dc_new * g * i * (one - i),
                        dc_new * c_prev * f * (one - f),
                        dc_new * i * (one - g * g),
                        dh_new * tc * o * (one - o),
                    ]
                )
            )
            dh_prev = lay.back_mm(w_t, dz) + dh_pass
            dc_prev = dc_new * f + jnp.where(m, 0.0, dc)
            return (dh_prev, dc_prev), (dz, ())
        if cell == "gru":
            (rg, zg, n, hn), hp = r
            dn = dh_new * (one - zg)
            dan = dn * (one - n * n)
            drn = dan * rg
            dxp = _barrier(lay.cat([dan * hn * rg * (one - rg), dh_new * (hp - n) * zg * (one - zg), dan]))
            drh = lay.cat([blk(dxp, 0), blk(dxp, 1), drn])
            dh_prev = lay.back_mm(w_t, drh) + dh_new * zg + dh_pass
            return (dh_prev, dc), (dxp, drn)
        (y,) = r
        da = dh_new * (one - y * y)
        return (lay.back_mm(w_t, da) + dh_pass, dc), (da, ())

    per_step = {"lstm": res, "gru": (res, h_prev), "rnn": (ys,)}[cell]
    _, (dxp, drn) = jax.lax.scan(step, (d_ht, d_ct), (d_ys, mask, per_step), reverse=True, unroll=unroll)
    if cell == "gru":
        step_blk = partial(jax.lax.slice_in_dim, axis=lay.fa + 1)
        drh = jnp.concatenate([step_blk(dxp, 0, 2 * hidden), drn], axis=lay.fa + 1)
        d_bhn = jnp.sum(drn, axis=(0, lay.step_batch_axis()))
    else:
        drh = dxp
        d_bhn = jnp.zeros((w.shape[0], 0), w.dtype)
    if fold:  # the step's inputs were [x_t, 1, h_{t-1}]
        inputs = jnp.concatenate([u, h_prev], axis=lay.fa + 1)
        return lay.input_grad(dxp, w_in), lay.weight_grad(drh, inputs), d_bhn, None
    return dxp, lay.weight_grad(drh, h_prev), d_bhn, None


_fast_recur.defvjp(_fast_recur_fwd, _fast_recur_bwd)


def _fast_layer(
    cell: str,
    unroll: int,
    xs: Array,
    w_ih: Array,
    w_hh: Array,
    b_ih: Array,
    b_hh: Array,
    mask: Array,
    want_gates: bool,
    layout: str | None = None,
) -> tuple[Array, Array, Array, Array | None]:
    """All directions of one layer in one scan.

    xs (D, B, T, I) batch-first per direction; parameters stacked over D; mask (T, B, 1).
    Returns outputs (D, B, T, H), h_T and c_T (D, B, H), gates (D, B, T, G*H) or None.
    ``layout``: the scan's layout (default ``scan_layout(H, B)``).
    """
    hidden = w_hh.shape[-1]
    lay = _Layout(layout or scan_layout(hidden, xs.shape[1]))
    if cell == "gru":  # b_hr and b_hz fold into the projection; b_hn stays inside r * (...)
        folded = b_ih + jnp.concatenate([b_hh[:, : 2 * hidden], jnp.zeros_like(b_hh[:, 2 * hidden :])], axis=-1)
        b_hn = b_hh[:, 2 * hidden :]
    else:
        folded = b_ih + b_hh
        b_hn = jnp.zeros((w_hh.shape[0], 0), w_hh.dtype)
    fold = fold_width(cell, xs.shape[-1], hidden)
    if fold:  # per-step inputs [x_t, 1] (T, D, ., .) and the weight [W_ih | b | W_hh]
        x_t = jnp.transpose(xs, (2, 0, 1, 3))  # (T, D, B, I)
        u = jnp.concatenate([x_t, jnp.ones((*x_t.shape[:-1], 1), xs.dtype)], axis=-1)
        u = u if lay.name == "batch" else jnp.swapaxes(u, 2, 3)
        w = lay.weight(jnp.concatenate([w_ih, folded[:, :, None], w_hh], axis=2))
    else:  # every step's input projection in one matmul, laid out (T, D, ., .) for the scan
        u = lay.project(xs, w_ih, folded)
        w = lay.weight(w_hh)
    m = mask[:, None] if lay.name == "batch" else jnp.swapaxes(mask, 1, 2)[:, None]  # (T, 1, ., .)
    if want_gates:  # forward only (extras): the same forward, residuals kept
        ys, h_t, c_t, res = _fast_forward(lay, cell, unroll, fold, u, w, b_hn, m)
        gates = jnp.where(m, _gates_of(lay, cell, ys, res), 0.0)
    else:
        ys, h_t, c_t = _fast_recur(lay.name, cell, unroll, fold, u, w, b_hn, m)
        gates = None
    if lay.name == "batch":  # (T, D, B, H) -> (D, B, T, H)
        to_batch_first = partial(jnp.transpose, axes=(1, 2, 0, 3))
        return to_batch_first(ys), h_t, c_t, None if gates is None else to_batch_first(gates)
    to_batch_first = partial(jnp.transpose, axes=(1, 3, 0, 2))  # (T, D, H, B) -> (D, B, T, H)
    gates = None if gates is None else to_batch_first(gates)
    return to_batch_first(ys), jnp.swapaxes(h_t, 1, 2), jnp.swapaxes(c_t, 1, 2), gates


# -- the encoder ----------------------------------------------------------------------
def reverse_index(lengths: Array, seq_len: int) -> Array:
    """(B, T) index reversing each sequence within its own length (padded steps stay put)."""
    t = jnp.arange(seq_len)[None, :]
    return jnp.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)


def encoder_apply(
    enc: EncoderFields,
    cell: str,
    p: Params,
    x: Array,
    lengths: Array,
    *,
    path: str,
    keys: KeyStream,
    want_gates: bool = False,
    unroll: int = DEFAULT_UNROLL,
    prefix: str = "rnn.",
) -> dict[str, Any]:
    """outputs (B, T, D*H) zero at padded steps; h_n, c_n (L*D, B, H); gates (L*D, B, T, G*H) or None."""
    seq_len = x.shape[1]
    dirs = 2 if enc.bidirectional else 1
    mask = (jnp.arange(seq_len)[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1), built time-major (no transpose)
    rev = reverse_index(lengths, seq_len)[:, :, None] if dirs == 2 else None
    inp = x
    h_n, c_n, gates = [], [], []
    suffixes = ("", "_reverse")[:dirs]
    for layer in range(enc.num_layers):
        weights = [[p[f"{prefix}{k}_l{layer}{sfx}"] for sfx in suffixes] for k in WEIGHT_KINDS]
        xins = [inp] if dirs == 1 else [inp, jnp.take_along_axis(inp, rev, axis=1)]
        if path == "reference":
            results = [
                _reference_direction(cell, jnp.swapaxes(xin, 0, 1), *(w[d] for w in weights), mask)
                for d, xin in enumerate(xins)
            ]
            ys = [jnp.swapaxes(r[0], 0, 1) for r in results]
            h_t = [r[1] for r in results]
            c_t = [r[2] for r in results]
            g = [jnp.swapaxes(r[3], 0, 1) for r in results]
        else:
            stacked = [jnp.stack(w) for w in weights]  # (D, ...): both directions in one scan
            layout = {"scan": None, "scan_batch": "batch", "scan_feature": "feature"}[path]
            ys_, h_, c_, g_ = _fast_layer(cell, unroll, jnp.stack(xins), *stacked, mask, want_gates, layout)
            ys, h_t, c_t = list(ys_), list(h_), list(c_)
            g = list(g_) if want_gates else [None] * dirs
        if dirs == 2:  # back to each sequence's own time order
            ys[1] = jnp.take_along_axis(ys[1], rev, axis=1)
            if want_gates:
                g[1] = jnp.take_along_axis(g[1], rev, axis=1)
        h_n += h_t
        c_n += c_t
        if want_gates:
            gates += g
        inp = ys[0] if dirs == 1 else jnp.concatenate(ys, axis=-1)
        if layer < enc.num_layers - 1:
            inp = dropout(inp, enc.dropout, keys.next())
    return {
        "outputs": inp,
        "h": jnp.stack(h_n),
        "c": jnp.stack(c_n) if cell == "lstm" else None,
        "gates": jnp.stack(gates) if want_gates else None,
    }


def pooled_final(enc: EncoderFields, h_n: Array) -> Array:
    """The last layer's final h of each direction, concatenated (forward, reverse)."""
    dirs = 2 if enc.bidirectional else 1
    last = h_n[-dirs:]
    return jnp.concatenate(list(last), axis=-1) if dirs == 2 else last[0]


def recurrent_apply(
    spec: RecurrentSpec,
    p: Params,
    x: Array,
    lengths: Array,
    *,
    path: str,
    train: bool = False,
    key: Array | None = None,
    return_extras: bool = False,
    unroll: int = DEFAULT_UNROLL,
) -> dict[str, Any]:
    keys = KeyStream(key if train else None)
    enc = encoder_apply(spec, spec.cell, p, x, lengths, path=path, keys=keys, want_gates=return_extras, unroll=unroll)
    pooled = pooled_final(spec, enc["h"])
    logits = head_forward(p, enc["outputs"] if spec.head.per_step else pooled)
    final = {"h": enc["h"]}
    if enc["c"] is not None:
        final["c"] = enc["c"]
    extras = {"gates": enc["gates"]} if return_extras else {}
    return {"outputs": enc["outputs"], "pooled": pooled, "logits": logits, "final_states": final, "extras": extras}


# -- NNX modules ------------------------------------------------------------------------
class EncoderParams(nnx.Module):
    """torch's ``nn.RNN/LSTM/GRU`` parameters under their own names (``weight_ih_l0``, ...)."""

    def __init__(self, enc: EncoderFields, cell: str, dtype: Any) -> None:
        for name, shape in encoder_schema(enc, cell, prefix="").items():
            setattr(self, name, param(np.zeros(shape), dtype))


class RecurrentModel(nnx.Module):
    """``rnn``, ``lstm``, ``gru``, ``bilstm``: an encoder and a linear head.

    ``model(x, lengths)`` returns a dict: outputs, pooled, logits, final_states, extras.
    """

    def __init__(
        self,
        spec: RecurrentSpec,
        params: dict[str, np.ndarray] | None = None,
        *,
        precision: str = "float32",
        path: str = "auto",
        device: str = "cpu",
        unroll: int = DEFAULT_UNROLL,
    ) -> None:
        dtype = dtype_of(precision)
        self.spec = spec
        self.precision = precision
        self.device = device
        self.path = resolve_path(path, spec.cell, precision, device)
        self.unroll = int(unroll)
        self.rnn = EncoderParams(spec, spec.cell, dtype)
        self.head = Linear(spec.head_features(), spec.head.out_size, dtype)
        load_params(self, spec.init_params(0) if params is None else params, dtype)

    def static_key(self) -> tuple:
        return (type(self).__name__, self.spec, self.precision, self.path, self.unroll)

    def pure(self, *, train: bool = False, return_extras: bool = False):
        """A pure function ``(params, x, lengths, key) -> dict`` of this model's static config."""
        return partial(
            _pure_call, recurrent_apply, self.spec, self.precision, self.path, self.unroll, train, return_extras
        )

    def __call__(self, x: Array, lengths: Array, *, train: bool = False, key: Array | None = None,
                 return_extras: bool = False) -> dict[str, Any]:  # fmt: skip
        return self.pure(train=train, return_extras=return_extras)(param_arrays(self), x, lengths, key)


def _pure_call(apply, spec, precision, path, unroll, train, return_extras, params, x, lengths, key):
    with matmul_precision(precision):
        return apply(
            spec, params, x, lengths, path=path, train=train, key=key, return_extras=return_extras, unroll=unroll
        )
