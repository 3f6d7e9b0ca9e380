"""The README's "Adding an architecture" path: an incomplete architecture is refused naming the missing piece."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

from experiments.spec import REGISTRY, ArchSpec, HeadSpec
from experiments.verify import cases


@pytest.mark.parametrize("package", ["torch_impl", "jax_impl"])
def test_check_models_names_what_a_registry_lacks(package: str) -> None:
    pkg = importlib.import_module(package)
    check = importlib.import_module(f"{package}.interface").check_models
    check(pkg.MODELS)  # the real registry is complete
    partial = {k: v for k, v in pkg.MODELS.items() if k != "mingru"}
    with pytest.raises(TypeError, match=r"missing \['mingru'\]"):
        check(partial)
    with pytest.raises(TypeError, match="order"):
        check(dict(reversed(list(pkg.MODELS.items()))))
    base = pkg.layers.SequenceModel
    bare = type("Bare", (base,), {})  # derives the base and defines nothing of its own
    with pytest.raises(TypeError, match="Bare does not define"):
        check({**pkg.MODELS, "mingru": bare})


@pytest.mark.parametrize("package", ["torch_impl", "jax_impl"])
def test_built_models_keep_the_documented_interface(package: str) -> None:
    from experiments.spec import ARCHITECTURES, make_spec

    pkg = importlib.import_module(package)
    for arch in ARCHITECTURES:
        spec = make_spec(arch)
        model = pkg.BACKEND.build(spec, spec.init_params(0), precision="float64")
        assert isinstance(model, pkg.ModelInterface), arch


@dataclasses.dataclass(frozen=True)
class _HalfSpec(ArchSpec):
    arch: str = "half"
    input_size: int = 3
    leak: float = 0.1  # not a size, bool or Literal: the property tests have no values for it
    head: HeadSpec = dataclasses.field(default_factory=HeadSpec)


def test_a_spec_names_the_method_it_lacks() -> None:
    with pytest.raises(NotImplementedError, match="_HalfSpec does not define output_size"):
        _ = _HalfSpec().output_size
    with pytest.raises(NotImplementedError, match="_HalfSpec does not define fields_for_size"):
        _HalfSpec.fields_for_size(4)


def test_a_field_the_property_tests_cannot_draw_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "half", (_HalfSpec, {}))
    with pytest.raises(TypeError, match=r"_HalfSpec\.leak: .*DRAW_OPTIONS"):
        cases.field_options("half")
    monkeypatch.setattr(_HalfSpec, "DRAW_OPTIONS", {"leak": (0.0, 0.3)})
    assert cases.field_options("half")["leak"] == (0.0, 0.3)
