"""What the stream agents do to a micro-batch, as plain code: no Kafka, no Faust, no I/O.

An agent hands a batch of raw records to :func:`score_sensor_batch` together with the
per-entity state it keeps in a Faust table, and gets back everything to publish: score
records, alerts and dead letters. Tests call the same functions without a broker.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from detectors.online.robust_zscore import RobustZScore
from windowing.schemas import RejectedEvent, SensorReading, parse_sensor_reading

__all__ = [
    "AlertPolicy",
    "DeadLetter",
    "EpisodeTracker",
    "RawRecord",
    "ScoredEvent",
    "SensorScorer",
    "calibrate_z",
    "dead_letter",
    "score_sensor_batch",
    "stable_alert_id",
]

SOURCE_SENSORS = "sensors"
_ALERT_NAMESPACE = uuid.UUID("6f1c2a0e-7d4b-4c1e-9a57-3b1f0d5e8a11")


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as read from Kafka, before validation."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record we could not process, and why."""

    record: RawRecord
    reason: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        raw = self.record.value or b""
        try:
            text: str | None = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return {
            "reason": self.reason,
            "detail": self.detail,
            "source_topic": self.record.topic,
            "partition": self.record.partition,
            "offset": self.record.offset,
            "key": self.record.key.decode("utf-8", "replace") if self.record.key else None,
            "raw_base64": base64.b64encode(raw).decode("ascii"),
            "raw_text": text,
        }


def dead_letter(record: RawRecord, exc: RejectedEvent) -> DeadLetter:
    return DeadLetter(record, exc.reason.value, exc.detail)


@dataclass(frozen=True, slots=True)
class ScoredEvent:
    """One scored input event: what goes to the ``scores`` topic and InfluxDB."""

    source: str
    entity: str
    timestamp: float
    value: float | None
    score: float
    raw_score: float
    threshold: float
    is_anomaly: bool
    detector: str
    model_version: str
    features: dict[str, float]
    context: dict[str, Any]
    record: RawRecord
    alert: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "entity": self.entity,
            "timestamp": self.timestamp,
            "value": self.value,
            "score": self.score,
            "raw_score": self.raw_score,
            "threshold": self.threshold,
            "is_anomaly": self.is_anomaly,
            "detector": self.detector,
            "model_version": self.model_version,
            "features": self.features,
            "context": self.context,
            "input": {
                "topic": self.record.topic,
                "partition": self.record.partition,
                "offset": self.record.offset,
            },
        }


def calibrate_z(z: float) -> float:
    """Map a robust z-score to [0, 1]: P(|N(0,1)| < z), the two-sided tail complement.

    >>> round(calibrate_z(0.0), 3), round(calibrate_z(1.96), 3), round(calibrate_z(4.0), 5)
    (0.0, 0.95, 0.99994)
    """
    return math.erf(abs(z) / math.sqrt(2.0))


def stable_alert_id(source: str, entity: str, first_seen: float) -> str:
    """Same episode ⇒ same id, also when a crash makes us score the events again.

    >>> stable_alert_id("sensors", "t1", 1.5) == stable_alert_id("sensors", "t1", 1.5)
    True
    """
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{source}|{entity}|{first_seen!r}"))


@dataclass(frozen=True)
class AlertPolicy:
    """When scores become alerts: threshold, warm-up and per-episode suppression."""

    threshold: float = 0.99999
    warmup: int = 30
    cooldown_events: int = 20


