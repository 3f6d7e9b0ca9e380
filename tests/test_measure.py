"""The measurement protocol's one GEMM-peak statistic: the best repeat, measured once per process."""

from __future__ import annotations

import pytest

from experiments.kinds import measure


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
