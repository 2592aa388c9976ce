"""Validation of sensor readings and connection events: every reject reason is reachable."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from windowing.kdd import TRAFFIC_FIELDS
from windowing.schemas import (
    ConnectionEvent,
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
            "unit_mismatch", "out_of_order", "duplicate",
        }
