"""The connection agent's logic without a broker: bootstrap, scoring, state, dead letters."""

from __future__ import annotations

import json

import pytest

from streams.connection_scoring import (
    ConnectionModelConfig,
    ConnectionScorer,
    score_connection_batch,
)
from streams.scoring import AlertPolicy, RawRecord
from streams.simulator import ConnectionSimulator


def _records(n: int, seed: int = 1, attack_rate: float = 0.0, warmup: int = 0) -> tuple:
    sim = ConnectionSimulator(start=1.7e9, seed=seed, attack_rate=attack_rate, warmup=warmup)
    events = list(sim.events(n))
    recs = [
        RawRecord(e["dst_host"].encode(), json.dumps(e).encode(), "connections", 0, i)
        for i, (e, _) in enumerate(events)
    ]
    return recs, [label for _, label in events], sim


def _run(recs: list, scorers: dict, config: ConnectionModelConfig, size: int = 200) -> list:
    out = []
    for i in range(0, len(recs), size):
        scored, dead = score_connection_batch(recs[i : i + size], scorers, AlertPolicy(), config)
        assert dead == []
        out += scored
    return out


def test_bootstrap_events_are_published_then_scoring_starts() -> None:
    recs, _, _ = _records(700)
    config = ConnectionModelConfig(bootstrap_events=300)
    scored = _run(recs, {}, config)
    assert len(scored) == 700  # nothing dropped, bootstrap included
    assert [e.model_version for e in scored[:300]] == ["bootstrap"] * 300
    assert all(e.score == 0.0 for e in scored[:300])
    online = scored[300:]
    assert {e.model_version for e in online} == {"online"}
    assert all(0.0 <= e.score <= 1.0 for e in online)
    # Traffic features were derived from the raw stream and are carried by name.
    assert "dst_host_serror_rate" in online[0].features
    assert online[0].context["traffic"] == "derived"


def test_entity_is_the_destination_host() -> None:
    recs, _, _ = _records(400)
    scored = _run(recs, {}, ConnectionModelConfig(bootstrap_events=100))
    for rec, ev in zip(recs, scored, strict=True):
        assert ev.entity == json.loads(rec.value)["dst_host"]


def test_state_round_trip_gives_identical_scores() -> None:
    recs, _, _ = _records(900)
    config = ConnectionModelConfig(bootstrap_events=300)
    whole = _run(recs, {}, config)
    part: dict[int, ConnectionScorer] = {}
    _run(recs[:600], part, config)
    restored = {
        k: ConnectionScorer.from_state(json.loads(json.dumps(v.to_state())))
        for k, v in part.items()
    }
    rest = _run(recs[600:], restored, config)
    assert [e.score for e in rest] == pytest.approx([e.score for e in whole[600:]])


def test_floods_score_higher_than_normal_traffic() -> None:
    recs, labels, sim = _records(6000, seed=5, attack_rate=0.003, warmup=2500)
    assert sim.truth, "the simulator injected no attack"
    scored = _run(recs, {}, ConnectionModelConfig(bootstrap_events=1000))
    online = [
        (e.score, lab) for e, lab in zip(scored, labels, strict=True) if e.model_version == "online"
    ]
    attack = [s for s, lab in online if lab in ("neptune", "smurf", "portsweep")]
    normal = [s for s, lab in online if lab == "normal"]
    assert attack and normal
    assert sum(attack) / len(attack) > sum(normal) / len(normal)


def test_malformed_connections_are_dead_letters() -> None:
    good, _, _ = _records(3)
    bad = [
        RawRecord(b"x", b"nope", "connections", 0, 10),
        RawRecord(b"x", b'{"timestamp": 0, "service": "http"}', "connections", 0, 11),
        RawRecord(b"x", None, "connections", 0, 12),
    ]
    scored, dead = score_connection_batch([*good, *bad], {}, AlertPolicy())
    assert len(scored) == 3
    assert [d.reason for d in dead] == ["not_json", "missing_field", "empty"]
