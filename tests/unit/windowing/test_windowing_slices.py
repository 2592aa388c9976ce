"""Tumbling windows cover every reading exactly once; sliding ones overlap as declared."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from windowing.schemas import RejectedEvent
from windowing.slices import (
    SlidingWindow,
    TimeTumblingWindow,
    TumblingWindow,
    sliding_windows,
    tumbling_windows,
)

gaps = st.lists(st.floats(0.5, 5000.0), min_size=1, max_size=150)


def times(deltas: list[float]) -> np.ndarray:
    return 1_700_000_000.0 + np.cumsum(deltas)


@settings(max_examples=50, deadline=None)
@given(deltas=gaps, size=st.integers(1, 20), cut=st.integers(0, 150))
def test_tumbling_covers_each_reading_once(deltas: list[float], size: int, cut: int) -> None:
    ts = times(deltas)
    tw = TumblingWindow(size)
    slices = tw.update_many(ts[:cut], ts[:cut])
    tw = TumblingWindow.from_state(json.loads(json.dumps(tw.to_state())))
    slices += tw.update_many(ts[cut:], ts[cut:])
    tail = tw.flush()
    covered = np.concatenate([s.timestamps for s in slices + ([tail] if tail else [])])
    np.testing.assert_array_equal(covered, ts)
    assert all(s.values.shape == (size,) and s.complete for s in slices)
    assert all(s.start == s.timestamps[0] and s.end == s.timestamps[-1] for s in slices)
    assert [s.index for s in slices] == list(range(len(slices)))
    batch = tumbling_windows(ts, size, ts)
    assert len(batch) == len(slices)
    if slices:
        np.testing.assert_array_equal(batch.values, np.stack([s.values for s in slices]))


@settings(max_examples=50, deadline=None)
@given(deltas=gaps, duration=st.sampled_from([3600.0, 86400.0]),
       resolution=st.sampled_from([None, 900.0, 3600.0]))
def test_time_buckets_cover_each_reading_once(deltas: list[float], duration: float,
                                             resolution: float | None) -> None:
    ts = times(deltas)
    values = np.arange(ts.size, dtype=np.float64)
    tw = TimeTumblingWindow(duration, resolution)
    slices = tw.update_many(ts, values) + tw.flush()
    assert [s.complete for s in slices] == [True] * (len(slices) - 1) + [False]
    for s in slices:
        assert s.end - s.start == duration and s.start % duration == 0
    if resolution is None:
        np.testing.assert_array_equal(np.concatenate([s.timestamps for s in slices]), ts)
        assert all(((s.timestamps >= s.start) & (s.timestamps < s.end)).all() for s in slices)
    else:
        assert sum(int(s.counts.sum()) for s in slices) == ts.size
        total = sum(np.nansum(s.values * s.counts) for s in slices)
        assert total == pytest.approx(values.sum())
        assert all(s.values.shape == (round(duration / resolution),) for s in slices)
        # Empty sub-buckets stay NaN: nothing invented.
        assert all((np.isnan(s.values) == (s.counts == 0)).all() for s in slices)


def test_daily_slices_of_hourly_means() -> None:
    ts = np.arange(0, 2 * 86400, 1800.0)
    ts = ts[(ts < 5 * 3600) | (ts >= 6 * 3600)]  # an hour missing on day one
    day = TimeTumblingWindow(86400, 3600)
    first, = day.update_many(ts, np.ones(ts.size))
    assert first.counts.tolist()[4:7] == [2, 0, 2] and np.isnan(first.values[5])
    with pytest.raises(RejectedEvent):
        day.update(10.0, 1.0)


@settings(max_examples=50, deadline=None)
@given(deltas=gaps, length=st.integers(1, 12), stride=st.integers(1, 15),
       cut=st.integers(0, 150))
def test_sliding_windows_overlap_as_declared(deltas: list[float], length: int, stride: int,
                                             cut: int) -> None:
    ts = times(deltas)
    sw = SlidingWindow(length, stride)
    slices = sw.update_many(ts[:cut], ts[:cut])
    sw = SlidingWindow.from_state(json.loads(json.dumps(sw.to_state())))
    slices += sw.update_many(ts[cut:], ts[cut:])
    n = ts.size
    expected = 0 if n < length else (n - length) // stride + 1
    assert len(slices) == expected
    for k, s in enumerate(slices):
        np.testing.assert_array_equal(s.timestamps, ts[k * stride : k * stride + length])
        assert (s.start, s.end) == (s.timestamps[0], s.timestamps[-1])
    for a, b in itertools.pairwise(slices):
        shared = np.intersect1d(a.timestamps, b.timestamps).size
        assert shared == max(0, length - stride)
    batch = sliding_windows(ts, length, stride, ts)
    assert len(batch) == expected
    if slices:
        np.testing.assert_array_equal(batch.values, np.stack([s.values for s in slices]))
        np.testing.assert_array_equal(batch.starts, [s.start for s in slices])


def test_sliding_windows_of_feature_vectors() -> None:
    x = np.arange(20.0).reshape(10, 2)
    batch = sliding_windows(x, length=4, stride=3)
    assert batch.values.shape == (3, 4, 2)
    np.testing.assert_array_equal(batch.values[1], x[3:7])
    sw = SlidingWindow(4, 3)
    online = [s for i, row in enumerate(x) if (s := sw.update(float(i), row)) is not None]
    np.testing.assert_array_equal(np.stack([s.values for s in online]), batch.values)
