"""Issue 15, killed drivers leave nothing behind: workers end within a second of their driver's death,
the driver's worker folder goes at the next start, and a local Ray's processes are stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from _driver_helpers import fake_env, write_grid

from experiments.run.executors import LocalExecutor
from experiments.run.reaper import _processes, descendants
from experiments.run.worker import LOG_DIR_PREFIX, remove_stale_log_dirs

HANG = '[fixed]\narch = "lstm"\nbackend = "fake"\nhidden = 29\nseq_len = 8\nbatch = 4\nmin_time_s = 0.01\n'


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_for(predicate, timeout: float, step: float = 0.02) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    began = time.monotonic()
    while not predicate():
        assert time.monotonic() - began < timeout, "timed out waiting"
        time.sleep(step)
    return time.monotonic() - began


def worker_pids(driver: int) -> list[int]:
    found = []
    for pid in descendants(driver, _processes()):
        try:
            if b"experiments.run.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


def env_in(tmp: Path) -> dict[str, str]:
    return {**os.environ, **fake_env(), "TMPDIR": str(tmp)}


def test_workers_end_within_a_second_and_the_folder_goes_at_the_next_start(tmp_path: Path, monkeypatch) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    grid = write_grid(tmp_path, "h", HANG)
    driver = subprocess.Popen(
        [sys.executable, "-m", "experiments", "run", str(grid), "--results", str(tmp_path / "r")],
        env=env_in(tmp),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: worker_pids(driver.pid), timeout=60)
        workers = worker_pids(driver.pid)
        folders = list(tmp.glob(f"{LOG_DIR_PREFIX}{driver.pid}-*"))
        assert folders, "the worker folder names its driver"
    finally:
        driver.kill()
        driver.wait()
    took = wait_for(lambda: not any(alive(p) for p in workers), timeout=5)
    assert took < 1.0, f"workers lived {took:.2f} s past their driver"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    LocalExecutor().close()  # the next start removes the dead driver's folder
    assert not any(f.exists() for f in folders)
    assert not list(tmp.glob(f"{LOG_DIR_PREFIX}*"))  # and its own on close


def test_sigterm_ends_a_run_as_ctrl_c_does(tmp_path: Path) -> None:
    """Status 130, workers stopped, the worker folder removed: the orderly end ``kill`` asks for."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    grid = write_grid(tmp_path, "h", HANG)
    driver = subprocess.Popen(
        [sys.executable, "-m", "experiments", "run", str(grid), "--results", str(tmp_path / "r")],
        env=env_in(tmp),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: worker_pids(driver.pid), timeout=60)
        workers = worker_pids(driver.pid)
        driver.terminate()
        _, err = driver.communicate(timeout=30)
    finally:
        driver.kill()
    assert driver.returncode == 130 and "interrupted" in err
    assert not any(alive(p) for p in workers)
    assert not list(tmp.glob(f"{LOG_DIR_PREFIX}*"))


def test_a_worker_spawned_off_the_main_thread_still_ends_with_its_driver(tmp_path: Path) -> None:
    """No PR_SET_PDEATHSIG there (it follows the spawning thread): the parent watch ends it."""
    code = textwrap.dedent(
        """
        import threading, time
        from experiments.run.worker import WorkerProcess
        w = WorkerProcess("fake")
        t = threading.Thread(target=w.start)
        t.start(); t.join()
        print(w.proc.pid, flush=True)
        time.sleep(600)
        """
    )
    driver = subprocess.Popen([sys.executable, "-c", code], env=env_in(tmp_path), stdout=subprocess.PIPE, text=True)
    try:
        worker = int(driver.stdout.readline())
        assert alive(worker)
    finally:
        driver.kill()
        driver.wait()
    took = wait_for(lambda: not alive(worker), timeout=5)
    assert took < 1.0, f"the worker lived {took:.2f} s past its driver"


def test_stale_folders_are_those_of_dead_drivers(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{LOG_DIR_PREFIX}{int(gone.stdout)}-abc"
    live = tmp_path / f"{LOG_DIR_PREFIX}{os.getpid()}-def"
    legacy = tmp_path / f"{LOG_DIR_PREFIX}xyz12345"  # named before pids were: stale once untouched for a day
    old = tmp_path / f"{LOG_DIR_PREFIX}abc12345"
    for folder in (dead, live, legacy, old):
        folder.mkdir()
        (folder / "worker-fake-1.log").write_text("log")
    two_days_ago = time.time() - 2 * 86400
    for path in (old / "worker-fake-1.log", old):
        os.utime(path, (two_days_ago, two_days_ago))
    assert sorted(remove_stale_log_dirs(tmp_path)) == sorted([dead, old])
    assert live.exists() and legacy.exists() and not dead.exists() and not old.exists()


def test_the_reaper_kills_what_a_dead_driver_left_in_other_sessions(tmp_path: Path) -> None:
    """The way Ray's workers outlive a killed driver: adopted by init, in a session of their own."""
    code = textwrap.dedent(
        """
        import subprocess, sys, time
        reaper = subprocess.Popen([sys.executable, "-m", "experiments.run.reaper", str(__import__("os").getpid())],
                                  start_new_session=True)
        orphan = subprocess.Popen(["sleep", "600"], start_new_session=True)
        print(orphan.pid, reaper.pid, flush=True)
        time.sleep(600)
        """
    )
    driver = subprocess.Popen([sys.executable, "-c", code], env=env_in(tmp_path), stdout=subprocess.PIPE, text=True)
    try:
        orphan, reaper = map(int, driver.stdout.readline().split())
        time.sleep(1.2)  # the reaper notes the driver's descendants every 0.5 s
        assert alive(orphan)
    finally:
        driver.kill()
        driver.wait()
    wait_for(lambda: not alive(orphan), timeout=5)
    wait_for(lambda: not alive(reaper), timeout=5)


@pytest.mark.slow  # starts a local Ray (about 30 s on 2 cores)
@pytest.mark.ray
def test_a_killed_ray_driver_leaves_no_ray_process(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    grid = write_grid(tmp_path, "h", HANG)
    driver = subprocess.Popen(
        [sys.executable, "-m", "experiments", "run", str(grid), "--executor", "ray", "--results", str(tmp_path / "r")],
        env={**os.environ, **fake_env()},  # the default TMPDIR: Ray's socket paths must stay short
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, killed whole as in the issue
    )
    seen: dict[int, int] = {}

    def ray_worker_up() -> bool:
        table = _processes()
        seen.update(descendants(driver.pid, table))
        names = []
        for pid in seen:
            try:
                names.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            except OSError:
                pass
        return any(b"ray::" in n for n in names)

    try:
        wait_for(ray_worker_up, timeout=120, step=0.5)
        time.sleep(1.0)
        ray_worker_up()
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()

    def left() -> list[int]:
        table = _processes()
        return [p for p, start in seen.items() if alive(p) and table.get(p, (0, -1))[1] == start]

    wait_for(lambda: not left(), timeout=30, step=0.5)
