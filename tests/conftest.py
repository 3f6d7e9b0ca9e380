"""Shared test setup: hypothesis profiles and the two backends.

Profiles (pick one with ``SEQBENCH_HYPOTHESIS``):
- ``quick`` (default; what ``make test`` runs): few examples, derandomized, so the
  default run is fast and the same every time;
- ``thorough``: many more examples, random each run, for a long verification
  session: ``SEQBENCH_HYPOTHESIS=thorough .venv/bin/python -m pytest tests/test_cross_backend.py``.

Tests that are expensive per example (each one compiles jax functions) take
their counts from ``tests/_verify_helpers.examples(quick, thorough)``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.differing_executors]

settings.register_profile("quick", max_examples=25, deadline=None, derandomize=True, suppress_health_check=_SLOW_OK)
settings.register_profile("thorough", max_examples=500, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("SEQBENCH_HYPOTHESIS", "quick"))


@pytest.fixture(scope="session")
def backends():
    """``{"torch": Backend, "jax": Backend}``, imported once for the session."""
    from experiments.backend import load_backend

    return {"torch": load_backend("torch"), "jax": load_backend("jax")}
