"""The measurement protocol's one GEMM-peak statistic: the best repeat, measured once per process."""

from __future__ import annotations

import time

import pytest

from experiments.kinds import host, measure


class CountingBackend:
    """Hands out fixed GEMM repeat times and counts how often it is asked."""

    def __init__(self, times: list[float], n: int = 100) -> None:
        self.times, self.n, self.calls = times, n, 0

    def gemm_times(self, device: str, precision: str) -> tuple[int, list[float]]:
        self.calls += 1
        return self.n, list(self.times)


class NoGemm:
    def gemm_times(self, device: str, precision: str) -> tuple[int, list[float]]:
        raise NotImplementedError


def test_the_peak_is_two_n_cubed_over_the_best_repeat() -> None:
    backend = CountingBackend([0.004, 0.002, 0.003])
    assert measure.peak_flops(backend, "cpu", "float32") == pytest.approx(2 * 100**3 / 0.002)


def test_the_peak_is_measured_once_per_backend_device_and_precision() -> None:
    backend = CountingBackend([0.001, 0.002])
    first = measure.peak_flops(backend, "cpu", "float64")
    assert measure.peak_flops(backend, "cpu", "float64") == first
    assert backend.calls == 1
    measure.peak_flops(backend, "cpu", "bfloat16")
    assert backend.calls == 2


def test_a_backend_without_a_gemm_has_no_peak() -> None:
    assert measure.peak_flops(NoGemm(), "cpu", "float32") is None


def _sample(wall: float, own: float, busy: float, steal: float, total: float) -> host.HostSample:
    return host.HostSample(wall=wall, own_cpu=own, busy=busy, steal=steal, total=total, load_avg_1m=0.5)


def test_a_quiet_host_is_not_disturbed_and_a_busy_one_is() -> None:
    # 2 cores, 1 s: 2 CPU seconds in all; this process used 1, the host's busy time grew by 1.05
    quiet = host.host_metrics(_sample(0, 0, 10, 0, 100), _sample(1, 1, 11.05, 0, 102))
    assert quiet["cpu_over_wall"] == pytest.approx(1.0)
    assert quiet["host_other_busy"] == pytest.approx(0.025) and quiet["disturbed"] is False
    busy = host.host_metrics(_sample(0, 0, 10, 0, 100), _sample(1, 1, 11.9, 0, 102))  # others took 0.9 s
    assert busy["host_other_busy"] == pytest.approx(0.45) and busy["disturbed"] is True
    stolen = host.host_metrics(_sample(0, 0, 10, 0, 100), _sample(1, 1, 11.2, 0.2, 102))
    assert stolen["host_steal"] == pytest.approx(0.1) and stolen["disturbed"] is True


def test_the_host_is_read_from_proc_stat_here() -> None:
    before = host.sample()
    # Some CPU time of our own, until /proc/stat's counters (clock ticks, updated coarsely on some
    # VMs) have moved: over an interval they did not move, the fractions are rightly None.
    after = host.sample()
    deadline = time.perf_counter() + 5.0
    while (after.total == before.total or after.own_cpu == before.own_cpu) and time.perf_counter() < deadline:
        sum(i * i for i in range(200_000))
        after = host.sample()
    assert after.total is not None and after.total > before.total, "/proc/stat did not advance in 5 s"
    out = host.host_metrics(before, after)
    assert out["cpu_over_wall"] is not None and out["cpu_over_wall"] > 0
    assert out["host_other_busy"] is not None and 0 <= out["host_other_busy"] <= 1


def test_a_disturbed_repeat_is_left_out_where_a_quiet_one_exists() -> None:
    from experiments.claims.common import Timed

    def rec(median: float, disturbed: bool) -> dict:
        m = {"step_s_median": median, "step_s_iqr": 0.0, "timed_steps": 50, "disturbed": disturbed}
        return {"metrics": m}

    assert Timed([rec(1.0, False), rec(5.0, True), rec(1.2, False)]).value == pytest.approx(1.1)
    assert Timed([rec(5.0, True), rec(7.0, True)]).value == pytest.approx(6.0)  # all disturbed: all kept
