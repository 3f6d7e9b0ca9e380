"""The recurrent family (rnn, lstm, gru; bidirectional through the flag): ``experiments/spec/recurrent.py``.

Two paths over the SAME parameters (those of one ``nn.RNN/LSTM/GRU``, no copies):

- fast (``path="on"``, the ``auto`` default): the module itself, ATen on CPU and cuDNN
  on GPU, with ``pack_padded_sequence(enforce_sorted=False)`` for a ragged batch. A
  batch whose lengths all equal T is not packed (same numbers, less work). Packing
  gives zero outputs at padded steps and each sequence's final state at its own length.
- reference (``path="off"``): an explicit per-step loop of the cell equations that can
  also return the gate activations, ``extras["gates"]`` (L*D, B, T, G*H), after their
  nonlinearity, in canonical gate order (i, f, g, o / r, z, n / h), zero at padded steps.
  A padded step leaves the state as it was: forward, the state stops at the length;
  reverse, the state stays zero until the sequence's last valid step.

Gates need the reference path: with ``path="on"`` asking for them raises
``PathUnavailable``; with ``auto`` that call runs the reference path, knowingly.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from experiments.errors import PathUnavailable
from experiments.spec.recurrent import EncoderFields, RecurrentSpec
from torch_impl.layers import Output, SequenceModel, make_head, valid_mask

RNN_MODULES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
EXECUTION_PATHS = ("cudnn", "aten", "reference")  # what ``execution_path`` names


def make_encoder(spec: EncoderFields, cell: str) -> nn.RNNBase:
    """``nn.RNN/LSTM/GRU`` whose parameter names, under ``rnn.``, are the canonical ones."""
    kwargs = {
        "input_size": spec.input_size,
        "hidden_size": spec.hidden_size,
        "num_layers": spec.num_layers,
        "bidirectional": spec.bidirectional,
        "batch_first": True,
        # between layers only: with one layer it would do nothing (and torch warns)
        "dropout": spec.dropout if spec.num_layers > 1 else 0.0,
    }
    if cell == "rnn":
        kwargs["nonlinearity"] = "tanh"
    return RNN_MODULES[cell](**kwargs)


class EncoderOut(NamedTuple):
    outputs: torch.Tensor  # (B, T, D*H), zero at padded steps
    h: torch.Tensor  # (L*D, B, H), index 2*layer + direction
    c: torch.Tensor | None  # LSTM only
    gates: torch.Tensor | None  # (L*D, B, T, G*H), reference path only


def fast_path_name(rnn: nn.RNNBase) -> str:
    """``cudnn`` where torch's RNN dispatch would take cuDNN for these weights, else ``aten``."""
    w = rnn.weight_ih_l0
    if w.is_cuda and torch.backends.cudnn.is_acceptable(w):
        return "cudnn"
    return "aten"


def use_reference(path: str, want_gates: bool) -> bool:
    """Which path one call takes; ``on`` with gates raises instead of falling back."""
    if path == "off":
        return True
    if want_gates:
        if path == "on":
            raise PathUnavailable("gate activations need the reference path; build with path='auto' or 'off'")
        return True  # auto: the reference path, knowingly, for this call
    return False


def run_encoder(
    rnn: nn.RNNBase,
    cell: str,
    x: torch.Tensor,
    lengths: torch.Tensor | None,
    *,
    reference: bool,
    want_gates: bool = False,
) -> EncoderOut:
    """``lengths``: (B,) int64 on the CPU, or None when every sequence fills all T steps."""
    if reference:
        return reference_encoder(rnn, cell, x, lengths, want_gates=want_gates)
    if lengths is None:
        out, hx = rnn(x)
    else:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, hx = rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    if cell == "lstm":
        return EncoderOut(out, hx[0], hx[1], None)
    return EncoderOut(out, hx, None, None)


def pool_final(h: torch.Tensor, directions: int) -> torch.Tensor:
    """The last layer's final h per direction, concatenated (forward, reverse): (B, D*H)."""
    if directions == 1:
        return h[-1]
    return torch.cat((h[-2], h[-1]), dim=-1)


# -- the reference path ---------------------------------------------------------------------------


