"""The one typed settings object for anomstream.

Values come, highest priority first, from: keyword arguments, environment variables
(``ANOMSTREAM_`` prefix, ``__`` between nested names, e.g.
``ANOMSTREAM_KAFKA__BOOTSTRAP_SERVERS``), a TOML file (``ANOMSTREAM_CONFIG`` or
``./anomstream.toml``), and the documented defaults below. ``docs/configuration.md`` lists
every field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from windowing.schemas import InputLimits

__all__ = [
    "AlertSettings",
    "ConnectionDetectorSettings",
    "InfluxSettings",
    "KafkaSettings",
    "LimitSettings",
    "RegistrySettings",
    "SensorDetectorSettings",
    "Settings",
    "TopicSettings",
    "WorkerSettings",
    "configuration_reference",
    "default_cache_dir",
    "default_state_dir",
]


def default_cache_dir() -> Path:
    """Where downloaded jars and the built ``influxd`` live (reused across clones)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "anomstream"


def default_state_dir() -> Path:
    """Where the local stack keeps its data, logs, pid files and the InfluxDB token."""
    return default_cache_dir() / "state"


class KafkaSettings(BaseModel):
    """Kafka connection, and the local single-node broker started by ``anomstream up``."""

    bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="host:port list of the brokers. Point it at an existing cluster and set "
        "manage_local=false to use your own Kafka.",
    )
    manage_local: bool = Field(True, description="Start/stop a local broker with up/down.")
    port: int = Field(9092, description="Client port of the local broker (127.0.0.1 only).")
    controller_port: int = Field(9093, description="KRaft controller port of the local broker.")
    version: str = Field("4.1.2", description="org.apache.kafka:kafka_2.13 version to install.")
    log4j_version: str = Field("2.25.3", description="log4j-core / log4j-slf4j-impl version.")
    heap: str = Field("512m", description="JVM -Xmx of the local broker.")
    max_message_bytes: int = Field(
        1_000_000,
        description="Largest record the worker publishes (score record, alert, dead letter): "
        "the smaller of the producer's max.request.size (1,000,000) and the output topics' "
        "max.message.bytes. At start-up the worker lowers it to the topics' real "
        "max.message.bytes if that is smaller. An output above it becomes a dead letter "
        "(output_too_large).",
    )

    @model_validator(mode="after")
    def _local_address(self) -> KafkaSettings:
        # A managed broker listens where we start it; deriving the address avoids a port
        # override that silently points clients elsewhere.
        if self.manage_local:
            self.bootstrap_servers = f"127.0.0.1:{self.port}"
        return self


class InfluxSettings(BaseModel):
    """InfluxDB connection, and the local server started by ``anomstream up``."""

    url: str = Field("http://127.0.0.1:8086", description="InfluxDB 2.x API base URL.")
    org: str = Field("anomstream", description="Organisation (created at onboarding).")
    bucket: str = Field("anomstream", description="Bucket for score/alert/pipeline points.")
    token: SecretStr | None = Field(
        None,
        description="API token. Unset: read from <state_dir>/influxdb/token, which local "
        "onboarding writes with mode 0600.",
    )
    manage_local: bool = Field(True, description="Start/stop a local influxd with up/down.")
    port: int = Field(8086, description="HTTP port of the local influxd (127.0.0.1 only).")
    version: str = Field("v2.8.0", description="github.com/influxdata/influxdb/v2 version.")
    retention_hours: int = Field(0, description="Bucket retention at onboarding; 0 = forever.")
    write_batch_size: int = Field(5000, description="Points per write request.")
    write_retries: int = Field(5, description="Retries of a failed write (backoff doubles).")

    @model_validator(mode="after")
    def _local_address(self) -> InfluxSettings:
        if self.manage_local:
            self.url = f"http://127.0.0.1:{self.port}"
        return self


class TopicSettings(BaseModel):
    """Kafka topic names (defaults from DESIGN.md) and how to create them."""

    connections: str = "connections"
    sensors: str = "sensors"
    scores: str = "scores"
    alerts: str = "alerts"
    labels: str = "labels"
    deadletter: str = "deadletter"
    model_events: str = "model-events"
    partitions: int = Field(4, description="Partitions of the input topics when we create them.")
    replication_factor: int = Field(1, description="Replication factor when we create topics.")

    def all_names(self) -> list[str]:
        return [
            self.connections,
            self.sensors,
            self.scores,
            self.alerts,
            self.labels,
            self.deadletter,
            self.model_events,
        ]


