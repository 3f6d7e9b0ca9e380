"""Architecture specs: the framework-free definition of every model.

The registry maps an architecture name to a factory for its spec. Each backend
maps the same names to its modules; a test fails when the names differ.
Adding an architecture: one spec here, one file and one registry line per backend.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from experiments.errors import UserError
from experiments.spec.attention_lstm import AttentionLSTMSpec
from experiments.spec.common import HEAD_KINDS, ArchSpec, HeadSpec, retention_to_forget_bias
from experiments.spec.lru import LRUSpec
from experiments.spec.minrnn import MinRNNSpec
from experiments.spec.optim import OptimizerSpec
from experiments.spec.recurrent import GATE_NAMES, GATES, RecurrentSpec
from experiments.spec.transformer import TransformerSpec, sinusoidal_positions

# name -> (spec class, fixed fields). The one list of architectures.
REGISTRY: dict[str, tuple[type[ArchSpec], dict[str, Any]]] = {
    "rnn": (RecurrentSpec, {"cell": "rnn"}),
    "lstm": (RecurrentSpec, {"cell": "lstm"}),
    "gru": (RecurrentSpec, {"cell": "gru"}),
    "bilstm": (RecurrentSpec, {"cell": "lstm", "bidirectional": True}),
    "attention_lstm": (AttentionLSTMSpec, {}),
    "transformer": (TransformerSpec, {}),
    "mingru": (MinRNNSpec, {"cell": "mingru"}),
    "minlstm": (MinRNNSpec, {"cell": "minlstm"}),
    "lru": (LRUSpec, {}),
}

ARCHITECTURES: tuple[str, ...] = tuple(REGISTRY)


def spec_fields(arch: str) -> set[str]:
    """Field names a user may set for ``arch`` (``head`` as ``head_kind``/``head_out``)."""
    cls, _ = _lookup(arch)
    names = {f.name for f in dataclasses.fields(cls)} - {"arch", "head"}
    return names | {"head_kind", "head_out"}


def make_spec(arch: str, **fields: Any) -> ArchSpec:
    """Build and validate the spec for ``arch``; unknown fields and bad values raise ``UserError``.

    ``head_kind`` / ``head_out`` set the head; fixed fields of the registry entry
    (``bilstm``'s ``bidirectional``, say) cannot be overridden to something else.
    """
    cls, fixed = _lookup(arch)
    fields = dict(fields)
    head = HeadSpec(kind=fields.pop("head_kind", "classify"), out_size=fields.pop("head_out", 2))
    allowed = spec_fields(arch)
    for name in fields:
        if name not in allowed:
            raise UserError(name, f"not a field of {arch!r}", f"fields: {', '.join(sorted(allowed))}")
    for name, value in fixed.items():
        if name in fields and fields[name] != value:
            raise UserError(
                name, f"{arch!r} fixes {name}={value!r}", f"use another architecture for {name}={fields[name]!r}"
            )
    spec = cls(arch=arch, head=head, **{**fields, **fixed})
    spec.validate()
    return spec


def size_fields(arch: str, hidden: int) -> dict[str, int]:
    """The spec fields a grid's ``hidden`` axis sets for ``arch`` (hidden_size, or d_model/d_ff/heads)."""
    cls, _ = _lookup(arch)
    return cls.fields_for_size(hidden)


def param_schema(spec: ArchSpec) -> dict[str, tuple[int, ...]]:
    return spec.param_schema()


def init_params(spec: ArchSpec, seed: int) -> dict[str, np.ndarray]:
    return spec.init_params(seed)


def _lookup(arch: str) -> tuple[type[ArchSpec], dict[str, Any]]:
    if arch not in REGISTRY:
        raise UserError("arch", f"unknown architecture {arch!r}", f"use one of {', '.join(ARCHITECTURES)}")
    return REGISTRY[arch]


def spec_to_dict(spec: ArchSpec) -> dict[str, Any]:
    """JSON-ready fields; the inverse of ``make_spec(**...)``."""
    out = dataclasses.asdict(spec)
    head = out.pop("head")
    out["head_kind"], out["head_out"] = head["kind"], head["out_size"]
    return out


def spec_from_dict(data: dict[str, Any]) -> ArchSpec:
    data = dict(data)
    arch = data.pop("arch")
    _, fixed = _lookup(arch)
    for name in fixed:
        data.pop(name, None)
    return make_spec(arch, **data)


__all__ = [
    "ARCHITECTURES",
    "GATES",
    "GATE_NAMES",
    "HEAD_KINDS",
    "REGISTRY",
    "ArchSpec",
    "AttentionLSTMSpec",
    "HeadSpec",
    "LRUSpec",
    "MinRNNSpec",
    "OptimizerSpec",
    "RecurrentSpec",
    "TransformerSpec",
    "init_params",
    "make_spec",
    "param_schema",
    "retention_to_forget_bias",
    "sinusoidal_positions",
    "size_fields",
    "spec_fields",
    "spec_from_dict",
    "spec_to_dict",
]