def _cell_step(
    cell: str, a_t: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None, w_hh: torch.Tensor, b_hh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """One step: new h, new c, and the gate activations (canonical order)."""
    r_h = F.linear(h, w_hh, b_hh)
    if cell == "lstm":
        i, f, g, o = (a_t + r_h).chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c_new = f * c + i * g
        h_new = o * torch.tanh(c_new)
        return h_new, c_new, torch.cat((i, f, g, o), dim=1)
    if cell == "gru":
        a_r, a_z, a_n = a_t.chunk(3, dim=1)
        h_r, h_z, h_n = r_h.chunk(3, dim=1)
        r = torch.sigmoid(a_r + h_r)
        z = torch.sigmoid(a_z + h_z)
        n = torch.tanh(a_n + r * h_n)
        h_new = n + z * (h - n)  # = (1 - z) * n + z * h, in ATen's order of operations
        return h_new, None, torch.cat((r, z, n), dim=1)
    h_new = torch.tanh(a_t + r_h)
    return h_new, None, h_new


def _run_direction(
    cell: str,
    x: torch.Tensor,
    weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    mask: torch.Tensor | None,
    reverse: bool,
    want_gates: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    w_ih, w_hh, b_ih, b_hh = weights
    batch, steps, _ = x.shape
    hidden = w_hh.shape[1]
    a = F.linear(x, w_ih, b_ih)  # the input projection of every step at once: (B, T, G*H)
    h = x.new_zeros(batch, hidden)
    c = x.new_zeros(batch, hidden) if cell == "lstm" else None
    outs: list[torch.Tensor] = [h] * steps
    gates: list[torch.Tensor] = [h] * steps
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        h_new, c_new, act = _cell_step(cell, a[:, t], h, c, w_hh, b_hh)
        if mask is None:
            h, c = h_new, c_new
            outs[t] = h_new
            gates[t] = act
        else:
            m = mask[:, t, None]  # (B, 1): a padded step keeps the state and outputs zero
            h = torch.where(m, h_new, h)
            if c is not None:
                c = torch.where(m, c_new, c)
            outs[t] = torch.where(m, h_new, 0.0)
            gates[t] = torch.where(m, act, 0.0)
    return torch.stack(outs, dim=1), h, c, torch.stack(gates, dim=1) if want_gates else None


def reference_encoder(
    rnn: nn.RNNBase, cell: str, x: torch.Tensor, lengths: torch.Tensor | None, *, want_gates: bool = False
) -> EncoderOut:
    """The cell equations of the spec, step by step, over ``rnn``'s own parameters."""
    directions = 2 if rnn.bidirectional else 1
    mask = None if lengths is None else valid_mask(lengths.to(x.device), x.shape[1])
    layer_in = x
    hs, cs, gates = [], [], []
    for layer in range(rnn.num_layers):
        if layer > 0 and rnn.dropout > 0 and rnn.training:
            layer_in = F.dropout(layer_in, rnn.dropout, training=True)
        outs = []
        for direction, sfx in enumerate(("", "_reverse")[:directions]):
            weights = tuple(
                getattr(rnn, f"{kind}_l{layer}{sfx}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            out, h, c, g = _run_direction(cell, layer_in, weights, mask, direction == 1, want_gates)
            outs.append(out)
            hs.append(h)
            cs.append(c)
            gates.append(g)
        layer_in = outs[0] if directions == 1 else torch.cat(outs, dim=-1)
    return EncoderOut(
        outputs=layer_in,
        h=torch.stack(hs),
        c=torch.stack(cs) if cell == "lstm" else None,
        gates=torch.stack(gates) if want_gates else None,
    )


# -- the model --------------------------------------------------------------------------------------


class EncoderModel(SequenceModel):
    """The recurrent family's shared part: an ``nn.RNN/LSTM/GRU`` named ``rnn`` and its paths."""

    def __init__(self, spec: EncoderFields, cell: str, path: str = "auto") -> None:
        super().__init__(spec, path)
        self.cell = cell
        self.directions = spec.directions
        self.rnn = make_encoder(spec, cell)

    def execution_path(self) -> str:
        return "reference" if self.path == "off" else fast_path_name(self.rnn)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None, return_extras: bool) -> EncoderOut:
        """The encoder on the path this call takes (gates need the reference path)."""
        reference = use_reference(self.path, return_extras)
        return run_encoder(self.rnn, self.cell, x, lengths, reference=reference, want_gates=return_extras)


class RecurrentModel(EncoderModel):
    """rnn / lstm / gru / bilstm: the encoder and a linear ``head``."""

    def __init__(self, spec: RecurrentSpec, path: str = "auto") -> None:
        super().__init__(spec, spec.cell, path)
        self.per_step = spec.head.per_step
        self.head = make_head(spec)

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        return_extras: bool = False,
    ) -> Output:
        """``lengths`` (B,) int64 on the CPU or None (all full); ``mask`` is not needed here."""
        enc = self.encode(x, lengths, return_extras)
        pooled = pool_final(enc.h, self.directions)  # (B, D*H)
        logits = self.head(enc.outputs if self.per_step else pooled)
        extras = {"gates": enc.gates} if return_extras else {}
        return Output(enc.outputs, pooled, logits, enc.h, enc.c, extras)
