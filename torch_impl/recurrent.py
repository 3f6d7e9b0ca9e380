"""The recurrent family (rnn, lstm, gru; bidirectional through the flag): ``experiments/spec/recurrent.py``.

Two paths over the SAME parameters (those of one ``nn.RNN/LSTM/GRU``, no copies):

- fast (``path="on"``, the ``auto`` default): the module itself, with
  ``pack_padded_sequence(enforce_sorted=False)`` for a ragged batch. A batch whose lengths all
  equal T is not packed (same numbers, less work). Packing gives zero outputs at padded steps and
  each sequence's final state at its own length. The module runs one of three kernels, named by
  ``execution_path`` (``kernel_rule`` decides, by the rule tests/test_torch_kernels.py verifies
  with the profiler):
  ``cudnn`` (CUDA, cuDNN accepts the weights); ``onednn`` (oneDNN's fused RNN primitive,
  ``aten::mkldnn_rnn_layer``: CPU, LSTM only, float32 (bfloat16 where the CPU has it), oneDNN
  enabled, and an unpacked batch); ``aten`` otherwise (ATen's per-step ops: ``mm``, ``sigmoid``,
  ``tanh`` ... every step). ``execution_path`` names the kernel of a full-length batch; a ragged
  batch runs packed, which oneDNN cannot take: with ``auto``/``on`` it runs ``aten``, knowingly.
- reference (``path="off"``): an explicit per-step loop of the cell equations that can
  also return the gate activations, ``extras["gates"]`` (L*D, B, T, G*H), after their
  nonlinearity, in canonical gate order (i, f, g, o / r, z, n / h), zero at padded steps.
  A padded step leaves the state as it was: forward, the state stops at the length;
  reverse, the state stays zero until the sequence's last valid step.

A kernel by name (``path="onednn" | "aten" | "cudnn" | "reference"``) forces it: ``aten`` turns
oneDNN (CPU) or cuDNN (CUDA) off around the forward (the backward follows the forward's kernel,
whatever the flags then say); ``onednn`` turns oneDNN on around it; a named kernel that cannot
run here (``onednn`` for a GRU, in float64, on CUDA, for a ragged batch; ``cudnn`` on CPU)
raises ``PathUnavailable``, never falls back.

Gates need the reference path: with ``path="on"`` (or a fused kernel by name) asking for them
raises ``PathUnavailable``; with ``auto`` that call runs the reference path, knowingly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from experiments.errors import PathUnavailable
from experiments.spec.recurrent import EncoderFields, RecurrentSpec
from torch_impl.layers import Output, SequenceModel, check_path, make_head, valid_mask

RNN_MODULES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
EXECUTION_PATHS = ("cudnn", "onednn", "aten", "reference")  # what ``execution_path`` names
NAMED_KERNELS = ("cudnn", "onednn", "aten")  # the fast path's kernels, forced by name


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


def onednn_refusal(rnn: nn.RNNBase, cell: str, *, ragged: bool = False) -> str | None:
    """Why oneDNN's fused RNN kernel cannot run these weights (and this batch), or None where it can.

    ATen's ``use_mkldnn`` (aten/src/ATen/native/RNN.cpp), as tests/test_torch_kernels.py checks
    it in the profiler (torch 2.13): only ``lstm`` asks for it (RNN and GRU have no oneDNN call);
    CPU tensors; float32, or bfloat16 where the CPU has native bf16; never a packed sequence;
    layers, directions, dropout, train/eval and grad mode do not matter. The global enable flag
    is left out: ``auto`` reads it at call time (``kernel_rule``), ``onednn`` sets it.
    """
    w = rnn.weight_ih_l0
    if cell != "lstm":
        return f"torch calls oneDNN's RNN kernel for LSTM only, not {cell}"
    if w.device.type != "cpu":
        return f"oneDNN's RNN kernel runs on CPU, not {w.device.type}"
    if not torch.backends.mkldnn.is_available():
        return "this torch build has no oneDNN"
    if w.dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "oneDNN's bfloat16 RNN needs a CPU with native bf16 (AVX-512 BF16 or AMX), which this one lacks"
    if w.dtype not in (torch.float32, torch.bfloat16):
        return f"oneDNN's RNN kernel takes float32 or bfloat16, not {str(w.dtype).removeprefix('torch.')}"
    if rnn.proj_size:
        return "oneDNN's RNN kernel takes no LSTM projection"
    if ragged:
        return "a ragged batch runs packed, and oneDNN's RNN kernel takes no packed sequence"
    return None


def kernel_rule(rnn: nn.RNNBase, cell: str, *, ragged: bool = False) -> str:
    """The kernel torch's own dispatch takes for these weights and batch, under the flags as they are now."""
    w = rnn.weight_ih_l0
    if w.is_cuda:
        return "cudnn" if torch.backends.cudnn.is_acceptable(w) else "aten"
    if torch.backends.mkldnn.enabled and onednn_refusal(rnn, cell, ragged=ragged) is None:
        return "onednn"
    return "aten"


