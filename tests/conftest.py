"""Shared fixtures and hypothesis profiles.

HYPOTHESIS_PROFILE=thorough runs many more examples (e.g. before a release)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

START = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture
def start():
    return START


def hours(h: float) -> float:
    """POSIX seconds of START + h hours."""
    return START.timestamp() + h * 3600.0


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
