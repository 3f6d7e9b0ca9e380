"""The fast recurrent path: a ``lax.scan`` with a hand-written reverse scan (``jax.custom_vjp``).

The input projection of every step is one matmul before the recurrence (or, for a small
input, folded into the step's matmul), the scan holds only the hidden matmul and the fused
gate math, and both directions of a bidirectional layer run in the same scan. The backward
pass keeps the per-step work to one matmul (W_hh^T dgates) and computes dW_hh afterwards as
one large matmul over all steps, instead of accumulating it step by step.

Inside the scan a step's arrays are (D, ., .): the leading axis D is 1, or 2 for both
directions of a layer. Two layouts of the other two axes:
  "batch":   states (D, B, H), gates (D, B, G*H), per-step matmul h @ W_hh^T;
  "feature": states (D, H, B), gates (D, G*H, B), per-step matmul W_hh @ h.
Both compute the same function (tests/test_jax_models.py runs both against the reference path);
which is faster depends on the matmul shapes XLA:CPU gets, so ``scan_layout`` picks by H and B.

XLA:CPU costs that shaped the step functions (measurements: benchmarks/NOTES.md):
- a fusion reading slices of a per-step slice of a stacked array is slow, so every residual
  is its own array;
- a value read by two fusions is recomputed in both, so gate activations and gate gradients
  pass through ``optimization_barrier``;
- sigmoid lowers to 1 / (1 + exp(-z)), slower than tanh, so sigmoid(z) = tanh(z / 2) / 2 + 1/2
  (an absolute error of an ulp of 1/2 on the gate).

jax only: torch's fast path is the framework's own ``nn.RNN/LSTM/GRU`` (see the exception list
in tests/test_import_rules.py).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments.spec.recurrent import GATES
from jax_impl.layers import Array

# feature-major from H >= 16 B: the measured crossover on a 2-core CPU (benchmarks/NOTES.md)
FEATURE_MAJOR_FROM_H_PER_B = 16


def scan_layout(hidden: int, batch: int) -> str:
    return "feature" if hidden >= FEATURE_MAJOR_FROM_H_PER_B * batch else "batch"


# A small input is projected inside the step's matmul, W [x_t, 1, h] (K = I + 1 + H), rather than
# hoisted, which writes a (T, B, G*H) array that XLA:CPU also copies into the loop (benchmarks/NOTES.md).
# Not for the GRU, whose n gate needs W_hn h apart from W_in x.
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
        XLA does not hoist a transpose out of a scan body)."""
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
        # which writes (T*B, G*H) as the scan reads it: no separate pass over it for the bias or its gradient
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


def scan_layer(
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
