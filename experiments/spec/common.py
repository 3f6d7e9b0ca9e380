"""Pieces every architecture spec shares: the head, validation, PyTorch's init rules.

Shapes follow PyTorch: a weight is (out, in). Initialisers reproduce PyTorch's
default distributions so that a twin built from ``init_params`` starts where a
freshly constructed torch module would (in distribution, not in bits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from experiments.errors import UserError

HeadKind = Literal["classify", "regress", "per_step_classify", "per_step_regress"]
HEAD_KINDS: tuple[str, ...] = ("classify", "regress", "per_step_classify", "per_step_regress")


@dataclass(frozen=True)
class HeadSpec:
    """A linear read-out and the loss that goes with it.

    - ``classify``: logits (B, out) from the pooled features; mean cross-entropy.
    - ``regress``: values (B, out) from the pooled features; mean squared error.
    - ``per_step_classify``: logits (B, T, out) from every step; cross-entropy
      averaged over valid steps only.
    - ``per_step_regress``: values (B, T, out) from every step; squared error
      averaged over valid steps and outputs.

    Parameters: ``head.weight`` (out, features), ``head.bias`` (out,).
    """

    kind: HeadKind = "classify"
    out_size: int = 2

    @property
    def per_step(self) -> bool:
        return self.kind.startswith("per_step")

    @property
    def is_classification(self) -> bool:
        return self.kind.endswith("classify")

    def validate(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise UserError("head.kind", f"unknown head {self.kind!r}", f"use one of {', '.join(HEAD_KINDS)}")
        require_positive("head.out_size", self.out_size)
        if self.is_classification and self.out_size < 2:
            raise UserError("head.out_size", f"a classifier needs >= 2 classes, got {self.out_size}")


def require_positive(field: str, value: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise UserError(field, f"must be a positive integer, got {value!r}")


def require_probability(field: str, value: float) -> None:
    if not 0.0 <= float(value) < 1.0:
        raise UserError(field, f"must lie in [0, 1), got {value!r}")


def head_schema(head: HeadSpec, features: int) -> dict[str, tuple[int, ...]]:
    return {"head.weight": (head.out_size, features), "head.bias": (head.out_size,)}


def head_flops(head: HeadSpec, batch: int, seq_len: int, features: int) -> int:
    rows = batch * seq_len if head.per_step else batch
    return 2 * rows * features * head.out_size


def uniform(rng: np.random.Generator, shape: tuple[int, ...], bound: float) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(np.float64)


def linear_init(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """``nn.Linear``'s default: kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias alike."""
    return uniform(rng, shape, 1.0 / math.sqrt(fan_in))


def xavier_uniform(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    fan_out, fan_in = shape
    return uniform(rng, shape, math.sqrt(6.0 / (fan_in + fan_out)))


def retention_to_forget_bias(steps: int) -> float:
    """Forget-gate bias that keeps half of the cell after ``steps`` steps (claim L3).

    f = 0.5 ** (1 / N) and bias = logit(f); N=50 gives f = 0.9862, bias = 4.27.
    """
    f = 0.5 ** (1.0 / steps)
    return math.log(f / (1.0 - f))


def _missing(spec: object, name: str) -> NotImplementedError:
    """The error of a spec class that lacks one of the pieces every architecture defines."""
    cls = spec if isinstance(spec, type) else type(spec)
    return NotImplementedError(
        f"{cls.__name__} does not define {name}, which every architecture spec must "
        "(README, 'Adding an architecture', step 1)"
    )


class ArchSpec:
    """Mixin for the frozen dataclasses that fully determine a model.

    Subclasses define ``arch`` (their registry name), ``input_size``, ``head``,
    and the methods below down to ``param_count`` (``output_size`` and
    ``pooled_size`` included); everything else (counts, totals) derives from them.
    A missing one raises ``NotImplementedError`` naming it.

    ``DRAW_OPTIONS`` gives the values the cross-backend property tests draw for a
    field of the subclass that is neither a size (``experiments.verify.Sizes``), a
    bool nor a ``Literal``; ``experiments.verify.field_options`` refuses a field
    it has no values for, rather than leaving it silently at its default.
    """

    arch: str
    input_size: int
    head: HeadSpec
    DRAW_OPTIONS: ClassVar[dict[str, tuple[Any, ...]]] = {}

    # -- what a subclass provides -------------------------------------------
    def validate(self) -> None:
        raise _missing(self, "validate")

    def param_schema(self) -> dict[str, tuple[int, ...]]:
        """Canonical parameters: name -> shape, in a fixed order (the init order)."""
        raise _missing(self, "param_schema")

    def init_params(self, seed: int) -> dict[str, np.ndarray]:
        """PyTorch-default initial parameters as float64 arrays, drawn in schema order."""
        raise _missing(self, "init_params")

    def forward_flops(self, batch: int, seq_len: int) -> int:
        """Floating-point operations of one forward pass (a multiply-add counts 2)."""
        raise _missing(self, "forward_flops")

    def stored_activations(self, batch: int, seq_len: int, attention_path: str = "reference") -> int:
        """Values a straightforward implementation keeps for the backward pass of one training step."""
        raise _missing(self, "stored_activations")

    @property
    def pooled_size(self) -> int:
        """Width of the pooled features that a sequence-level head reads."""
        raise _missing(self, "pooled_size")

    @property
    def output_size(self) -> int:
        """Width of the per-step outputs (B, T, output_size)."""
        raise _missing(self, "output_size")

    @classmethod
    def fields_for_size(cls, hidden: int) -> dict[str, int]:
        """Spec fields that a grid's ``hidden`` axis sets for this family."""
        raise _missing(cls, "fields_for_size")

    # -- derived ----------------------------------------------------------------
    def param_count(self) -> int:
        """The analytic count; a test checks it against the schema."""
        raise _missing(self, "param_count")

    def schema_param_count(self) -> int:
        return int(sum(math.prod(shape) for shape in self.param_schema().values()))

    def backward_flops(self, batch: int, seq_len: int) -> int:
        """Gradients w.r.t. inputs and weights: two matmuls per forward matmul."""
        return 2 * self.forward_flops(batch, seq_len)

    def train_step_flops(self, batch: int, seq_len: int) -> int:
        return self.forward_flops(batch, seq_len) + self.backward_flops(batch, seq_len)

    def random_params(self, seed: int, scale: float = 0.5) -> dict[str, np.ndarray]:
        """Every parameter drawn from U(-scale, scale), biases included (non-zero, for tests).

        LayerNorm weights are drawn around 1 so that normalisation stays well-posed.
        """
        rng = np.random.default_rng(seed)
        out = {}
        for name, shape in self.param_schema().items():
            values = uniform(rng, shape, scale)
            if "norm" in name and name.endswith(".weight"):
                values = 1.0 + values
            out[name] = values
        return out

    def head_features(self) -> int:
        return self.output_size if self.head.per_step else self.pooled_size
