"""The differencing decision: trend + daily cycle + noise -> difference; white noise -> not."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from windowing.stationarity import (
    StationarityMonitor,
    adf_test,
    check_stationarity,
)


def trend_cycle_noise(n: int, seed: int) -> np.ndarray:
    """Hourly data-centre temperature: warming trend, daily cycle, sensor noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 20 + 0.05 * t + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, n)


@pytest.mark.parametrize("seed", range(5))
def test_trend_with_daily_cycle_is_differenced(seed: int) -> None:
    decision = check_stationarity(trend_cycle_noise(24 * 21, seed))
    assert decision.difference
    assert decision.verdict in {"unit_root", "difference_stationary", "trend_stationary"}
    assert decision.kpss_pvalue is not None and decision.kpss_pvalue < 0.05
    assert decision.reason


@pytest.mark.parametrize("seed", range(5))
def test_white_noise_is_left_alone(seed: int) -> None:
    decision = check_stationarity(np.random.default_rng(100 + seed).normal(5, 2, 500))
    assert not decision.difference
    assert decision.verdict == "stationary"
    assert decision.adf_pvalue is not None and decision.adf_pvalue < 0.05


def test_white_noise_is_rarely_differenced() -> None:
    # Two 5 % tests combined: a few false "difference" verdicts are expected, not many.
    decisions = [check_stationarity(np.random.default_rng(s).normal(size=400)).difference
                 for s in range(40)]
    assert sum(decisions) <= 6


def test_random_walk_is_differenced() -> None:
    walk = np.cumsum(np.random.default_rng(7).normal(size=500))
    assert check_stationarity(walk).verdict == "unit_root"


def test_constant_and_short_windows() -> None:
    assert check_stationarity(np.full(100, 3.0)).verdict == "constant"
    assert not check_stationarity(np.full(100, 3.0)).difference
    assert check_stationarity(np.arange(5.0)).verdict == "pending"


def test_adf_matches_statsmodels() -> None:
    from statsmodels.tsa.stattools import adfuller

    rng = np.random.default_rng(3)
    for x in (rng.normal(size=300), np.cumsum(rng.normal(size=500)),
              trend_cycle_noise(400, 1)):
        lag = int(12 * (x.size / 100) ** 0.25)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = adfuller(x, maxlag=lag, autolag=None, regression="c")
        stat, p = adf_test(x, lag)
        assert stat == pytest.approx(expected[0], rel=1e-8)
        assert p == pytest.approx(expected[1], rel=1e-6, abs=1e-12)


def test_monitor_schedule_and_resume() -> None:
    x = np.concatenate([np.random.default_rng(0).normal(size=300),
                        np.cumsum(np.random.default_rng(1).normal(size=400)) + 10])
    online = StationarityMonitor(warmup=100, window=150, recheck_every=200, name="s/value")
    decisions = [online.update(v) for v in x]
    assert [d.verdict for d in decisions[:99]] == ["pending"] * 99
    assert decisions[99].at_count == 100 and not decisions[99].difference
    assert decisions[-1].difference and decisions[-1].at_count == 700
    assert len(online.history) == 4  # at 100, 300, 500, 700
    batch = StationarityMonitor(warmup=100, window=150, recheck_every=200, name="s/value")
    found, which = batch.update_many(x[:250])
    batch = StationarityMonitor.from_state(json.loads(json.dumps(batch.to_state())))
    found2, which2 = batch.update_many(x[250:])
    got = [found[i] for i in which] + [found2[i] for i in which2]
    assert got == decisions
    assert batch.to_state() == online.to_state()


def test_forced_decision() -> None:
    mon = StationarityMonitor(warmup=10, difference=True)
    assert all(mon.update(v).verdict == "configured" for v in range(50))
    assert mon.decision.difference and mon.decision.adf_pvalue is None
