"""Hour of day / day of week in local time, right across DST changes and time zones."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from windowing.calendar import CalendarFeatures, utc_offsets

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
         "Asia/Kathmandu", "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham"]


def decoded_hour(features: np.ndarray, names: tuple[str, ...]) -> float:
    s, c = features[names.index("hour_sin")], features[names.index("hour_cos")]
    return math.atan2(s, c) * 24 / (2 * math.pi) % 24


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("zone", "instant", "hour", "weekday"),
    [
        # Berlin, spring forward 2024-03-31: 01:59:59 UTC+1 is followed by 03:00 UTC+2.
        ("Europe/Berlin", "2024-03-31T00:30:00", 1.5, 6),
        ("Europe/Berlin", "2024-03-31T01:30:00", 3.5, 6),
        # New York, fall back 2024-11-03: 01:30 happens twice (EDT, then EST).
        ("America/New_York", "2024-11-03T05:30:00", 1.5, 6),
        ("America/New_York", "2024-11-03T06:30:00", 1.5, 6),
        ("America/New_York", "2024-11-03T07:30:00", 2.5, 6),
        # Sydney, DST ends 2024-04-07 03:00 AEDT -> 02:00 AEST.
        ("Australia/Sydney", "2024-04-06T15:30:00", 2.5, 6),
        ("Australia/Sydney", "2024-04-06T16:30:00", 2.5, 6),
        # Half-hour and 45-minute offsets; a date change across the offset.
        ("Asia/Kolkata", "2024-01-01T20:00:00", 1.5, 1),
        ("Asia/Kathmandu", "2024-01-01T00:00:00", 5.75, 0),
        ("America/St_Johns", "2024-07-01T02:00:00", 23.5, 6),
        # Lord Howe's DST is 30 minutes.
        ("Australia/Lord_Howe", "2024-01-01T00:00:00", 11.0, 0),
    ],
)
def test_known_local_times(zone: str, instant: str, hour: float, weekday: int) -> None:
    cal = CalendarFeatures(zone, one_hot=True)
    ts = utc(instant)
    assert cal.local_time(ts) == (pytest.approx(hour), weekday)
    for feats in (cal.transform_one(ts), cal.transform_many(np.array([ts]))[0]):
        assert decoded_hour(feats, cal.names) == pytest.approx(hour, abs=1e-9)
        assert feats[cal.names.index(f"hour_{int(hour):02d}")] == 1.0
        assert feats[[i for i, n in enumerate(cal.names) if n.startswith("hour_0")
                      or n.startswith("hour_1") or n.startswith("hour_2")]].sum() == 1.0
        day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[weekday]
        assert feats[cal.names.index(f"dow_{day}")] == 1.0


def test_spring_forward_skips_an_hour_and_fall_back_repeats_one() -> None:
    cal = CalendarFeatures("Europe/Berlin")
    spring = utc("2024-03-31T00:00:00") + 900.0 * np.arange(8)  # 01:00 .. 04:45 local
    hours = np.floor([cal.local_time(t)[0] for t in spring])
    assert 2.0 not in hours
    autumn = utc("2024-10-27T00:00:00") + 900.0 * np.arange(12)
    hours = np.floor([cal.local_time(t)[0] for t in autumn]).tolist()
    assert hours.count(2.0) == 8  # 02:00-02:59 CEST then again CET


@settings(max_examples=60, deadline=None)
@given(
    ts=st.integers(0, 2_100_000_000),
    zone=st.sampled_from(ZONES),
)
def test_matches_zoneinfo_wall_clock(ts: int, zone: str) -> None:
    cal = CalendarFeatures(zone)
    local = datetime.fromtimestamp(ts, ZoneInfo(zone))
    wall = local.hour + local.minute / 60 + local.second / 3600
    one = cal.transform_one(float(ts))
    many = cal.transform_many(np.array([float(ts), float(ts)]))
    np.testing.assert_allclose(many, np.vstack([one, one]), rtol=0, atol=1e-12)
    decoded = decoded_hour(one, cal.names)
    assert min(abs(decoded - wall), 24 - abs(decoded - wall)) < 1e-6
    dow = math.atan2(one[cal.names.index("dow_sin")], one[cal.names.index("dow_cos")])
    assert round(dow * 7 / (2 * math.pi)) % 7 == local.weekday()


def test_offsets_vectorised() -> None:
    ts = utc("2024-10-27T00:30:00") + 3600.0 * np.arange(3)
    assert utc_offsets(ts, "Europe/Berlin").tolist() == [7200.0, 3600.0, 3600.0]


def test_layout_puts_sin_cos_last() -> None:
    names = CalendarFeatures("UTC", one_hot=True).names
    assert names[-4:] == ("hour_sin", "hour_cos", "dow_sin", "dow_cos")
    assert len(names) == 24 + 7 + 4
    assert CalendarFeatures(day_of_week=False).names == ("hour_sin", "hour_cos")
