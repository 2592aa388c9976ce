"""Property tests of the input trust boundary (``windowing.schemas``).

Whatever a producer sends, :func:`parse_sensor_reading` and :func:`parse_connection_event`
return a typed event that satisfies every :class:`InputLimits` bound, or raise
:class:`RejectedEvent` with a short detail. Any other exception fails these tests.
"""

from __future__ import annotations

import json
import math
import operator
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from windowing.kdd import CATEGORICAL_FIELDS, INTRINSIC_NUMERIC_FIELDS, TRAFFIC_FIELDS
from windowing.schemas import (
    ConnectionEvent,
    InputLimits,
    RejectedEvent,
    RejectReason,
    SensorReading,
    parse_connection_event,
    parse_sensor_reading,
)

NOW = 1_700_000_000.0
LIMITS = InputLimits()
PARSERS = (parse_sensor_reading, parse_connection_event)

# Modest and without a deadline: the suite shares a 2-core machine with other jobs.
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Every code point, including controls, format characters and lone surrogates.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
TEXTS = st.one_of(
    st.text(ANY_CHAR, max_size=20),
    st.text('[]{}"\\:,', max_size=40),  # what a nesting scanner could trip over
    st.builds(operator.mul, ANY_CHAR, st.integers(60, 3000)),  # around and past the limits
    st.sampled_from([
        "", " ", "tcp", "http", "SF", "C", "10.0.0.5", "normal.", "1700000000", "-1", "1e400",
        "NaN", "2024-03-01T12:00:00Z", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59Z",
    ]),
)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([
        10**400, -(10**400), 2**1024, 10**4000, 0, 1, -1, 2, 65535, 65536,
        4102444800, 4102444801, 4102444800000, -(10**20),
    ]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0.0, max_value=4.2e9),
)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXTS
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXTS, children,
                                                                      max_size=4),
    max_leaves=12,
)
CHANNELS = st.dictionaries(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,70}", fullmatch=True) | TEXTS,
    JSON_VALUES,
    max_size=4,
)

VALID_READING: dict[str, Any] = {
    "sensor_id": "t1", "timestamp": NOW - 60, "value": 21.5, "unit": "C",
    "channels": {"rh": 40.0},
}
VALID_CONNECTION: dict[str, Any] = {
    "timestamp": NOW - 60, "dst_host": "10.0.0.5", "src_host": "10.0.0.9", "src_port": 40312,
    "protocol_type": "tcp", "service": "http", "flag": "SF", "label": "normal.",
    **{name: 0 for name in INTRINSIC_NUMERIC_FIELDS},
}
VALID_TRAFFIC: dict[str, Any] = {
    name: 0.5 if name.endswith("rate") else 3 for name in TRAFFIC_FIELDS
}
SENSOR_FIELDS = tuple(VALID_READING)
CONNECTION_FIELDS = (*VALID_CONNECTION, *TRAFFIC_FIELDS)

# Values that get past the type checks, so that the range, length and character rules are
# what decides; anything JSON is mixed in as well.
ISO_TEXTS = st.datetimes().map(lambda dt: dt.isoformat() + "Z") | st.datetimes(
    timezones=st.timezones()).map(lambda dt: dt.isoformat())
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "timestamp": NUMBERS | ISO_TEXTS | TEXTS,
    "channels": CHANNELS,
    **{name: TEXTS for name in ("sensor_id", "src_host", "dst_host", "label", "unit",
                                *CATEGORICAL_FIELDS)},
}


@st.composite
def field_value(draw: st.DrawFn, name: str) -> Any:
    # Mostly near-valid: one_of would pick anything JSON (often a list) half the time.
    anything = draw(st.integers(0, 3)) == 0
    return draw(JSON_VALUES if anything else FIELD_VALUES.get(name, NUMBERS))


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """A valid event with a few fields replaced (by a near-valid value or anything JSON),
    some dropped, some unknown keys added."""
    obj = dict(base)
    if fields is CONNECTION_FIELDS and draw(st.booleans()):
        obj.update(VALID_TRAFFIC)  # the KDD-format path
    for name in draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)):
        obj[name] = draw(field_value(name))
    if draw(st.integers(0, 19)) == 10:  # now and then; bounds are drawn more often
        obj.pop(draw(st.sampled_from(fields)), None)
    obj.update(draw(st.dictionaries(TEXTS, JSON_VALUES, max_size=2)))  # unknown extra keys
    return obj


