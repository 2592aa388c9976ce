"""Cadence alignment: put irregular readings on a regular grid and mark the gaps.

A sensor is meant to report every ``cadence`` seconds; in practice readings jitter, arrive
twice, or stop for a while. :class:`CadenceAligner` decides, per reading, how many cadence
steps passed since the previous one:

* ``steps = max(1, round(Δt / cadence))``, so jitter below half a cadence is ignored;
* ``steps >= 2`` is a **gap** of ``steps - 1`` missing readings. The aligner never invents
  the missing readings: downstream, the first difference over a gap is the average change
  per step, and the row is flagged.

The cadence is configured, or inferred as the median interval of the first ``infer_from``
intervals (until then the running median is used). Once fixed it never changes, so the
grid slot ``round(t / cadence)`` — used for seasonal phases — stays stable.

Readings at or before the previous reading's time are refused (``duplicate`` /
``out_of_order``) without touching the state: the online pipeline emits one row per reading,
in event-time order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from windowing.schemas import RejectedEvent, RejectReason

__all__ = ["Alignment", "AlignmentBatch", "CadenceAligner", "infer_cadence", "order_mask"]


def infer_cadence(timestamps: Any) -> float:
    """The median positive interval between consecutive timestamps.

    >>> infer_cadence([0, 300, 600, 1200, 1500])
    300.0
    >>> infer_cadence([5.0])
    Traceback (most recent call last):
    ...
    ValueError: need at least two increasing timestamps to infer a cadence
    """
    deltas = np.diff(np.asarray(timestamps, dtype=np.float64))
    deltas = deltas[deltas > 0]
    if deltas.size == 0:
        raise ValueError("need at least two increasing timestamps to infer a cadence")
    return float(np.median(deltas))


def order_mask(timestamps: np.ndarray, last: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Which readings the online path would accept, and why the others are refused.

    A reading is accepted when it is later than every earlier reading (and ``last``);
    refused ones do not move the clock. Returns ``(accepted, reasons)`` where ``reasons``
    holds ``""``, ``"duplicate"`` or ``"out_of_order"`` per reading.

    >>> ok, why = order_mask(np.array([1.0, 3.0, 3.0, 2.0, 4.0]), last=None)
    >>> ok.tolist(), why.tolist()
    ([True, True, False, False, True], ['', '', 'duplicate', 'out_of_order', ''])
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    start = -np.inf if last is None else last
    before = np.maximum.accumulate(np.concatenate([[start], ts]))[:-1]
    accepted = ts > before
    reasons = np.where(
        accepted, "", np.where(ts == before, RejectReason.DUPLICATE.value,
                               RejectReason.OUT_OF_ORDER.value)
    ).astype(object)
    return accepted, reasons


@dataclass(frozen=True, slots=True)
class Alignment:
    """Where one reading falls on the cadence grid."""

    steps: int
    """Cadence steps since the previous reading (1 for the first one)."""
    missing: int
    """Readings missing before this one (``steps - 1``); a gap when > 0."""
    slot: int | None
    """Grid slot ``round(t / cadence)``; ``None`` while the cadence is still being inferred."""
    aligned_timestamp: float
    """``slot * cadence``, or the raw time while the cadence is unknown."""

    @property
    def gap(self) -> bool:
        return self.missing > 0


@dataclass(frozen=True, slots=True)
class AlignmentBatch:
    """:class:`Alignment` for many readings, as arrays (``slot`` is NaN where unknown)."""

    steps: np.ndarray
    missing: np.ndarray
    slot: np.ndarray
    aligned_timestamp: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        return self.missing > 0


def _steps(delta: float, cadence: float) -> int:
    # round-half-up rather than Python's banker's rounding, identical in the numpy path.
    return max(1, math.floor(delta / cadence + 0.5))


class CadenceAligner:
    """Online cadence alignment with gap marking.

    Parameters
    ----------
    cadence
        Seconds between readings; ``None`` infers it.
    infer_from
        Intervals used to infer the cadence.

    >>> al = CadenceAligner(cadence=60)
    >>> [al.update(t).missing for t in (0, 61, 119, 300, 360)]
    [0, 0, 0, 2, 0]
    >>> al.update(360)
    Traceback (most recent call last):
    ...
    windowing.schemas.RejectedEvent: duplicate: timestamp 360.0 already seen
    >>> CadenceAligner.from_state(al.to_state()).update(420).slot
    7
    """

    def __init__(self, cadence: float | None = None, *, infer_from: int = 8) -> None:
        if cadence is not None and not cadence > 0:
            raise ValueError(f"cadence must be > 0, got {cadence!r}")
        if infer_from < 1:
            raise ValueError("infer_from must be >= 1")
        self.configured_cadence = cadence
        self.infer_from = infer_from
        self.cadence: float | None = cadence
        self.last: float | None = None
        self._deltas: list[float] = []

    def check(self, timestamp: float) -> None:
        """Raise ``duplicate`` / ``out_of_order`` if ``timestamp`` cannot follow the last one."""
        if self.last is not None and timestamp <= self.last:
            if timestamp == self.last:
                raise RejectedEvent(
                    RejectReason.DUPLICATE, f"timestamp {timestamp!r} already seen"
                )
            raise RejectedEvent(
                RejectReason.OUT_OF_ORDER,
                f"timestamp {timestamp!r} is before the previous reading {self.last!r}",
            )

    def update(self, timestamp: float) -> Alignment:
        """Place one reading; raises :class:`RejectedEvent` (state unchanged) if it is late."""
        ts = float(timestamp)
        self.check(ts)
        steps = 1
        if self.last is not None:
            delta = ts - self.last
            estimate = self.cadence
            if estimate is None:
                self._deltas.append(delta)
                estimate = float(np.median(self._deltas))
                if len(self._deltas) >= self.infer_from:
                    self.cadence = estimate
                    self._deltas = []
            steps = _steps(delta, estimate)
        self.last = ts
        if self.cadence is None:
            return Alignment(steps, steps - 1, None, ts)
        slot = math.floor(ts / self.cadence + 0.5)
        return Alignment(steps, steps - 1, slot, slot * self.cadence)

    def update_many(self, timestamps: Any) -> AlignmentBatch:
        """Place many readings (strictly increasing, all later than the last one).

        Same result as calling :meth:`update` on each, faster.
        """
        ts = np.asarray(timestamps, dtype=np.float64)
        n = ts.size
        if n == 0:
            empty = np.empty(0)
            return AlignmentBatch(empty.astype(np.int64), empty.astype(np.int64), empty, empty)
        if np.any(np.diff(ts) <= 0) or (self.last is not None and ts[0] <= self.last):
            raise ValueError("update_many needs strictly increasing timestamps after the last")
        steps = np.ones(n, dtype=np.int64)
        slot = np.full(n, np.nan)
        aligned = ts.copy()
        # The cadence is still being inferred for at most `infer_from` readings: a short
        # scalar loop, then everything else is vectorised with the fixed cadence.
        i = 0
        while self.cadence is None and i < n:
            placed = self.update(ts[i])
            steps[i] = placed.steps
            if placed.slot is not None:
                slot[i] = placed.slot
                aligned[i] = placed.aligned_timestamp
            i += 1
        if i < n:
            assert self.cadence is not None
            # The first reading ever has no interval: its own time stands in for the previous.
            first_prev = ts[i] if self.last is None else self.last
            prev = np.concatenate([[first_prev], ts[i:-1]])
            deltas = ts[i:] - prev
            steps[i:] = np.maximum(1, np.floor(deltas / self.cadence + 0.5)).astype(np.int64)
            slot[i:] = np.floor(ts[i:] / self.cadence + 0.5)
            aligned[i:] = slot[i:] * self.cadence
            self.last = float(ts[-1])
        return AlignmentBatch(steps, steps - 1, slot, aligned)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state; :meth:`from_state` resumes exactly."""
        return {
            "configured_cadence": self.configured_cadence,
            "infer_from": self.infer_from,
            "cadence": self.cadence,
            "last": self.last,
            "deltas": list(self._deltas),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CadenceAligner:
        al = cls(state["configured_cadence"], infer_from=state["infer_from"])
        al.cadence = state["cadence"]
        al.last = state["last"]
        al._deltas = [float(d) for d in state["deltas"]]
        return al
