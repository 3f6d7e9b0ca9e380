"""RNN (tanh), LSTM, GRU, uni- or bidirectional, stacked: the math of ``experiments/spec/recurrent.py``.

Parameters are torch's, unmerged: ``weight_ih`` (G*H, in), ``weight_hh`` (G*H, H),
``bias_ih`` and ``bias_hh`` (G*H,), gate blocks i, f, g, o (LSTM) and r, z, n (GRU,
reset applied to ``W_hn h + b_hn``). Keeping both biases matters: an optimizer step
on Flax's merged bias moves differently from torch's pair.

Execution paths (``execution_path``):

- ``scan``: the input projection of every step in one matmul before the recurrence,
  then ``lax.scan`` with only the hidden matmul and the fused gate math inside,
  feature-major (states (H, B)), both directions of a layer in the same scan.
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
from experiments.spec.recurrent import EncoderFields, RecurrentSpec, encoder_schema
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
    step_mask,
)

PATHS = ("scan", "reference")
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
# Feature-major inside the scan: a state is (D, H, B), the gates (D, G*H, B), so that the
# per-step matmul is W_hh @ h (torch's (G*H, H) layout as it is) and each gate block is a
# contiguous slice of rows. Measured on XLA:CPU, this is the faster layout for the small-B
# matmul at large H (150 vs 103 GFLOP/s at H=512, B=32, one core) and no slower at H=128.
# The leading axis D is 1, or 2 for both directions of a bidirectional layer in one scan.
def _bmm(a: Array, b: Array) -> Array:
    """(D, M, K) @ (D, K, N) -> (D, M, N); a plain 2-D matmul when D = 1."""
    if a.shape[0] == 1:
        return (a[0] @ b[0])[None]
    return jnp.einsum("dmk,dkn->dmn", a, b)


def _fast_forward(cell: str, unroll: int, xp: Array, w: Array, b_hn: Array, mask: Array):
    """The recurrence over pre-projected inputs ``xp`` (T, D, G*H, B), every bias but b_hn folded in.

    ``w`` is W_hh (D, G*H, H); ``mask`` (T, 1, 1, B). Returns outputs (T, D, H, B), final (h, c)
    (D, H, B), and the residuals the backward scan reads.
    """
    _, dirs, _, batch = xp.shape
    hidden = w.shape[2]
    zeros = jnp.zeros((dirs, hidden, batch), xp.dtype)
    b_hn = b_hn[:, :, None] if cell == "gru" else b_hn

    def step(carry, inp):
        h, c = carry
        xp_t, m = inp
        r = _bmm(w, h)
        if cell == "lstm":
            z = xp_t + r
            s = jax.nn.sigmoid(z)
            g = jnp.tanh(z[:, 2 * hidden : 3 * hidden])
            i, f, o = s[:, :hidden], s[:, hidden : 2 * hidden], s[:, 3 * hidden :]
            c_new = f * c + i * g
            tc = jnp.tanh(c_new)
            h_new = o * tc
            acts = jnp.concatenate([i, f, g, o], axis=1)
            res = (acts, h, c, tc)
        elif cell == "gru":
            hn = r[:, 2 * hidden :] + b_hn
            rg = jax.nn.sigmoid(xp_t[:, :hidden] + r[:, :hidden])
            zg = jax.nn.sigmoid(xp_t[:, hidden : 2 * hidden] + r[:, hidden : 2 * hidden])
            n = jnp.tanh(xp_t[:, 2 * hidden :] + rg * hn)
            h_new = n + zg * (h - n)
            c_new = c
            acts = jnp.concatenate([rg, zg, n], axis=1)
            res = (acts, h, hn)
        else:
            h_new = jnp.tanh(xp_t + r)
            c_new = c
            acts = h_new
            res = (acts, h)
        carry = (jnp.where(m, h_new, h), jnp.where(m, c_new, c) if cell == "lstm" else c)
        return carry, (jnp.where(m, h_new, 0.0), res)

    (h_t, c_t), (ys, res) = jax.lax.scan(step, (zeros, zeros), (xp, mask), unroll=unroll)
    return ys, h_t, c_t, res


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _fast_recur(cell: str, unroll: int, xp: Array, w: Array, b_hn: Array, mask: Array):
    ys, h_t, c_t, _ = _fast_forward(cell, unroll, xp, w, b_hn, mask)
    return ys, h_t, c_t


def _fast_recur_fwd(cell, unroll, xp, w, b_hn, mask):
    ys, h_t, c_t, res = _fast_forward(cell, unroll, xp, w, b_hn, mask)
    return (ys, h_t, c_t), (res, w, mask)


def _fast_recur_bwd(cell, unroll, saved, cts):
    """Reverse scan: per step only W_hh^T @ dgates; dW_hh afterwards, one matmul over all steps."""
    res, w, mask = saved
    d_ys, d_ht, d_ct = cts
    hidden = w.shape[2]
    w_t = jnp.swapaxes(w, 1, 2)  # (D, H, G*H), transposed once outside the loop
    one = jnp.ones((), w.dtype)

    def step(carry, inp):
        dh, dc = carry
        dy, m, r = inp
        dh_new = jnp.where(m, dh + dy, 0.0)
        dh_pass = jnp.where(m, 0.0, dh)
        if cell == "lstm":
            acts, _, c_prev, tc = r
            i, f = acts[:, :hidden], acts[:, hidden : 2 * hidden]
            g, o = acts[:, 2 * hidden : 3 * hidden], acts[:, 3 * hidden :]
            dc_new = jnp.where(m, dc, 0.0) + dh_new * o * (one - tc * tc)
            dz = jnp.concatenate(
                [
                    dc_new * g * i * (one - i),
                    dc_new * c_prev * f * (one - f),
                    dc_new * i * (one - g * g),
                    dh_new * tc * o * (one - o),
                ],
                axis=1,
            )
            dh_prev = _bmm(w_t, dz) + dh_pass
            dc_prev = dc_new * f + jnp.where(m, 0.0, dc)
            return (dh_prev, dc_prev), (dz, dz[:, :0])
        if cell == "gru":
            acts, h_prev, hn = r
            rg, zg, n = acts[:, :hidden], acts[:, hidden : 2 * hidden], acts[:, 2 * hidden :]
            dn = dh_new * (one - zg)
            dan = dn * (one - n * n)
            drg = dan * hn
            dzg = dh_new * (h_prev - n)
            dxp = jnp.concatenate([drg * rg * (one - rg), dzg * zg * (one - zg), dan], axis=1)
            drn = dan * rg
            drh = jnp.concatenate([dxp[:, : 2 * hidden], drn], axis=1)
            dh_prev = _bmm(w_t, drh) + dh_new * zg + dh_pass
            return (dh_prev, dc), (dxp, drn)
        (acts, _) = r
        da = dh_new * (one - acts * acts)
        return (_bmm(w_t, da) + dh_pass, dc), (da, da[:, :0])

    _, (dxp, drn) = jax.lax.scan(step, (d_ht, d_ct), (d_ys, mask, res), reverse=True, unroll=unroll)
    h_prev = res[1]  # (T, D, H, B)
    if cell == "gru":
        drh = jnp.concatenate([dxp[:, :, : 2 * hidden], drn], axis=2)
        d_bhn = jnp.sum(drn, axis=(0, 3))
    else:
        drh = dxp
        d_bhn = jnp.zeros((w.shape[0], 0), w.dtype)
    d_w = jnp.einsum("tdgb,tdhb->dgh", drh, h_prev)
    return dxp, d_w, d_bhn, None


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
) -> tuple[Array, Array, Array, Array | None]:
    """All directions of one layer in one scan.

    xs (D, B, T, I) batch-first per direction; parameters stacked over D; mask (T, B, 1).
    Returns outputs (D, B, T, H), h_T and c_T (D, B, H), gates (D, B, T, G*H) or None.
    """
    hidden = w_hh.shape[-1]
    if cell == "gru":  # b_hr and b_hz fold into the projection; b_hn stays inside r * (...)
        folded = b_ih + jnp.concatenate([b_hh[:, : 2 * hidden], jnp.zeros_like(b_hh[:, 2 * hidden :])], axis=-1)
        b_hn = b_hh[:, 2 * hidden :]
    else:
        folded = b_ih + b_hh
        b_hn = jnp.zeros((w_hh.shape[0], 0), w_hh.dtype)
    # every step's input projection in one matmul, laid out (T, D, G*H, B) for the scan
    xp = jnp.einsum("dbti,dgi->tdgb", xs, w_ih) + folded[None, :, :, None]
    m = jnp.swapaxes(mask, 1, 2)[:, None]  # (T, 1, 1, B)
    if want_gates:  # forward only (extras): the same forward, residuals kept
        ys, h_t, c_t, res = _fast_forward(cell, unroll, xp, w_hh, b_hn, m)
        gates = jnp.transpose(jnp.where(m, res[0], 0.0), (1, 3, 0, 2))
    else:
        ys, h_t, c_t = _fast_recur(cell, unroll, xp, w_hh, b_hn, m)
        gates = None
    # (T, D, H, B) -> (D, B, T, H); (D, H, B) -> (D, B, H)
    return jnp.transpose(ys, (1, 3, 0, 2)), jnp.swapaxes(h_t, 1, 2), jnp.swapaxes(c_t, 1, 2), gates


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
    mask = step_mask(lengths, seq_len).T[:, :, None]  # (T, B, 1)
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
            ys_, h_, c_, g_ = _fast_layer(cell, unroll, jnp.stack(xins), *stacked, mask, want_gates)
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
