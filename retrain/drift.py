"""What every drift monitor shares: the report it returns, its protocol, the alarm budget.

A drift monitor watches one stream of one model (its input features, its calibrated
scores, the share of its scores above the alert threshold) and returns a
:class:`DriftReport` when that stream no longer looks like its reference. Monitors do no
I/O: the stream code publishes the report (``drift_detected``) and decides what to do.

The false-alarm **budget** is expressed as expected events between false alarms on a
stationary stream (``budget_events``). A monitor that tests every ``check_every`` events
at level ``alpha`` raises, on average, at most ``alpha / check_every`` false alarms per
event when its p-values are valid, whatever the correlation between consecutive tests
(the expectation of a sum is the sum of expectations); so :func:`check_alpha` gives the
per-check level that spends the budget exactly. Consecutive tests on overlapping windows
are positively correlated, their false alarms come in clusters, and a monitor re-takes its
reference after each alarm, so the realised rate is lower: ``docs/drift.md`` has the
measured rates.

Positions in a report (``reference``, ``current``, ``event_count``) count the events the
monitor was given since it was built: ``reset()`` restarts the reference, not the count.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "DriftMonitor",
    "DriftReport",
    "check_alpha",
    "pack_array",
    "unpack_array",
]


def check_alpha(budget_events: float, check_every: int) -> float:
    """Per-check false-alarm probability that spends a budget of ``budget_events``.

    >>> check_alpha(1_000_000, 100)
    0.0001
    """
    if budget_events <= 0 or check_every < 1:
        raise ValueError("budget_events must be > 0 and check_every >= 1")
    return min(1.0, check_every / budget_events)


@dataclass(frozen=True)
class DriftReport:
    """One detected drift, as the stream code publishes it (``to_dict`` is its JSON).

    Parameters
    ----------
    monitor
        Which monitor fired (``"feature_ks"``, ``"score_ph"``, ``"score_exceedance"``).
    statistic
        The test statistic at the alarm (KS distance of the most significant feature,
        Page-Hinkley sum, exceedance count).
    statistic_name
        What ``statistic`` is (``"ks_d"``, ``"page_hinkley"``, ``"exceedances"``).
    threshold
        What it was compared with: the per-check level ``alpha`` for p-value tests, the
        Page-Hinkley threshold ``lambda`` otherwise.
    p_value
        The (multiplicity-adjusted) p-value, for p-value tests; ``None`` otherwise.
    features
        The features that drifted, most significant first (empty for score monitors).
    reference, current
        ``[start, end)`` event positions of the reference and current windows.
    event_count
        Events the monitor had been given when it fired (the alarm is on event
        ``event_count - 1``).
    budget_events
        The false-alarm budget the monitor ran with.
    details
        Monitor-specific numbers (per-feature statistics, expected vs observed share ...).
    """

    monitor: str
    statistic: float
    statistic_name: str
    threshold: float
    p_value: float | None
    features: tuple[str, ...]
    reference: tuple[int, int]
    current: tuple[int, int]
    event_count: int
    budget_events: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists).

        >>> r = DriftReport("score_ph", 12.5, "page_hinkley", 9.4, None, (), (0, 4096),
        ...                 (4096, 9000), 9000, 1e6)
        >>> r.to_dict()["reference"], DriftReport.from_dict(r.to_dict()) == r
        ([0, 4096], True)
        """
        out = asdict(self)
        out["features"] = list(self.features)
        out["reference"] = list(self.reference)
        out["current"] = list(self.current)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        return cls(
            monitor=data["monitor"],
            statistic=float(data["statistic"]),
            statistic_name=data["statistic_name"],
            threshold=float(data["threshold"]),
            p_value=None if data["p_value"] is None else float(data["p_value"]),
            features=tuple(data["features"]),
            reference=(int(data["reference"][0]), int(data["reference"][1])),
            current=(int(data["current"][0]), int(data["current"][1])),
            event_count=int(data["event_count"]),
            budget_events=float(data["budget_events"]),
            details=dict(data.get("details", {})),
        )


@runtime_checkable
class DriftMonitor(Protocol):
    """What the retraining loop needs from a monitor.

    ``update`` takes one event (a feature vector or a score), ``update_many`` a batch and
    returns the reports in event order; both give the same decisions. ``reset`` forgets
    the reference (a new model was swapped in); ``to_state`` is JSON and
    ``from_state(to_state())`` continues with identical decisions.
    """

    name: str
    n_seen: int
    budget_events: float

    def update(self, x: Any) -> DriftReport | None: ...

    def update_many(self, X: Any) -> list[DriftReport]: ...

    def reset(self) -> None: ...

    def to_state(self) -> dict[str, Any]: ...


def pack_array(values: np.ndarray) -> dict[str, Any]:
    """An array as JSON: the base64 of its zlib-compressed little-endian bytes.

    Exact, and several times smaller than a list of float reprs; windows of feature
    vectors are most of a monitor's checkpoint. (Same encoding as the detectors'
    checkpoints, kept local so ``retrain`` depends on no private helper.)

    >>> x = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> y = unpack_array(pack_array(x))
    >>> y.dtype, y.shape, bool(np.array_equal(x, y))
    (dtype('float32'), (2, 3), True)
    """
    arr = np.ascontiguousarray(values)
    raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    return {
        "z": base64.b64encode(zlib.compress(raw, 1)).decode("ascii"),
        "dtype": arr.dtype.str.lstrip("<>=|"),
        "shape": list(arr.shape),
    }


def unpack_array(data: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`pack_array` (a writable, native-endian copy)."""
    raw = zlib.decompress(base64.b64decode(data["z"]))
    dtype = np.dtype(data["dtype"])
    arr = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
    return arr.reshape(data["shape"])