def check_kernel(rnn: nn.RNNBase, cell: str, kernel: str, *, ragged: bool = False) -> None:
    """Raise ``PathUnavailable`` where the kernel asked for by name cannot run (never a silent fallback)."""
    w = rnn.weight_ih_l0
    why = None
    if kernel == "onednn":
        why = onednn_refusal(rnn, cell, ragged=ragged)
    elif kernel == "cudnn" and not (w.is_cuda and torch.backends.cudnn.is_acceptable(w)):
        why = "cuDNN needs a CUDA device and weights it accepts (cuDNN enabled, a dtype it takes)"
    if why is not None:
        raise PathUnavailable(f"path {kernel!r} for {cell}: {why}; use path='auto' or 'aten'")


@contextlib.contextmanager
def backend_flag(flag: Any, enabled: bool) -> Iterator[None]:
    """Set one ``torch.backends`` enable flag for a block. Only ``enabled``: the ``flags()`` context
    managers also reset oneDNN's TF32 / cuDNN's benchmark switches, which are not ours to touch."""
    saved = flag.enabled
    flag.enabled = enabled
    try:
        yield
    finally:
        flag.enabled = saved


def kernel_flags(kernel: str, device: torch.device) -> contextlib.AbstractContextManager[None]:
    """The flags that make torch's dispatch take ``kernel`` for one forward (``auto``: as they are)."""
    if kernel == "onednn":
        return backend_flag(torch.backends.mkldnn, True)
    if kernel == "aten":
        return backend_flag(torch.backends.cudnn if device.type == "cuda" else torch.backends.mkldnn, False)
    return contextlib.nullcontext()


def use_reference(path: str, want_gates: bool) -> bool:
    """Which path one call takes; ``on`` (or a fused kernel by name) with gates raises instead of falling back."""
    if path in ("off", "reference"):
        return True
    if want_gates:
        if path != "auto":
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
    kernel: str = "auto",
) -> EncoderOut:
    """``lengths``: (B,) int64 on the CPU, or None when every sequence fills all T steps. ``kernel``:
    ``auto`` (torch's own dispatch) or a kernel by name (``onednn``, ``aten``, ``cudnn``), checked."""
    if reference:
        return reference_encoder(rnn, cell, x, lengths, want_gates=want_gates)
    if kernel != "auto":
        check_kernel(rnn, cell, kernel, ragged=lengths is not None)
    with kernel_flags(kernel, x.device):
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
        check_path(path, EXECUTION_PATHS)  # a torch path name that is not this family's (fused_attention)
        self.cell = cell
        self.directions = spec.directions
        self.rnn = make_encoder(spec, cell)

    def execution_path(self) -> str:
        """The kernel a full-length batch runs (a ragged one runs ``aten`` under ``auto``/``on``);
        a kernel asked for by name that cannot run on these weights raises ``PathUnavailable``."""
        if self.path in ("off", "reference"):
            return "reference"
        if self.path in NAMED_KERNELS:
            check_kernel(self.rnn, self.cell, self.path)
            return self.path
        return kernel_rule(self.rnn, self.cell)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None, return_extras: bool) -> EncoderOut:
        """The encoder on the path this call takes (gates need the reference path)."""
        reference = use_reference(self.path, return_extras)
        kernel = self.path if self.path in NAMED_KERNELS else "auto"
        return run_encoder(
            self.rnn, self.cell, x, lengths, reference=reference, want_gates=return_extras, kernel=kernel
        )


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
