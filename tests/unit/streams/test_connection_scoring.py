"""The connection agent's logic without a broker: bootstrap, scoring, alerts, state."""

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


def _run(
    recs: list,
    scorers: dict,
    config: ConnectionModelConfig,
    size: int = 200,
    policy: AlertPolicy | None = None,
) -> list:
    out = []
    for i in range(0, len(recs), size):
        result = score_connection_batch(
            recs[i : i + size], scorers, policy or AlertPolicy(), config
        )
        scored, dead = result.scored, result.dead
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
    result = score_connection_batch([*good, *bad], {}, AlertPolicy())
    scored, dead = result.scored, result.dead
    assert len(scored) == 3
    assert [d.reason for d in dead] == ["not_json", "missing_field", "empty"]


# The connection agent's policy (settings: alerts.connections_threshold, warm-up 200).
CONNECTION_POLICY = AlertPolicy(threshold=0.999, warmup=200, cooldown_events=20)


def test_detects_simulated_attacks_on_the_victim_with_no_false_alert() -> None:
    # Seed 12: two SYN floods and a third, two port sweeps, three smurfs, password guessing.
    recs, labels, sim = _records(7000, seed=12, attack_rate=0.003, warmup=2000)
    assert {t["kind"] for t in sim.truth} == {"neptune", "portsweep", "smurf", "guess_passwd"}
    scored = _run(recs, {}, ConnectionModelConfig(bootstrap_events=1000), policy=CONNECTION_POLICY)
    alerts = [e.alert for e in scored if e.alert is not None]

    def hit(alert: dict, attack: dict) -> bool:
        return (
            alert["entity"] == attack["victim"]
            and attack["start"] - 1 <= alert["first_seen"] <= attack["end"] + 3
        )

    found = [any(hit(a, t) for a in alerts) for t in sim.truth]
    false_alerts = [a for a in alerts if not any(hit(a, t) for t in sim.truth)]
    assert len(sim.truth) == 9
    assert sum(found) >= 8, [t["kind"] for t, f in zip(sim.truth, found, strict=True) if not f]
    assert false_alerts == []
    # Alerts explain themselves: evidence and the most surprising features (nats).
    first = alerts[0]
    assert first["evidence"]["anomalous_connections"] >= 3
    assert first["features"][0]["contribution"] > 5
    assert 0 < first["features"][0]["tail_probability"] < 0.01
    # Normal traffic away from the attacks is rarely anomalous on its own.
    quiet = [
        e
        for e, lab in zip(scored, labels, strict=True)
        if lab == "normal"
        and e.model_version == "online"
        and not any(t["start"] - 3 <= e.timestamp <= t["end"] + 5 for t in sim.truth)
    ]
    assert len(quiet) > 400
    assert sum(e.is_anomaly for e in quiet) / len(quiet) < 0.005


def _odd(event: dict, t: float) -> dict:
    """A mail connection with failed logins, a root shell and 10 MB sent: odd in itself.

    (Service, flag and host are the usual ones, so the traffic windows of the following
    connections stay normal: one odd connection leaves no trace on its neighbours.)
    """
    return {
        **event,
        "timestamp": t,
        "dst_host": "10.0.0.20",
        "protocol_type": "tcp",
        "service": "smtp",
        "flag": "SF",
        "src_bytes": 10_000_000,
        "hot": 2,
        "num_failed_logins": 3,
        "root_shell": 1,
    }


def test_one_odd_connection_is_anomalous_but_only_a_burst_alerts() -> None:
    sim = ConnectionSimulator(start=1.7e9, seed=3, attack_rate=0.0)
    events = [e for e, _ in sim.events(2600)]
    lone = _odd(events[1500], events[1500]["timestamp"])
    burst = [_odd(events[2200], events[2200]["timestamp"] + 0.1 * i) for i in range(3)]
    stream = sorted([*events, lone, *burst], key=lambda e: e["timestamp"])
    recs = [
        RawRecord(e["dst_host"].encode(), json.dumps(e).encode(), "connections", 0, i)
        for i, e in enumerate(stream)
    ]
    policy = AlertPolicy(threshold=0.999, warmup=0)
    scored = _run(recs, {}, ConnectionModelConfig(bootstrap_events=1000), policy=policy)
    odd = [e for e in scored if e.features.get("root_shell", 0) > 0]
    assert len(odd) == 4 and all(e.is_anomaly for e in odd)
    assert odd[0].alert is None  # a lone odd connection is not an incident
    assert [e.alert is not None for e in odd[1:]] == [False, False, True]
    alert = odd[3].alert
    assert alert["entity"] == "10.0.0.20"
    assert alert["evidence"]["anomalous_connections"] == 3
    assert {f["name"] for f in alert["features"]} <= {
        "src_bytes", "hot", "num_failed_logins", "root_shell",
    }
    assert [e.alert for e in scored if e.alert is not None] == [alert]


def test_state_fits_a_kafka_message_and_round_trips() -> None:
    recs, _, _ = _records(6000, seed=5, attack_rate=0.003, warmup=2500)
    scorers: dict[int, ConnectionScorer] = {}
    config = ConnectionModelConfig(bootstrap_events=1000)
    _run(recs[:5000], scorers, config, policy=CONNECTION_POLICY)
    state = json.dumps(scorers[0].to_state())
    # A Faust table entry is one Kafka message (1 MB by default).
    assert len(state) < 400_000
    detector = json.loads(state)["detector"]
    assert detector["detector"] == "ensemble"
    assert [m["name"] for m in detector["params"]["members"]] == [
        "marginal_tail",
        "half_space_trees",
    ]
    # The restored scorer goes on exactly where the original would have.
    restored = {0: ConnectionScorer.from_state(json.loads(state))}
    rest = recs[5000:]
    expected = [e.score for e in _run(rest, scorers, config, policy=CONNECTION_POLICY)]
    assert [e.score for e in _run(rest, restored, config, policy=CONNECTION_POLICY)] == expected
    assert max(expected) > 0.5
    with pytest.raises(ValueError, match="version"):
        ConnectionScorer.from_state({**json.loads(state), "version": 1})


def test_hosts_under_alert_are_not_learned() -> None:
    recs, labels, _ = _records(5000, seed=12, attack_rate=0.003, warmup=2000)
    scorers: dict[int, ConnectionScorer] = {}
    config = ConnectionModelConfig(bootstrap_events=1000)
    scored = _run(recs, scorers, config, policy=CONNECTION_POLICY)
    scorer = scorers[0]
    attack_rows = sum(1 for e, lab in zip(scored, labels, strict=True)
                      if lab != "normal" and e.model_version == "online")
    assert attack_rows > 300
    # Flood connections carry the S0 flag: the reference barely saw any.
    names = list(scorer.pipeline.names)
    marginal = scorer.detector.members_["marginal_tail"]
    values, weights = marginal.feature_reference(names.index("flag=S0"))
    s0_weight = dict(zip(values.tolist(), weights.tolist(), strict=True)).get(1.0, 0.0)
    floods = sum(1 for lab in labels if lab == "neptune")
    assert floods >= 150
    assert s0_weight < 0.05 * floods
