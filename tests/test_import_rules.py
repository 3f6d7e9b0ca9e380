"""DESIGN.md's dependency rules.

- ``import experiments`` and every ``experiments`` submodule load neither torch nor jax;
- ``torch_impl`` and ``jax_impl`` never import each other nor the driver (only
  ``experiments.spec``, ``experiments.errors`` and the protocol in ``experiments.backend``);
- the two backends' ``MODELS`` names equal the registry's;
- one file per architecture, with the same name on both sides.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.spec import ARCHITECTURES

ROOT = Path(__file__).resolve().parents[1]
BACKEND_PACKAGES = ("torch_impl", "jax_impl")
# What a backend may import from experiments: the spec (and schema), errors, and the protocol it implements.
ALLOWED_FROM_EXPERIMENTS = ("experiments.spec", "experiments.errors", "experiments.backend")
FRAMEWORKS = ("torch", "jax", "jaxlib", "flax", "optax")


def _loaded_after(code: str) -> set[str]:
    """Top-level module names loaded by ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_experiments_and_all_its_submodules_load_no_framework() -> None:
    code = (
        "import importlib, pkgutil, experiments\n"
        "for m in pkgutil.walk_packages(experiments.__path__, 'experiments.'):\n"
        "    if m.name != 'experiments.__main__':\n"
        "        importlib.import_module(m.name)\n"
    )
    loaded = _loaded_after(code)
    assert not loaded & set(FRAMEWORKS), f"experiments loaded {sorted(loaded & set(FRAMEWORKS))}"


def test_the_command_line_parser_loads_no_framework() -> None:
    loaded = _loaded_after("from experiments.cli import build_parser\nbuild_parser()")
    assert not loaded & set(FRAMEWORKS)


@pytest.mark.parametrize("package", BACKEND_PACKAGES)
def test_a_backend_loads_neither_the_other_nor_its_framework(package: str) -> None:
    other = "jax_impl" if package == "torch_impl" else "torch_impl"
    foreign = {"torch_impl": {"jax", "flax", "optax"}, "jax_impl": {"torch"}}[package]
    loaded = _loaded_after(f"import {package}")
    assert other not in loaded
    assert not loaded & foreign, f"{package} loaded {sorted(loaded & foreign)}"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("package", BACKEND_PACKAGES)
def test_backend_sources_import_only_the_spec_side_of_experiments(package: str) -> None:
    other = "jax_impl" if package == "torch_impl" else "torch_impl"
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            assert name.split(".")[0] != other, f"{path.name} imports {name}"
            if name.split(".")[0] == "experiments":
                assert name.startswith(ALLOWED_FROM_EXPERIMENTS), f"{path.name} imports the driver's {name}"


@pytest.mark.parametrize("package", BACKEND_PACKAGES)
def test_backend_models_are_the_registry(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.MODELS) == set(ARCHITECTURES)
    assert module.BACKEND.name == package.removesuffix("_impl")


# Files with no twin on the other side, each for a reason. Everything else under torch_impl/ and
# jax_impl/ (subfolders included) has a file of the same relative path on the other side.
ONE_SIDED = {
    # jax's fast recurrent paths are a hand-written custom-VJP scan and jax.experimental.rnn's cuDNN
    # LSTM (its weight packing); torch's are inside its own nn.LSTM/GRU/RNN
    "jax_impl": {"kernels/__init__.py", "kernels/scan.py", "kernels/cudnn_lstm.py"},
    "torch_impl": set(),
}


def _sources(package: str) -> set[str]:
    root = ROOT / package
    return {p.relative_to(root).as_posix() for p in root.rglob("*.py") if "__pycache__" not in p.parts}


def test_one_file_per_architecture_with_the_same_name_on_both_sides() -> None:
    files = {pkg: _sources(pkg) for pkg in BACKEND_PACKAGES}
    for pkg in BACKEND_PACKAGES:
        assert ONE_SIDED[pkg] <= files[pkg], f"{pkg}: stale ONE_SIDED entries {sorted(ONE_SIDED[pkg] - files[pkg])}"
    assert sorted(files["torch_impl"] - ONE_SIDED["torch_impl"]) == sorted(files["jax_impl"] - ONE_SIDED["jax_impl"])
    torch_impl, jax_impl = importlib.import_module("torch_impl"), importlib.import_module("jax_impl")
    for arch in ARCHITECTURES:
        sides = [Path(inspect.getfile(pkg.MODELS[arch])).name for pkg in (torch_impl, jax_impl)]
        assert sides[0] == sides[1], f"{arch}: {sides[0]} vs {sides[1]}"
        assert Path(inspect.getfile(torch_impl.MODELS[arch])).parent.name == "torch_impl"
