"""The per-sensor pipeline: named features, decisions in meta, batch == online == resumed."""

from __future__ import annotations

import contextlib
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from windowing.features import FeatureVector
from windowing.schemas import RejectedEvent, RejectReason, SensorReading
from windowing.sensor import SensorFeaturePipeline

OPTIONS = dict(warmup=120, test_window=200, recheck_every=300, seasonal_period=3600,
               scaler_window=48, scaler_refresh=8, tz="America/New_York", one_hot=True)


def messy_stream(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minute readings with jitter, gaps, duplicates and late arrivals, across a DST change."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([60, 60, 60, 61, 59, 180, 600, 0, -30], size=n)
    ts = 1_699_000_000.0 + np.cumsum(steps).astype(np.float64)  # 2023-11-03 .. 11-05 (DST)
    value = np.cumsum(rng.normal(size=n)) + 5 * np.sin(ts / 86400 * 2 * np.pi)
    humidity = rng.normal(50, 5, size=n)
    return ts, value, humidity


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def test_batch_equals_online_equals_resumed() -> None:
    ts, value, humidity = messy_stream(1500, seed=3)
    online = SensorFeaturePipeline("rack-7", **OPTIONS)
    expected: dict[int, FeatureVector | str] = {}
    for i in range(ts.size):
        try:
            expected[i] = online.update_one(
                SensorReading("rack-7", ts[i], value[i], channels={"humidity": humidity[i]}))
        except RejectedEvent as exc:
            expected[i] = exc.reason.value
    batch_pipe = SensorFeaturePipeline("rack-7", **OPTIONS)
    got: dict[int, FeatureVector | str] = {}
    cuts = [0, 3, 9, 400, 401, 1100, ts.size]
    for lo, hi in itertools.pairwise(cuts):
        state = json.loads(json.dumps(batch_pipe.to_state(), allow_nan=False))
        batch_pipe = SensorFeaturePipeline.from_state(state)
        fb = batch_pipe.update_many(ts[lo:hi], value[lo:hi], {"humidity": humidity[lo:hi]})
        got.update({lo + int(i): fb.row(k) for k, i in enumerate(fb.index)})
        got.update({lo + i: reason for i, reason in fb.rejected})
    assert got.keys() == expected.keys()
    n_rejected = 0
    for i, want in expected.items():
        have = got[i]
        if isinstance(want, str):
            assert have == want
            n_rejected += 1
            continue
        assert isinstance(have, FeatureVector)
        np.testing.assert_allclose(have.values, want.values, rtol=1e-9, atol=1e-12)
        assert have.names == want.names and have.timestamp == want.timestamp
        assert have.meta.keys() == want.meta.keys()
        assert all(same(have.meta[k], want.meta[k]) for k in want.meta), i
    assert n_rejected > 50
    # States may differ in what they have not forgotten yet, never in what they do next.
    more_ts = ts[-1] + 60.0 * np.arange(1, 200)
    more = np.random.default_rng(9).normal(size=more_ts.size)
    tail = batch_pipe.update_many(more_ts, more, {"humidity": more})
    for k in range(more_ts.size):
        fv = online.update_one(SensorReading("rack-7", more_ts[k], more[k],
                                             channels={"humidity": more[k]}))
        np.testing.assert_allclose(tail.values[k], fv.values, rtol=1e-9, atol=1e-12)
    assert any(v.meta["seasonal_differenced"] for v in expected.values()
               if isinstance(v, FeatureVector))
    assert any(v.meta["gap"] for v in expected.values() if isinstance(v, FeatureVector))


def test_decision_is_visible_and_switches_representation() -> None:
    rng = np.random.default_rng(0)
    n = 24 * 30
    t = np.arange(n)
    ts = 1_700_000_000.0 + 3600.0 * t
    trending = 20 + 0.05 * t + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, n)
    noise = rng.normal(0, 1, n)
    for series, differenced in ((trending, True), (noise, False)):
        pipe = SensorFeaturePipeline("s", warmup=24 * 14, recheck_every=None)
        batch = pipe.update_many(ts, series)
        last = batch.row(len(batch) - 1)
        assert last.meta["differenced"] is differenced
        assert last.meta["stationarity"] != "pending" and last.meta["warm"]
        assert pipe.decisions["value"].difference is differenced
        assert batch.meta["stationarity"][0] == "pending"
        # Once decided, a stationary series is scaled as a level: z ~ N(0, 1).
        if not differenced:
            z = batch.column("value_z")[24 * 14 :]
            assert abs(np.median(z)) < 0.3 and 0.7 < np.median(np.abs(z)) / 0.6745 < 1.4


