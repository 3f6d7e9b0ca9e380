"""``seqbench verify``: flags, the JSON schema of DESIGN.md, exit statuses 0, 1 and 2."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.commands import verify as verify_command
from experiments.verify import CHECKS, observe

ROOT = Path(__file__).resolve().parents[1]
CHECK_KEYS = {"max_abs_err", "max_rel_err", "tol", "passed"}


def test_unknown_architecture_is_a_person_s_error(capsys) -> None:
    assert main(["verify", "--arch", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --arch") and len(err.splitlines()) == 1


def test_tf32_with_float64_is_a_person_s_error(capsys) -> None:
    assert main(["verify", "--dtype", "float64", "--precision", "tf32"]) == 2
    assert "tf32" in capsys.readouterr().err


def test_json_run_in_worker_processes() -> None:
    """The real command: one spawned worker per backend, DESIGN.md's schema, exit 0."""
    cmd = [sys.executable, "-m", "experiments", "verify", "--arch", "rnn", "--cases", "1", "--json"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr + out.stdout
    reports = json.loads(out.stdout)
    assert isinstance(reports, list) and len(reports) == 1
    report = reports[0]
    assert {"arch", "dtype", "device", "passed", "checks"} <= set(report)
    assert (report["arch"], report["dtype"], report["device"], report["passed"]) == ("rnn", "float64", "cpu", True)
    assert set(report["checks"]) == set(CHECKS)
    for name, check in report["checks"].items():
        assert set(check) == CHECK_KEYS, name
        assert check["passed"] is True and check["max_rel_err"] <= check["tol"], name


class _BrokenJax:
    """The jax backend with every parameter nudged on ``build``: the outputs no longer agree."""

    def __init__(self, inner) -> None:
        self.inner, self.name = inner, inner.name

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def build(self, spec, params, **kw):
        return self.inner.build(spec, {k: v * (1 + 1e-6) for k, v in params.items()}, **kw)


def _in_process(backends, broken: bool):
    chosen = {"torch": backends["torch"], "jax": _BrokenJax(backends["jax"]) if broken else backends["jax"]}

    @contextmanager
    def observers(device, precision):
        def submit(name, case):
            future: Future = Future()
            future.set_result(observe(chosen[name], case, device=device))
            return future

        yield submit, {name: {f"{name}_version": "test"} for name in chosen}

    return observers


@pytest.mark.parametrize("broken", [False, True])
def test_exit_status_and_table(backends, monkeypatch, capsys, broken: bool) -> None:
    monkeypatch.setattr(verify_command, "worker_observers", _in_process(backends, broken))
    status = main(["verify", "--arch", "lstm", "--dtype", "float64", "--cases", "1"])
    out = capsys.readouterr().out
    assert status == (1 if broken else 0)
    rows = [line.split() for line in out.splitlines() if line.startswith("lstm ")]
    assert [r[1] for r in rows] == list(CHECKS)
    if broken:
        assert "FAILED: lstm" in out
        assert next(r for r in rows if r[1] == "outputs")[5] == "FAIL"
    else:
        assert "1/1 architectures agree; all passed" in out


def test_a_backend_that_raises_fails_its_architecture(backends, monkeypatch, capsys) -> None:
    class Raising(_BrokenJax):
        def forward(self, *a, **k):
            raise RuntimeError("boom")

    chosen = {"torch": backends["torch"], "jax": Raising(backends["jax"])}

    def submit(name, case):
        future: Future = Future()
        try:
            future.set_result(observe(chosen[name], case))
        except Exception as exc:
            future.set_exception(exc)
        return future

    reports = verify_command.verify_archs(["rnn"], "float64", "cpu", 0, 1, submit)
    assert reports[0]["passed"] is False and "boom" in reports[0]["error"]


def test_a_device_that_cannot_be_had_is_a_person_s_error() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cmd = [sys.executable, "-m", "experiments", "verify", "--arch", "rnn", "--device", "cuda"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: --device") and len(out.stderr.strip().splitlines()) == 1
