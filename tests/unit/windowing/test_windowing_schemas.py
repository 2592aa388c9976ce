"""Validation of sensor readings and connection events: every reject reason is reachable."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

import windowing
from windowing.kdd import TRAFFIC_FIELDS
from windowing.schemas import (
    MAX_EVENT_BYTES,
    ConnectionEvent,
    InputLimits,
    RejectedEvent,
    RejectReason,
    SensorReading,
    SensorSpec,
    parse_connection_event,
    parse_sensor_reading,
    parse_timestamp,
)

NOW = 1_700_000_000.0


def reading(**overrides: object) -> dict[str, object]:
    obj: dict[str, object] = {"sensor_id": "t1", "timestamp": NOW - 60, "value": 21.5}
    obj.update(overrides)
    return obj


def reason_of(fn, *args, **kwargs) -> RejectReason:
    with pytest.raises(RejectedEvent) as info:
        fn(*args, **kwargs)
    return info.value.reason


def rejection(fn, *args, **kwargs) -> RejectedEvent:
    with pytest.raises(RejectedEvent) as info:
        fn(*args, **kwargs)
    return info.value


class TestTimestamps:
    def test_forms(self) -> None:
        assert parse_timestamp("2024-03-01T12:00:00Z") == 1709294400.0
        assert parse_timestamp("2024-03-01T12:00:00") == 1709294400.0  # naive = UTC
        assert parse_timestamp("2024-03-01T13:00:00+01:00") == 1709294400.0
        assert parse_timestamp(1709294400) == 1709294400.0
        assert parse_timestamp(1709294400123) == pytest.approx(1709294400.123)
        assert parse_timestamp(" 1709294400.5 ") == 1709294400.5
        assert parse_timestamp(datetime(2024, 3, 1, 12, tzinfo=UTC)) == 1709294400.0

    @pytest.mark.parametrize("raw", ["", "soon", True, None, [1], float("nan"), float("inf")])
    def test_bad(self, raw: object) -> None:
        assert reason_of(parse_timestamp, raw) is RejectReason.BAD_TIMESTAMP


class TestSensorReading:
    def test_valid_with_channels_and_unit(self) -> None:
        r = parse_sensor_reading(
            json.dumps(reading(unit="C", channels={"humidity": 40, "fan.rpm": 1200})), now=NOW
        )
        assert r == SensorReading("t1", NOW - 60, 21.5, "C", {"humidity": 40.0, "fan.rpm": 1200.0})

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (b"{not json", RejectReason.NOT_JSON),
            (b"\xff\xfe\x00", RejectReason.NOT_JSON),
            (b"[1, 2]", RejectReason.NOT_OBJECT),
            (json.dumps({"sensor_id": "t1", "value": 1}), RejectReason.MISSING_FIELD),
            (json.dumps(reading(value=None)), RejectReason.MISSING_FIELD),
            (json.dumps(reading(value="21.5")), RejectReason.WRONG_TYPE),
            (json.dumps(reading(value=True)), RejectReason.WRONG_TYPE),
            (json.dumps(reading(sensor_id="")), RejectReason.WRONG_TYPE),
            (json.dumps(reading(sensor_id=7)), RejectReason.WRONG_TYPE),
            (json.dumps(reading(unit=3)), RejectReason.WRONG_TYPE),
            (json.dumps(reading(channels=[1])), RejectReason.WRONG_TYPE),
            (json.dumps(reading(channels={"value": 1})), RejectReason.WRONG_TYPE),
            (json.dumps(reading(channels={"bad name": 1})), RejectReason.WRONG_TYPE),
            (json.dumps(reading(channels={"h": "x"})), RejectReason.WRONG_TYPE),
            (b'{"sensor_id": "t1", "timestamp": 0, "value": Infinity}', RejectReason.NOT_FINITE),
            (b'{"sensor_id": "t1", "timestamp": 0, "value": 1, "channels": {"h": NaN}}',
             RejectReason.NOT_FINITE),
            (json.dumps(reading(timestamp="noon")), RejectReason.BAD_TIMESTAMP),
            (json.dumps(reading(timestamp=NOW + 7200)), RejectReason.FUTURE_TIMESTAMP),
        ],
    )
    def test_rejections(self, raw: bytes | str, reason: RejectReason) -> None:
        assert reason_of(parse_sensor_reading, raw, now=NOW) is reason

    def test_too_large_is_not_decoded(self) -> None:
        raw = json.dumps(reading(pad="x" * 2000)).encode()
        assert reason_of(parse_sensor_reading, raw, now=NOW, max_bytes=1000) is (
            RejectReason.TOO_LARGE)

    def test_stale_only_when_asked(self) -> None:
        old = reading(timestamp=NOW - 86400 * 30)
        assert parse_sensor_reading(old, now=NOW).timestamp == NOW - 86400 * 30
        assert reason_of(parse_sensor_reading, old, now=NOW, max_past_s=86400) is (
            RejectReason.STALE_TIMESTAMP)

    def test_declared_ranges_and_unit(self) -> None:
        specs = {"t1": SensorSpec(min_value=-40, max_value=125, unit="C",
                                  channels={"humidity": (0, 100)})}
        assert parse_sensor_reading(reading(unit="C"), now=NOW, specs=specs).value == 21.5
        assert reason_of(parse_sensor_reading, reading(value=-41), now=NOW, specs=specs) is (
            RejectReason.OUT_OF_RANGE)
        assert reason_of(parse_sensor_reading, reading(channels={"humidity": 101}), now=NOW,
                         specs=specs) is RejectReason.OUT_OF_RANGE
        assert reason_of(parse_sensor_reading, reading(unit="F"), now=NOW, specs=specs) is (
            RejectReason.UNIT_MISMATCH)
        # Sensors without a spec are not range-checked.
        assert parse_sensor_reading(reading(sensor_id="t2", value=1e9), now=NOW,
                                    specs=specs).value == 1e9

    def test_spec_from_config(self) -> None:
        spec = SensorSpec.from_dict({"min_value": 0, "max_value": None, "unit": "%",
                                     "channels": {"x": [None, 5]}})
        assert spec.bounds("value") == (0.0, None)
        assert spec.bounds("x") == (None, 5.0)
        assert spec.bounds("unknown") == (None, None)


class TestConnectionEvent:
    def test_raw(self, raw_connection) -> None:
        ev = parse_connection_event(json.dumps(raw_connection()), now=NOW + 10)
        assert isinstance(ev, ConnectionEvent)
        assert not ev.has_traffic
        assert (ev.protocol_type, ev.service, ev.flag) == ("tcp", "http", "SF")
        assert ev.field("src_bytes") == 181.0 and ev.field("service") == "http"
        assert (ev.src_host, ev.dst_host, ev.src_port) == ("10.0.0.9", "10.0.0.5", 40312)

    def test_kdd_format_with_label_and_no_host(self, raw_connection) -> None:
        traffic = {name: 0.5 if name.endswith("rate") else 3 for name in TRAFFIC_FIELDS}
        obj = raw_connection(dst_host=None, src_host=None, src_port=None, label="normal.",
                             **traffic)
        ev = parse_connection_event(obj, now=NOW + 10)
        assert ev.has_traffic and ev.label == "normal." and ev.dst_host is None
        assert ev.numeric["dst_host_srv_rerror_rate"] == 0.5

    def test_unknown_categories_and_extra_keys_are_accepted(self, raw_connection) -> None:
        ev = parse_connection_event(raw_connection(service="gopher2", flag="XX", extra=1),
                                    now=NOW + 10)
        assert (ev.service, ev.flag) == ("gopher2", "XX")

    @pytest.mark.parametrize(
        ("overrides", "reason"),
        [
            ({"timestamp": None}, RejectReason.MISSING_FIELD),
            ({"hot": None}, RejectReason.MISSING_FIELD),
            ({"dst_host": None}, RejectReason.MISSING_FIELD),  # raw needs a host
            ({"count": 3}, RejectReason.MISSING_FIELD),  # traffic fields: all or none
            ({"service": ""}, RejectReason.WRONG_TYPE),
            ({"flag": 5}, RejectReason.WRONG_TYPE),
            ({"src_bytes": "181"}, RejectReason.WRONG_TYPE),
            ({"dst_host": 7}, RejectReason.WRONG_TYPE),
            ({"src_port": "80"}, RejectReason.WRONG_TYPE),
            ({"label": 1}, RejectReason.WRONG_TYPE),
            ({"src_bytes": -1}, RejectReason.OUT_OF_RANGE),
            ({"logged_in": 2}, RejectReason.OUT_OF_RANGE),
            ({"src_port": 70000}, RejectReason.OUT_OF_RANGE),
            ({"duration": float("inf")}, RejectReason.NOT_FINITE),
            ({"timestamp": "later"}, RejectReason.BAD_TIMESTAMP),
            ({"timestamp": NOW + 10**6}, RejectReason.FUTURE_TIMESTAMP),
        ],
    )
    def test_rejections(
        self, raw_connection, overrides: dict[str, object], reason: RejectReason
    ) -> None:
        assert reason_of(parse_connection_event, raw_connection(**overrides), now=NOW + 10) is (
            reason)

    def test_rate_above_one(self, raw_connection) -> None:
        traffic = {name: 0.5 if name.endswith("rate") else 3 for name in TRAFFIC_FIELDS}
        traffic["serror_rate"] = 1.5
        assert reason_of(parse_connection_event, raw_connection(**traffic), now=NOW + 10) is (
            RejectReason.OUT_OF_RANGE)

    def test_reason_codes_are_stable(self) -> None:
        # Dashboards and dead-letter consumers count these strings.
        assert {r.value for r in RejectReason} == {
            "not_json", "not_object", "too_large", "missing_field", "wrong_type", "not_finite",
            "bad_timestamp", "future_timestamp", "stale_timestamp", "out_of_range",
            "unit_mismatch", "out_of_order", "duplicate", "too_deep", "bad_id",
        }


RANGE_TEXT = "[1970-01-01T00:00:00Z, 2100-01-01T00:00:00Z]"
HUGE = 10**400  # a valid JSON integer, beyond any float


class TestInputLimits:
    def test_defaults(self) -> None:
        limits = InputLimits()
        assert (limits.max_bytes, limits.max_depth) == (524288, 32)
        assert (limits.min_timestamp, limits.max_timestamp) == (0.0, 4102444800.0)
        assert datetime.fromtimestamp(limits.max_timestamp, UTC) == datetime(2100, 1, 1,
                                                                            tzinfo=UTC)
        assert (limits.max_id_length, limits.max_text_length) == (256, 64)
        assert (limits.max_future_s, limits.max_past_s) == (3600, None)
        assert MAX_EVENT_BYTES == 512 * 1024 == limits.max_bytes

    def test_exported_and_frozen(self) -> None:
        assert windowing.InputLimits is InputLimits and "InputLimits" in windowing.__all__
        with pytest.raises(dataclasses.FrozenInstanceError):
            InputLimits().max_depth = 1  # type: ignore[misc]

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_depth": -1},
            {"max_bytes": -1},
            {"max_id_length": -5},
            {"max_text_length": -1},
            {"max_future_s": -1.0},
            {"max_past_s": float("nan")},
            {"min_timestamp": 10.0, "max_timestamp": 10.0},
            {"max_timestamp": float("inf")},
            {"min_timestamp": float("nan")},
        ],
    )
    def test_nonsense_is_a_configuration_error(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ValueError, match="InputLimits"):
            InputLimits(**kwargs)

    def test_keywords_override_the_limits_object(self, raw_connection) -> None:
        old = reading(timestamp=NOW - 86400)
        strict = InputLimits(max_past_s=3600)
        assert reason_of(parse_sensor_reading, old, now=NOW, limits=strict) is (
            RejectReason.STALE_TIMESTAMP)
        assert parse_sensor_reading(old, now=NOW, limits=strict, max_past_s=None).timestamp == (
            NOW - 86400)

        ahead = reading(timestamp=NOW + 7200)
        lax = InputLimits(max_future_s=None)
        assert parse_sensor_reading(ahead, now=NOW, limits=lax).timestamp == NOW + 7200
        assert reason_of(parse_sensor_reading, ahead, now=NOW, limits=lax, max_future_s=60) is (
            RejectReason.FUTURE_TIMESTAMP)

        raw = json.dumps(reading(pad="x" * 2000)).encode()
        small = InputLimits(max_bytes=1000)
        assert reason_of(parse_sensor_reading, raw, now=NOW, limits=small) is (
            RejectReason.TOO_LARGE)
        assert parse_sensor_reading(raw, now=NOW, limits=small, max_bytes=None).value == 21.5

        conn = json.dumps(raw_connection(pad="x" * 2000))
        assert reason_of(parse_connection_event, conn, now=NOW + 10, limits=small) is (
            RejectReason.TOO_LARGE)
        assert parse_connection_event(conn, now=NOW + 10, limits=small, max_bytes=4000).service == (
            "http")


class TestPayloadSize:
    def test_default_is_512_kib(self) -> None:
        base = len(json.dumps(reading(pad="")).encode())
        fits = json.dumps(reading(pad="x" * (MAX_EVENT_BYTES - base))).encode()
        assert len(fits) == MAX_EVENT_BYTES
        assert parse_sensor_reading(fits, now=NOW).value == 21.5
        over = json.dumps(reading(pad="x" * (MAX_EVENT_BYTES - base + 1))).encode()
        exc = rejection(parse_sensor_reading, over, now=NOW)
        assert exc.reason is RejectReason.TOO_LARGE
        assert exc.detail == f"payload of {MAX_EVENT_BYTES + 1} bytes exceeds {MAX_EVENT_BYTES}"

    def test_text_is_measured_in_utf8_bytes(self) -> None:
        text = json.dumps(reading(pad="é" * 600), ensure_ascii=False)
        assert len(text) < 1000 < len(text.encode())
        assert reason_of(parse_sensor_reading, text, now=NOW, max_bytes=1000) is (
            RejectReason.TOO_LARGE)
        assert parse_sensor_reading(text, now=NOW, max_bytes=2000).value == 21.5

    @pytest.mark.parametrize("raw", [12, 1.5, None, object()])
    def test_unsupported_input_types(self, raw: object) -> None:
        assert reason_of(parse_sensor_reading, raw, now=NOW) is RejectReason.NOT_JSON

    def test_byte_buffers(self) -> None:
        raw = json.dumps(reading()).encode()
        assert parse_sensor_reading(bytearray(raw), now=NOW).value == 21.5
        assert parse_sensor_reading(memoryview(raw), now=NOW).value == 21.5


class TestNestingDepth:
    @pytest.mark.parametrize("parse", [parse_sensor_reading, parse_connection_event])
    @pytest.mark.parametrize("as_bytes", [True, False])
    @pytest.mark.parametrize(
        "payload",
        [
            "[" * 10_000 + "]" * 10_000,
            '{"a":' * 10_000 + "1" + "}" * 10_000,
            "[{" * 5_000,  # unterminated: the decoder would still recurse before failing
            '{"sensor_id": "t1", "x": ' + "[" * 10_000,
        ],
    )
    def test_deep_payloads_are_refused_before_decoding(
        self, parse, as_bytes: bool, payload: str
    ) -> None:
        exc = rejection(parse, payload.encode() if as_bytes else payload, now=NOW)
        assert exc.reason is RejectReason.TOO_DEEP
        assert exc.detail.endswith("levels deep, more than 32")

    def test_boundary(self) -> None:
        assert reason_of(parse_sensor_reading, "[" * 32 + "]" * 32) is RejectReason.NOT_OBJECT
        exc = rejection(parse_sensor_reading, "[" * 33 + "]" * 33)
        assert (exc.reason, exc.detail) == (
            RejectReason.TOO_DEEP, "JSON nested 33 levels deep, more than 32")

    def test_brackets_and_escapes_inside_strings_do_not_count(self) -> None:
        sensor_id = '[{"\\' * 40 + "x"  # quotes and backslashes reach the scanner escaped
        raw = json.dumps(reading(sensor_id=sensor_id, note='\\"]]' + "[[[" * 100))
        assert raw.count("[") > 300
        assert parse_sensor_reading(raw, now=NOW).sensor_id == sensor_id

    def test_depth_is_configurable(self) -> None:
        raw = json.dumps(reading(channels={"rh": 40}))  # nesting depth 2
        assert reason_of(parse_sensor_reading, raw, now=NOW, limits=InputLimits(max_depth=1)) is (
            RejectReason.TOO_DEEP)
        assert parse_sensor_reading(raw, now=NOW, limits=InputLimits(max_depth=2)).channels == {
            "rh": 40.0}
        nested: object = 1
        for _ in range(40):
            nested = [nested]
        deep = json.dumps(reading(extra=nested))  # depth 41
        assert reason_of(parse_sensor_reading, deep, now=NOW) is RejectReason.TOO_DEEP
        assert parse_sensor_reading(deep, now=NOW, limits=InputLimits(max_depth=41)).value == 21.5

    def test_utf16_payload_is_scanned_after_decoding(self) -> None:
        # In UTF-16 LE, U+225B is the bytes of '[' and '"': a byte scan would miscount.
        sensor_id = "\u225b" * 50
        raw = json.dumps(reading(sensor_id=sensor_id), ensure_ascii=False).encode("utf-16")
        assert raw.count(b"[") == 50
        assert parse_sensor_reading(raw, now=NOW).sensor_id == sensor_id


class TestTimestampRange:
    @pytest.mark.parametrize(
        "ts",
        [
            -1,
            -1e20,  # milliseconds by magnitude, still -1e17 s
            -2e11,
            4102444801,
            4102444801000,
            HUGE,
            -HUGE,
            "-1",
            "1969-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-23:59",
            "2100-01-01T00:00:01Z",
        ],
    )
    def test_outside_the_range(self, ts: object) -> None:
        exc = rejection(parse_sensor_reading, json.dumps(reading(timestamp=ts)), now=NOW,
                        max_future_s=None)
        assert exc.reason is RejectReason.BAD_TIMESTAMP
        assert exc.detail.endswith(f"is outside {RANGE_TEXT}")

    @pytest.mark.parametrize("ts", ["1e400", "-1e400", 1e308 * 10, float("nan")])
    def test_non_finite(self, ts: object) -> None:
        assert reason_of(parse_sensor_reading, json.dumps(reading(timestamp=ts)), now=NOW) is (
            RejectReason.BAD_TIMESTAMP)

    def test_far_future_is_bad_before_it_is_future(self) -> None:
        # The range check comes first, so a year-9999 clock is a broken clock, not skew.
        assert reason_of(parse_sensor_reading, reading(timestamp="9999-12-31T23:59:59Z"),
                         now=NOW) is RejectReason.BAD_TIMESTAMP
        assert reason_of(parse_sensor_reading, reading(timestamp=NOW + 7200), now=NOW) is (
            RejectReason.FUTURE_TIMESTAMP)

    @pytest.mark.parametrize(
        ("ts", "expected"),
        [
            (0, 0.0),
            ("1970-01-01T00:00:00Z", 0.0),
            (4102444800, 4102444800.0),
            (4102444800000, 4102444800.0),  # milliseconds, decided before the range check
            ("2100-01-01T00:00:00Z", 4102444800.0),
            ("2099-12-31T23:00:00-01:00", 4102444800.0),
        ],
    )
    def test_range_is_inclusive(self, ts: object, expected: float) -> None:
        got = parse_sensor_reading(reading(timestamp=ts), now=NOW, max_future_s=None)
        assert got.timestamp == expected

    def test_range_is_configurable(self) -> None:
        limits = InputLimits(min_timestamp=-86400.0, max_timestamp=2e9)
        assert parse_sensor_reading(reading(timestamp=-3600), now=NOW,
                                    limits=limits).timestamp == -3600.0
        exc = rejection(parse_sensor_reading, reading(timestamp=2e9 + 1), now=2e9,
                        limits=limits)
        assert exc.reason is RejectReason.BAD_TIMESTAMP
        assert exc.detail.endswith("[1969-12-31T00:00:00Z, 2033-05-18T03:33:20Z]")
        assert parse_timestamp(-1, limits=limits) == -1.0
        assert reason_of(parse_timestamp, -1) is RejectReason.BAD_TIMESTAMP

    def test_connection_events(self, raw_connection) -> None:
        for ts in (-1e20, HUGE, "0001-01-01T00:00:00Z"):
            raw = json.dumps(raw_connection(timestamp=ts))
            assert reason_of(parse_connection_event, raw, now=NOW + 10) is (
                RejectReason.BAD_TIMESTAMP)

    def test_datetimes_at_the_edges(self) -> None:
        east = timezone(timedelta(hours=23))
        for dt in (datetime.max, datetime.min, datetime(1, 1, 1, tzinfo=east)):
            assert reason_of(parse_timestamp, dt) is RejectReason.BAD_TIMESTAMP

    def test_detail_of_huge_text_is_short(self) -> None:
        exc = rejection(parse_timestamp, "x" * 100_000)
        assert exc.reason is RejectReason.BAD_TIMESTAMP and len(exc.detail) < 200


BAD_IDS = (
    "x" * 257,
    "a\x00b",
    "tab\there",
    "new\nline",
    "del\x7f",
    "c1\x85",  # C1 control (NEL)
    "zero\u200bwidth",  # Cf
    "bidi\u202eflip",  # Cf
    "\ud800",  # Cs: a lone surrogate, sent as a JSON escape
    "\ue000",  # Co: private use
    "\u0378",  # Cn: unassigned
    "ends-with\\",  # line protocol would swallow the separator after the tag
)
GOOD_IDS = ("x" * 256, "rack 7 / inlet", "größe-°C", "a\u00a0b", "\U0001f321\ufe0f-1", '[{"\\x')


class TestIds:
    @pytest.mark.parametrize("bad", BAD_IDS)
    def test_sensor_id(self, bad: str) -> None:
        assert reason_of(parse_sensor_reading, json.dumps(reading(sensor_id=bad)), now=NOW) is (
            RejectReason.BAD_ID)

    @pytest.mark.parametrize("bad", BAD_IDS)
    @pytest.mark.parametrize("name", ["src_host", "dst_host"])
    def test_hosts(self, raw_connection, name: str, bad: str) -> None:
        raw = json.dumps(raw_connection(**{name: bad}))
        assert reason_of(parse_connection_event, raw, now=NOW + 10) is RejectReason.BAD_ID

    @pytest.mark.parametrize("good", GOOD_IDS)
    def test_accepted(self, raw_connection, good: str) -> None:
        assert parse_sensor_reading(json.dumps(reading(sensor_id=good)), now=NOW).sensor_id == (
            good)
        ev = parse_connection_event(json.dumps(raw_connection(src_host=good, dst_host=good)),
                                    now=NOW + 10)
        assert ev.src_host == ev.dst_host == good

    def test_detail_shows_a_short_preview_and_the_length(self) -> None:
        exc = rejection(parse_sensor_reading, json.dumps(reading(sensor_id="y" * 100_000)),
                        now=NOW)
        assert exc.reason is RejectReason.BAD_ID
        assert exc.detail == f"sensor_id {'y' * 64!r}... (100000 characters) is longer than 256"
        exc = rejection(parse_sensor_reading, reading(sensor_id="bell\x07"), now=NOW)
        assert exc.detail == (
            "sensor_id 'bell\\x07' (5 characters) contains control character U+0007")

    def test_max_id_length_is_configurable(self, raw_connection) -> None:
        limits = InputLimits(max_id_length=4)
        assert parse_sensor_reading(reading(sensor_id="abcd"), now=NOW,
                                    limits=limits).sensor_id == "abcd"
        assert reason_of(parse_sensor_reading, reading(sensor_id="abcde"), now=NOW,
                         limits=limits) is RejectReason.BAD_ID
        hosts = InputLimits(max_id_length=8)
        assert parse_connection_event(raw_connection(src_host="10.0.0.9"), now=NOW + 10,
                                      limits=hosts).dst_host == "10.0.0.5"
        assert reason_of(parse_connection_event, raw_connection(dst_host="10.0.0.55"),
                         now=NOW + 10, limits=hosts) is RejectReason.BAD_ID

    def test_non_strings_are_still_wrong_type(self, raw_connection) -> None:
        assert reason_of(parse_sensor_reading, reading(sensor_id=["t1"]), now=NOW) is (
            RejectReason.WRONG_TYPE)
        assert reason_of(parse_connection_event, raw_connection(src_host=""), now=NOW + 10) is (
            RejectReason.WRONG_TYPE)


class TestTextFields:
    @pytest.mark.parametrize("unit", ["u" * 65, "deg\nC", "\x1b[31mC", "C\u200e"])
    def test_unit(self, unit: str) -> None:
        assert reason_of(parse_sensor_reading, reading(unit=unit), now=NOW) is (
            RejectReason.WRONG_TYPE)

    def test_unit_within_limits(self) -> None:
        assert parse_sensor_reading(reading(unit="u" * 64), now=NOW).unit == "u" * 64
        assert parse_sensor_reading(reading(unit="µS/cm"), now=NOW).unit == "µS/cm"

    @pytest.mark.parametrize("name", ["protocol_type", "service", "flag"])
    @pytest.mark.parametrize("value", ["s" * 65, "ht\x00tp", "ht\ntp", "http\u200b"])
    def test_categories(self, raw_connection, name: str, value: str) -> None:
        assert reason_of(parse_connection_event, raw_connection(**{name: value}),
                         now=NOW + 10) is RejectReason.WRONG_TYPE

    def test_categories_are_checked_after_stripping(self, raw_connection) -> None:
        ev = parse_connection_event(raw_connection(service="\thttp\n", flag="s" * 64),
                                    now=NOW + 10)
        assert (ev.service, ev.flag) == ("http", "s" * 64)

    def test_label_uses_the_id_length(self, raw_connection) -> None:
        assert parse_connection_event(raw_connection(label="l" * 256),
                                      now=NOW + 10).label == "l" * 256
        for label in ("l" * 257, "normal.\x00"):
            assert reason_of(parse_connection_event, raw_connection(label=label),
                             now=NOW + 10) is RejectReason.WRONG_TYPE

    def test_max_text_length_is_configurable(self, raw_connection) -> None:
        limits = InputLimits(max_text_length=3)
        assert reason_of(parse_connection_event, raw_connection(), now=NOW + 10,
                         limits=limits) is RejectReason.WRONG_TYPE  # "http" has 4
        ev = parse_connection_event(raw_connection(service="ftp"), now=NOW + 10, limits=limits)
        assert ev.service == "ftp"
        assert reason_of(parse_sensor_reading, reading(unit="degC"), now=NOW,
                         limits=limits) is RejectReason.WRONG_TYPE


class TestHugeNumbers:
    @pytest.mark.parametrize(
        "overrides",
        [{"value": HUGE}, {"value": -HUGE}, {"channels": {"rh": HUGE}}],
    )
    def test_sensor_values(self, overrides: dict[str, object]) -> None:
        exc = rejection(parse_sensor_reading, json.dumps(reading(**overrides)), now=NOW)
        assert exc.reason is RejectReason.OUT_OF_RANGE
        assert exc.detail.endswith("is an integer of 1329 bits, too large for a float")

    @pytest.mark.parametrize("overrides", [{"src_bytes": HUGE}, {"src_port": HUGE},
                                           {"src_port": -HUGE}])
    def test_connection_numbers(self, raw_connection, overrides: dict[str, object]) -> None:
        raw = json.dumps(raw_connection(**overrides))
        assert reason_of(parse_connection_event, raw, now=NOW + 10) is RejectReason.OUT_OF_RANGE

    def test_mapping_input_beyond_the_int_to_text_limit(self, raw_connection) -> None:
        # str() of such an int raises ValueError: details must not format it.
        giant = 10**5000
        exc = rejection(parse_connection_event, raw_connection(src_port=giant), now=NOW + 10)
        assert exc.reason is RejectReason.OUT_OF_RANGE and "bits" in exc.detail
        assert reason_of(parse_sensor_reading, reading(value=giant), now=NOW) is (
            RejectReason.OUT_OF_RANGE)
        assert reason_of(parse_sensor_reading, reading(timestamp=giant), now=NOW) is (
            RejectReason.BAD_TIMESTAMP)

    def test_json_limits_of_the_decoder(self) -> None:
        assert reason_of(parse_sensor_reading, json.dumps(reading()).replace("21.5", "1e400"),
                         now=NOW) is RejectReason.NOT_FINITE
        too_many_digits = json.dumps(reading()).replace("21.5", "9" * 5000)
        assert reason_of(parse_sensor_reading, too_many_digits, now=NOW) is (
            RejectReason.NOT_JSON)

    def test_non_text_channel_names_from_a_mapping(self) -> None:
        assert reason_of(parse_sensor_reading, reading(channels={1: 2.0}), now=NOW) is (
            RejectReason.WRONG_TYPE)
