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

The parsers are the trust boundary of the pipeline: whatever the bytes, they return a typed
event or raise :class:`RejectedEvent`, never anything else. :class:`InputLimits` gathers
the bounds that make this hold (payload size, JSON nesting depth, timestamp range, id and
text lengths), so that nothing accepted here can crash a later stage (``datetime``
conversion, InfluxDB line protocol, feature names).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
import unicodedata
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum, StrEnum
from itertools import accumulate
from typing import Any, Final

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
    "InputLimits",
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
#: Larger payloads are rejected before decoding: no sane event is this big (a KDD event is
#: under 2 kB), and decoding a hostile blob on the event loop would stall every other
#: partition.
MAX_EVENT_BYTES = 512 * 1024

_CHANNEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
_EPOCH_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
#: A JSON string token, closed or running to the end of the text. Unrolled so that it
#: matches in linear time whatever the input.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\[\s\S][^"\\]*)*"?')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# Openers to +1 and closers to -1 as signed bytes, so the running depth is a C-level
# accumulate over an array instead of a Python loop over up to 512 KiB.
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
#: How much of an offending id or text a rejection detail shows.
_PREVIEW_CHARS = 64


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
    TOO_DEEP = "too_deep"
    BAD_ID = "bad_id"


class RejectedEvent(ValueError):  # noqa: N818 - public name the stream agents already catch
    """An input record that cannot be processed, with a reason code and a human detail."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class _Unset(Enum):
    # A keyword the caller did not pass, as opposed to an explicit ``None`` ("no limit").
    UNSET = "unset"


_UNSET: Final = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Every bound the parsers enforce on untrusted input, with safe defaults.

    Parameters
    ----------
    max_bytes
        Payloads larger than this (UTF-8 bytes) are rejected unread (``too_large``).
        Default 512 KiB (524288); ``None`` disables the check.
    max_depth
        Deepest JSON nesting of arrays and objects (``{"a": 1}`` is 1, a reading with
        ``channels`` is 2); deeper payloads are rejected before decoding (``too_deep``), so
        the recursive JSON decoder cannot exhaust the stack. Default 32.
    min_timestamp, max_timestamp
        Accepted event times, UTC epoch seconds, after the seconds/milliseconds decision;
        outside them ``bad_timestamp``. Default 0.0 (1970-01-01T00:00:00Z) to
        4102444800.0 (2100-01-01T00:00:00Z): every later ``datetime`` conversion works.
    max_id_length
        Longest ``sensor_id``, ``src_host``, ``dst_host`` and ``label``, in characters.
        Ids become InfluxDB tags and Kafka keys. Default 256.
    max_text_length
        Longest ``unit``, ``protocol_type``, ``service`` and ``flag``, in characters; they
        become tag values and one-hot feature names. Default 64.
    max_future_s
        Reject events stamped more than this many seconds ahead of the clock
        (``future_timestamp``; producer clock skew). Default 3600; ``None`` disables.
    max_past_s
        Reject events older than this many seconds (``stale_timestamp``). Default ``None``:
        any age, so recorded datasets can be replayed.

    Raises
    ------
    ValueError
        If a limit is negative, or the timestamp range is empty or not finite.

    Examples
    --------
    >>> limits = InputLimits(max_id_length=4)
    >>> limits.max_bytes, limits.max_depth, limits.max_text_length
    (524288, 32, 64)
    >>> parse_sensor_reading(b'{"sensor_id": "rack-7", "timestamp": 0, "value": 1}',
    ...                      limits=limits)
    Traceback (most recent call last):
    ...
    windowing.schemas.RejectedEvent: bad_id: sensor_id 'rack-7' (6 characters) is longer than 4
    """

    max_bytes: int | None = MAX_EVENT_BYTES
    max_depth: int = 32
    min_timestamp: float = 0.0
    max_timestamp: float = 4102444800.0
    max_id_length: int = 256
    max_text_length: int = 64
    max_future_s: float | None = MAX_FUTURE_SECONDS
    max_past_s: float | None = None

    def __post_init__(self) -> None:
        # A wrong limit is a configuration error: fail at start-up, not per event.
        for name in ("max_bytes", "max_depth", "max_id_length", "max_text_length",
                     "max_future_s", "max_past_s"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"InputLimits.{name} must be >= 0, got {value!r}")
        if not (math.isfinite(self.min_timestamp) and math.isfinite(self.max_timestamp)
                and self.min_timestamp < self.max_timestamp):
            raise ValueError(
                "InputLimits needs finite min_timestamp < max_timestamp, got "
                f"{self.min_timestamp!r}, {self.max_timestamp!r}"
            )


