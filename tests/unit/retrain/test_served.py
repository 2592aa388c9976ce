"""A trained connection model as the connection agent serves it: files, scores, verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detectors.persistence import ManifestError
from retrain.served import ServedConnectionModel, train_connection_model
from streams.connection_scoring import ConnectionModelConfig, score_connection_batch
from streams.live import LiveStates
from streams.scoring import AlertPolicy, RawRecord
from streams.simulator import ConnectionSimulator

#: One simulated network: clean for its first 4,000 connections (the training rows), then
#: attacked now and then.
_EVENTS = list(
    ConnectionSimulator(start=1.7e9, seed=3, attack_rate=0.004, warmup=4000).events(10_000)
)


def _simulated(lo: int, hi: int) -> tuple[list[dict], list[str]]:
    return [e for e, _ in _EVENTS[lo:hi]], [label for _, label in _EVENTS[lo:hi]]


@pytest.fixture(scope="module")
def model() -> ServedConnectionModel:
    events, labels = _simulated(0, 4000)
    assert set(labels) == {"normal"}
    return train_connection_model(pd.DataFrame(events).assign(label=labels), "marginal_tail")


def test_saved_model_loads_with_identical_scores_and_refuses_a_changed_byte(
    model: ServedConnectionModel, tmp_path: Path
) -> None:
    events, _ = _simulated(4000, 4500)
    X = model.features_of_frame(pd.DataFrame(events))
    model.save(tmp_path / "m")
    again = ServedConnectionModel.load(tmp_path / "m")
    assert again.version == model.version
    np.testing.assert_array_equal(again.score(X), model.score(X))
    state = tmp_path / "m" / "state.json"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 1
    state.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="sha256"):
        ServedConnectionModel.load(tmp_path / "m")


def test_scores_are_tail_probabilities_under_later_normal_traffic(
    model: ServedConnectionModel,
) -> None:
    # The same network later on, never attacked: about 1 % at or above 0.99.
    clean = ConnectionSimulator(start=1.7e9, seed=3, attack_rate=0.0, warmup=0).events(10_000)
    later = [e for e, _ in clean][4000:]
    p = model.score(model.features_of_frame(pd.DataFrame(later)))
    assert p.min() >= 0.0 and p.max() <= 1.0
    assert 0.002 < np.mean(p >= 0.99) < 0.05
    # Attack connections are far out in the tail.
    events, labels = _simulated(4000, 10_000)
    attack = np.array(labels) != "normal"
    assert attack.sum() > 100
    pa = model.score(model.features_of_frame(pd.DataFrame(events)))[attack]
    assert np.median(pa) > 0.999


def test_the_connection_agent_combines_the_served_model_and_names_its_version(
    model: ServedConnectionModel,
) -> None:
    events, _ = _simulated(4000, 7000)
    recs = [
        RawRecord(e["dst_host"].encode(), json.dumps(e).encode(), "connections", 0, i)
        for i, e in enumerate(events)
    ]
    config = ConnectionModelConfig(bootstrap_events=500)
    scorers: LiveStates = LiveStates(4)  # as the agent keeps them (an LRU)
    plain: dict = {}
    served, online = [], []
    for lo in range(0, len(recs), 250):
        served += score_connection_batch(recs[lo : lo + 250], scorers, AlertPolicy(), config,
                                         served=model).scored
        online += score_connection_batch(recs[lo : lo + 250], plain, AlertPolicy(),
                                         config).scored
    scored = [e for e in served if e.model_version != "bootstrap"]
    assert {e.model_version for e in scored} == {model.version}
    assert all("model:marginal_tail" in e.context["members"] for e in scored)
    # The combined score is the smaller tail probability, doubled (two looks).
    # (Traffic fields derived over the same stream as the agent's, from its first event.)
    p_model = model.score(model.features_of_frame(pd.DataFrame(events)))[500:]
    for e, o, pm in zip(scored[:200], online[500:700], p_model[:200], strict=True):
        assert e.score == pytest.approx(1 - min(1.0, 2 * min(1 - o.score, 1 - pm)), abs=1e-9)
    # The model is not checkpointed with the partition's state.
    assert "served" not in json.dumps(scorers[0].to_state())


def test_a_served_classifier_names_known_attacks_on_alerts() -> None:
    # Labelled history with the simulator's attack kinds, then live traffic with more.
    history = list(
        ConnectionSimulator(start=1.7e9, seed=8, attack_rate=0.004, warmup=500).events(6000)
    )
    frame = pd.DataFrame([e for e, _ in history]).assign(label=[lab for _, lab in history])
    assert frame["label"].nunique() >= 3
    model = train_connection_model(frame, "open_set_classifier", {"progress": False})
    assert model.gives_verdicts

    live = list(
        ConnectionSimulator(start=1.75e9, seed=9, attack_rate=0.004, warmup=1000).events(4000)
    )
    recs = [
        RawRecord(e["dst_host"].encode(), json.dumps(e).encode(), "connections", 0, i)
        for i, (e, _) in enumerate(live)
    ]
    scorers: LiveStates = LiveStates(4)
    out = []
    policy = AlertPolicy(threshold=0.999)  # the connection agent's own
    config = ConnectionModelConfig(bootstrap_events=500)
    for lo in range(0, len(recs), 250):
        result = score_connection_batch(recs[lo : lo + 250], scorers, policy, config, served=model)
        assert result.dead == []
        out += result.scored
    labels = {(e["dst_host"], e["timestamp"]): lab for e, lab in live}
    alerts = [e.alert for e in out if e.alert is not None]
    assert alerts
    named = [a for a in alerts if a["verdict"]["label"] not in ("unknown", "normal")]
    # Most alerts name an attack class, and the right one for the connection that opened it.
    assert len(named) >= len(alerts) / 2
    right = sum(a["verdict"]["label"] == labels[(a["entity"], a["first_seen"])] for a in named)
    assert right >= 0.8 * len(named)
    assert all(0.0 <= a["verdict"]["probability"] <= 1.0 for a in alerts)