class SensorDetectorSettings(BaseModel):
    """Per-sensor features and detector used by the sensor agent."""

    detector: str = Field(
        "knn_likelihood",
        description="knn_likelihood (nearest-past-window novelty of the raw level judged "
        "by an anomaly likelihood, one alarm per episode of at least 200 readings; its own "
        "calibrated score; silent for a sensor's first 150 readings), default_ensemble "
        "(robust z of the stationary value, starting from an analytic tail probability, + "
        "hour-of-week seasonal profile, once it has a few hundred readings; "
        "Bonferroni-combined), robust_zscore (its z member alone), or any registered "
        "online detector (empirically calibrated). See docs/detectors.md for how they "
        "compare on NAB.",
    )
    warmup: int = Field(60, description="Readings per sensor before its scores may alert.")
    cadence_s: float | None = Field(
        None, description="Seconds between a sensor's readings; unset = inferred per sensor."
    )
    seasonal_period_s: float | None = Field(
        None, description="Season for a seasonal difference (e.g. 86400); unset = none."
    )
    timezone: str = Field("UTC", description="Time zone of the hour-of-day/day-of-week features.")
    stationarity_warmup: int = Field(
        256, description="Readings before the first ADF/KPSS differencing decision."
    )
    top_k: int = Field(3, description="Contributing features carried in an alert.")


class ConnectionDetectorSettings(BaseModel):
    """Features and detector of the connection agent (one state per input partition)."""

    detector: str = Field(
        "default_ensemble",
        description="default_ensemble (per-feature tail surprise + Half-Space Trees, "
        "Bonferroni-combined, the trees weighted 0.1), marginal_tail or half_space_trees "
        "(one member alone), or any registered online detector with JSON state.",
    )
    bootstrap_events: int = Field(
        1000,
        description="Connections per partition used to learn scaling bounds and categories "
        "before scoring starts (they are published with score 0, context.bootstrap=true).",
    )
    warmup: int = Field(200, description="Scored connections per partition before alerts.")
    top_k: int = Field(3, description="Contributing features carried in an alert.")
    model_path: Path | None = Field(
        None,
        description="Folder of a trained connection model (`anomstream train`) that scores "
        "every connection alongside the online members (Bonferroni-combined; records name "
        "its version; a classifier's verdict rides on alerts). Unset: the registry's "
        "champion of `registered_model`, if any; else online members only.",
    )
    registered_model: str | None = Field(
        "connections",
        description="Registered model whose `champion` the connection agent serves when "
        "model_path is unset; a `promoted` / `rolled_back` record on model-events swaps it "
        "in without a restart. Empty: none.",
    )


class RetrainSettings(BaseModel):
    """The trainer process (`anomstream trainer`): what it trains and when."""

    detector: str = Field(
        "marginal_tail",
        description="Detector of the connection model the trainer trains on clean stream "
        "rows (no labels); any registered detector. (The autoencoder ranks KDD better, but "
        "trained on the simulator's stream its scores on the newest held-out rows reached "
        "0.999 on 19 % of clean connections: its calibration did not carry forward.)",
    )
    every_events: int = Field(
        50_000, description="Retrain after this many new clean connections (0: only on "
        "drift or command)."
    )
    min_rows: int = Field(
        2_000,
        description="Fewest clean rows a model is trained on; after a drift report, the "
        "clean rows of the new regime awaited before retraining.",
    )
    on_drift: bool = Field(
        False,
        description="Watch the connections' own numeric fields and their scores for drift, "
        "publish drift_detected, and retrain on it. Off by default: on the simulator's "
        "single regime the feature test still fired within 4,000 connections (src_bytes, "
        "logged_in, dst_bytes; sessions make them autocorrelated, docs/drift.md), so it "
        "needs tuning on real traffic first.",
    )
    drift_budget_events: float = Field(
        1_000_000,
        description="Expected connections between false drift alarms on a stationary "
        "stream, all monitors together (docs/drift.md has the measured rates).",
    )
    tolerance: float = Field(
        0.0005,
        description="A candidate replaces the champion unless its clean_alarm_rate on the "
        "newest held-out rows is worse than the champion's by more than this.",
    )


