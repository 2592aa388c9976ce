"""Differencing then integrating gives the series back; online, batch and resumed agree."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from windowing.differencing import Differencer, SeasonalDifferencer

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
series = arrays(np.float64, st.integers(2, 80), elements=finite)


@settings(max_examples=60, deadline=None)
@given(x=series, data=st.data())
def test_difference_then_integrate_round_trip(x: np.ndarray, data: st.DataObject) -> None:
    steps = np.asarray(data.draw(st.lists(st.integers(1, 5), min_size=x.size - 1,
                                          max_size=x.size - 1)), dtype=np.float64)
    d = Differencer.difference(x, steps)
    back = Differencer.integrate(d, x[0], steps)
    np.testing.assert_allclose(back, x, rtol=1e-9, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(x=series, lag=st.integers(1, 12))
def test_seasonal_difference_then_integrate_round_trip(x: np.ndarray, lag: int) -> None:
    if x.size <= lag:
        x = np.concatenate([x, x, np.arange(lag + 1.0)])
    s = SeasonalDifferencer.difference(x, lag)
    np.testing.assert_allclose(SeasonalDifferencer.integrate(s, x[:lag]), x,
                               rtol=1e-9, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(x=series, cut=st.integers(0, 80))
def test_differencer_online_batch_resume(x: np.ndarray, cut: int) -> None:
    steps = 1 + np.arange(x.size) % 3
    online = Differencer()
    expected = [online.update(v, int(s)) for v, s in zip(x, steps, strict=True)]
    batch = Differencer()
    first = batch.update_many(x[:cut], steps[:cut])
    batch = Differencer.from_state(json.loads(json.dumps(batch.to_state())))
    got = np.concatenate([first, batch.update_many(x[cut:], steps[cut:])])
    assert np.isnan(got[0]) and expected[0] is None
    np.testing.assert_array_equal(got[1:], np.array(expected[1:], dtype=np.float64))


@settings(max_examples=40, deadline=None)
@given(
    x=series,
    jumps=st.lists(st.sampled_from([0, 1, 1, 1, 2, 5]), min_size=80, max_size=80),
    lag=st.integers(1, 6),
    cut=st.integers(0, 80),
)
def test_seasonal_online_batch_resume(x: np.ndarray, jumps: list[int], lag: int,
                                      cut: int) -> None:
    # Slots may repeat (0 jump) or skip (gaps): a missing reference is undefined, not invented.
    slots = 1000 + np.cumsum(jumps[: x.size])
    online = SeasonalDifferencer(lag)
    expected = [online.update(v, int(s)) for v, s in zip(x, slots, strict=True)]
    batch = SeasonalDifferencer(lag)
    first = batch.update_many(x[:cut], slots[:cut])
    batch = SeasonalDifferencer.from_state(json.loads(json.dumps(batch.to_state())))
    got = np.concatenate([first, batch.update_many(x[cut:], slots[cut:])])
    want = np.array([np.nan if e is None else e for e in expected], dtype=np.float64)
    np.testing.assert_array_equal(got, want)


def test_seasonal_reference_missing_is_undefined() -> None:
    sd = SeasonalDifferencer(lag=24)
    assert sd.update(1.0, slot=0) is None
    assert sd.update(5.0, slot=24) == 4.0
    assert sd.update(7.0, slot=50) is None  # slot 26 never seen
