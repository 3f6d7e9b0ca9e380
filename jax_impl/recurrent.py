"""RNN (tanh), LSTM, GRU, uni- or bidirectional, stacked: the math of ``experiments/spec/recurrent.py``.

Parameters are torch's, unmerged: ``weight_ih`` (G*H, in), ``weight_hh`` (G*H, H),
``bias_ih`` and ``bias_hh`` (G*H,), gate blocks i, f, g, o (LSTM) and r, z, n (GRU,
reset applied to ``W_hn h + b_hn``). Keeping both biases matters: an optimizer step
on Flax's merged bias moves differently from torch's pair.

Execution paths (``execution_path``):

- ``scan``: the custom-VJP scan of ``jax_impl/kernels/scan.py``, batch- or feature-major by
  the shapes (``scan_layout``; ``scan_batch`` / ``scan_feature`` force one).
- ``reference``: a plain scan, projection inside the step, differentiated by JAX
  itself. The control the fast path is tested against.
- ``cudnn``: cuDNN's LSTM through ``jax.experimental.rnn`` (``jax_impl/kernels/cudnn_lstm.py``):
  LSTM only, on CUDA, float32 (TF32 off: cuDNN's FMA math) or tf32, any number of layers, either
  direction, ragged batches (cuDNN's own padded IO); dropout between layers is ours, between
  separate calls. It returns no gate activations: ``extras["gates"]`` come from the scan kernel in
  the same call (outputs and final states stay cuDNN's).

The switch: ``on`` (or ``cudnn`` by name) is ``cudnn`` where it applies and raises
``PathUnavailable`` naming why elsewhere; ``auto`` is ``cudnn`` where it applies, else ``scan``,
knowingly: ``path_reason`` gives the sentence (the model keeps it as ``path_reason``); ``off`` is
``reference``.

Ragged batches: a step t >= length keeps the carry and outputs zero; the reverse
direction reverses each sequence within its own length (an index gather), runs
forward and is un-reversed, so final states are those at each sequence's length.
"""

from __future__ import annotations

import copy
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.errors import PathUnavailable
from experiments.spec.recurrent import EncoderFields, RecurrentSpec, encoder_schema
from jax_impl.kernels.cudnn_lstm import Kernel, cudnn_precision, cudnn_refusal, lstm_layers
from jax_impl.kernels.scan import scan_layer
from jax_impl.layers import Array, KeyStream, Linear, Params, SequenceModel, dropout, head_forward, param

EXECUTION_PATHS = ("scan", "scan_batch", "scan_feature", "reference", "cudnn")  # what ``execution_path`` names
WEIGHT_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
# lax.scan unroll of the fast path: 2 measured within noise of 1, 4 and 8 slower (benchmarks/NOTES.md)
DEFAULT_UNROLL = 1


def resolve_path(requested: str, cell: str, precision: str, device: str) -> str:
    """``auto`` -> cudnn where it applies, else scan; ``on``/``cudnn`` -> cudnn or ``PathUnavailable``;
    ``off`` -> reference; another path by name -> itself."""
    if requested in ("auto", "on", "cudnn"):
        why = cudnn_refusal(cell, precision, device)
        if why is None:
            return "cudnn"
        if requested == "auto":
            return "scan"  # knowingly: path_reason says why
        raise PathUnavailable(
            f"cudnn path for {cell} ({precision}, {device}): {why}; use path='auto' (scan) or 'off' (reference)"
        )
    if requested in EXECUTION_PATHS:
        return requested
    if requested == "off":
        return "reference"
    raise ValueError(f"unknown path {requested!r}")


def path_reason(requested: str, cell: str, precision: str, device: str) -> str | None:
    """Why ``auto`` took the scan path instead of cudnn (one line), or None where nothing fell back."""
    if requested != "auto":
        return None
    why = cudnn_refusal(cell, precision, device)
    return None if why is None else f"auto chose scan, not cudnn: {why}"


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
    if path == "cudnn":
        return cudnn_encoder(enc, cell, p, x, lengths, keys=keys, want_gates=want_gates, unroll=unroll, prefix=prefix)
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
            ys_, h_, c_, g_ = scan_layer(cell, unroll, jnp.stack(xins), *stacked, mask, want_gates, layout)
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