class LimitSettings(BaseModel):
    """Bounds on untrusted input (see docs/events.md); beyond them a record is a dead letter."""

    max_event_bytes: int = Field(
        512 * 1024,
        description="Larger input records are dead letters (too_large), unread. Keep it "
        "below the input topics' max.message.bytes (1 MB by default), or it can never apply.",
    )
    max_depth: int = Field(32, description="Deepest JSON nesting accepted (too_deep).")
    min_timestamp: float = Field(
        0.0, description="Earliest event time accepted, epoch seconds (1970-01-01)."
    )
    max_timestamp: float = Field(
        4102444800.0, description="Latest event time accepted, epoch seconds (2100-01-01)."
    )
    max_future_s: float = Field(
        3600.0, description="Events stamped further ahead of the clock: future_timestamp."
    )
    max_id_length: int = Field(
        256, description="Longest sensor_id / src_host / dst_host / label, characters (bad_id)."
    )
    max_text_length: int = Field(
        64, description="Longest unit / protocol_type / service / flag, characters."
    )
    deadletter_payload_bytes: int = Field(
        64 * 1024,
        description="Bytes of the original payload a dead letter carries (base64), with the "
        "payload's full length and sha256.",
    )

    def input_limits(self) -> InputLimits:
        """The parsers' :class:`~windowing.schemas.InputLimits` for these settings."""
        return InputLimits(
            max_bytes=self.max_event_bytes,
            max_depth=self.max_depth,
            min_timestamp=self.min_timestamp,
            max_timestamp=self.max_timestamp,
            max_id_length=self.max_id_length,
            max_text_length=self.max_text_length,
            max_future_s=self.max_future_s,
        )


class AlertSettings(BaseModel):
    """When a score becomes an alert."""

    threshold: float | None = Field(
        None,
        description="Calibrated sensor score in [0, 1] at or above which a reading is "
        "anomalous. Unset: the detector's own level — 0.99999 for the ensembles (~ a robust "
        "z of 4.4), 0.9995 for knn_likelihood (its alarm level).",
    )
    connections_threshold: float = Field(
        0.999, description="Calibrated score at or above which a connection is anomalous."
    )
    cooldown_events: int = Field(
        20, description="Events per entity after an alert during which no new alert is raised."
    )


class WorkerSettings(BaseModel):
    """Faust worker behaviour."""

    app_id: str = Field("anomstream", description="Faust app id = Kafka consumer group.")
    batch_size: int = Field(500, description="Events per micro-batch taken from a stream.")
    batch_within_s: float = Field(0.5, description="Max seconds to wait to fill a micro-batch.")
    web_port: int = Field(
        6066,
        description="Port of the worker's /healthz, /readyz and /metrics (all interfaces); "
        "0: not served. A second worker on the same host needs another port.",
    )
    data_dir: Path | None = Field(
        None,
        description="Faust data dir (RocksDB tables under <data_dir>/<app_id>); default "
        "<state_dir>/faust.",
    )
    loglevel: str = Field("WARNING", description="Faust/worker log level.")
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Where a new consumer group starts reading (later runs resume from "
        "their committed offsets).",
    )
    max_live_entities: int = Field(
        2000,
        description="Per-entity states (sensors) a worker keeps in memory; beyond it the "
        "least recently used are dropped from memory and restored from the state table "
        "when their next record comes. Bounds memory against floods of new sensor ids.",
    )
    max_state_bytes: int = Field(
        1 << 20,
        description="Largest checkpointed state of one entity (JSON bytes). States are "
        "bounded by design (a sensor's levels off near 115 kB, a connection partition's "
        "near 130 kB); one past the cap is logged (state_too_large), counted and dropped, "
        "and the entity starts afresh.",
    )
    table_store: Literal["rocksdb", "memory"] = Field(
        "rocksdb",
        description="Where the state tables live: rocksdb (on disk under data_dir, memory "
        "bounded, a restart reads only the changelog written since) or memory (all states "
        "in RAM, rebuilt from the whole changelog at every start).",
    )
    shutdown_timeout_s: float = Field(
        30.0,
        description="After SIGTERM/SIGINT the worker exits within this many seconds even if "
        "an agent is stuck; unacknowledged input is processed again by the next worker.",
    )
    session_timeout_s: float = Field(
        20.0,
        description="Kafka consumer session timeout: a worker killed without a clean stop "
        "(kill -9, lost host) hands its partitions over after about this long.",
    )
    heartbeat_interval_s: float = Field(
        3.0, description="Kafka consumer heartbeat interval (well below the session timeout)."
    )
    mode: Literal["score", "passthrough"] = Field(
        "score",
        description="passthrough: forward input to the scores topic untouched (the "
        "baseline of `anomstream bench`).",
    )


