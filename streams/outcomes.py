"""The one rule both agents live by: every input record ends in exactly one outcome.

An input record becomes a score record or a dead letter (or, when a crash made Kafka
deliver it again after its effect was checkpointed, nothing new: it is *replayed*),
whatever its bytes and whatever the code does with them. :func:`score_guarded` runs a
source's batch function under that rule, and :func:`settle` checks it and repairs what a
bug broke; :func:`fit_outputs` keeps every output within what Kafka accepts. Plain code,
no I/O: the agents call it, tests call it without a broker.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from streams.scoring import (
    BatchResult,
    DeadLetter,
    RawRecord,
    ScoredEvent,
    internal_error,
)

__all__ = [
    "OUTPUT_TOO_LARGE",
    "SINK_REJECTED",
    "dumps",
    "fit_outputs",
    "score_guarded",
    "settle",
]

log = structlog.get_logger(__name__)

#: Dead-letter reason: the event's score record or alert is larger than Kafka accepts.
OUTPUT_TOO_LARGE = "output_too_large"
#: Dead-letter reason: a sink refused the event's output for good (InfluxDB 4xx, Kafka).
SINK_REJECTED = "sink_rejected"
#: Room left in a Kafka message for the record batch header, key and timestamp.
_KAFKA_OVERHEAD = 512


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes of an output record (NaN refused: consumers need valid JSON)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def _position(record: RawRecord) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


def score_guarded(
    records: Sequence[RawRecord], score: Callable[[Sequence[RawRecord]], BatchResult]
) -> BatchResult:
    """``score(records)``, with every record ending in exactly one outcome.

    The batch functions isolate failures per record and per entity themselves; this is
    the net under them. If the whole call raises, each record is scored on its own and a
    record whose call raises again becomes an ``internal_error`` dead letter.

    >>> recs = [RawRecord(None, b"1", "t", 0, o) for o in range(2)]
    >>> res = score_guarded(recs, lambda batch: BatchResult(replayed=list(batch)))
    >>> [r.offset for r in res.replayed], res.dead
    ([0, 1], [])
    """
    try:
        result = score(records)
    except Exception as exc:
        log.error("batch_failed", records=len(records), error=repr(exc)[:2000], exc_info=exc)
        result = BatchResult()
        for record in records:
            try:
                result.extend(score([record]))
            except Exception as one:
                result.dead.append(internal_error(record, one, "scoring"))
    return settle(records, result)


def settle(records: Sequence[RawRecord], result: BatchResult) -> BatchResult:
    """Check that each of ``records`` has exactly one outcome in ``result``; repair if not.

    A record with no outcome becomes an ``internal_error`` dead letter; a second outcome
    of a record is dropped (a score record wins over a dead letter). Either is a bug, and
    logged as one; outcomes of records not in ``records`` are dropped too.

    >>> a, b = RawRecord(None, b"{}", "t", 0, 1), RawRecord(None, b"{}", "t", 0, 2)
    >>> res = settle([a, b], BatchResult(dead=[DeadLetter(a, "x", "")], replayed=[b]))
    >>> [(d.record.offset, d.reason) for d in res.dead], [r.offset for r in res.replayed]
    ([(1, 'x')], [2])
    """
    wanted = {_position(r) for r in records}
    done: set[tuple[str, int, int]] = set()
    out = BatchResult(counts=dict(result.counts), touched=dict(result.touched))

    def first(record: RawRecord) -> bool:
        pos = _position(record)
        if pos not in wanted or pos in done:
            log.error("duplicate_outcome", topic=pos[0], partition=pos[1], offset=pos[2])
            return False
        done.add(pos)
        return True

    out.scored = [ev for ev in result.scored if first(ev.record)]
    out.replayed = [r for r in result.replayed if first(r)]
    out.dead = [d for d in result.dead if first(d.record)]
    for record in records:
        if _position(record) not in done:
            log.error("missing_outcome", partition=record.partition, offset=record.offset)
            out.dead.append(
                internal_error(record, RuntimeError("no score and no dead letter"), "accounting")
            )
            done.add(_position(record))
    return out


def fit_outputs(
    result: BatchResult, max_message_bytes: int, deadletter_payload_bytes: int
) -> tuple[list[tuple[ScoredEvent, bytes, bytes | None]], list[tuple[DeadLetter, bytes]]]:
    """Serialise a batch's outputs, each within ``max_message_bytes``.

    Returns ``(score_record_json, alert_json or None)`` per scored event and the JSON of
    every dead letter. An event whose score record or alert would not fit becomes an
    ``output_too_large`` dead letter instead (with no score record and no alert, so the
    record keeps exactly one outcome). Dead letters carry at most
    ``deadletter_payload_bytes`` of the payload, lowered if needed to fit the limit.

    >>> rec = RawRecord(b"k", b"y" * 5000, "sensors", 0, 3)
    >>> _, dead = fit_outputs(BatchResult(dead=[DeadLetter(rec, "not_json", "")]), 4096, 65536)
    >>> len(dead[0][1]) <= 4096, json.loads(dead[0][1])["raw_truncated"]
    (True, True)
    """
    limit = max_message_bytes - _KAFKA_OVERHEAD
    # base64 grows 4/3; leave room for the dead letter's other fields.
    payload = max(0, min(deadletter_payload_bytes, (limit - 4096) * 3 // 4))
    scored: list[tuple[ScoredEvent, bytes, bytes | None]] = []
    dead = list(result.dead)
    for ev in result.scored:
        body = dumps(ev.to_json())
        alert = dumps(ev.alert) if ev.alert is not None else None
        size = max(len(body), len(alert or b""))
        if size > limit:
            dead.append(
                DeadLetter(
                    ev.record,
                    OUTPUT_TOO_LARGE,
                    f"score record or alert of {size} bytes exceeds the {max_message_bytes} "
                    f"bytes Kafka accepts",
                )
            )
            continue
        scored.append((ev, body, alert))
    return scored, [(d, dumps(d.to_json(payload_bytes=payload))) for d in dead]
