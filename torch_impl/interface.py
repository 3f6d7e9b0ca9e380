"""The interface a torch model class keeps, written down, and the check that a registry keeps it.

``TorchBackend`` builds a model as ``MODELS[arch](spec, path=path)``, moves it to the device and
dtype, then loads the canonical parameters *by name* (``layers.load_params``): a model's
``named_parameters()`` must be exactly ``spec.param_schema()``'s names, with its shapes. What the
backend and the tests then use of a model is :class:`ModelInterface`; nothing else.

``jax_impl/interface.py`` is the twin (same public names; each describes its own framework's model).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from experiments.backend import PATH_CHOICES, PATH_NAMES
from experiments.spec import ARCHITECTURES, ArchSpec
from torch_impl.layers import Output, SequenceModel

# What a model class must define itself (the base class only declares them).
REQUIRED_METHODS: tuple[str, ...] = ("forward", "execution_path")


@runtime_checkable
class ModelInterface(Protocol):
    """A built torch model, as ``TorchBackend`` and the tests use it.

    - ``spec``: the ``ArchSpec`` it was built from; ``path``: the switch or path name it was given
      (``auto | on | off`` or one of its file's ``EXECUTION_PATHS``). ``on`` names the fast path and
      raises ``PathUnavailable`` where it cannot run; ``auto`` takes the fast path where it can;
      ``off`` is the reference path. A family with no vendor kernel says in its docstring what
      ``on`` then means (``minrnn.py``: the parallel scan, which always runs).
    - ``head``: the ``nn.Linear`` read-out (``head.weight`` tells the device and dtype).
    - ``execution_path()``: the kernel family that runs, one of its file's ``EXECUTION_PATHS``
      (which ``experiments.backend.PATH_NAMES["torch"]`` must list).
    - ``forward(x (B, T, I), lengths (B,) int64 on the CPU or None, mask (B, T) bool or None,
      return_extras)`` -> ``layers.Output``; outputs exactly zero at padded steps, final states (if
      any) at each sequence's own length, padded steps changing no result.
    - ``named_parameters()``: exactly the schema's canonical names.
    """

    spec: ArchSpec
    path: str
    head: nn.Linear

    def execution_path(self) -> str: ...

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        return_extras: bool = False,
    ) -> Output: ...

    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]: ...


def check_models(models: Mapping[str, type]) -> None:
    """Raise ``TypeError`` naming the missing piece where ``models`` is not a complete registry:
    the names and order of ``experiments.spec.ARCHITECTURES``, classes deriving ``SequenceModel``
    that define ``REQUIRED_METHODS``, and model files whose ``EXECUTION_PATHS`` the backend table lists."""
    fix = "see the README's 'Adding an architecture'"
    if tuple(models) != ARCHITECTURES:
        missing = [a for a in ARCHITECTURES if a not in models]
        extra = [a for a in models if a not in ARCHITECTURES]
        raise TypeError(
            f"torch_impl.MODELS: missing {missing}, unknown {extra}, or out of the registry's order ({fix})"
        )
    for arch, cls in models.items():
        if not (isinstance(cls, type) and issubclass(cls, SequenceModel)):
            raise TypeError(f"torch_impl.MODELS[{arch!r}]: {cls!r} does not derive torch_impl.layers.SequenceModel")
        for method in REQUIRED_METHODS:
            if (
                getattr(cls, method) is getattr(SequenceModel, method, None)
                or getattr(cls, method) is nn.Module.forward
            ):
                raise TypeError(f"torch_impl.MODELS[{arch!r}]: {cls.__name__} does not define {method}() ({fix})")
        paths = getattr(inspect.getmodule(cls), "EXECUTION_PATHS", ())
        unlisted = [p for p in paths if p not in PATH_NAMES["torch"] and p not in PATH_CHOICES]
        if unlisted:
            raise TypeError(
                f"{cls.__module__}.EXECUTION_PATHS: {unlisted} not in experiments.backend.PATH_NAMES['torch'] "
                "(add them there, or a grid cannot ask for them by name)"
            )