@st.composite
def payloads(draw: st.DrawFn, events: st.SearchStrategy[Any]) -> bytes | str:
    """JSON text of ``events`` (or of anything), as text, UTF-8 or UTF-16 bytes."""
    obj = draw(JSON_VALUES if draw(st.integers(0, 4)) == 0 else events)
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()))
    form = draw(st.sampled_from(["str", "utf-8", "utf-16"]))
    # surrogatepass: lone surrogates go through as json.loads would read them back.
    return text if form == "str" else text.encode(form, "surrogatepass")


JSONISH_BYTES = st.lists(
    st.sampled_from([
        b"{", b"}", b"[", b"]", b'"', b"\\", b":", b",", b" ", b"1", b"-", b"1e400", b"NaN",
        b'"sensor_id"', b'"timestamp"', b'"value"', b'"channels"', b'"dst_host"',
        b"\\u0000", b"\\ud800", b"\xff", b"\x00", b"\xed\xa0\x80",
    ]),
    max_size=300,
).map(b"".join)


def _no_control(text: str) -> bool:
    return not any(unicodedata.category(char).startswith("C") for char in text)


def _check_id(value: object) -> None:
    assert isinstance(value, str) and 0 < len(value) <= LIMITS.max_id_length
    assert _no_control(value)


def _check_text(value: object, max_length: int) -> None:
    assert isinstance(value, str) and len(value) <= max_length and _no_control(value)


def _check_time(ts: object) -> None:
    assert type(ts) is float
    assert LIMITS.min_timestamp <= ts <= LIMITS.max_timestamp
    assert ts <= NOW + LIMITS.max_future_s


def _check_reading(reading: SensorReading) -> None:
    assert isinstance(reading, SensorReading)
    _check_id(reading.sensor_id)
    _check_time(reading.timestamp)
    assert type(reading.value) is float and math.isfinite(reading.value)
    if reading.unit is not None:
        _check_text(reading.unit, LIMITS.max_text_length)
    for name, value in reading.channels.items():
        assert isinstance(name, str) and name != "value"
        assert type(value) is float and math.isfinite(value)


def _check_connection(event: ConnectionEvent) -> None:
    assert isinstance(event, ConnectionEvent)
    _check_time(event.timestamp)
    for name in CATEGORICAL_FIELDS:
        value = getattr(event, name)
        _check_text(value, LIMITS.max_text_length)
        assert value and value == value.strip()
    expected = set(INTRINSIC_NUMERIC_FIELDS) | (set(TRAFFIC_FIELDS) if event.has_traffic
                                                 else set())
    assert set(event.numeric) == expected
    assert all(type(v) is float and math.isfinite(v) and v >= 0 for v in event.numeric.values())
    for host in (event.src_host, event.dst_host):
        if host is not None:
            _check_id(host)
    assert event.has_traffic or event.dst_host is not None
    if event.src_port is not None:
        assert type(event.src_port) is int and 0 <= event.src_port <= 65535
    if event.label is not None:
        _check_text(event.label, LIMITS.max_id_length)


def outcome(parse: Callable[..., Any], raw: Any) -> RejectReason | None:
    """Parse ``raw``; ``None`` if accepted (and checked), else the reason code.

    Any exception other than RejectedEvent propagates and fails the test.
    """
    try:
        event = parse(raw, now=NOW)
    except RejectedEvent as exc:
        assert isinstance(exc.reason, RejectReason)
        # The detail goes into logs and dead-letter records: it never echoes the payload.
        assert isinstance(exc.detail, str) and len(exc.detail) < 1000
        return exc.reason
    if parse is parse_sensor_reading:
        _check_reading(event)
    else:
        _check_connection(event)
    return None