_DEFAULT_LIMITS: Final = InputLimits()


def _resolve_limits(limits: InputLimits | None, **overrides: Any) -> InputLimits:
    explicit = {name: value for name, value in overrides.items() if value is not _UNSET}
    base = _DEFAULT_LIMITS if limits is None else limits
    return dataclasses.replace(base, **explicit) if explicit else base


def _iso(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        # A limit configured beyond what datetime can show: the number still says it.
        return repr(seconds)


def _preview(text: str) -> str:
    # Never echo a 100 kB id into a log line or a dead-letter header.
    shown = repr(text[:_PREVIEW_CHARS])
    return f"{shown}..." if len(text) > _PREVIEW_CHARS else shown


def _show_int(value: int) -> str:
    # str() of an int over 4300 digits raises ValueError; a mapping input may carry one.
    return str(value) if value.bit_length() <= 64 else f"an integer of {value.bit_length()} bits"


def _first_control(text: str) -> str | None:
    # isprintable() is False for every "C*" character (and for separators other than the
    # space), so the per-character lookup runs only for the rare text that needs it.
    if text.isprintable():
        return None
    for char in text:
        if unicodedata.category(char).startswith("C"):
            return char
    return None


def _check_text(name: str, value: str, max_length: int, reason: RejectReason) -> None:
    if len(value) > max_length:
        raise RejectedEvent(
            reason,
            f"{name} {_preview(value)} ({len(value)} characters) is longer than {max_length}",
        )
    bad = _first_control(value)
    if bad is not None:
        raise RejectedEvent(
            reason,
            f"{name} {_preview(value)} ({len(value)} characters) contains control character "
            f"U+{ord(bad):04X}",
        )


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


def _timestamp_range(limits: InputLimits) -> str:
    return f"[{_iso(limits.min_timestamp)}, {_iso(limits.max_timestamp)}]"


def _within_range(ts: float, limits: InputLimits) -> float:
    # Checked after the seconds/milliseconds decision, on what the pipeline will store:
    # everything inside converts back to a datetime, everything outside is a broken clock.
    if not limits.min_timestamp <= ts <= limits.max_timestamp:
        raise RejectedEvent(
            RejectReason.BAD_TIMESTAMP,
            f"timestamp {ts!r} is outside {_timestamp_range(limits)}",
        )
    return ts


def parse_timestamp(raw: Any, *, limits: InputLimits | None = None) -> float:
    """Epoch seconds (UTC) from an ISO-8601 string, an epoch number or a ``datetime``.

    Naive ISO strings and naive datetimes are taken as UTC. Epoch numbers (or numeric
    text) above 1e11 in magnitude are taken as milliseconds.

    Parameters
    ----------
    raw
        ISO-8601 text, epoch seconds or milliseconds (number or numeric text), or a
        ``datetime``.
    limits
        Only ``min_timestamp`` and ``max_timestamp`` are used; default :class:`InputLimits`
        (1970-01-01 to 2100-01-01).

    Returns
    -------
    float
        UTC epoch seconds inside ``[limits.min_timestamp, limits.max_timestamp]``.

    Raises
    ------
    RejectedEvent
        ``bad_timestamp`` for anything else (and never ``OverflowError`` or ``OSError``).

    Examples
    --------
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
    >>> parse_timestamp("9999-12-31T23:59:59Z")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    windowing.schemas.RejectedEvent: bad_timestamp: timestamp 253402300799.0 is outside [1970...]
    >>> parse_timestamp(-5, limits=InputLimits(min_timestamp=-3600))
    -5.0
    """
    limits = _DEFAULT_LIMITS if limits is None else limits
    if isinstance(raw, bool):
        raise RejectedEvent(RejectReason.BAD_TIMESTAMP, f"timestamp must not be a bool: {raw!r}")
    if isinstance(raw, int | float):
        try:
            ts = float(raw)
        except OverflowError:
            # A JSON integer hundreds of digits long: beyond any float, let alone any date.
            raise RejectedEvent(
                RejectReason.BAD_TIMESTAMP,
                f"timestamp {_show_int(int(raw))} is outside {_timestamp_range(limits)}",
            ) from None
        if not math.isfinite(ts):
            raise RejectedEvent(RejectReason.BAD_TIMESTAMP, f"non-finite timestamp {raw!r}")
        return _within_range(ts / 1000.0 if abs(ts) > 1e11 else ts, limits)
    if isinstance(raw, datetime):
        try:
            ts = (raw if raw.tzinfo is not None else raw.replace(tzinfo=UTC)).timestamp()
        except (OverflowError, OSError, ValueError) as exc:
            raise RejectedEvent(
                RejectReason.BAD_TIMESTAMP, f"datetime without an epoch time: {exc}"
            ) from None
        return _within_range(ts, limits)
    if isinstance(raw, str):
        text = raw.strip()
        if _EPOCH_TEXT.fullmatch(text):
            # float() of digit text never overflows: too many digits give inf, refused above.
            return parse_timestamp(float(text), limits=limits)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            # Year 1 with a positive offset, or year 9999 with a negative one, lies outside
            # what datetime can represent once shifted to UTC.
            ts = dt.timestamp()
        except (ValueError, OverflowError, OSError):
            raise RejectedEvent(
                RejectReason.BAD_TIMESTAMP, f"unparsable timestamp {_preview(raw)}"
            ) from None
        return _within_range(ts, limits)
    raise RejectedEvent(
        RejectReason.BAD_TIMESTAMP,
        f"timestamp must be ISO-8601 text or epoch number, got {type(raw).__name__}",
    )


def _nesting_depth(text: str) -> int:
    """Deepest nesting of JSON arrays and objects in ``text``; brackets in strings ignored.

    Exact for valid JSON, and never below the depth the decoder would reach before failing
    on invalid JSON (it reads the same prefix). Linear time, no Python loop per character.

    >>> _nesting_depth('{"a": [1, {"b": "]]]{{{\\\\"["}]}')
    3
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    steps = array("b", brackets.encode("ascii").translate(_BRACKET_STEP))
    return max(accumulate(steps), default=0)


def _decode(raw: bytes | str | Mapping[str, Any], limits: InputLimits) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, bytearray | memoryview):
        raw = bytes(raw)
    if not isinstance(raw, bytes | str):
        raise RejectedEvent(
            RejectReason.NOT_JSON, f"expected bytes, text or a mapping, got {type(raw).__name__}"
        )
    max_bytes = limits.max_bytes
    if max_bytes is not None:
        # A character is at least one UTF-8 byte: a long text is too large without encoding.
        size = len(raw)
        if isinstance(raw, str) and size <= max_bytes and not raw.isascii():
            size = len(raw.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise RejectedEvent(
                RejectReason.TOO_LARGE, f"payload of {size} bytes exceeds {max_bytes}"
            )
    if isinstance(raw, bytes):
        # Decode as json.loads would (UTF-8/16/32 by the first bytes), so the depth scan
        # below sees the same characters the decoder will.
        try:
            text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        except UnicodeDecodeError as exc:
            raise RejectedEvent(RejectReason.NOT_JSON, f"not valid JSON: {exc}") from None
    else:
        text = raw
    # json.loads recurses once per nesting level: bound the depth before decoding. Real
    # events nest at most twice, so counting openers usually settles it without a scan.
    if text.count("[") + text.count("{") > limits.max_depth:
        depth = _nesting_depth(text)
        if depth > limits.max_depth:
            raise RejectedEvent(
                RejectReason.TOO_DEEP,
                f"JSON nested {depth} levels deep, more than {limits.max_depth}",
            )
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError, OverflowError, MemoryError) as exc:
        # RecursionError and MemoryError cannot happen within the limits above; should the
        # limits be raised too far, the record is still only dead-lettered, not fatal.
        raise RejectedEvent(
            RejectReason.NOT_JSON, f"not valid JSON: {type(exc).__name__}: {exc}"
        ) from None
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
    try:
        value = float(raw)
    except OverflowError:
        # JSON integers have no size limit; floats end near 1.8e308.
        raise RejectedEvent(
            RejectReason.OUT_OF_RANGE, f"{name} is {_show_int(int(raw))}, too large for a float"
        ) from None
    if not math.isfinite(value):
        raise RejectedEvent(RejectReason.NOT_FINITE, f"{name} is {raw!r}")
    return value


def _identifier(obj: Mapping[str, Any], name: str, limits: InputLimits) -> str | None:
    # Ids become Kafka keys and InfluxDB tag values: line protocol refuses control
    # characters, and a 100 kB tag would bloat every series key that carries it.
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise RejectedEvent(RejectReason.WRONG_TYPE, f"{name} must be a non-empty string")
    _check_text(name, value, limits.max_id_length, RejectReason.BAD_ID)
    if value.endswith("\\"):
        # Line protocol escapes with a backslash: a trailing one swallows the separator
        # after the tag, and InfluxDB would store a different tag than the id.
        raise RejectedEvent(
            RejectReason.BAD_ID, f"{name} {_preview(value)} ends with a backslash"
        )
    return value


def _event_time(obj: Mapping[str, Any], now: float | None, limits: InputLimits) -> float:
    ts = parse_timestamp(obj["timestamp"], limits=limits)
    clock = time.time() if now is None else now
    if limits.max_future_s is not None and ts > clock + limits.max_future_s:
        raise RejectedEvent(
            RejectReason.FUTURE_TIMESTAMP,
            f"timestamp {ts} is more than {limits.max_future_s:.0f}s in the future",
        )
    if limits.max_past_s is not None and ts < clock - limits.max_past_s:
        raise RejectedEvent(
            RejectReason.STALE_TIMESTAMP,
            f"timestamp {ts} is more than {limits.max_past_s:.0f}s in the past",
        )
    return ts


def parse_sensor_reading(
    raw: bytes | str | Mapping[str, Any],
    *,
    now: float | None = None,
    limits: InputLimits | None = None,
    specs: Mapping[str, SensorSpec] | None = None,
    max_future_s: float | _Unset | None = _UNSET,
    max_past_s: float | _Unset | None = _UNSET,
    max_bytes: int | _Unset | None = _UNSET,
) -> SensorReading:
    """Validate one sensor reading.

    Whatever ``raw`` holds, the result is a :class:`SensorReading` or a
    :class:`RejectedEvent`; no other exception escapes.

    Parameters
    ----------
    raw
        JSON bytes (UTF-8, or UTF-16/32 as ``json.loads`` detects them) or text, or an
        already decoded mapping (size and depth limits do not apply to a mapping).
    now
        The clock (epoch seconds) for the future/stale checks; default: ``time.time()``.
    limits
        Size, depth, timestamp, id and text bounds; default :class:`InputLimits`.
    specs
        Declared ranges and units by ``sensor_id``; sensors not listed are not range-checked.
    max_future_s, max_past_s, max_bytes
        Override the same fields of ``limits`` when given (``None`` disables the check).

    Returns
    -------
    SensorReading
        The reading, timestamp in UTC epoch seconds.

    Raises
    ------
    RejectedEvent
        With the :class:`RejectReason` of the first problem found.

    Examples
    --------
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
    >>> parse_sensor_reading(b"[" * 10_000 + b"]" * 10_000)
    Traceback (most recent call last):
    ...
    windowing.schemas.RejectedEvent: too_deep: JSON nested 10000 levels deep, more than 32
    >>> try:
    ...     parse_sensor_reading('{"sensor_id": "t\\\\u0007", "timestamp": 0, "value": 1}')
    ... except RejectedEvent as exc:
    ...     print(exc.reason, "|", exc.detail)
    bad_id | sensor_id 't\\x07' (2 characters) contains control character U+0007
    """
    limits = _resolve_limits(
        limits, max_future_s=max_future_s, max_past_s=max_past_s, max_bytes=max_bytes
    )
    obj = _decode(raw, limits)
    _require(obj, ("sensor_id", "timestamp", "value"))
    sensor_id = _identifier(obj, "sensor_id", limits)
    assert sensor_id is not None  # _require saw it
    ts = _event_time(obj, now, limits)
    value = _finite_float(obj, "value")
    unit = obj.get("unit")
    if unit is not None:
        if not isinstance(unit, str):
            raise RejectedEvent(RejectReason.WRONG_TYPE, "unit must be a string")
        _check_text("unit", unit, limits.max_text_length, RejectReason.WRONG_TYPE)
    channels: dict[str, float] = {}
    extra = obj.get("channels")
    if extra is not None:
        if not isinstance(extra, dict):
            raise RejectedEvent(RejectReason.WRONG_TYPE, "channels must be an object of numbers")
        for name in extra:
            # Channel names become feature names (``<name>_z``): keep them short and plain,
            # and never "value", which is the main channel.
            if not isinstance(name, str):
                raise RejectedEvent(
                    RejectReason.WRONG_TYPE, f"channel names must be text, got {type(name)!r}"
                )
            if not _CHANNEL_NAME.fullmatch(name) or name == "value":
                raise RejectedEvent(RejectReason.WRONG_TYPE, f"bad channel name {_preview(name)}")
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
    limits: InputLimits | None = None,
    max_future_s: float | _Unset | None = _UNSET,
    max_past_s: float | _Unset | None = _UNSET,
    max_bytes: int | _Unset | None = _UNSET,
) -> ConnectionEvent:
    """Validate one connection event (KDD-format with traffic fields, or raw without).

    The 22 intrinsic KDD fields and ``timestamp`` are required. The 19 traffic fields
    (``count`` … ``dst_host_srv_rerror_rate``) come all together or not at all; a raw event
    (none of them) needs ``dst_host`` so its traffic features can be derived. Counts and
    sizes must be ≥ 0, rates in [0, 1], ``land``/``logged_in``/``is_host_login``/
    ``is_guest_login`` 0 or 1. Unknown ``protocol_type``/``service``/``flag`` values are
    accepted (they land in the ``other`` one-hot bucket); unknown extra keys are ignored.
    Hosts are ids (``bad_id`` beyond ``limits.max_id_length`` or with a control character);
    the categories are texts of at most ``limits.max_text_length`` characters.

    Parameters
    ----------
    raw, now, limits, max_future_s, max_past_s, max_bytes
        As in :func:`parse_sensor_reading`.

    Returns
    -------
    ConnectionEvent
        The event, timestamp in UTC epoch seconds.

    Raises
    ------
    RejectedEvent
        With the :class:`RejectReason` of the first problem found; nothing else escapes.

    Examples
    --------
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
    >>> try:
    ...     parse_connection_event({**event, "src_bytes": 10**400})
    ... except RejectedEvent as exc:
    ...     print(exc.reason, "|", exc.detail)
    out_of_range | src_bytes is an integer of 1329 bits, too large for a float
    """
    limits = _resolve_limits(
        limits, max_future_s=max_future_s, max_past_s=max_past_s, max_bytes=max_bytes
    )
    obj = _decode(raw, limits)
    _require(obj, ("timestamp", *CATEGORICAL_FIELDS, *INTRINSIC_NUMERIC_FIELDS))
    ts = _event_time(obj, now, limits)
    categorical = {}
    for name in CATEGORICAL_FIELDS:
        value = obj[name]
        if not isinstance(value, str) or not value.strip():
            raise RejectedEvent(RejectReason.WRONG_TYPE, f"{name} must be a non-empty string")
        value = value.strip()
        # Categories become one-hot feature names and tag values.
        _check_text(name, value, limits.max_text_length, RejectReason.WRONG_TYPE)
        categorical[name] = value
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
    src_host = _identifier(obj, "src_host", limits)
    dst_host = _identifier(obj, "dst_host", limits)
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
            raise RejectedEvent(
                RejectReason.OUT_OF_RANGE, f"src_port {_show_int(src_port)} not in 0..65535"
            )
    label = obj.get("label")
    if label is not None:
        if not isinstance(label, str):
            raise RejectedEvent(RejectReason.WRONG_TYPE, "label must be a string")
        # Labels are free text (KDD attack names), so they get the id length, not 64.
        _check_text("label", label, limits.max_id_length, RejectReason.WRONG_TYPE)
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
