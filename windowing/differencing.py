"""Differencing, online, with its inverse: remove trends (first difference) and repeating
patterns (seasonal difference) without look-ahead.

* :class:`Differencer` — ``d[t] = (x[t] - x[t-1]) / steps[t]``. ``steps`` is the number of
  cadence steps between the two readings (see :mod:`windowing.resample`): over a gap the
  difference is the *average change per step*, so a gap does not look like a jump and no
  reading is invented. :meth:`Differencer.integrate` gives the series back.
* :class:`SeasonalDifferencer` — ``s[t] = x[t] - x[t - lag]`` where ``t`` counts grid slots
  (``lag`` = one season, e.g. 288 five-minute slots per day). When the reading one season
  ago is missing the difference is undefined (NaN / ``None``): the caller falls back to the
  non-seasonal value and says so. :meth:`SeasonalDifferencer.integrate` inverts it.

Both keep O(1) / O(lag) state that round-trips through ``to_state`` / ``from_state``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["Differencer", "SeasonalDifferencer"]


def _nan_to_none(values: Any) -> list[float | None]:
    return [None if (v is None or math.isnan(v)) else float(v) for v in values]


class Differencer:
    """First difference per cadence step.

    >>> d = Differencer()
    >>> [d.update(x) for x in (1.0, 3.0, 6.0)]
    [None, 2.0, 3.0]
    >>> d.update(12.0, steps=3)  # two readings missing: average change per step
    2.0
    >>> x = np.array([5.0, 4.0, 6.0, 10.0])
    >>> diffs = Differencer.difference(x)
    >>> diffs.tolist(), Differencer.integrate(diffs, initial=5.0).tolist()
    ([-1.0, 2.0, 4.0], [5.0, 4.0, 6.0, 10.0])
    """

    def __init__(self) -> None:
        self.last: float | None = None

    def update(self, value: float, steps: int = 1) -> float | None:
        """Difference to the previous value (``None`` for the first); remembers ``value``."""
        out = None if self.last is None else (value - self.last) / steps
        self.last = float(value)
        return out

    def update_many(self, values: Any, steps: Any = None) -> np.ndarray:
        """:meth:`update` over an array; NaN where undefined (the very first value)."""
        x = np.asarray(values, dtype=np.float64)
        if x.size == 0:
            return np.empty(0)
        prev = np.concatenate([[np.nan if self.last is None else self.last], x[:-1]])
        out = x - prev
        if steps is not None:
            out = out / np.asarray(steps, dtype=np.float64)
        self.last = float(x[-1])
        return out

    @staticmethod
    def difference(values: Any, steps: Any = None) -> np.ndarray:
        """Differences of a whole series (length ``n - 1``); ``steps[i]`` divides ``d[i]``."""
        d = np.diff(np.asarray(values, dtype=np.float64))
        return d if steps is None else d / np.asarray(steps, dtype=np.float64)

    @staticmethod
    def integrate(diffs: Any, initial: float, steps: Any = None) -> np.ndarray:
        """Invert :meth:`difference`: the series (length ``n + 1``) starting at ``initial``."""
        d = np.asarray(diffs, dtype=np.float64)
        if steps is not None:
            d = d * np.asarray(steps, dtype=np.float64)
        return np.concatenate([[initial], initial + np.cumsum(d)])

    def to_state(self) -> dict[str, Any]:
        return {"last": self.last}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Differencer:
        d = cls()
        d.last = state["last"]
        return d


class SeasonalDifferencer:
    """Seasonal difference over grid slots: ``x[slot] - x[slot - lag]``.

    Only the last ``lag + 1`` slots are kept. With several readings in one slot the latest wins.

    Parameters
    ----------
    lag
        Season length in slots.

    >>> sd = SeasonalDifferencer(lag=3)
    >>> [sd.update(x) for x in (1.0, 2.0, 3.0, 11.0, 12.0)]
    [None, None, None, 10.0, 10.0]
    >>> sd.update(50.0, slot=9)  # slot 6 was never seen: undefined, not invented
    >>> x = np.arange(10.0) ** 2
    >>> s = SeasonalDifferencer.difference(x, lag=3)
    >>> bool(np.allclose(SeasonalDifferencer.integrate(s, x[:3]), x))
    True
    """

    def __init__(self, lag: int) -> None:
        if lag < 1:
            raise ValueError(f"lag must be >= 1, got {lag}")
        self.lag = int(lag)
        self._by_slot: dict[int, float] = {}
        self._next_slot = 0
        self._last_slot: int | None = None

    def update(self, value: float, slot: int | None = None) -> float | None:
        """Difference to one season ago (``None`` if that slot is missing), then remember.

        ``slot`` defaults to "the slot after the previous one".
        """
        if slot is None:
            slot = self._next_slot
        slot = int(slot)
        ref = self._by_slot.get(slot - self.lag)
        out = None if ref is None or math.isnan(ref) or math.isnan(value) else value - ref
        self._by_slot[slot] = float(value)
        self._last_slot = slot
        self._next_slot = slot + 1
        # Later readings reference slots >= slot - lag (a reading may repeat this slot):
        # anything older is forgotten.
        if len(self._by_slot) > self.lag + 1:
            horizon = slot - self.lag
            self._by_slot = {s: v for s, v in self._by_slot.items() if s >= horizon}
        return out

    def update_many(self, values: Any, slots: Any = None) -> np.ndarray:
        """:meth:`update` over arrays; NaN where undefined. ``slots`` must not decrease."""
        x = np.asarray(values, dtype=np.float64)
        n = x.size
        if n == 0:
            return np.empty(0)
        s = (
            np.arange(self._next_slot, self._next_slot + n, dtype=np.int64)
            if slots is None
            else np.asarray(slots, dtype=np.int64)
        )
        if np.any(np.diff(s) < 0) or (self._last_slot is not None and s[0] < self._last_slot):
            raise ValueError("slots must not decrease")
        stored = sorted(self._by_slot.items())
        all_slots = np.concatenate([np.array([k for k, _ in stored], dtype=np.int64), s])
        all_values = np.concatenate([np.array([v for _, v in stored], dtype=np.float64), x])
        target = s - self.lag
        # The latest entry whose slot is <= target; a reference exists iff its slot == target.
        pos = np.searchsorted(all_slots, target, side="right") - 1
        found = pos >= 0
        found[found] &= all_slots[pos[found]] == target[found]
        out = np.full(n, np.nan)
        out[found] = x[found] - all_values[pos[found]]
        # State: the latest value per slot from slot last - lag on.
        last = int(s[-1])
        keep = all_slots >= last - self.lag
        self._by_slot = dict(zip(all_slots[keep].tolist(), all_values[keep].tolist(), strict=True))
        self._last_slot = last
        self._next_slot = last + 1
        return out

    @staticmethod
    def difference(values: Any, lag: int) -> np.ndarray:
        """Seasonal differences of a gap-free series (length ``n - lag``)."""
        x = np.asarray(values, dtype=np.float64)
        return x[lag:] - x[:-lag]

    @staticmethod
    def integrate(diffs: Any, head: Any) -> np.ndarray:
        """Invert :meth:`difference` given the first season ``head`` (length ``lag``)."""
        d = np.asarray(diffs, dtype=np.float64)
        h = np.asarray(head, dtype=np.float64)
        lag = h.size
        out = np.empty(lag + d.size)
        out[:lag] = h
        # Each phase is a running sum of its own differences.
        for phase in range(lag):
            out[lag + phase :: lag] = h[phase] + np.cumsum(d[phase::lag])
        return out

    def to_state(self) -> dict[str, Any]:
        items = sorted(self._by_slot.items())
        return {
            "lag": self.lag,
            "slots": [k for k, _ in items],
            "values": _nan_to_none(v for _, v in items),
            "next_slot": self._next_slot,
            "last_slot": self._last_slot,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SeasonalDifferencer:
        sd = cls(state["lag"])
        sd._by_slot = {
            int(k): (math.nan if v is None else float(v))
            for k, v in zip(state["slots"], state["values"], strict=True)
        }
        sd._next_slot = int(state["next_slot"])
        sd._last_slot = state["last_slot"]
        return sd
