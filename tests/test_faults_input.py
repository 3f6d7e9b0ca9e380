"""Issue 15, bad input: each mistake a new user makes is refused with one line on stderr naming the
flag or key, the problem and the fix, exit status 2, before any worker starts; failed cells are never
passed off as finished. The fake backend (tests/_driver_helpers.py) stands in where a real one would
only cost time; the device check runs on the real backends once (this host has no CUDA)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from _driver_helpers import use_fake, write_grid

from experiments.cli import main
from experiments.run import runner

CELL = """
[fixed]
arch = "lstm"
backend = "fake"
hidden = {hidden}
seq_len = 8
batch = 4
min_timed_steps = 20
min_time_s = 0.01
"""


@pytest.fixture
def fake(monkeypatch):
    use_fake(monkeypatch)


@pytest.fixture
def no_workers(monkeypatch):
    """Any attempt to start workers fails the test: the refusal must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("an executor was made: the mistake was not refused before the workers")

    monkeypatch.setattr(runner, "make_executor", refuse)


def one_error_line(err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err!r}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["run", "smoke", "--executor", "nosuch"], "--executor"),
        (["verify", "--dtype", "float16"], "--dtype"),
        (["bench", "--arch", "lstm", "--backend", "torch", "--hidden", "3x"], "--hidden"),
        ([], "COMMAND"),
        (["nosuch"], "nosuch"),
    ],
)
def test_argparse_rejections_are_one_line_with_a_pointer_to_help(argv, flag, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    one_error_line(capsys.readouterr().err, flag, "--help")


def test_bench_names_the_flag_of_a_bad_size(fake, capsys) -> None:
    assert main(["bench", "--arch", "lstm", "--backend", "fake", "--hidden", "-3"]) == 2
    line = one_error_line(capsys.readouterr().err, "--hidden", "-3")
    assert line.startswith("error: --hidden:") and "command line" not in line


def test_a_results_path_that_is_a_file_is_refused(tmp_path: Path, fake, no_workers, capsys) -> None:
    grid = write_grid(tmp_path, "g", CELL.format(hidden=32))
    afile = tmp_path / "afile"
    afile.touch()
    assert main(["run", str(grid), "--results", str(afile)]) == 2
    one_error_line(capsys.readouterr().err, "--results", "is a file")
    assert afile.read_bytes() == b""


def test_a_results_folder_that_cannot_be_made_is_refused(tmp_path: Path, fake, no_workers, capsys) -> None:
    grid = write_grid(tmp_path, "g", CELL.format(hidden=32))
    assert main(["run", str(grid), "--results", "/proc/seqbench-results"]) == 2  # not writable, even by root
    one_error_line(capsys.readouterr().err, "--results", "cannot write")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 555")
def test_a_read_only_results_folder_is_refused(tmp_path: Path, fake, no_workers, capsys) -> None:
    grid = write_grid(tmp_path, "g", CELL.format(hidden=32))
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["run", str(grid), "--results", str(folder)]) == 2
    finally:
        folder.chmod(0o755)
    one_error_line(capsys.readouterr().err, "--results", "cannot write")


def test_a_folder_without_write_permission_is_refused(tmp_path: Path, fake, no_workers, monkeypatch, capsys) -> None:
    """What chmod 555 does to a user who is not root (this suite may run as root, who writes through it)."""
    from experiments.records import store

    def denied(prefix: str = "", dir: str = "") -> None:
        raise PermissionError(13, "Permission denied", str(dir))

    monkeypatch.setattr(store.tempfile, "mkstemp", denied)
    grid = write_grid(tmp_path, "g", CELL.format(hidden=32))
    assert main(["run", str(grid), "--results", str(tmp_path / "r")]) == 2
    one_error_line(capsys.readouterr().err, "--results", "cannot write", "Permission denied")


def test_a_grid_that_excludes_every_cell_is_refused(tmp_path: Path, fake, no_workers, capsys) -> None:
    grid = write_grid(tmp_path, "g", CELL.format(hidden=32) + '[[exclude]]\narch = "lstm"\n')
    assert main(["run", str(grid), "--results", str(tmp_path / "r")]) == 2
    one_error_line(capsys.readouterr().err, "exclude", "every cell")
    assert not (tmp_path / "r" / "g" / "records.jsonl").exists()


