"""The trainer's logic on real score records and a real (embedded) registry."""

from __future__ import annotations

import json

from retrain.registry import CHAMPION, ModelRegistry
from retrain.served import ServedConnectionModel
from retrain.trainer import CLEAN_ALARM_RATE, ConnectionTrainer, RetrainPolicy
from streams.connection_scoring import ConnectionModelConfig, score_connection_batch
from streams.scoring import AlertPolicy, RawRecord
from streams.simulator import ConnectionSimulator


def _score_records(n: int, seed: int, attack_rate: float = 0.0) -> list[dict]:
    """Score records exactly as the connection agent publishes them."""
    sim = ConnectionSimulator(start=1.7e9, seed=seed, attack_rate=attack_rate, warmup=500)
    recs = [
        RawRecord(e["dst_host"].encode(), json.dumps(e).encode(), "connections", 0, i)
        for i, (e, _) in enumerate(sim.events(n))
    ]
    scorers: dict = {}
    out = []
    for lo in range(0, n, 500):
        result = score_connection_batch(recs[lo : lo + 500], scorers,
                                        AlertPolicy(threshold=0.999),
                                        ConnectionModelConfig(bootstrap_events=300))
        out += [json.loads(json.dumps(e.to_json())) for e in result.scored]
    return out


def test_schedule_retrain_registers_and_promotes_the_first_candidate(
    registry: ModelRegistry,
) -> None:
    trainer = ConnectionTrainer("conn", RetrainPolicy(every_events=2500, min_rows=1000))
    records = _score_records(4000, seed=2, attack_rate=0.003)
    for rec in records[:2000]:
        trainer.observe(rec)
    assert trainer.due() is None  # not enough new clean rows yet
    for rec in records[2000:]:
        trainer.observe(rec)
    assert trainer.due() == "schedule"
    # Bootstrap records and anomalous ones stay out of the training rows.
    anomalous = sum(r["is_anomaly"] for r in records)
    assert trainer.buffer.refused >= anomalous > 0
    assert len(trainer.buffer) == 4000 - 300 - trainer.buffer.refused

    events = trainer.retrain(registry, "schedule")
    assert [e["event"] for e in events] == ["started", "finished", "promoted"]
    finished = events[1]
    assert finished["train_rows"] + finished["validation_rows"] == len(trainer.buffer)
    assert 0.0 <= finished["metrics"][CLEAN_ALARM_RATE] < 0.01
    assert trainer.due() is None  # the schedule starts again
    served = registry.load("conn", CHAMPION, loader=ServedConnectionModel.load)
    assert served.version == finished["served_version"] == events[2]["served_version"]


def test_too_few_clean_rows_skip_the_retrain(registry: ModelRegistry) -> None:
    trainer = ConnectionTrainer("conn", RetrainPolicy(min_rows=5000))
    for rec in _score_records(1200, seed=3):
        trainer.observe(rec)
    events = trainer.retrain(registry, "command")
    assert [e["event"] for e in events] == ["started", "skipped"]
    assert "conn" not in registry.models()  # nothing registered


def test_a_regime_change_is_reported_as_drift_and_makes_a_retrain_due() -> None:
    import numpy as np

    from retrain.monitors import DriftSettings, ModelDriftMonitors
    from windowing import NUMERIC_FIELDS

    rng = np.random.default_rng(0)

    def record(shift: float) -> dict:
        numeric = rng.lognormal(3.0, 0.5, len(NUMERIC_FIELDS))
        numeric[NUMERIC_FIELDS.index("src_bytes")] *= np.exp(shift)
        return {"source": "connections", "model_version": "online", "is_anomaly": False,
                "score": float(rng.uniform()), "timestamp": 1.7e9,
                "context": {"numeric": numeric.tolist(), "protocol_type": "tcp",
                            "service": "http", "flag": "SF", "alert_id": None}}

    monitors = ModelDriftMonitors(DriftSettings(), list(NUMERIC_FIELDS), alert_threshold=0.999)
    trainer = ConnectionTrainer("conn", RetrainPolicy(every_events=0, min_rows=500),
                                drift=monitors)
    assert not any(trainer.observe(record(0.0)) for _ in range(20_000))  # stationary
    assert trainer.due() is None
    reports = [r for _ in range(3000) for r in trainer.observe(record(1.0))]  # sizes x e
    assert reports and reports[0].monitor == "feature_ks"
    assert reports[0].features == ("src_bytes",)
    assert trainer.due() == "drift"  # 500 clean rows of the new regime are in


def test_analyst_verdicts_move_an_alert_s_rows_in_or_keep_them_out() -> None:
    trainer = ConnectionTrainer("conn", RetrainPolicy(every_events=0))
    records = _score_records(4000, seed=2, attack_rate=0.003)
    for rec in records:
        trainer.observe(rec)
    alerts = [r["context"]["alert_id"] for r in records
              if r["model_version"] != "bootstrap" and r["context"].get("alert_id")]
    first, second = list(dict.fromkeys(alerts))[:2]
    before = len(trainer.buffer)
    # A false alarm: its connections are normal traffic after all.
    added = trainer.verdict(first, confirmed=False)
    assert added == alerts.count(first) and len(trainer.buffer) == before + added
    # A confirmed incident: its connections stay out.
    assert trainer.verdict(second, confirmed=True) == alerts.count(second)
    assert len(trainer.buffer) == before + added
    assert trainer.verdict("no-such-alert", confirmed=False) == 0