@dataclass
class EpisodeTracker:
    """One alert per anomalous episode: quiet until ``cooldown_events`` normal events pass."""

    open_alert_id: str | None = None
    first_seen: float | None = None
    quiet_events: int = 0

    def observe(
        self, is_anomaly: bool, timestamp: float, policy: AlertPolicy, source: str, entity: str
    ) -> tuple[str | None, bool]:
        """Returns (alert id of the current episode or None, True if it opened now)."""
        if is_anomaly:
            self.quiet_events = 0
            if self.open_alert_id is None:
                self.first_seen = timestamp
                self.open_alert_id = stable_alert_id(source, entity, timestamp)
                return self.open_alert_id, True
            return self.open_alert_id, False
        if self.open_alert_id is not None:
            self.quiet_events += 1
            if self.quiet_events >= policy.cooldown_events:
                self.open_alert_id = None
                self.first_seen = None
                self.quiet_events = 0
        return self.open_alert_id, False

    def to_state(self) -> dict[str, Any]:
        return {
            "open_alert_id": self.open_alert_id,
            "first_seen": self.first_seen,
            "quiet_events": self.quiet_events,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpisodeTracker:
        return cls(**state)


@dataclass
class SensorScorer:
    """Per-sensor online state: last value, the detector on first differences, episodes.

    Score first, then learn: an event never sees itself in the statistics it is judged by.
    """

    window: int = 288
    last_value: float | None = None
    last_timestamp: float | None = None
    n_seen: int = 0
    #: Input position of the last event this state has absorbed, as [partition, offset].
    position: tuple[int, int] | None = None
    detector: RobustZScore = field(default_factory=RobustZScore)
    episodes: EpisodeTracker = field(default_factory=EpisodeTracker)

    def __post_init__(self) -> None:
        if not self.detector.is_fitted:
            self.detector = RobustZScore(window=self.window)

    def score(self, reading: SensorReading, record: RawRecord, policy: AlertPolicy) -> ScoredEvent:
        if self.last_timestamp is not None and reading.timestamp <= self.last_timestamp:
            # Out of order or duplicate: scoring a negative time step as a difference would
            # be meaningless; it still gets a score record so nothing is silently lost.
            diff = None
        else:
            diff = None if self.last_value is None else reading.value - self.last_value
        z = 0.0
        if diff is not None and self.detector.n_seen >= 2:
            z = float(self.detector.score_one([diff]))
        warm = self.n_seen >= policy.warmup
        score = calibrate_z(z)
        is_anomaly = warm and score >= policy.threshold
        alert_id, opened = self.episodes.observe(
            is_anomaly, reading.timestamp, policy, SOURCE_SENSORS, reading.sensor_id
        )
        alert = None
        if opened and alert_id is not None:
            alert = {
                "alert_id": alert_id,
                "source": SOURCE_SENSORS,
                "entity": reading.sensor_id,
                "severity": "critical" if score >= 1 - (1 - policy.threshold) / 100 else "warning",
                "score": score,
                "raw_score": z,
                "threshold": policy.threshold,
                "detectors": [RobustZScore.name],
                "features": [{"name": "diff_1", "value": diff, "robust_z": z}],
                "first_seen": reading.timestamp,
                "last_seen": reading.timestamp,
                "value": reading.value,
                "input": {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                },
            }
        if diff is not None:
            self.detector.learn_one([diff])
        if self.last_timestamp is None or reading.timestamp > self.last_timestamp:
            self.last_value = reading.value
            self.last_timestamp = reading.timestamp
        self.n_seen += 1
        self.position = (record.partition, record.offset)
        return ScoredEvent(
            source=SOURCE_SENSORS,
            entity=reading.sensor_id,
            timestamp=reading.timestamp,
            value=reading.value,
            score=score,
            raw_score=z,
            threshold=policy.threshold,
            is_anomaly=is_anomaly,
            detector=RobustZScore.name,
            model_version="online",
            features={"diff_1": diff if diff is not None else 0.0},
            context={"differenced": True, "warm": warm, "alert_id": alert_id},
            record=record,
            alert=alert,
        )

    def already_absorbed(self, record: RawRecord) -> bool:
        """True for a replayed input this state already learned from.

        The state is checkpointed only after the event's outputs were published, so such an
        event has its score and alert already; scoring it again against the later state
        would publish a different score for the same event.
        """
        return (
            self.position is not None
            and record.partition == self.position[0]
            and record.offset <= self.position[1]
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "last_value": self.last_value,
            "last_timestamp": self.last_timestamp,
            "n_seen": self.n_seen,
            "position": list(self.position) if self.position is not None else None,
            "detector": self.detector.to_state(),
            "episodes": self.episodes.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SensorScorer:
        return cls(
            window=state["window"],
            last_value=state["last_value"],
            last_timestamp=state["last_timestamp"],
            n_seen=state["n_seen"],
            position=tuple(state["position"]) if state.get("position") else None,
            detector=RobustZScore.from_state(state["detector"]),
            episodes=EpisodeTracker.from_state(state["episodes"]),
        )


def score_sensor_batch(
    records: Iterable[RawRecord],
    scorers: MutableMapping[str, SensorScorer],
    policy: AlertPolicy,
    window: int = 288,
) -> tuple[list[ScoredEvent], list[DeadLetter]]:
    """Validate and score a micro-batch in arrival order, updating ``scorers`` in place."""
    scored: list[ScoredEvent] = []
    dead: list[DeadLetter] = []
    for record in records:
        if record.value is None:
            dead.append(DeadLetter(record, "empty", "record has no value (tombstone)"))
            continue
        try:
            reading = parse_sensor_reading(record.value)
        except RejectedEvent as exc:
            dead.append(dead_letter(record, exc))
            continue
        scorer = scorers.get(reading.sensor_id)
        if scorer is None:
            scorer = scorers[reading.sensor_id] = SensorScorer(window=window)
        if scorer.already_absorbed(record):
            continue
        scored.append(scorer.score(reading, record, policy))
    return scored, dead