def test_a_typo_in_task_params_names_the_parameter(tmp_path: Path, fake, no_workers, capsys) -> None:
    text = 'kind = "train"\n[fixed]\narch = "lstm"\nbackend = "fake"\nhidden = 8\ntask = "adding"\n'
    grid = write_grid(tmp_path, "g", text + "task_params = {n_trian = 100}\n")
    assert main(["run", str(grid), "--results", str(tmp_path / "r")]) == 2
    line = one_error_line(capsys.readouterr().err, "task_params.n_trian", "'n_train'")
    assert "TypeError" not in line and "change task" not in line


def test_a_directory_as_the_grid_is_named_a_directory(tmp_path: Path, no_workers, capsys) -> None:
    assert main(["run", str(tmp_path), "--results", str(tmp_path / "r")]) == 2
    one_error_line(capsys.readouterr().err, "is a directory")


def test_a_device_the_backend_cannot_have_is_refused_without_records(tmp_path: Path, fake, capsys) -> None:
    grid = write_grid(tmp_path, "g", CELL.format(hidden=32))
    results = tmp_path / "r"
    assert main(["run", str(grid), "--device", "cuda", "--results", str(results)]) == 2
    one_error_line(capsys.readouterr().err, "--device", "cuda")
    on_file = write_grid(tmp_path, "d", CELL.format(hidden=32) + 'device = "cuda"\n')
    assert main(["run", str(on_file), "--results", str(results)]) == 2
    one_error_line(capsys.readouterr().err, "d.toml: device", "cuda")
    assert main(["bench", "--arch", "lstm", "--backend", "fake", "--device", "cuda"]) == 2
    one_error_line(capsys.readouterr().err, "--device", "cuda")
    assert not list(results.glob("*/records.jsonl"))


def _skip_unless_no_cuda() -> None:
    if not (importlib.util.find_spec("torch_impl") and importlib.util.find_spec("jax_impl")):
        pytest.skip("backends not built")
    if Path("/dev/nvidiactl").exists():  # asked without importing torch here: the worker asks it
        pytest.skip("this host has a CUDA driver")


def test_torch_refuses_cuda_on_a_host_without_it(capsys) -> None:
    _skip_unless_no_cuda()
    assert main(["bench", "--arch", "lstm", "--backend", "torch", "--device", "cuda"]) == 2
    one_error_line(capsys.readouterr().err, "--device", "cuda")


@pytest.mark.slow  # both frameworks start (about 10 s on 2 busy cores)
def test_smoke_on_cuda_is_refused_by_both_backends_without_records(tmp_path: Path, capsys) -> None:
    _skip_unless_no_cuda()
    assert main(["run", "smoke", "--device", "cuda", "--results", str(tmp_path)]) == 2
    one_error_line(capsys.readouterr().err, "--device", "cuda")
    assert not list(tmp_path.glob("*/records.jsonl"))


def test_run_fails_while_stored_errors_remain(tmp_path: Path, fake, capsys) -> None:
    grid = write_grid(tmp_path, "e", CELL.format(hidden=23))  # 23: the fake backend's RuntimeError
    args = ["run", str(grid), "--results", str(tmp_path / "r")]
    assert main(args) == 1
    assert "1 cells stored with status error: rerun with --retry-errors" in capsys.readouterr().err
    assert main(args) == 1  # nothing ran, but the failed cell is not finished
    err = capsys.readouterr().err
    assert "1 already stored" in err and "1 cells stored with status error: rerun with --retry-errors" in err
    assert main([*args, "--retry-errors"]) == 1  # rerun, failed again: still there
    assert "1 cells stored with status error" in capsys.readouterr().err
    ok = write_grid(tmp_path, "ok", CELL.format(hidden=32))
    assert main(["run", str(ok), "--results", str(tmp_path / "r")]) == 0
    assert "stored with status error" not in capsys.readouterr().err


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """``seqbench run --dry-run | head -1``: the closed pipe ends the command with 141, no traceback."""
    import subprocess
    import sys

    # the full preset's dry run prints ~160 KB, more than a pipe holds: the write must meet the closed pipe
    code = "import sys; from experiments.cli import main; sys.exit(main(['run', '--preset', 'full', '--dry-run']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()  # the first line, then the reader goes away
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
