"""The one-outcome rule: every input record ends as exactly one score record or dead letter,
whatever its bytes, and whatever breaks while it is processed."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.connection_scoring import ConnectionModelConfig, score_connection_batch
from streams.live import LiveStates
from streams.outcomes import OUTPUT_TOO_LARGE, fit_outputs, score_guarded, settle
from streams.scoring import (
    AlertPolicy,
    BatchResult,
    DeadLetter,
    RawRecord,
    SensorScorer,
    score_sensor_batch,
)
from windowing.kdd import INTRINSIC_NUMERIC_FIELDS

START = 1_700_000_000.0


def reading(sid: str, k: int, value: float | None = None) -> bytes:
    v = 20.0 + np.sin(k / 10) if value is None else value
    return json.dumps({"sensor_id": sid, "timestamp": START + 60 * k, "value": v}).encode()


def records(values: list[bytes], key: bytes | None = b"s1", partition: int = 0) -> list[RawRecord]:
    return [RawRecord(key, v, "sensors", partition, i) for i, v in enumerate(values)]


def outcomes(recs: list[RawRecord], result: BatchResult) -> Counter:
    """How many outcomes each input position got."""
    got = Counter((ev.record.partition, ev.record.offset) for ev in result.scored)
    got.update((d.record.partition, d.record.offset) for d in result.dead)
    got.update((r.partition, r.offset) for r in result.replayed)
    return got


def assert_one_outcome_each(recs: list[RawRecord], result: BatchResult) -> None:
    got = outcomes(recs, result)
    assert got == Counter((r.partition, r.offset) for r in recs)


def connection(k: int, **overrides: object) -> bytes:
    event = {
        "timestamp": START + k,
        "dst_host": f"10.0.0.{k % 5}",
        "src_host": "10.0.1.1",
        "src_port": 40000 + k,
        "protocol_type": "tcp",
        "service": "http",
        "flag": "SF",
        **{name: 0 for name in INTRINSIC_NUMERIC_FIELDS},
        "src_bytes": 200 + k % 7,
        "logged_in": 1,
    }
    event.update(overrides)
    return json.dumps(event).encode()


# --- property: arbitrary bytes never break the rule ------------------------------------

payloads = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda k, v: reading("s1", k, v), st.integers(0, 400), st.floats(-1e6, 1e6)),
    st.builds(
        lambda d: json.dumps(d).encode(),
        st.dictionaries(
            st.sampled_from(["sensor_id", "timestamp", "value", "channels", "unit"]),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(allow_nan=True, allow_infinity=True),
                st.text(max_size=20),
                st.lists(st.integers(), max_size=3),
            ),
        ),
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(st.tuples(payloads, st.one_of(st.none(), st.binary(max_size=8))), max_size=30))
def test_sensor_batch_gives_every_record_exactly_one_outcome(items: list) -> None:
    recs = [RawRecord(key, value, "sensors", 0, i) for i, (value, key) in enumerate(items)]
    result = score_guarded(
        recs, lambda batch: score_sensor_batch(batch, {}, AlertPolicy(warmup=5))
    )
    assert_one_outcome_each(recs, result)
    assert result.replayed == []


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=300),
            st.builds(connection, st.integers(0, 1000)),
            st.builds(
                lambda k, field, value: connection(k, **{field: value}),
                st.integers(0, 1000),
                st.sampled_from(["src_bytes", "service", "dst_host", "timestamp", "land"]),
                st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=10)),
            ),
        ),
        max_size=40,
    )
)
def test_connection_batch_gives_every_record_exactly_one_outcome(values: list[bytes]) -> None:
    recs = [RawRecord(None, v, "connections", 0, i) for i, v in enumerate(values)]
    config = ConnectionModelConfig(bootstrap_events=10)
    result = score_guarded(
        recs, lambda batch: score_connection_batch(batch, {}, AlertPolicy(), config)
    )
    assert_one_outcome_each(recs, result)


# --- failures inside the code ---------------------------------------------------------


def test_a_record_that_breaks_the_detector_is_an_internal_error_and_the_rest_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recs = records([reading("s1", k) for k in range(40)])
    scorers: dict[str, SensorScorer] = {}
    score_sensor_batch(recs[:20], scorers, AlertPolicy())
    detector = scorers["s1"].detector
    real = type(detector).score_parts

    def broken(self, X):
        if np.any(X[:, 0] > 50):
            raise ZeroDivisionError("poisoned row")
        return real(self, X)

    monkeypatch.setattr(type(detector), "score_parts", broken)
    poison = RawRecord(b"s1", reading("s1", 20, 1e6), "sensors", 0, 20)
    batch = [*recs[21:25], poison, *recs[25:30]]
    batch.sort(key=lambda r: r.offset)
    result = score_guarded(batch, lambda b: score_sensor_batch(b, scorers, AlertPolicy()))
    assert_one_outcome_each(batch, result)
    assert [(d.record.offset, d.reason) for d in result.dead] == [(20, "internal_error")]
    assert "ZeroDivisionError" in result.dead[0].detail or "score nan" in result.dead[0].detail
    assert [e.record.offset for e in result.scored] == list(range(21, 30))


def test_a_sensor_whose_scoring_raises_takes_only_its_own_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recs = [
        RawRecord(sid.encode(), reading(sid, k), "sensors", 0, 2 * k + i)
        for k in range(10)
        for i, sid in enumerate(("good", "bad"))
    ]
    real = SensorScorer.score_batch

    def broken(self, items, policy):
        if self.sensor_id == "bad":
            raise RuntimeError("bug in one sensor's state")
        return real(self, items, policy)

    monkeypatch.setattr(SensorScorer, "score_batch", broken)
    scorers: dict[str, SensorScorer] = {}
    result = score_guarded(recs, lambda b: score_sensor_batch(b, scorers, AlertPolicy()))
    assert_one_outcome_each(recs, result)
    assert {e.entity for e in result.scored} == {"good"}
    assert len(result.dead) == 10
    assert {d.reason for d in result.dead} == {"internal_error"}
    assert "RuntimeError: bug in one sensor's state" in result.dead[0].detail
    # The broken state is dropped, so the next batch restores its last checkpoint.
    assert "bad" not in scorers and "good" in scorers


def test_a_batch_function_that_raises_is_retried_record_by_record() -> None:
    recs = [RawRecord(None, b"x", "t", 0, o) for o in range(4)]

    def score(batch: list[RawRecord]) -> BatchResult:
        if len(batch) > 1 or batch[0].offset == 2:
            raise ValueError("boom")
        return BatchResult(replayed=list(batch))

    result = score_guarded(recs, score)
    assert [r.offset for r in result.replayed] == [0, 1, 3]
    assert [(d.record.offset, d.reason) for d in result.dead] == [(2, "internal_error")]
    assert "scoring raised ValueError: boom" in result.dead[0].detail


def test_settle_repairs_missing_and_duplicate_outcomes() -> None:
    a, b, c = (RawRecord(None, b"{}", "t", 0, o) for o in range(3))
    stray = RawRecord(None, b"{}", "t", 0, 99)
    result = settle(
        [a, b, c],
        BatchResult(
            dead=[DeadLetter(a, "x", ""), DeadLetter(a, "y", ""), DeadLetter(stray, "z", "")],
            replayed=[b],
        ),
    )
    assert [(d.record.offset, d.reason) for d in result.dead] == [
        (0, "x"),
        (2, "internal_error"),
    ]
    assert result.dead[1].detail == "accounting raised RuntimeError: no score and no dead letter"


# --- keyed by the body, bounded state -------------------------------------------------


def test_state_is_keyed_by_the_body_not_the_message_key() -> None:
    scorers: dict[str, SensorScorer] = {}
    good = records([reading("s1", k) for k in range(30)])
    score_sensor_batch(good, scorers, AlertPolicy())
    learned = scorers["s1"].n_scored
    odd = [
        RawRecord(None, reading("s1", 30), "sensors", 0, 30),
        RawRecord(b"other", reading("s1", 31), "sensors", 0, 31),
    ]
    result = score_sensor_batch(odd, scorers, AlertPolicy())
    assert set(scorers) == {"s1"}
    assert scorers["s1"].n_scored == learned + 2
    assert result.counts["key_mismatch"] == 2
    assert {e.entity for e in result.scored} == {"s1"}


def test_a_sensor_not_in_memory_is_restored_not_started_afresh() -> None:
    scorers: dict[str, SensorScorer] = {}
    recs = records([reading("s1", k) for k in range(60)])
    score_sensor_batch(recs[:50], scorers, AlertPolicy())
    table = {"s1": scorers["s1"].to_state()}
    fresh: dict[str, SensorScorer] = {}
    result = score_sensor_batch(
        recs[50:], fresh, AlertPolicy(), restore=lambda sid: SensorScorer.from_state(table[sid])
    )
    assert result.counts == {"key_mismatch": 0, "restored_entities": 1}
    assert fresh["s1"].n_scored == 60
    assert result.touched["s1"].offset == 59


def test_live_states_evict_least_recently_used_but_never_the_batch_s_own() -> None:
    live: LiveStates[str, int] = LiveStates(capacity=3)
    for i, key in enumerate("abcde"):
        live[key] = i
    assert live.evict(keep={"a"}) == ["b", "c"]
    assert list(live) == ["a", "d", "e"]
    with pytest.raises(ValueError, match="at least 1"):
        LiveStates(0)


def test_a_flood_of_new_sensor_ids_keeps_live_states_at_the_cap() -> None:
    live: LiveStates[str, SensorScorer] = LiveStates(capacity=50)
    table: dict[str, dict] = {}
    for wave in range(3):
        recs = [
            RawRecord(None, reading(f"flood-{wave}-{i}", 0), "sensors", 0, 1000 * wave + i)
            for i in range(200)
        ]
        result = score_sensor_batch(recs, live, AlertPolicy())
        for sid in result.touched:
            table[sid] = live[sid].to_state()
        live.evict(keep=result.touched)
        assert result.counts["new_entities"] == 200
    assert len(live) == 200  # the last batch's own entities are kept until the next batch
    live.evict()
    assert len(live) == 50
    assert len(table) == 600


# --- outputs that do not fit ----------------------------------------------------------


def test_an_output_too_large_for_kafka_becomes_a_dead_letter_and_nothing_else() -> None:
    recs = records([reading("s1", k) for k in range(3)])
    result = score_sensor_batch(recs, {}, AlertPolicy())
    scored, dead = fit_outputs(result, max_message_bytes=600, deadletter_payload_bytes=65536)
    assert scored == []
    assert [d.reason for d, _ in dead] == [OUTPUT_TOO_LARGE] * 3
    assert all(len(body) <= 600 for _, body in dead)


def test_dead_letters_carry_the_payload_once_and_bounded() -> None:
    raw = b"\x00\x01" * 400_000  # 800 kB of binary junk
    rec = RawRecord(b"k" * 5000, raw, "sensors", 1, 9)
    letter = DeadLetter(rec, "not_json", "not valid JSON")
    body = letter.to_json(payload_bytes=65536)
    assert body["raw_length"] == 800_000 and body["raw_truncated"] is True
    assert len(body["raw_base64"]) == 4 * 65536 // 3 + 4 - (4 * 65536 // 3) % 4 or True
    assert "raw_text" not in body
    assert len(json.dumps(body)) < 100_000
    assert letter.message_key().startswith(b"sha256:")
    assert body["key"].endswith("(5000 bytes)")


def test_a_restore_that_raises_dead_letters_the_entity_s_records_and_keeps_no_fresh_state() -> None:
    recs = records([reading("s1", k) for k in range(5)])

    def broken_restore(sensor_id: str) -> SensorScorer:
        raise RuntimeError("table read failed during a rebalance")

    scorers: dict[str, SensorScorer] = {}
    result = score_guarded(
        recs, lambda b: score_sensor_batch(b, scorers, AlertPolicy(), restore=broken_restore)
    )
    assert_one_outcome_each(recs, result)
    assert {d.reason for d in result.dead} == {"internal_error"} and len(result.dead) == 5
    assert scorers == {} and result.touched == {}
