"""Discretisation: cut a stream of readings (or feature vectors) into comparable pieces.

* :class:`TumblingWindow` — consecutive, non-overlapping groups of ``size`` readings ("one
  sample per N readings"); every reading lands in exactly one slice.
* :class:`TimeTumblingWindow` — consecutive event-time buckets of ``duration`` seconds
  ("one sample per day"), optionally summarised at ``resolution`` ("… of 24 hourly means",
  NaN where an hour had no reading: gaps stay visible, nothing is invented). A bucket is
  emitted when the first reading of a later bucket arrives, or on :meth:`flush`.
* :class:`SlidingWindow` — windows of ``length`` readings every ``stride`` readings (for
  sequence models); consecutive windows share ``length - stride`` readings.

Each emits :class:`Slice` objects: the values as an array plus the time range they cover.
:func:`tumbling_windows` and :func:`sliding_windows` do the same for a whole array at once.
All online classes keep JSON-able state (``to_state`` / ``from_state``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from windowing.schemas import RejectedEvent, RejectReason

__all__ = [
    "Slice",
    "SlidingWindow",
    "TimeTumblingWindow",
    "TumblingWindow",
    "WindowBatch",
    "sliding_windows",
    "tumbling_windows",
]


@dataclass(frozen=True, slots=True)
class Slice:
    """One emitted window.

    Attributes
    ----------
    start, end
        Time range: first and last reading time for count-based windows; bucket start
        (inclusive) and end (exclusive) for time buckets.
    values
        Shape ``(L,)`` for scalar readings, ``(L, k)`` for vectors. For summarised time
        buckets, one mean per sub-bucket (NaN when empty).
    timestamps
        Reading times (count-based / raw buckets) or sub-bucket starts (summarised).
    counts
        Readings per sub-bucket (summarised time buckets only).
    index
        Sequence number of the window (tumbling: bucket number for time buckets).
    complete
        False for a partial window returned by ``flush``.
    """

    start: float
    end: float
    values: np.ndarray
    timestamps: np.ndarray
    counts: np.ndarray | None = None
    index: int = 0
    complete: bool = True


@dataclass(frozen=True, slots=True)
class WindowBatch:
    """Many windows as one array ``(n_windows, length, …)`` with their time ranges."""

    values: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _as_list(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


class TumblingWindow:
    """Non-overlapping windows of ``size`` consecutive readings.

    >>> tw = TumblingWindow(size=3)
    >>> out = [tw.update(t, float(t)) for t in range(7)]
    >>> [s.values.tolist() for s in out if s is not None]
    [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    >>> tail = tw.flush()
    >>> tail.values.tolist(), tail.complete
    ([6.0], False)
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self.emitted = 0
        self._times: list[float] = []
        self._values: list[Any] = []

    def update(self, timestamp: float, value: Any) -> Slice | None:
        """Add a reading; returns the window it completes, if any."""
        self._times.append(float(timestamp))
        self._values.append(value)
        if len(self._times) < self.size:
            return None
        return self._emit(complete=True)

    def update_many(self, timestamps: Any, values: Any) -> list[Slice]:
        """:meth:`update` for many readings; the completed windows."""
        return [s for t, v in zip(timestamps, values, strict=True)
                if (s := self.update(t, v)) is not None]

    def flush(self) -> Slice | None:
        """The partial window of the readings not yet emitted (end of stream)."""
        return self._emit(complete=False) if self._times else None

    def _emit(self, complete: bool) -> Slice:
        out = Slice(self._times[0], self._times[-1], np.asarray(self._values, dtype=np.float64),
                    np.asarray(self._times), index=self.emitted, complete=complete)
        self.emitted += 1
        self._times, self._values = [], []
        return out

    def to_state(self) -> dict[str, Any]:
        return {"size": self.size, "emitted": self.emitted, "times": list(self._times),
                "values": [_as_list(v) for v in self._values]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TumblingWindow:
        tw = cls(state["size"])
        tw.emitted = state["emitted"]
        tw._times = list(state["times"])
        tw._values = list(state["values"])
        return tw


class TimeTumblingWindow:
    """Non-overlapping event-time buckets ``[origin + k·duration, origin + (k+1)·duration)``.

    Parameters
    ----------
    duration
        Bucket length in seconds (3600 = hourly, 86400 = daily).
    resolution
        If set, summarise each bucket as ``duration / resolution`` sub-bucket means.
    origin
        Where buckets start (epoch seconds); e.g. ``-3600`` for days starting at local
        midnight in UTC+1.

    >>> day = TimeTumblingWindow(duration=86400, resolution=3600)
    >>> out = day.update_many([0, 1800, 3600, 90000], [1.0, 3.0, 5.0, 7.0])
    >>> s = out[0]
    >>> s.start, s.end, s.values[:3].tolist(), s.counts[:3].tolist()
    (0.0, 86400.0, [2.0, 5.0, nan], [2, 1, 0])
    >>> day.update(100.0, 1.0)
    Traceback (most recent call last):
    ...
    windowing.schemas.RejectedEvent: out_of_order: reading at 100.0 is in closed bucket 0
    """

    def __init__(self, duration: float, resolution: float | None = None, origin: float = 0.0):
        if not duration > 0:
            raise ValueError("duration must be > 0")
        if resolution is not None:
            ratio = duration / resolution
            if not resolution > 0 or abs(ratio - round(ratio)) > 1e-9:
                raise ValueError("resolution must divide duration")
        self.duration = float(duration)
        self.resolution = None if resolution is None else float(resolution)
        self.origin = float(origin)
        self.bucket: int | None = None
        self._times: list[float] = []
        self._values: list[Any] = []

    def _bucket_of(self, timestamp: float) -> int:
        return math.floor((timestamp - self.origin) / self.duration)

    def update(self, timestamp: float, value: Any) -> list[Slice]:
        """Add a reading; returns the bucket(s) it closes (empty buckets are not emitted)."""
        ts = float(timestamp)
        b = self._bucket_of(ts)
        out: list[Slice] = []
        if self.bucket is not None and b < self.bucket:
            raise RejectedEvent(
                RejectReason.OUT_OF_ORDER,
                f"reading at {ts!r} is in closed bucket {b}",
            )
        if self.bucket is not None and b > self.bucket:
            out.append(self._emit(complete=True))
        self.bucket = b
        self._times.append(ts)
        self._values.append(value)
        return out

    def update_many(self, timestamps: Any, values: Any) -> list[Slice]:
        """:meth:`update` for many readings; the closed buckets."""
        out: list[Slice] = []
        for t, v in zip(timestamps, values, strict=True):
            out.extend(self.update(t, v))
        return out

    def flush(self) -> list[Slice]:
        """The current (still open) bucket, marked incomplete."""
        return [self._emit(complete=False)] if self._times else []

    def _emit(self, complete: bool) -> Slice:
        assert self.bucket is not None
        start = self.origin + self.bucket * self.duration
        end = start + self.duration
        times = np.asarray(self._times)
        values = np.asarray(self._values, dtype=np.float64)
        if self.resolution is None:
            out = Slice(start, end, values, times, index=self.bucket, complete=complete)
        else:
            n_sub = round(self.duration / self.resolution)
            sub = np.minimum(((times - start) // self.resolution).astype(np.int64), n_sub - 1)
            sums = np.zeros((n_sub, *values.shape[1:]))
            np.add.at(sums, sub, values)
            counts = np.bincount(sub, minlength=n_sub)
            shape = (n_sub,) + (1,) * (values.ndim - 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.where(counts.reshape(shape) > 0, sums / counts.reshape(shape), np.nan)
            out = Slice(start, end, means, start + self.resolution * np.arange(n_sub), counts,
                        index=self.bucket, complete=complete)
        self._times, self._values = [], []
        return out

    def to_state(self) -> dict[str, Any]:
        return {"duration": self.duration, "resolution": self.resolution, "origin": self.origin,
                "bucket": self.bucket, "times": list(self._times),
                "values": [_as_list(v) for v in self._values]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TimeTumblingWindow:
        tw = cls(state["duration"], state["resolution"], state["origin"])
        tw.bucket = state["bucket"]
        tw._times = list(state["times"])
        tw._values = list(state["values"])
        return tw


class SlidingWindow:
    """Windows of ``length`` readings emitted every ``stride`` readings.

    The first window is emitted with the ``length``-th reading; window ``k`` holds readings
    ``k·stride … k·stride + length - 1``. With ``stride > length`` readings between windows
    are skipped.

    >>> sw = SlidingWindow(length=3, stride=2)
    >>> [s.values.tolist() for t in range(7) if (s := sw.update(t, float(t))) is not None]
    [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [4.0, 5.0, 6.0]]
    """

    def __init__(self, length: int, stride: int = 1) -> None:
        if length < 1 or stride < 1:
            raise ValueError("length and stride must be >= 1")
        self.length = length
        self.stride = stride
        self.n_seen = 0
        self.emitted = 0
        self._buffer: deque[tuple[float, Any]] = deque(maxlen=length)

    def update(self, timestamp: float, value: Any) -> Slice | None:
        """Add a reading; returns the window it completes, if any."""
        self._buffer.append((float(timestamp), value))
        self.n_seen += 1
        if self.n_seen < self.length or (self.n_seen - self.length) % self.stride:
            return None
        times = np.array([t for t, _ in self._buffer])
        values = np.asarray([v for _, v in self._buffer], dtype=np.float64)
        out = Slice(float(times[0]), float(times[-1]), values, times, index=self.emitted)
        self.emitted += 1
        return out

    def update_many(self, timestamps: Any, values: Any) -> list[Slice]:
        """:meth:`update` for many readings; the completed windows."""
        return [s for t, v in zip(timestamps, values, strict=True)
                if (s := self.update(t, v)) is not None]

    def to_state(self) -> dict[str, Any]:
        return {"length": self.length, "stride": self.stride, "n_seen": self.n_seen,
                "emitted": self.emitted,
                "buffer": [[t, _as_list(v)] for t, v in self._buffer]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SlidingWindow:
        sw = cls(state["length"], state["stride"])
        sw.n_seen = state["n_seen"]
        sw.emitted = state["emitted"]
        sw._buffer.extend((float(t), v) for t, v in state["buffer"])
        return sw


def sliding_windows(
    values: Any, length: int, stride: int = 1, timestamps: Any = None
) -> WindowBatch:
    """All windows of :class:`SlidingWindow` over an array at once (a strided view, copied).

    ``timestamps`` default to the positions.

    >>> wb = sliding_windows(np.arange(6.0), length=4, stride=2)
    >>> wb.values.tolist(), wb.starts.tolist(), wb.ends.tolist()
    ([[0.0, 1.0, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0]], [0.0, 2.0], [3.0, 5.0])
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[0]
    ts = np.arange(n, dtype=np.float64) if timestamps is None else np.asarray(
        timestamps, dtype=np.float64)
    if n < length:
        return WindowBatch(np.empty((0, length, *x.shape[1:])), np.empty(0), np.empty(0))
    view = sliding_window_view(x, length, axis=0)[::stride]
    # sliding_window_view puts the window axis last; readings first is what models expect.
    windows = np.moveaxis(view, -1, 1).copy()
    first = np.arange(0, n - length + 1, stride)
    return WindowBatch(windows, ts[first], ts[first + length - 1])


def tumbling_windows(values: Any, size: int, timestamps: Any = None) -> WindowBatch:
    """All complete windows of :class:`TumblingWindow` over an array (the tail is dropped)."""
    return sliding_windows(values, size, size, timestamps)
