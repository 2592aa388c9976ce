"""Event schemas and validation: raw bytes in, a typed event or a reasoned rejection out.

Every rejection carries a stable ``reason`` code (see :class:`RejectReason`) that ends up in
the dead-letter record, so an operator can count and fix bad producers.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "RejectReason",
    "RejectedEvent",
    "SensorReading",
    "parse_sensor_reading",
    "parse_timestamp",
]

#: Readings stamped further than this into the future (seconds) are rejected.
MAX_FUTURE_SECONDS = 3600.0


class RejectReason(StrEnum):
    """Why an input record was not processed. Values are stable: dashboards count them."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NOT_FINITE = "not_finite"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    OUT_OF_RANGE = "out_of_range"


class RejectedEvent(ValueError):
    """An input record that cannot be processed, with a reason code and a human detail."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SensorReading:
    """One validated sensor reading. ``timestamp`` is UTC epoch seconds."""

    sensor_id: str
    timestamp: float
    value: float
    unit: str | None = None
    channels: dict[str, float] = field(default_factory=dict)


def parse_timestamp(raw: Any) -> float:
    """Epoch seconds (UTC) from an ISO-8601 string or an epoch number.

    Naive ISO strings are taken as UTC. Epoch numbers above 1e11 are taken as milliseconds.

    >>> parse_timestamp("2024-03-01T12:00:00+01:00")
    1709290800.0
    >>> parse_timestamp(1709290800000)
    1709290800.0
    >>> parse_timestamp("yesterday")
    Traceback (most recent call last):
    ...
    windowing.schemas.RejectedEvent: bad_timestamp: unparsable timestamp 'yesterday'
    """
    if isinstance(raw, bool):
        raise RejectedEvent(RejectReason.BAD_TIMESTAMP, f"timestamp must not be a bool: {raw!r}")
    if isinstance(raw, int | float):
        ts = float(raw)
        if not math.isfinite(ts):
            raise RejectedEvent(RejectReason.BAD_TIMESTAMP, f"non-finite timestamp {raw!r}")
        return ts / 1000.0 if abs(ts) > 1e11 else ts
    if isinstance(raw, str):
        text = raw.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise RejectedEvent(
                RejectReason.BAD_TIMESTAMP, f"unparsable timestamp {raw!r}"
            ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    raise RejectedEvent(
        RejectReason.BAD_TIMESTAMP, f"timestamp must be ISO-8601 text or epoch number, got {type(raw).__name__}"
    )


def _decode(raw: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RejectedEvent(RejectReason.NOT_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RejectedEvent(RejectReason.NOT_OBJECT, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _finite_float(obj: dict[str, Any], name: str) -> float:
    raw = obj[name]
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise RejectedEvent(RejectReason.WRONG_TYPE, f"{name} must be a number, got {type(raw).__name__}")
    value = float(raw)
    if not math.isfinite(value):
        raise RejectedEvent(RejectReason.NOT_FINITE, f"{name} is {raw!r}")
    return value


def parse_sensor_reading(
    raw: bytes | str | dict[str, Any],
    *,
    now: float | None = None,
    max_future_s: float = MAX_FUTURE_SECONDS,
) -> SensorReading:
    """Validate one sensor reading.

    >>> parse_sensor_reading(b'{"sensor_id": "t1", "timestamp": 0, "value": 21.5}')
    SensorReading(sensor_id='t1', timestamp=0.0, value=21.5, unit=None, channels={})
    >>> parse_sensor_reading(b'{"sensor_id": "t1", "timestamp": 0, "value": NaN}')
    Traceback (most recent call last):
    ...
    windowing.schemas.RejectedEvent: not_finite: value is nan
    """
    obj = _decode(raw)
    for name in ("sensor_id", "timestamp", "value"):
        if name not in obj or obj[name] is None:
            raise RejectedEvent(RejectReason.MISSING_FIELD, f"missing field {name!r}")
    sensor_id = obj["sensor_id"]
    if not isinstance(sensor_id, str) or not sensor_id:
        raise RejectedEvent(RejectReason.WRONG_TYPE, "sensor_id must be a non-empty string")
    ts = parse_timestamp(obj["timestamp"])
    limit = (time.time() if now is None else now) + max_future_s
    if ts > limit:
        raise RejectedEvent(RejectReason.FUTURE_TIMESTAMP, f"timestamp {ts} is more than {max_future_s:.0f}s in the future")
    value = _finite_float(obj, "value")
    unit = obj.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise RejectedEvent(RejectReason.WRONG_TYPE, "unit must be a string")
    channels: dict[str, float] = {}
    extra = obj.get("channels")
    if extra is not None:
        if not isinstance(extra, dict):
            raise RejectedEvent(RejectReason.WRONG_TYPE, "channels must be an object of numbers")
        channels = {str(k): _finite_float(extra, k) for k in extra}
    return SensorReading(sensor_id, ts, value, unit, channels)
