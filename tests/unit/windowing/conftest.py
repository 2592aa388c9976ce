"""Shared helpers for the windowing tests: synthetic data only (never /work/shared/data)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from windowing.kdd import INTRINSIC_NUMERIC_FIELDS


def _raw_connection(**overrides: object) -> dict[str, object]:
    """A valid raw connection event (no traffic fields) as a JSON-able dict."""
    event: dict[str, object] = {
        "timestamp": 1_700_000_000.0,
        "dst_host": "10.0.0.5",
        "src_host": "10.0.0.9",
        "src_port": 40312,
        "protocol_type": "tcp",
        "service": "http",
        "flag": "SF",
        **{name: 0 for name in INTRINSIC_NUMERIC_FIELDS},
    }
    event.update(src_bytes=181, dst_bytes=5450, logged_in=1)
    event.update(overrides)
    return event


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240331)


@pytest.fixture
def raw_connection() -> Callable[..., dict[str, object]]:
    """Factory of valid raw connection events (no traffic fields), as JSON-able dicts."""
    return _raw_connection
