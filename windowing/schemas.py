"""Event schemas and validation: raw bytes in, a typed event or a reasoned rejection out.

Two sources:

* **sensor readings** (:class:`SensorReading`, :func:`parse_sensor_reading`): ``sensor_id``,
  ``timestamp``, ``value``, optional ``unit`` and optional extra numeric ``channels``,
  checked against the sensor's declared range when a :class:`SensorSpec` is given;
* **connection events** (:class:`ConnectionEvent`, :func:`parse_connection_event`): the
  41 KDD Cup 99 fields plus ``timestamp`` and optional ``src_host`` / ``dst_host`` /
  ``src_port``; a *raw* connection without the 19 derived traffic fields is accepted too
  (:mod:`windowing.traffic` derives them).

Every rejection carries a stable ``reason`` code (see :class:`RejectReason`) that ends up in
the dead-letter record, so an operator can count and fix bad producers. ``docs/events.md``
lists what each code means and which inputs produce it.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from windowing.kdd import (
    BINARY_FIELDS,
    CATEGORICAL_FIELDS,
    INTRINSIC_NUMERIC_FIELDS,
    RATE_FIELDS,
    TRAFFIC_FIELDS,
)

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_FUTURE_SECONDS",
    "ConnectionEvent",
    "RejectReason",
    "RejectedEvent",
    "SensorReading",
    "SensorSpec",
    "parse_connection_event",
    "parse_sensor_reading",
    "parse_timestamp",
]

#: Readings stamped further than this into the future (seconds) are rejected.
MAX_FUTURE_SECONDS = 3600.0
#: Larger payloads are rejected before decoding: no sane event is this big, and decoding a
#: hostile megabyte blob on the event loop would stall every other partition.
MAX_EVENT_BYTES = 1 << 20

_CHANNEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
_EPOCH_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class RejectReason(StrEnum):
    """Why an input record was not processed. Values are stable: dashboards count them."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    TOO_LARGE = "too_large"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NOT_FINITE = "not_finite"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    OUT_OF_RANGE = "out_of_range"
    UNIT_MISMATCH = "unit_mismatch"
    OUT_OF_ORDER = "out_of_order"
    DUPLICATE = "duplicate"


class RejectedEvent(ValueError):  # noqa: N818 - public name the stream agents already catch
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


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """What a sensor declares about itself: valid range of ``value``, unit, channel ranges.

    ``None`` bounds are open. A reading outside the range is rejected with
    ``out_of_range`` (a thermometer reporting -273 °C is broken, not anomalous); a reading
    whose ``unit`` differs from the declared one is rejected with ``unit_mismatch``.

    >>> spec = SensorSpec(min_value=-40, max_value=125, unit="C",
    ...                   channels={"humidity": (0, 100)})
    >>> spec.check_value("value", 21.0)
    >>> spec.check_value("humidity", 140.0)
    Traceback (most recent call last):
    ...
    windowing.schemas.RejectedEvent: out_of_range: humidity=140.0 outside declared [0, 100]
    >>> SensorSpec.from_dict({"min_value": 0, "channels": {"rh": [0, 100]}}).channels
    {'rh': (0.0, 100.0)}
    """

    min_value: float | None = None
    max_value: float | None = None
    unit: str | None = None
    channels: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> SensorSpec:
        """Build from configuration (``{"min_value":…, "max_value":…, "unit":…, "channels":…}``)."""

        def bound(v: Any) -> float | None:
            return None if v is None else float(v)

        channels = {
            str(k): (bound(v[0]), bound(v[1])) for k, v in dict(obj.get("channels") or {}).items()
        }
        return cls(bound(obj.get("min_value")), bound(obj.get("max_value")), obj.get("unit"),
                   channels)

    def bounds(self, channel: str) -> tuple[float | None, float | None]:
        """Declared ``(low, high)`` of ``"value"`` or of an extra channel."""
        if channel == "value":
            return self.min_value, self.max_value
        return self.channels.get(channel, (None, None))

    def check_value(self, channel: str, value: float) -> None:
        """Raise ``out_of_range`` if ``value`` lies outside the declared bounds of ``channel``."""
        low, high = self.bounds(channel)
        if (low is not None and value < low) or (high is not None and value > high):
            shown = ", ".join("" if b is None else f"{b:g}" for b in (low, high))
            raise RejectedEvent(
                RejectReason.OUT_OF_RANGE, f"{channel}={value!r} outside declared [{shown}]"
            )


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """One validated connection (KDD Cup 99 layout). ``timestamp`` is UTC epoch seconds.

    ``numeric`` holds the 19 intrinsic numeric fields, plus the 19 derived traffic fields
    when the producer sent them (a *KDD-format* event); a *raw* event lacks them.
    """

    timestamp: float
    protocol_type: str
    service: str
    flag: str
    numeric: dict[str, float]
    src_host: str | None = None
    dst_host: str | None = None
    src_port: int | None = None
    label: str | None = None

    @property
    def has_traffic(self) -> bool:
        """Whether the derived traffic fields came with the event."""
        return TRAFFIC_FIELDS[0] in self.numeric

    def field(self, name: str) -> float | str:
        """The value of one of the 41 KDD fields."""
        if name in CATEGORICAL_FIELDS:
            return str(getattr(self, name))
        return self.numeric[name]