def cudnn_encoder(
    enc: EncoderFields,
    cell: str,
    p: Params,
    x: Array,
    lengths: Array,
    *,
    keys: KeyStream,
    want_gates: bool = False,
    unroll: int = DEFAULT_UNROLL,
    prefix: str = "rnn.",
    kernel: Kernel | None = None,
) -> dict[str, Any]:
    """``encoder_apply``'s result on the cudnn path (``kernel``: ``rnn.lstm``'s signature; tests pass
    ``cudnn_lstm.lstm_ref_kernel``). One cuDNN call for the whole stack, or one per layer where our
    dropout applies between layers: the same keys as the other paths draw, so the same masks."""
    if cell != "lstm":
        raise ValueError(f"the cudnn path runs an LSTM only, not {cell!r}")
    num_layers = enc.num_layers
    suffixes = ("", "_reverse")[: 2 if enc.bidirectional else 1]
    # layers[l][d]: (weight_ih, weight_hh, bias_ih, bias_hh) of layer l, direction d (torch's layout)
    layers = [[tuple(p[f"{prefix}{k}_l{i}{sfx}"] for k in WEIGHT_KINDS) for sfx in suffixes] for i in range(num_layers)]
    gates = None
    if want_gates:  # cuDNN gives no gate activations: the scan kernel's, over a copy of the same key stream
        scan = encoder_apply(
            enc, cell, p, x, lengths, path="scan", keys=copy.copy(keys), want_gates=True, unroll=unroll, prefix=prefix
        )
        gates = scan["gates"]  # (L*D, B, T, 4H)
    between = [keys.next() for _ in range(num_layers - 1)]  # drawn as the other paths draw them, in order
    split = enc.dropout > 0.0 and any(k is not None for k in between)
    groups = [[layer] for layer in range(num_layers)] if split else [list(range(num_layers))]
    precision = cudnn_precision()  # read here, inside the model's matmul_precision
    inp, h_n, c_n = x, [], []
    for group in groups:
        inp, h, c = lstm_layers(inp, lengths, [layers[i] for i in group], precision=precision, kernel=kernel)
        h_n.append(h)  # (len(group)*D, B, H)
        c_n.append(c)
        if group[-1] < num_layers - 1:
            inp = dropout(inp, enc.dropout, between[group[-1]])
    return {
        "outputs": inp,  # (B, T, D*H), zero at padded steps
        "h": jnp.concatenate(h_n),  # (L*D, B, H)
        "c": jnp.concatenate(c_n),
        "gates": gates,
    }


def pool_final(h: Array, directions: int) -> Array:
    """The last layer's final h per direction, concatenated (forward, reverse): (B, D*H)."""
    if directions == 1:
        return h[-1]
    return jnp.concatenate((h[-2], h[-1]), axis=-1)


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
    pooled = pool_final(enc["h"], 2 if spec.bidirectional else 1)  # (B, D*H)
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


class EncoderModel(SequenceModel):
    """The recurrent family's shared part: the encoder's parameters under ``rnn``, a linear ``head``,
    its paths, and the scan's ``unroll`` (a static option)."""

    def encoder_cell(self) -> str:
        return self.spec.cell

    def choose_path(self, requested: str) -> str:
        """The path (``resolve_path``); ``self.path_reason``: why ``auto`` fell back to scan, or None."""
        cell = self.encoder_cell()
        self.path_reason = path_reason(requested, cell, self.precision, self.device)
        return resolve_path(requested, cell, self.precision, self.device)

    def static_options(self, unroll: int = DEFAULT_UNROLL) -> dict[str, Any]:
        return {"unroll": int(unroll)}

    def create_params(self, dtype: Any) -> None:
        self.rnn = EncoderParams(self.spec, self.encoder_cell(), dtype)
        self.head = Linear(self.spec.head_features(), self.spec.head.out_size, dtype)


class RecurrentModel(EncoderModel):
    """``rnn``, ``lstm``, ``gru``, ``bilstm``: the encoder and a linear head.

    ``RecurrentModel(spec, params, precision=..., path=..., device=..., unroll=...)``;
    ``model(x, lengths)`` returns a dict: outputs, pooled, logits, final_states, extras.
    """

    apply = staticmethod(recurrent_apply)
