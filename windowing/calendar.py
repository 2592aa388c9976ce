"""Seasonality as context: hour of day and day of week, in the sensor's own time zone.

A data-centre temperature that peaks at 2 pm local time is normal at 2 pm and anomalous at
2 am; giving the detector the local time lets it learn both. Features:

* ``hour_sin``, ``hour_cos`` — the local time of day (with minutes and seconds) on the
  24-hour circle, so 23:59 and 00:00 are neighbours;
* ``dow_sin``, ``dow_cos`` — the local weekday (Monday = 0) on the 7-day circle;
* optionally one-hot ``hour_00`` … ``hour_23`` and ``dow_mon`` … ``dow_sun``.

The sin/cos columns always come **last**, in that order (the layout
``detectors.online.seasonal.SeasonalProfile`` reads by default).

"Local" comes from the IANA database through :mod:`zoneinfo`: the UTC offset is looked up
for each instant, so hours are right across daylight-saving changes (the skipped spring
hour never appears, the repeated autumn hour appears twice with the same hour features).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

__all__ = ["DAY_NAMES", "CalendarFeatures", "utc_offsets"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SECONDS_PER_DAY = 86400.0
_TWO_PI = 2.0 * math.pi
# 1970-01-01 was a Thursday.
_EPOCH_WEEKDAY = 3


def utc_offsets(timestamps: Any, tz: str | ZoneInfo) -> np.ndarray:
    """UTC offset in seconds of ``tz`` at each epoch timestamp (vectorised).

    >>> utc_offsets([1711846799.0, 1711846800.0], "Europe/Berlin").tolist()  # DST starts
    [3600.0, 7200.0]
    """
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    ts = np.asarray(timestamps, dtype=np.float64)
    if ts.size == 0:
        return np.empty(0)
    utc = pd.to_datetime(ts, unit="s", utc=True)
    local = utc.tz_convert(zone).tz_localize(None)
    return np.asarray((local - utc.tz_localize(None)).total_seconds(), dtype=np.float64)


class CalendarFeatures:
    """Cyclical (and optionally one-hot) local-time features.

    Parameters
    ----------
    tz
        IANA time zone name of the sensor, e.g. ``"Europe/Berlin"``.
    one_hot
        Also emit 24 hour and 7 weekday indicator columns.
    day_of_week
        Emit the weekday features (off for series with no weekly rhythm).

    >>> cal = CalendarFeatures("Europe/Berlin")
    >>> cal.names
    ('hour_sin', 'hour_cos', 'dow_sin', 'dow_cos')
    >>> cal.local_time(1711846800.0)  # 2024-03-31 01:00 UTC = 03:00 CEST, a Sunday
    (3.0, 6)
    >>> cal.transform_one(1711846800.0).round(3).tolist()
    [0.707, 0.707, -0.782, 0.623]
    >>> bool(np.allclose(cal.transform_many(np.array([1711846800.0])),
    ...                  cal.transform_one(1711846800.0)))
    True
    """

    def __init__(self, tz: str = "UTC", *, one_hot: bool = False, day_of_week: bool = True):
        self.tz = tz
        self.zone = ZoneInfo(tz)
        self.one_hot = one_hot
        self.day_of_week = day_of_week
        names: list[str] = []
        if one_hot:
            names += [f"hour_{h:02d}" for h in range(24)]
            if day_of_week:
                names += [f"dow_{d}" for d in DAY_NAMES]
        names += ["hour_sin", "hour_cos"]
        if day_of_week:
            names += ["dow_sin", "dow_cos"]
        self.names: tuple[str, ...] = tuple(names)

    def local_time(self, timestamp: float) -> tuple[float, int]:
        """``(local hour as a fraction, local weekday with Monday = 0)``."""
        ts = float(timestamp)
        offset = datetime.fromtimestamp(ts, self.zone).utcoffset()
        local = ts + (offset.total_seconds() if offset is not None else 0.0)
        days = math.floor(local / _SECONDS_PER_DAY)
        return (local - days * _SECONDS_PER_DAY) / 3600.0, (days + _EPOCH_WEEKDAY) % 7

    def transform_one(self, timestamp: float) -> np.ndarray:
        """The features of one instant, in :attr:`names` order."""
        hour, weekday = self.local_time(timestamp)
        return self._assemble(np.array([hour]), np.array([weekday]))[0]

    def transform_many(self, timestamps: Any) -> np.ndarray:
        """The features of many instants, shape ``(n, len(names))``."""
        ts = np.asarray(timestamps, dtype=np.float64)
        local = ts + utc_offsets(ts, self.zone)
        days = np.floor(local / _SECONDS_PER_DAY)
        hour = (local - days * _SECONDS_PER_DAY) / 3600.0
        weekday = (days.astype(np.int64) + _EPOCH_WEEKDAY) % 7
        return self._assemble(hour, weekday)

    def _assemble(self, hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
        cols: list[np.ndarray] = []
        if self.one_hot:
            cols.append(np.equal.outer(np.floor(hour).astype(np.int64), np.arange(24)))
            if self.day_of_week:
                cols.append(np.equal.outer(weekday, np.arange(7)))
        angle = _TWO_PI * hour / 24.0
        cols.append(np.column_stack([np.sin(angle), np.cos(angle)]))
        if self.day_of_week:
            dow_angle = _TWO_PI * weekday / 7.0
            cols.append(np.column_stack([np.sin(dow_angle), np.cos(dow_angle)]))
        return np.hstack([c.astype(np.float64) for c in cols])

    def to_state(self) -> dict[str, Any]:
        return {"tz": self.tz, "one_hot": self.one_hot, "day_of_week": self.day_of_week}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CalendarFeatures:
        return cls(state["tz"], one_hot=state["one_hot"], day_of_week=state["day_of_week"])