def parse_timestamp(raw: Any) -> float:
    """Epoch seconds (UTC) from an ISO-8601 string, an epoch number or a ``datetime``.

    Naive ISO strings and naive datetimes are taken as UTC. Epoch numbers (or numeric
    text) above 1e11 in magnitude are taken as milliseconds.

    >>> parse_timestamp("2024-03-01T12:00:00+01:00")
    1709290800.0
    >>> parse_timestamp(1709290800000)
    1709290800.0
    >>> parse_timestamp("1709290800")
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
    if isinstance(raw, datetime):
        return (raw if raw.tzinfo is not None else raw.replace(tzinfo=UTC)).timestamp()
    if isinstance(raw, str):
        text = raw.strip()
        if _EPOCH_TEXT.fullmatch(text):
            return parse_timestamp(float(text))
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
        RejectReason.BAD_TIMESTAMP,
        f"timestamp must be ISO-8601 text or epoch number, got {type(raw).__name__}",
    )


def _decode(raw: bytes | str | Mapping[str, Any], max_bytes: int | None) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    if max_bytes is not None and len(raw) > max_bytes:
        raise RejectedEvent(
            RejectReason.TOO_LARGE, f"payload of {len(raw)} bytes exceeds {max_bytes}"
        )
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RejectedEvent(RejectReason.NOT_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RejectedEvent(
            RejectReason.NOT_OBJECT, f"expected a JSON object, got {type(obj).__name__}"
        )
    return obj


def _require(obj: Mapping[str, Any], names: tuple[str, ...]) -> None:
    # JSON null counts as missing: a producer that nulls a field did not send a value.
    for name in names:
        if obj.get(name) is None:
            raise RejectedEvent(RejectReason.MISSING_FIELD, f"missing field {name!r}")


def _finite_float(obj: Mapping[str, Any], name: str) -> float:
    raw = obj[name]
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise RejectedEvent(
            RejectReason.WRONG_TYPE, f"{name} must be a number, got {type(raw).__name__}"
        )
    value = float(raw)
    if not math.isfinite(value):
        raise RejectedEvent(RejectReason.NOT_FINITE, f"{name} is {raw!r}")
    return value


def _optional_text(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise RejectedEvent(RejectReason.WRONG_TYPE, f"{name} must be a non-empty string")
    return value


def _event_time(
    obj: Mapping[str, Any], now: float | None, max_future_s: float, max_past_s: float | None
) -> float:
    ts = parse_timestamp(obj["timestamp"])
    clock = time.time() if now is None else now
    if ts > clock + max_future_s:
        raise RejectedEvent(
            RejectReason.FUTURE_TIMESTAMP,
            f"timestamp {ts} is more than {max_future_s:.0f}s in the future",
        )
    if max_past_s is not None and ts < clock - max_past_s:
        raise RejectedEvent(
            RejectReason.STALE_TIMESTAMP,
            f"timestamp {ts} is more than {max_past_s:.0f}s in the past",
        )
    return ts


def parse_sensor_reading(
    raw: bytes | str | Mapping[str, Any],
    *,
    now: float | None = None,
    max_future_s: float = MAX_FUTURE_SECONDS,
    max_past_s: float | None = None,
    specs: Mapping[str, SensorSpec] | None = None,
    max_bytes: int | None = MAX_EVENT_BYTES,
) -> SensorReading:
    """Validate one sensor reading.

    Parameters
    ----------
    raw
        JSON bytes/text, or an already decoded mapping.
    now
        The clock (epoch seconds) for the future/stale checks; default: ``time.time()``.
    max_future_s
        Reject readings stamped further into the future (clock skew of the producer).
    max_past_s
        Reject readings older than this; ``None`` (default) accepts any age, so recorded
        datasets can be replayed.
    specs
        Declared ranges and units by ``sensor_id``; sensors not listed are not range-checked.
    max_bytes
        Reject larger payloads unread.

    >>> parse_sensor_reading(b'{"sensor_id": "t1", "timestamp": 0, "value": 21.5}')
    SensorReading(sensor_id='t1', timestamp=0.0, value=21.5, unit=None, channels={})
    >>> parse_sensor_reading(b'{"sensor_id": "t1", "timestamp": 0, "value": NaN}')
    Traceback (most recent call last):
    ...
    windowing.schemas.RejectedEvent: not_finite: value is nan
    >>> parse_sensor_reading({"sensor_id": "t1", "timestamp": 0, "value": 900.0},
    ...                      specs={"t1": SensorSpec(max_value=125)})
    Traceback (most recent call last):
    ...
    windowing.schemas.RejectedEvent: out_of_range: value=900.0 outside declared [, 125]
    """
    obj = _decode(raw, max_bytes)
    _require(obj, ("sensor_id", "timestamp", "value"))
    sensor_id = obj["sensor_id"]
    if not isinstance(sensor_id, str) or not sensor_id:
        raise RejectedEvent(RejectReason.WRONG_TYPE, "sensor_id must be a non-empty string")
    ts = _event_time(obj, now, max_future_s, max_past_s)
    value = _finite_float(obj, "value")
    unit = obj.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise RejectedEvent(RejectReason.WRONG_TYPE, "unit must be a string")
    channels: dict[str, float] = {}
    extra = obj.get("channels")
    if extra is not None:
        if not isinstance(extra, dict):
            raise RejectedEvent(RejectReason.WRONG_TYPE, "channels must be an object of numbers")
        for name in extra:
            # Channel names become feature names (``<name>_z``): keep them short and plain,
            # and never "value", which is the main channel.
            if not _CHANNEL_NAME.fullmatch(name) or name == "value":
                raise RejectedEvent(RejectReason.WRONG_TYPE, f"bad channel name {name!r}")
            channels[name] = _finite_float(extra, name)
    spec = specs.get(sensor_id) if specs else None
    if spec is not None:
        if spec.unit is not None and unit is not None and unit != spec.unit:
            raise RejectedEvent(
                RejectReason.UNIT_MISMATCH, f"unit {unit!r}, sensor declares {spec.unit!r}"
            )
        spec.check_value("value", value)
        for name, channel_value in channels.items():
            spec.check_value(name, channel_value)
    return SensorReading(sensor_id, ts, value, unit, channels)


def parse_connection_event(
    raw: bytes | str | Mapping[str, Any],
    *,
    now: float | None = None,
    max_future_s: float = MAX_FUTURE_SECONDS,
    max_past_s: float | None = None,
    max_bytes: int | None = MAX_EVENT_BYTES,
) -> ConnectionEvent:
    """Validate one connection event (KDD-format with traffic fields, or raw without).

    The 22 intrinsic KDD fields and ``timestamp`` are required. The 19 traffic fields
    (``count`` … ``dst_host_srv_rerror_rate``) come all together or not at all; a raw event
    (none of them) needs ``dst_host`` so its traffic features can be derived. Counts and
    sizes must be ≥ 0, rates in [0, 1], ``land``/``logged_in``/``is_host_login``/
    ``is_guest_login`` 0 or 1. Unknown ``protocol_type``/``service``/``flag`` values are
    accepted (they land in the ``other`` one-hot bucket); unknown extra keys are ignored.
    Parameters as in :func:`parse_sensor_reading`.

    >>> event = {"timestamp": "2024-03-01T12:00:00Z", "dst_host": "10.0.0.5",
    ...          "src_port": 40312, "protocol_type": "tcp", "service": "http", "flag": "SF",
    ...          **{name: 0 for name in INTRINSIC_NUMERIC_FIELDS}}
    >>> ev = parse_connection_event(event)
    >>> ev.has_traffic, ev.service, ev.numeric["src_bytes"]
    (False, 'http', 0.0)
    >>> parse_connection_event({**event, "src_bytes": -5})
    Traceback (most recent call last):
    ...
    windowing.schemas.RejectedEvent: out_of_range: src_bytes must be >= 0, got -5.0
    """
    obj = _decode(raw, max_bytes)
    _require(obj, ("timestamp", *CATEGORICAL_FIELDS, *INTRINSIC_NUMERIC_FIELDS))
    ts = _event_time(obj, now, max_future_s, max_past_s)
    categorical = {}
    for name in CATEGORICAL_FIELDS:
        value = obj[name]
        if not isinstance(value, str) or not value.strip():
            raise RejectedEvent(RejectReason.WRONG_TYPE, f"{name} must be a non-empty string")
        categorical[name] = value.strip()
    present = [name for name in TRAFFIC_FIELDS if obj.get(name) is not None]
    if present and len(present) != len(TRAFFIC_FIELDS):
        missing = [name for name in TRAFFIC_FIELDS if obj.get(name) is None]
        raise RejectedEvent(
            RejectReason.MISSING_FIELD,
            f"traffic fields come all or none; missing {', '.join(missing)}",
        )
    numeric: dict[str, float] = {}
    for name in (*INTRINSIC_NUMERIC_FIELDS, *present):
        value = _finite_float(obj, name)
        if value < 0:
            raise RejectedEvent(RejectReason.OUT_OF_RANGE, f"{name} must be >= 0, got {value!r}")
        if name in BINARY_FIELDS and value not in (0.0, 1.0):
            raise RejectedEvent(
                RejectReason.OUT_OF_RANGE, f"{name} must be 0 or 1, got {value!r}"
            )
        if name in RATE_FIELDS and value > 1.0:
            raise RejectedEvent(
                RejectReason.OUT_OF_RANGE, f"{name} must be in [0, 1], got {value!r}"
            )
        numeric[name] = value
    src_host = _optional_text(obj, "src_host")
    dst_host = _optional_text(obj, "dst_host")
    if not present and dst_host is None:
        raise RejectedEvent(
            RejectReason.MISSING_FIELD,
            "missing field 'dst_host' (a raw connection needs it to derive traffic features)",
        )
    src_port = obj.get("src_port")
    if src_port is not None:
        if isinstance(src_port, bool) or not isinstance(src_port, int):
            raise RejectedEvent(RejectReason.WRONG_TYPE, "src_port must be an integer")
        if not 0 <= src_port <= 65535:
            raise RejectedEvent(RejectReason.OUT_OF_RANGE, f"src_port {src_port} not in 0..65535")
    label = obj.get("label")
    if label is not None and not isinstance(label, str):
        raise RejectedEvent(RejectReason.WRONG_TYPE, "label must be a string")
    return ConnectionEvent(
        ts,
        categorical["protocol_type"],
        categorical["service"],
        categorical["flag"],
        numeric,
        src_host,
        dst_host,
        src_port,
        label,
    )
