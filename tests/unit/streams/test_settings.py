from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import Settings


def test_defaults_match_design() -> None:
    s = Settings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.influx.url == "http://127.0.0.1:8086"
    assert s.topics.all_names() == [
        "connections",
        "sensors",
        "scores",
        "alerts",
        "labels",
        "deadletter",
        "model-events",
    ]


def test_env_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMSTREAM_KAFKA__PORT", "19092")
    monkeypatch.setenv("ANOMSTREAM_TOPICS__ALERTS", "my-alerts")
    monkeypatch.setenv("ANOMSTREAM_ALERTS__THRESHOLD", "0.5")
    s = Settings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert s.topics.alerts == "my-alerts"
    assert s.alerts.threshold == 0.5


def test_external_services_keep_their_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMSTREAM_KAFKA__MANAGE_LOCAL", "false")
    monkeypatch.setenv("ANOMSTREAM_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("ANOMSTREAM_INFLUX__MANAGE_LOCAL", "false")
    monkeypatch.setenv("ANOMSTREAM_INFLUX__URL", "https://influx.example:8086")
    s = Settings()
    assert s.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert s.influx.url == "https://influx.example:8086"


def test_toml_file_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "anomstream.toml"
    cfg.write_text('[topics]\nsensors = "temps"\nalerts = "pages"\n')
    monkeypatch.setenv("ANOMSTREAM_CONFIG", str(cfg))
    monkeypatch.setenv("ANOMSTREAM_TOPICS__ALERTS", "from-env")
    s = Settings()
    assert s.topics.sensors == "temps"
    assert s.topics.alerts == "from-env"


def test_token_from_state_dir(tmp_path: Path) -> None:
    s = Settings(state_dir=tmp_path)
    with pytest.raises(RuntimeError, match="no InfluxDB token"):
        s.influx_token()
    (tmp_path / "influxdb").mkdir()
    (tmp_path / "influxdb" / "token").write_text("abc\n")
    assert s.influx_token() == "abc"


def test_configuration_reference_is_up_to_date() -> None:
    from streams.settings import configuration_reference

    doc = Path(__file__).parents[3] / "docs" / "configuration.md"
    assert doc.read_text() == configuration_reference(), (
        "docs/configuration.md is stale: run `python -m streams.settings > docs/configuration.md`"
    )
