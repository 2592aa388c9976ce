"""The online robust scaler matches its batch reference; training-range scaling flags."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from windowing.scaling import RangeScaler, RobustScaler, rolling_robust_scale
from windowing.sensor import SensorFeaturePipeline

values = arrays(np.float64, st.integers(1, 120),
                elements=st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False))


@settings(max_examples=50, deadline=None)
@given(
    x=values,
    window=st.integers(1, 40),
    refresh=st.integers(1, 10),
    method=st.sampled_from(["mad", "iqr", "none"]),
    cuts=st.lists(st.integers(0, 120), max_size=3),
)
def test_online_matches_batch_reference(x: np.ndarray, window: int, refresh: int, method: str,
                                        cuts: list[int]) -> None:
    reference = rolling_robust_scale(x, window, refresh, method)
    online = RobustScaler(window, refresh, method)
    one_by_one = np.array([online.update_one(v) for v in x])
    np.testing.assert_allclose(one_by_one, reference, rtol=1e-12, atol=1e-12)
    # Vectorised, cut into pieces and resumed from JSON state in between.
    chunked = RobustScaler(window, refresh, method)
    bounds = [0, *sorted(min(c, x.size) for c in cuts), x.size]
    pieces = []
    for lo, hi in itertools.pairwise(bounds):
        pieces.append(chunked.update_many(x[lo:hi]))
        chunked = RobustScaler.from_state(json.loads(json.dumps(chunked.to_state())))
    np.testing.assert_allclose(np.concatenate(pieces), reference, rtol=1e-12, atol=1e-12)
    assert chunked.to_state() == online.to_state()


def test_matches_a_plain_pandas_rolling_median_when_refreshing_every_step() -> None:
    import pandas as pd

    x = np.random.default_rng(0).normal(size=300)
    z = RobustScaler(window=50, refresh_every=1).update_many(x)
    # Parameters for row t come from rows t-50 .. t-1: rolling over x, shifted by one.
    rolling = pd.Series(x).rolling(50, min_periods=1)
    med = rolling.median().shift(1)
    mad = rolling.apply(lambda w: np.median(np.abs(w - np.median(w))), raw=True).shift(1)
    expected = ((pd.Series(x) - med) / (1.482602218505602 * mad)).to_numpy()
    np.testing.assert_allclose(z[10:], expected[10:], rtol=1e-9)


def test_forgetting_a_level_shift() -> None:
    x = np.concatenate([np.random.default_rng(1).normal(0, 1, 300),
                        np.random.default_rng(2).normal(50, 1, 300)])
    z = RobustScaler(window=100, refresh_every=10).update_many(x)
    assert abs(z[300]) > 20  # the shift is news
    assert abs(np.median(z[-50:])) < 1  # ... until the window has filled with it


def test_nan_is_skipped_and_flat_windows_stay_finite() -> None:
    sc = RobustScaler(window=10, refresh_every=1)
    z = sc.update_many([5.0, np.nan, 5.0, 5.0, 6.0])
    assert np.isnan(z[1]) and sc.n_seen == 4
    assert np.isfinite(z).sum() == 4 and z[4] == 1.0  # MAD 0, mean-AD 0 -> scale 1


def test_range_scaler() -> None:
    train = np.array([[0.0, 10.0, 3.0], [1.0, 20.0, 3.0]])
    sc = RangeScaler().fit(train)
    scaled, outside = sc.transform(np.array([[0.5, 40.0, 3.0], [-1.0, 15.0, 4.0]]))
    np.testing.assert_allclose(scaled, [[0.5, 1.0, 0.0], [0.0, 0.5, 1.0]])
    assert outside.tolist() == [[False, True, False], [True, False, True]]
    assert sc.scale([[0.5, 40.0, 3.0]])[0, 1] == pytest.approx(3.0)  # 3 ranges above min
    again = RangeScaler.from_state(json.loads(json.dumps(sc.to_state())))
    np.testing.assert_array_equal(again.transform(train)[0], sc.transform(train)[0])
    q = RangeScaler((0.1, 0.9)).fit(np.arange(11.0).reshape(-1, 1))
    assert (q.low_[0], q.high_[0]) == (1.0, 9.0)


def test_method_none_keeps_values_in_their_units_unclipped() -> None:
    x = np.array([3.0, 2e9, -5.0, 7.0])
    one = RobustScaler(window=4, refresh_every=2, method="none")
    many = RobustScaler(window=4, refresh_every=2, method="none")
    # Nothing to learn: even the first value is itself (the other methods give it 0.0).
    assert [one.update_one(v) for v in x] == x.tolist()
    assert many.update_many(x).tolist() == x.tolist()
    pipe = SensorFeaturePipeline("s", cadence=60, difference=False, scaler_method="none")
    batch = pipe.update_many(np.arange(4) * 60.0, x)
    assert batch.values[:, 0].tolist() == x.tolist()


def test_unscaled_values_keep_no_history() -> None:
    # A level detector gets the values as they are: nothing to buffer, nothing to checkpoint.
    sc = RobustScaler(window=256, method="none")
    x = np.linspace(-5.0, 5.0, 1000)
    np.testing.assert_array_equal(sc.update_many(x), x)
    assert sc.update_one(7.5) == 7.5
    state = sc.to_state()
    assert state["buffer"] == [] and state["n_seen"] == 1001
    assert RobustScaler.from_state(state).transform_one(-3.0) == -3.0
