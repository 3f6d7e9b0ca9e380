"""The interface a jax model class keeps, written down, and the check that a registry keeps it.

``JaxBackend`` builds a model as ``MODELS[arch](spec, params, precision=, path=, device=)``: the
``SequenceModel`` base resolves the path (``choose_path``), creates the parameter modules at the
canonical names (``create_params``) and loads ``params`` into them. Every computation then runs
``pure(...)``, a function of the flat ``{canonical name: array}`` dict, jitted once per
``static_key()``. What the backend and the tests use of a model is :class:`ModelInterface`.

``torch_impl/interface.py`` is the twin (same public names; each describes its own framework's model).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from experiments.backend import PATH_CHOICES, PATH_NAMES
from experiments.spec import ARCHITECTURES, ArchSpec
from jax_impl.layers import SequenceModel

# What a model class must define itself (the base class only declares them).
REQUIRED_METHODS: tuple[str, ...] = ("apply", "choose_path", "create_params")


@runtime_checkable
class ModelInterface(Protocol):
    """A built jax model, as ``JaxBackend`` and the tests use it.

    - ``spec``, ``precision`` (a named precision), ``device`` (``cpu`` or ``cuda``) and ``path``: the
      path it runs, resolved by ``choose_path`` from ``auto | on | off`` or a path by name (one of its
      file's ``EXECUTION_PATHS``, which ``experiments.backend.PATH_NAMES["jax"]`` must list). ``on``
      that cannot run raises ``PathUnavailable``; a family with no vendor kernel says in its
      docstring what ``on`` means (``minrnn.py``: the parallel scan, which always runs).
    - ``apply``: the family's pure ``(spec, params, x, lengths, *, path, train, key, return_extras)
      -> dict`` with ``outputs`` (B, T, F) exactly zero at padded steps, ``pooled``, ``logits``,
      ``final_states`` (``{"h": (L*D, B, H), ...}`` at each sequence's length, or ``{}``), ``extras``.
    - ``static_key()``: names one compiled configuration; ``pure(train=, return_extras=)``: ``apply``
      closed over it, ``(params, x, lengths, key) -> dict``; ``execution_path()``: ``path``.
    """

    spec: ArchSpec
    precision: str
    device: str
    path: str

    def execution_path(self) -> str: ...

    def static_key(self) -> tuple: ...

    def pure(self, *, train: bool = False, return_extras: bool = False) -> Callable[..., dict[str, Any]]: ...


def check_models(models: Mapping[str, type]) -> None:
    """Raise ``TypeError`` naming the missing piece where ``models`` is not a complete registry:
    the names and order of ``experiments.spec.ARCHITECTURES``, classes deriving ``SequenceModel``
    that define ``REQUIRED_METHODS``, and model files whose ``EXECUTION_PATHS`` the backend table lists."""
    fix = "see the README's 'Adding an architecture'"
    if tuple(models) != ARCHITECTURES:
        missing = [a for a in ARCHITECTURES if a not in models]
        extra = [a for a in models if a not in ARCHITECTURES]
        raise TypeError(f"jax_impl.MODELS: missing {missing}, unknown {extra}, or out of the registry's order ({fix})")
    for arch, cls in models.items():
        if not (isinstance(cls, type) and issubclass(cls, SequenceModel)):
            raise TypeError(f"jax_impl.MODELS[{arch!r}]: {cls!r} does not derive jax_impl.layers.SequenceModel")
        for method in REQUIRED_METHODS:
            if getattr(cls, method, None) is None or getattr(cls, method) is getattr(SequenceModel, method, None):
                raise TypeError(f"jax_impl.MODELS[{arch!r}]: {cls.__name__} does not define {method} ({fix})")
        paths = getattr(inspect.getmodule(cls), "EXECUTION_PATHS", ())
        unlisted = [p for p in paths if p not in PATH_NAMES["jax"] and p not in PATH_CHOICES]
        if unlisted:
            raise TypeError(
                f"{cls.__module__}.EXECUTION_PATHS: {unlisted} not in experiments.backend.PATH_NAMES['jax'] "
                "(add them there, or a grid cannot ask for them by name)"
            )