def test_feature_names_and_meta() -> None:
    pipe = SensorFeaturePipeline("s", cadence=60, tz="Europe/Berlin")
    fv = pipe.update_one(SensorReading("s", 1_711_846_800.0, 20.0, channels={"rh": 40.0}))
    assert fv.names == ("value_z", "rh_z", "hour_sin", "hour_cos", "dow_sin", "dow_cos")
    assert pipe.channels == ("value", "rh")
    assert {"value", "aligned_timestamp", "gap", "missing", "warm", "differenced",
            "seasonal_differenced", "stationarity", "adf_pvalue", "kpss_pvalue", "rh_raw",
            "rh_differenced", "rh_stationarity"} <= fv.meta.keys()
    assert np.isfinite(fv.values).all()
    assert fv["hour_sin"] == pytest.approx(math.sin(2 * math.pi * 3 / 24))  # 03:00 CEST
    record = json.loads(json.dumps(fv.to_record(), allow_nan=False))
    assert record["features"]["value_z"] == 0.0 and record["meta"]["rh_raw"] == 40.0


def test_refusals_leave_state_untouched() -> None:
    pipe = SensorFeaturePipeline("s", channels=["rh"])
    pipe.update_one(SensorReading("s", 100.0, 1.0, channels={"rh": 1.0}))
    before = json.dumps(pipe.to_state())
    cases = [
        (SensorReading("s", 100.0, 2.0, channels={"rh": 1.0}), RejectReason.DUPLICATE),
        (SensorReading("s", 50.0, 2.0, channels={"rh": 1.0}), RejectReason.OUT_OF_ORDER),
        (SensorReading("s", 200.0, 2.0), RejectReason.MISSING_FIELD),
    ]
    for reading, reason in cases:
        with pytest.raises(RejectedEvent) as info:
            pipe.update_one(reading)
        assert info.value.reason is reason
    assert json.dumps(pipe.to_state()) == before
    # Extra channels of a reading are ignored.
    fv = pipe.update_one(SensorReading("s", 200.0, 2.0, channels={"rh": 1.0, "x": 3.0}))
    assert fv.names[:2] == ("value_z", "rh_z")


def test_batch_refuses_bad_rows_and_update_readings() -> None:
    pipe = SensorFeaturePipeline("s")
    fb = pipe.update_many([0.0, 60.0, np.nan, 120.0, 120.0, 90.0, 180.0],
                          [1.0, np.inf, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert fb.index.tolist() == [0, 3, 6]
    assert dict(fb.rejected) == {1: "not_finite", 2: "bad_timestamp", 4: "duplicate",
                                 5: "out_of_order"}
    readings = [SensorReading("s", 240.0, 1.0), SensorReading("s", 230.0, 1.0),
                SensorReading("s", 300.0, 1.0)]
    rb = pipe.update_readings(readings)
    assert rb.index.tolist() == [0, 2] and rb.rejected == ((1, "out_of_order"),)
    assert pipe.n_seen == 5


def test_forced_differencing_and_state_is_small_json() -> None:
    pipe = SensorFeaturePipeline("s", difference=False, scaler_window=64)
    fb = pipe.update_many(np.arange(500) * 60.0, np.random.default_rng(1).normal(size=500))
    assert set(fb.meta["stationarity"]) == {"configured"} and not fb.meta["differenced"].any()
    text = json.dumps(pipe.to_state(), allow_nan=False)
    assert len(text) < 60_000


@settings(max_examples=15, deadline=None)
@given(
    deltas=st.lists(st.sampled_from([60.0, 60.0, 61.0, 59.0, 240.0, 0.0, -90.0]),
                    min_size=1, max_size=120),
    values=st.lists(st.floats(-100, 100, allow_nan=False), min_size=120, max_size=120),
    cut=st.integers(0, 120),
)
def test_property_batch_equals_online(deltas: list[float], values: list[float],
                                      cut: int) -> None:
    ts = 1_700_000_000.0 + np.cumsum(deltas)
    x = np.asarray(values[: ts.size])
    options = dict(warmup=25, test_window=40, recheck_every=30, seasonal_period=600,
                   scaler_window=16, scaler_refresh=4, infer_cadence_from=3)
    online = SensorFeaturePipeline("p", **options)
    expected = []
    for t, v in zip(ts, x, strict=True):
        with contextlib.suppress(RejectedEvent):  # refused online = listed as rejected in batch
            expected.append(online.update_one(SensorReading("p", t, v)).values)
    batch = SensorFeaturePipeline("p", **options)
    first = batch.update_many(ts[:cut], x[:cut])
    batch = SensorFeaturePipeline.from_state(json.loads(json.dumps(batch.to_state())))
    second = batch.update_many(ts[cut:], x[cut:])
    got = np.vstack([first.values, second.values])
    assert got.shape == (len(expected), 5)
    if expected:
        np.testing.assert_allclose(got, np.vstack(expected), rtol=1e-9, atol=1e-9)
