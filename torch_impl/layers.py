"""Small pieces every torch model shares: precision, devices, masks, the model base, the head and its
loss, canonical parameters in and out.

``jax_impl/layers.py`` has the same public names with the same signatures (``precision_dtype``,
``resolve_device``, ``valid_mask``, ``DeviceBatch``, ``SequenceModel``, ``head_loss``, ``load_params``,
``export_params``, ``to_numpy``); what only one framework needs is marked so in its docstring.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from experiments.backend import PATH_CHOICES, PATH_NAMES
from experiments.errors import UserError
from experiments.spec import ArchSpec, HeadSpec

DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "tf32": torch.float32,
    "bfloat16": torch.bfloat16,
}


def precision_dtype(precision: str) -> torch.dtype:
    """The parameter/compute dtype of a named precision."""
    if precision not in DTYPES:
        raise UserError("precision", f"unknown precision {precision!r}", f"use one of {', '.join(DTYPES)}")
    return DTYPES[precision]


def set_tf32(enabled: bool) -> None:
    """(torch only) TF32 for matmuls and cuDNN (RNNs, convolutions): on only for the ``tf32`` precision."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def apply_precision(precision: str) -> torch.dtype:
    """(torch only) The dtype of ``precision``; sets the process-wide TF32 flags to match it."""
    dtype = precision_dtype(precision)
    set_tf32(precision == "tf32")
    return dtype


def resolve_device(device: str) -> torch.device:
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UserError("device", "cuda is not available to this torch build", "use --device cpu")
        return torch.device("cuda")
    raise UserError("device", f"unknown device {device!r}", "use cpu or cuda")


# Every path a torch model names (``EXECUTION_PATHS`` of the model files; a test keeps them equal):
# a grid may ask for one by name, as for jax's (``scan_batch``...).
TORCH_PATH_NAMES: tuple[str, ...] = PATH_NAMES["torch"]


def check_path(path: str, names: tuple[str, ...] = TORCH_PATH_NAMES) -> str:
    """The fast-path switch, one of ``PATH_CHOICES``, or a path by name, one of ``names`` (a model
    file passes its own ``EXECUTION_PATHS``; the default is every torch model's)."""
    if path not in PATH_CHOICES and path not in names:
        raise UserError("path", f"unknown path choice {path!r}", f"use auto, on, off or one of {', '.join(names)}")
    return path


def valid_mask(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(B, T) bool on ``lengths``' device, True at valid steps (our convention, never a framework's)."""
    return torch.arange(seq_len, device=lengths.device)[None, :] < lengths[:, None]


class DeviceBatch(NamedTuple):
    """A batch on the model's device and dtype. ``lengths`` (B,) int64 on the CPU (packing wants it
    there) and ``mask`` (B, T) bool on the device, both None when every sequence fills all T steps."""

    x: torch.Tensor  # (B, T, I)
    lengths: torch.Tensor | None
    mask: torch.Tensor | None
    y: torch.Tensor | None


class Output(NamedTuple):
    """What every model's ``forward`` returns; ``h``/``c`` (L*D, B, H) or None; extras may be empty."""

    outputs: torch.Tensor  # (B, T, F), zero at padded steps
    pooled: torch.Tensor  # (B, P)
    logits: torch.Tensor  # (B, out) or (B, T, out)
    h: torch.Tensor | None
    c: torch.Tensor | None
    extras: dict[str, torch.Tensor]


class SequenceModel(nn.Module):
    """What every model holds: its spec and the fast-path switch. A subclass builds its modules (with
    canonical parameter names) and defines ``forward(x, lengths, mask, return_extras) -> Output``."""

    def __init__(self, spec: ArchSpec, path: str = "auto") -> None:
        super().__init__()
        self.spec = spec
        self.path = check_path(path)

    def execution_path(self) -> str:
        """The kernel family that runs: ``cudnn``, ``aten``, ``reference``, ``fused_attention``."""
        raise NotImplementedError


def last_step(outputs: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Outputs at each sequence's own last step: (B, H). A gather from the outputs, so a final state
    taken this way is the same bits as the output it came from (no separately masked carry)."""
    if lengths is None:
        return outputs[:, -1]
    last = (lengths.to(outputs.device) - 1)[:, None, None].expand(-1, 1, outputs.shape[-1])  # (B, 1, H)
    return outputs.gather(1, last)[:, 0]


def make_head(spec: ArchSpec) -> nn.Linear:
    """``head.weight`` (out, features), ``head.bias`` (out,)."""
    return nn.Linear(spec.head_features(), spec.head.out_size)


def head_loss(head: HeadSpec, logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The loss of ``HeadSpec``. ``mask`` (B, T) True at valid steps, or None when every step is valid.

    Targets at padded steps are ignored whatever they hold (NaN included): they are
    replaced before the loss, never multiplied by zero.
    """
    kind = head.kind
    if kind == "classify":
        return F.cross_entropy(logits, y)
    if kind == "regress":
        return F.mse_loss(logits, y)
    if kind == "per_step_classify":
        if mask is not None:
            y = y.masked_fill(~mask, -100)  # ignore_index: the mean runs over valid steps only
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)
    if kind == "per_step_regress":
        if mask is None:
            return F.mse_loss(logits, y)
        valid = mask[..., None]
        y = y.masked_fill(~valid, 0.0)  # a NaN target would leak NaN into the gradient through where()
        sq = torch.where(valid, (logits - y).square(), 0.0)
        return sq.sum() / (mask.sum() * logits.shape[-1])
    raise UserError("head.kind", f"unknown head {kind!r}")


def target_tensor(head: HeadSpec, y: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Targets on the device: class indices int64, regression values in the model's dtype."""
    t = torch.as_tensor(np.asarray(y))
    t = t.to(torch.int64) if head.is_classification else t.to(dtype)
    return t.to(device, non_blocking=True)


# -- canonical parameters ----------------------------------------------------------------------


def load_params(model: SequenceModel, params: dict[str, np.ndarray]) -> None:
    """Copy canonical ``params`` into the model in place, cast to its dtype (keeps cuDNN's flattened
    weight buffer valid)."""
    spec = model.spec
    schema = spec.param_schema()
    missing = [n for n in schema if n not in params]
    extra = [n for n in params if n not in schema]
    if missing or extra:
        raise UserError(
            "params",
            f"names differ from the schema of {spec.arch!r} (missing {missing[:3]}, unexpected {extra[:3]})",
            "build from spec.init_params(seed) or spec.random_params(seed)",
        )
    named = dict(model.named_parameters())
    if set(named) != set(schema):  # a bug in a model file, not a user error
        raise AssertionError(f"module parameters {sorted(set(named) ^ set(schema))} differ from the schema")
    with torch.no_grad():
        for name, shape in schema.items():
            value = np.asarray(params[name])
            if tuple(value.shape) != tuple(shape):
                raise UserError("params", f"{name} has shape {value.shape}, the schema says {shape}")
            target = named[name]
            target.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(target.dtype))


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """Host copy; bfloat16 (which NumPy lacks) comes back as float32, exactly."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.cpu().numpy()


def export_params(model: SequenceModel) -> dict[str, np.ndarray]:
    """Canonical parameters in schema order, host copies in the model's dtype (bfloat16 as float32)."""
    named = dict(model.named_parameters())  # module names are the canonical names
    return {name: to_numpy(named[name]).copy() for name in model.spec.param_schema()}
