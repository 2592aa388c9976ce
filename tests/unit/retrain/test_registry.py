"""The model registry against a real embedded MLflow store (SQLite + local artifacts).

Detectors are real ones saved with ``Detector.save``; nothing of MLflow is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from detectors.base import Detector
from detectors.online import RobustZScore
from retrain.registry import (
    CHAMPION,
    PREVIOUS_CHAMPION,
    ArtifactIntegrityError,
    ModelRegistry,
    PromotionRule,
    RegistryError,
    slice_evaluator,
)
from streams.cli import app

RANGE = ("2026-03-01T00:00:00+00:00", "2026-03-08T00:00:00+00:00")


def saved_zscore(path: Path, rng: np.random.Generator, scale: tuple[float, float] = (1, 1),
                 window: int = 288) -> Path:
    X = rng.normal(size=(300, 2)) * np.asarray(scale)
    RobustZScore(window=window).learn_many(X).save(path, time_range=RANGE)
    return path


def stored_folder(registry: ModelRegistry, model: str, version: str) -> Path:
    """The version's folder inside the registry's own (local) artifact store."""
    source = registry.show(model, version).source
    assert source.startswith("file://")
    return Path(source.removeprefix("file://"))


def test_register_copies_the_folder_with_lineage_and_sha256s(
    registry: ModelRegistry, tmp_path: Path, rng: np.random.Generator
) -> None:
    src = saved_zscore(tmp_path / "candidate", rng, window=100)
    (src / "training-notes.txt").write_text("not part of the detector")
    original = Detector.load(src)
    version = registry.register_candidate(
        "sensors", src, {"average_precision": 0.8, "roc_auc": 0.9}, params={"window": 100}
    )
    assert version == "1"
    shutil.rmtree(src)  # the registry holds its own copy

    info = registry.show("sensors", version)
    assert info.detector == "robust_zscore"
    assert (info.data_start, info.data_end) == RANGE  # from the manifest when not given
    assert info.metrics == {"average_precision": 0.8, "roc_auc": 0.9}
    assert info.params == {"window": "100"}
    assert set(info.sha256) == {"manifest.json", "state.json", "arrays.npz"}
    assert info.aliases == [] and registry.champion("sensors") is None
    # Only what the manifest lists was copied.
    assert sorted(p.name for p in stored_folder(registry, "sensors", version).iterdir()) == [
        "arrays.npz", "manifest.json", "state.json"]

    loaded = registry.load("sensors", version)
    X = rng.normal(size=(20, 2))
    np.testing.assert_array_equal(loaded.score_many(X), original.score_many(X))
    assert [v.version for v in registry.list_versions()] == ["1"]

    explicit = registry.register_candidate(
        "sensors", saved_zscore(tmp_path / "c2", rng), {"average_precision": 0.7},
        data_range=("2026-03-08", "2026-03-15"),
    )
    assert registry.show("sensors", explicit).data_start == "2026-03-08"
    assert [v.version for v in registry.list_versions("sensors")] == ["2", "1"]


def test_promotion_follows_the_rule_and_rollback_restores_the_previous(
    registry: ModelRegistry, tmp_path: Path, rng: np.random.Generator
) -> None:
    def register(ap: float) -> str:
        folder = saved_zscore(tmp_path / f"ap{ap}", rng)
        return registry.register_candidate("sensors", folder, {"average_precision": ap})

    v1, v2, v3 = register(0.80), register(0.70), register(0.85)

    first = registry.promote("sensors", v1)
    assert first.status == "promoted" and first.reason == "no champion yet"
    assert first.event() is not None and first.event()["previous_version"] is None
    assert registry.champion("sensors") == v1

    worse = registry.promote("sensors", v2)
    assert worse.status == "rejected" and not worse.promoted
    assert "0.7 < 0.8" in worse.reason
    assert worse.event() is None
    assert registry.champion("sensors") == v1  # unchanged

    # Within the tolerance counts as "not worse".
    lenient = PromotionRule("average_precision", higher_is_better=True, tolerance=0.15)
    assert registry.promote("sensors", v2, rule=lenient).promoted
    assert registry.rollback("sensors").to_version == v1

    assert registry.promote("sensors", v1).status == "unchanged"
    better = registry.promote("sensors", v3)
    assert better.promoted and better.previous_champion == v1
    event = better.event()
    assert event["event"] == "promoted" and event["model"] == "sensors"
    assert (event["version"], event["previous_version"]) == (v3, v1)
    assert (event["candidate_value"], event["champion_value"]) == (0.85, 0.80)
    aliases = {v.version: v.aliases for v in registry.list_versions("sensors")}
    assert aliases[v3] == [CHAMPION] and aliases[v1] == [PREVIOUS_CHAMPION]

    back = registry.rollback("sensors")
    assert (back.from_version, back.to_version) == (v3, v1)
    assert back.event()["event"] == "rolled_back"
    assert registry.champion("sensors") == v1
    assert registry.load("sensors", CHAMPION).n_features_in_ == 2
    with pytest.raises(RegistryError, match="no earlier champion"):
        registry.rollback("sensors")

    forced = registry.promote("sensors", v2, force=True)
    assert forced.promoted and forced.forced and forced.reason.startswith("forced:")
    assert registry.champion("sensors") == v2


def test_lower_is_better_and_missing_metrics(
    registry: ModelRegistry, tmp_path: Path, rng: np.random.Generator
) -> None:
    rule = PromotionRule("false_alarms_per_day", higher_is_better=False, tolerance=0.5)
    a = registry.register_candidate("m", saved_zscore(tmp_path / "a", rng),
                                    {"false_alarms_per_day": 2.0})
    b = registry.register_candidate("m", saved_zscore(tmp_path / "b", rng),
                                    {"false_alarms_per_day": 2.4})
    c = registry.register_candidate("m", saved_zscore(tmp_path / "c", rng), {"other": 1.0})
    assert registry.promote("m", a, rule=rule).promoted
    assert registry.promote("m", b, rule=rule).promoted  # 2.4 <= 2.0 + 0.5
    no_metric = registry.promote("m", c, rule=rule)
    assert no_metric.status == "rejected" and "candidate has no finite" in no_metric.reason


def test_same_slice_evaluation_rejects_a_detector_that_misses_incidents(
    registry: ModelRegistry, tmp_path: Path, rng: np.random.Generator
) -> None:
    # Incidents show on feature 1. The good detector learned feature 1's normal spread; the
    # bad one learned a huge spread there and a tiny one on feature 0, so noise on feature 0
    # outranks the incidents.
    good = saved_zscore(tmp_path / "good", rng, scale=(1, 1))
    bad = saved_zscore(tmp_path / "bad", rng, scale=(0.01, 50))
    v_good = registry.register_candidate("sensors", good, {})
    v_bad = registry.register_candidate("sensors", bad, {})
    clean = rng.normal(size=(200, 2))
    incidents = np.column_stack([rng.normal(size=10), rng.normal(6, 0.5, size=10)])
    evaluate = slice_evaluator(np.vstack([clean, incidents]), np.r_[np.zeros(200), np.ones(10)])

    assert registry.promote("sensors", v_good, evaluate=evaluate).promoted
    decision = registry.promote("sensors", v_bad, evaluate=evaluate)
    assert decision.status == "rejected"
    assert decision.champion_value > 0.9 > decision.candidate_value
    assert registry.champion("sensors") == v_good
    # Without incidents there is nothing to compare on: refused, not waved through.
    clean_only = slice_evaluator(clean, np.zeros(200))
    assert registry.promote("sensors", v_bad, evaluate=clean_only).status == "rejected"


def test_a_tampered_artifact_refuses_to_load(
    registry: ModelRegistry, tmp_path: Path, rng: np.random.Generator
) -> None:
    version = registry.register_candidate(
        "sensors", saved_zscore(tmp_path / "m", rng), {"average_precision": 0.8}
    )
    stored = stored_folder(registry, "sensors", version)
    pristine = {p.name: p.read_bytes() for p in stored.iterdir()}

    # One byte of the state changed.
    data = bytearray(pristine["state.json"])
    data[len(data) // 2] ^= 0x01
    (stored / "state.json").write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match=r"state.json has sha256 .* refusing to load"):
        registry.load("sensors", version)

    # Altered consistently with its manifest: the folder alone would pass, the registry's
    # record does not.
    RobustZScore().learn_many(rng.normal(size=(50, 2))).save(stored)
    assert Detector.load(stored) is not None
    with pytest.raises(ArtifactIntegrityError, match=r"\(altered after registration\?\)"):
        registry.load("sensors", version)

    # A file added next to the detector.
    for name, blob in pristine.items():
        (stored / name).write_bytes(blob)
    (stored / "objects.pkl").write_bytes(b"not yours")
    with pytest.raises(ArtifactIntegrityError, match=r"unexpected \['objects.pkl'\]"):
        registry.load("sensors", version)
    (stored / "objects.pkl").unlink()
    assert registry.load("sensors", version).n_features_in_ == 2


def test_a_deep_detector_round_trips_with_its_weights(
    registry: ModelRegistry, tmp_path: Path, rng: np.random.Generator
) -> None:
    from detectors.deep import Autoencoder

    X = rng.normal(size=(200, 3))
    det = Autoencoder(**Autoencoder.fast_params(), random_state=0, progress=False).fit(X)
    det.save(tmp_path / "ae", time_range=RANGE)
    version = registry.register_candidate("ae", tmp_path / "ae", {"average_precision": 0.5})
    assert "weights.pt" in registry.show("ae", version).sha256
    loaded = registry.load("ae", version)
    np.testing.assert_allclose(loaded.score_many(X[:10]), det.score_many(X[:10]))


def test_refusals_are_clear(
    registry: ModelRegistry, tmp_path: Path, rng: np.random.Generator
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RegistryError, match="not a verifiable saved detector"):
        registry.register_candidate("sensors", tmp_path / "empty", {})
    with pytest.raises(RegistryError, match="model name"):
        registry.register_candidate("bad'name", saved_zscore(tmp_path / "m", rng), {})
    with pytest.raises(RegistryError, match="no registered model 'nope'"):
        registry.show("nope", 1)
    registry.register_candidate("sensors", tmp_path / "m", {})
    with pytest.raises(RegistryError, match="has no version '7'"):
        registry.show("sensors", 7)
    with pytest.raises(RegistryError, match="has no alias 'champion'"):
        registry.load("sensors")
    with pytest.raises(RegistryError, match="no champion to roll back"):
        registry.rollback("sensors")


def test_the_models_commands(
    registry: ModelRegistry, state_dir: Path, tmp_path: Path, rng: np.random.Generator
) -> None:
    for ap in (0.8, 0.7):
        registry.register_candidate(
            "sensors", saved_zscore(tmp_path / f"m{ap}", rng), {"average_precision": ap}
        )
    runner = CliRunner()
    # No broker in unit tests: a port nothing listens on, so publishing fails fast and
    # says so (the integration tests publish to a real one).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    env = {"ANOMSTREAM_STATE_DIR": str(state_dir), "ANOMSTREAM_KAFKA__PORT": str(closed)}

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["models", *args], env=env)
        assert result.exit_code == code, result.output
        return result.stdout

    listed = json.loads(run("list", "--json"))
    assert [(v["model"], v["version"]) for v in listed] == [("sensors", "2"), ("sensors", "1")]
    assert listed[1]["metrics"] == {"average_precision": 0.8}
    assert "registered detector versions" in run("list", "sensors")

    shown = json.loads(run("show", "sensors", "1", "--json"))
    assert shown["detector"] == "robust_zscore" and "manifest.json" in shown["sha256"]
    assert "sha256 (checked before loading)" in run("show", "sensors", "1")

    promoted = json.loads(run("promote", "sensors", "1", "--json"))
    assert promoted["status"] == "promoted" and promoted["event"]["event"] == "promoted"
    assert promoted["published"] is False  # the broker is unreachable, and it says so

    rejected = json.loads(run("promote", "sensors", "2", "--json", code=1))
    assert rejected["status"] == "rejected" and rejected["event"] is None
    assert "rejected" in run("promote", "sensors", "2", code=1)

    forced = json.loads(run("promote", "sensors", "2", "--force", "--json"))
    assert forced["forced"] and forced["previous_champion"] == "1"

    rolled = json.loads(run("rollback", "sensors", "--json"))
    assert (rolled["from_version"], rolled["to_version"]) == ("2", "1")
    assert rolled["event"]["event"] == "rolled_back"
    assert json.loads(run("show", "sensors", "champion", "--json"))["version"] == "1"

    assert "no earlier champion" in " ".join(
        runner.invoke(app, ["models", "rollback", "sensors"], env=env).output.split())
    assert runner.invoke(app, ["models", "show", "nope", "1"], env=env).exit_code == 2

    # The rule comes from the settings.
    lenient = {**env, "ANOMSTREAM_REGISTRY__TOLERANCE": "0.2"}
    result = runner.invoke(app, ["models", "promote", "sensors", "2", "--json"], env=lenient)
    assert result.exit_code == 0 and json.loads(result.stdout)["rule"]["tolerance"] == 0.2


def test_the_embedded_registry_sends_no_telemetry(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow 3 phones home and writes ~/.config/mlflow/telemetry.json unless told not to;
    # importing retrain.registry tells it, and leaves an explicit choice alone.
    from retrain.registry import _quiet_mlflow_env

    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    _quiet_mlflow_env()
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    _quiet_mlflow_env()
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "false"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.telemetry.client import get_telemetry_client

    registry.models()
    assert get_telemetry_client() is None