@PROPERTY
@given(raw=st.binary(max_size=4096) | JSONISH_BYTES)
def test_arbitrary_bytes(raw: bytes) -> None:
    for parse in PARSERS:
        outcome(parse, raw)


@PROPERTY
@given(raw=st.text(ANY_CHAR, max_size=2048))
def test_arbitrary_text(raw: str) -> None:
    for parse in PARSERS:
        outcome(parse, raw)


@PROPERTY
@given(raw=payloads(mutated(VALID_READING, SENSOR_FIELDS)))
def test_json_like_sensor_readings(raw: bytes | str) -> None:
    outcome(parse_sensor_reading, raw)


@PROPERTY
@given(raw=payloads(mutated(VALID_CONNECTION, CONNECTION_FIELDS)))
def test_json_like_connection_events(raw: bytes | str) -> None:
    outcome(parse_connection_event, raw)


@PROPERTY
@given(obj=mutated(VALID_READING, SENSOR_FIELDS) | JSON_VALUES)
def test_already_decoded_mappings(obj: Any) -> None:
    # The agents pass bytes, but tests and tools pass dicts: same guarantee.
    if isinstance(obj, dict):
        outcome(parse_sensor_reading, obj)
        outcome(parse_connection_event, obj)


def test_the_valid_bases_are_accepted() -> None:
    # Otherwise the mutation strategies above would only ever exercise rejections.
    assert outcome(parse_sensor_reading, json.dumps(VALID_READING)) is None
    assert outcome(parse_connection_event, json.dumps(VALID_CONNECTION)) is None
    assert outcome(parse_connection_event,
                   json.dumps({**VALID_CONNECTION, **VALID_TRAFFIC})) is None


OPENERS = st.sampled_from(["[", '{"k":', "[1,", '{"[":'])


@PROPERTY
@given(
    opener=OPENERS,
    depth=st.integers(LIMITS.max_depth + 1, 10_000),
    closed=st.booleans(),
    as_bytes=st.booleans(),
)
def test_deep_payloads_are_too_deep(opener: str, depth: int, closed: bool,
                                    as_bytes: bool) -> None:
    closer = "}" if opener.startswith("{") else "]"
    text = opener * depth + ("0" + closer * depth if closed else "")
    raw = text.encode() if as_bytes else text
    for parse in PARSERS:
        assert outcome(parse, raw) is RejectReason.TOO_DEEP


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_depth_ten_thousand(parse: Callable[..., Any], opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    raw = (opener * 10_000 + "1" + closer * 10_000).encode()
    with pytest.raises(RejectedEvent) as info:
        parse(raw, now=NOW)
    assert info.value.reason is RejectReason.TOO_DEEP
    assert info.value.detail == "JSON nested 10000 levels deep, more than 32"


def _depth(obj: Any) -> int:
    if isinstance(obj, list):
        return 1 + max(map(_depth, obj), default=0)
    if isinstance(obj, dict):
        return 1 + max(map(_depth, obj.values()), default=0)
    return 0


@st.composite
def nested(draw: st.DrawFn) -> Any:
    obj = draw(JSON_VALUES)
    for _ in range(draw(st.integers(0, 45))):
        obj = draw(st.sampled_from([[obj], {"k[": obj}, [obj, '"]\\'], {'\\"{': [], "v": obj}]))
    return obj


@PROPERTY
@given(obj=nested(), ensure_ascii=st.booleans())
def test_the_depth_limit_is_exact(obj: Any, ensure_ascii: bool) -> None:
    # Brackets inside strings (escaped quotes and backslashes included) never count.
    text = json.dumps(obj, ensure_ascii=ensure_ascii)
    depth = _depth(obj)
    for parse in PARSERS:
        at = parse_reason(parse, text, InputLimits(max_depth=depth))
        assert at is not RejectReason.TOO_DEEP
        if depth > 0:
            below = parse_reason(parse, text, InputLimits(max_depth=depth - 1))
            assert below is RejectReason.TOO_DEEP


def parse_reason(parse: Callable[..., Any], raw: str, limits: InputLimits) -> RejectReason | None:
    try:
        parse(raw, now=NOW, limits=limits)
    except RejectedEvent as exc:
        return exc.reason
    return None