class RegistrySettings(BaseModel):
    """The model registry of the retraining loop (MLflow; see docs/registry.md)."""

    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI of an existing server (e.g. http://mlflow:5000; "
        "credentials from MLflow's own MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN variables). "
        "Unset: an embedded registry, sqlite:///<state_dir>/mlflow/mlflow.db with artifacts "
        "in <state_dir>/mlflow/artifacts, no server to start.",
    )
    experiment: str = Field(
        "anomstream-registry",
        description="MLflow experiment holding one registration run per candidate (its "
        "metrics, parameters, lineage tags and artifact copy).",
    )
    promotion_metric: str = Field(
        "average_precision",
        description="Validation metric a candidate must not be worse on than the champion "
        "to become champion (measured on recent clean data plus labelled incidents).",
    )
    higher_is_better: bool = Field(
        True, description="Direction of promotion_metric (false for e.g. a false-alarm rate)."
    )
    tolerance: float = Field(
        0.0,
        ge=0.0,
        description="Absolute slack of the promotion rule: with higher_is_better a candidate "
        "passes when candidate >= champion - tolerance.",
    )


class Settings(BaseSettings):
    """Everything anomstream can be told. Build one with ``Settings()``."""

    model_config = SettingsConfigDict(
        env_prefix="ANOMSTREAM_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    cache_dir: Path = Field(default_factory=default_cache_dir)
    state_dir: Path = Field(default_factory=default_state_dir)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    sensor_detector: SensorDetectorSettings = Field(default_factory=SensorDetectorSettings)
    connection_detector: ConnectionDetectorSettings = Field(
        default_factory=ConnectionDetectorSettings
    )
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    retrain: RetrainSettings = Field(default_factory=RetrainSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("ANOMSTREAM_CONFIG", "anomstream.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    def influx_token(self) -> str:
        """The InfluxDB token: configured, or the one local onboarding stored."""
        if self.influx.token is not None:
            return self.influx.token.get_secret_value()
        path = self.state_dir / "influxdb" / "token"
        if not path.is_file():
            raise RuntimeError(
                f"no InfluxDB token: set ANOMSTREAM_INFLUX__TOKEN or run `anomstream up` "
                f"(expected {path})"
            )
        return path.read_text().strip()


def configuration_reference() -> str:
    """Markdown table of every setting, its environment variable, default and meaning."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `streams/settings.py` by `python -m streams.settings` "
        "(a unit test keeps this file in sync).",
        "Environment variables win over the TOML file (`ANOMSTREAM_CONFIG` or "
        "`./anomstream.toml`, sections named like the groups below), which wins over defaults.",
        "",
        "| environment variable | default | meaning |",
        "|---|---|---|",
    ]
    top = {
        "cache_dir": "Downloaded jars and built binaries (default `~/.cache/anomstream`).",
        "state_dir": "Local stack data, logs, pid files, token (default "
        "`~/.cache/anomstream/state`).",
    }
    for name, text in top.items():
        lines.append(f"| `ANOMSTREAM_{name.upper()}` | see meaning | {text} |")
    for group, info in Settings.model_fields.items():
        model = info.default_factory() if info.default_factory else None  # type: ignore[call-arg]
        if not isinstance(model, BaseModel):
            continue
        for fname, finfo in type(model).model_fields.items():
            default = getattr(model, fname)
            shown = "unset" if default is None else f"`{default}`"
            desc = (finfo.description or "").replace("|", "\\|")
            lines.append(f"| `ANOMSTREAM_{group.upper()}__{fname.upper()}` | {shown} | {desc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(configuration_reference(), end="")
