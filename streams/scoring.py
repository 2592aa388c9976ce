"""What the stream agents do to a micro-batch, as plain code: no Kafka, no Faust, no I/O.

An agent hands a batch of raw records to :func:`score_sensor_batch` together with the
per-entity state it keeps in a Faust table, and gets back everything to publish: score
records, alerts and dead letters. Tests call the same functions without a broker.
"""

from __future__ import annotations

import base64
import hashlib
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
import structlog

from detectors import create as create_detector
from detectors.ensemble import Ensemble, sensor_ensemble
from detectors.explain import top_k_contributions
from streams.settings import Settings
from windowing.features import FeatureVector, jsonable
from windowing.schemas import InputLimits, RejectedEvent, SensorReading, parse_sensor_reading
from windowing.sensor import SensorFeaturePipeline

__all__ = [
    "INTERNAL_ERROR",
    "SELF_JUDGING",
    "AlertPolicy",
    "BatchResult",
    "DeadLetter",
    "EpisodeTracker",
    "RawRecord",
    "ScoredEvent",
    "SensorModelConfig",
    "SensorScorer",
    "alarmed_members",
    "contribution_records",
    "dead_letter",
    "internal_error",
    "make_sensor_detector",
    "member_surprises",
    "new_alert",
    "score_groups",
    "score_sensor_batch",
    "sensor_alert_policy",
    "sensor_model_config",
    "stable_alert_id",
    "surprise",
    "validate_batch",
]

log = structlog.get_logger(__name__)

E = TypeVar("E")
K = TypeVar("K")

SOURCE_SENSORS = "sensors"
#: Feature-name prefixes of windowing's calendar context columns.
_CALENDAR_PREFIXES = ("hour_", "dow_")
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


#: Reason of a dead letter for a record whose processing raised: a bug, never the
#: producer's fault; the detail names the exception.
INTERNAL_ERROR = "internal_error"
#: Bytes of the original payload a dead letter carries (base64): dead letters must fit the
#: broker's message size whatever the input was.
DEADLETTER_PAYLOAD_BYTES = 64 * 1024
#: Longest ``detail`` text and ``key`` text of a dead letter.
_DETAIL_CHARS = 2000
_KEY_CHARS = 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record we could not process, and why.

    The dead-letter record carries the payload once and bounded: the base64 of at most
    ``payload_bytes`` of it, its full length and sha256, so the original can be recognised
    (and, when not truncated, re-sent) while the record always fits the broker.

    >>> rec = RawRecord(b"k", b"x" * 10, "sensors", 0, 7)
    >>> d = DeadLetter(rec, "not_json", "not valid JSON").to_json(payload_bytes=4)
    >>> d["raw_base64"], d["raw_length"], d["raw_truncated"], d["raw_sha256"][:8]
    ('eHh4eA==', 10, True, 'fc11d6f2')
    """

    record: RawRecord
    reason: str
    detail: str

    def to_json(self, payload_bytes: int = DEADLETTER_PAYLOAD_BYTES) -> dict[str, Any]:
        raw = self.record.value or b""
        kept = raw[: max(0, payload_bytes)]
        return {
            "reason": self.reason,
            "detail": self.detail[:_DETAIL_CHARS],
            "source_topic": self.record.topic,
            "partition": self.record.partition,
            "offset": self.record.offset,
            "key": _key_text(self.record.key),
            "raw_base64": base64.b64encode(kept).decode("ascii"),
            "raw_length": len(raw),
            "raw_sha256": hashlib.sha256(raw).hexdigest(),
            "raw_truncated": len(kept) < len(raw),
        }

    def message_key(self) -> bytes | None:
        """The Kafka key of the dead letter: the input's key, or its sha256 when that key is
        too long to repeat."""
        key = self.record.key
        if key is None or len(key) <= _KEY_CHARS:
            return key
        return b"sha256:" + hashlib.sha256(key).hexdigest().encode()


def _key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    text = key[:_KEY_CHARS].decode("utf-8", "replace")
    return text if len(key) <= _KEY_CHARS else f"{text}… ({len(key)} bytes)"


def dead_letter(record: RawRecord, exc: RejectedEvent) -> DeadLetter:
    return DeadLetter(record, exc.reason.value, exc.detail)


def internal_error(record: RawRecord, exc: BaseException, stage: str) -> DeadLetter:
    """The dead letter of a record whose ``stage`` raised ``exc``.

    >>> rec = RawRecord(None, b"{}", "sensors", 0, 1)
    >>> internal_error(rec, ZeroDivisionError("division by zero"), "scoring").detail
    'scoring raised ZeroDivisionError: division by zero'
    """
    return DeadLetter(record, INTERNAL_ERROR, f"{stage} raised {type(exc).__name__}: {exc}")


@dataclass
class BatchResult:
    """Everything a micro-batch produced: each input record is in exactly one list.

    ``replayed`` holds inputs a crash made Kafka deliver again whose effect the checkpointed
    state already has (their outputs were published before that checkpoint), so they get
    no new output. ``touched`` maps each entity whose state changed to its last input
    record (the agent checkpoints those states in that record's partition); ``counts`` are
    per-batch counters for the ``pipeline`` measurement.
    """

    scored: list[ScoredEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    replayed: list[RawRecord] = field(default_factory=list)
    touched: dict[Any, RawRecord] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def extend(self, other: BatchResult) -> None:
        self.scored += other.scored
        self.dead += other.dead
        self.replayed += other.replayed
        self.touched.update(other.touched)
        for name, n in other.counts.items():
            self.count(name, n)


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
    warmup: int = 60
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


@dataclass(frozen=True)
class SensorModelConfig:
    """How a new sensor's feature pipeline and detector are built (from the settings)."""

    detector: str = "knn_likelihood"
    cadence: float | None = None
    seasonal_period: float | None = None
    tz: str = "UTC"
    stationarity_warmup: int = 256
    top_k: int = 3
    #: Readings of one sensor scored together before the detector learns them.
    chunk: int = 8
    #: robust_zscore: analytic (Gaussian-tail) calibration until this many reference
    #: z-scores, then the sensor's own empirical CDF with a fitted GPD tail.
    empirical_after: int = 400
    #: Scores at or above this are kept out of the empirical reference.
    reference_below: float = 0.999

    @property
    def self_judging(self) -> bool:
        """Whether the detector reads the sensor's level and turns it into a tail
        probability itself (:data:`SELF_JUDGING`): no differencing or scaling before it,
        no recalibration after it, learned reading by reading."""
        return self.detector in SELF_JUDGING

    @property
    def learn_chunk(self) -> int:
        """Readings scored against the same detector state before it learns them."""
        return 1 if self.self_judging else max(1, self.chunk)


#: Sensor detectors that judge the raw level themselves and publish their own calibrated
#: score, with the alert threshold they were designed for (``1 - alarm``).
SELF_JUDGING: dict[str, float] = {"knn_likelihood": 1 - 5e-4}


def sensor_model_config(settings: Settings) -> SensorModelConfig:
    """The sensor agent's model configuration from ``settings``: what the worker runs, and
    what ``anomstream evaluate`` replays so that its numbers are the stream's.

    >>> sensor_model_config(Settings()).detector
    'knn_likelihood'
    """
    sd = settings.sensor_detector
    return SensorModelConfig(
        detector=sd.detector,
        cadence=sd.cadence_s,
        seasonal_period=sd.seasonal_period_s,
        tz=sd.timezone,
        stationarity_warmup=sd.stationarity_warmup,
        top_k=sd.top_k,
    )


def sensor_alert_policy(settings: Settings) -> AlertPolicy:
    """When the sensor agent turns a score into an alert, from ``settings``.

    >>> round(sensor_alert_policy(Settings()).threshold, 6)  # knn_likelihood's alarm level
    0.9995
    >>> sensor_alert_policy(Settings(sensor_detector={"detector": "default_ensemble"})).threshold
    0.99999
    """
    threshold = settings.alerts.threshold
    if threshold is None:
        threshold = SELF_JUDGING.get(settings.sensor_detector.detector, 0.99999)
    return AlertPolicy(
        threshold=threshold,
        warmup=settings.sensor_detector.warmup,
        cooldown_events=settings.alerts.cooldown_events,
    )


def make_sensor_detector(config: SensorModelConfig, names: Sequence[str]) -> Ensemble:
    """The sensor detector named in ``config``, for feature columns ``names``.

    Always an :class:`~detectors.ensemble.Ensemble`, so every sensor score is a calibrated
    tail probability in [0, 1]:

    * ``knn_likelihood`` (the default) and the other :data:`SELF_JUDGING` detectors: one
      member per value channel, on the level in its own units, their own tail
      probabilities published as they are, the most alarmed channel deciding;
    * ``default_ensemble``: detectors' sensor ensemble, told where the calendar columns
      are, its z-score members starting from the analytic prior;
    * ``robust_zscore``: that ensemble's z-score member alone;
    * any other registered detector: one member on the value columns, calibrated
      empirically.

    >>> names = ["value_z", "hour_sin", "hour_cos", "dow_sin", "dow_cos"]
    >>> ens = make_sensor_detector(SensorModelConfig(detector="default_ensemble"), names)
    >>> [m["name"] for m in ens.members]
    ['zscore', 'seasonal']
    >>> ens = make_sensor_detector(SensorModelConfig(), ["value", "hour_sin", "hour_cos"])
    >>> [m["name"] for m in ens.members], ens.calibration
    (['knn_likelihood'], {'kind': 'as_is'})
    """
    time_cols = [i for i, n in enumerate(names) if n.startswith(_CALENDAR_PREFIXES)]
    value_cols = [i for i, n in enumerate(names) if not n.startswith(_CALENDAR_PREFIXES)]
    options = {
        "prior_until": config.empirical_after,
        "calibration_gate": config.reference_below,
    }
    if config.self_judging:
        # One member per channel, each on its own level; their own scores are published
        # as they are, the most alarmed channel deciding (Bonferroni: with one channel, the
        # member's score itself).
        return Ensemble(
            members=[
                {
                    "detector": create_detector(config.detector),
                    "columns": [c],
                    "name": config.detector if k == 0 else f"{config.detector}[{names[c]}]",
                }
                for k, c in enumerate(value_cols)
            ],
            method="min_p",
            calibration={"kind": "as_is"},
        )
    if config.detector in ("default_ensemble", "robust_zscore"):
        ens = sensor_ensemble(value_columns=value_cols, time_columns=time_cols or None, **options)
        if config.detector == "robust_zscore":
            ens.members = [m for m in ens.members if m["name"] == "zscore"]
        return ens
    member = create_detector(config.detector)
    if not member.online or not member.json_state:
        raise ValueError(
            f"sensor detector {config.detector!r} must learn online and keep JSON state"
        )
    return Ensemble(
        members=[{"detector": member, "columns": value_cols, "name": config.detector}],
        method="max",
        calibration={"window": 1000, "tail_quantile": 0.95},
        calibration_gate=config.reference_below,
    )


class SensorScorer:
    """Per-sensor online state: feature pipeline, detector, alert episodes, input position.

    A micro-batch of one sensor's readings is featurised in order, scored against the
    detector as it was at the start of the batch, and only then learned: no event is judged
    by statistics that include itself or anything after it.
    """

    def __init__(
        self,
        sensor_id: str,
        config: SensorModelConfig | None = None,
        *,
        features: SensorFeaturePipeline | None = None,
        detector: Ensemble | None = None,
        episodes: EpisodeTracker | None = None,
        n_scored: int = 0,
        position: tuple[int, int] | None = None,
        pending: tuple[np.ndarray, np.ndarray | None] | None = None,
    ) -> None:
        self.sensor_id = sensor_id
        self.config = config or SensorModelConfig()
        c = self.config
        level = {"difference": False, "scaler_method": "none"} if c.self_judging else {}
        self.features = features or SensorFeaturePipeline(
            sensor_id,
            cadence=c.cadence,
            seasonal_period=c.seasonal_period,
            tz=c.tz,
            warmup=c.stationarity_warmup,
            **level,
        )
        # Built on the first readings, when the feature names (extra channels) are known.
        self.detector = detector
        self.episodes = episodes or EpisodeTracker()
        self.n_scored = n_scored
        #: Input position of the last event this state has absorbed, as (partition, offset).
        self.position = position
        #: Rows of the chunk being filled (features, members' raw scores), scored but not
        #: learned yet: the detector learns whole chunks, so scores do not depend on how
        #: the readings were cut into micro-batches.
        self.pending = pending

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

    def score_batch(
        self, items: Sequence[tuple[SensorReading, RawRecord]], policy: AlertPolicy
    ) -> BatchResult:
        """Featurise, score, then learn ``items`` (this sensor's readings, in input order).

        Every item ends in exactly one of the result's lists. A reading whose
        featurisation or scoring raises becomes an ``internal_error`` dead letter and the
        others go on; a failure to *learn* a chunk is logged and leaves its readings scored.
        """
        out = BatchResult()
        rows: list[tuple[FeatureVector, SensorReading, RawRecord]] = []
        for reading, record in items:
            if self.already_absorbed(record):
                out.replayed.append(record)
                continue
            try:
                rows.append((self.features.update_one(reading), reading, record))
            except RejectedEvent as exc:  # late, duplicate, missing channel
                out.dead.append(dead_letter(record, exc))
            except Exception as exc:
                out.dead.append(internal_error(record, exc, "featurisation"))
            self.position = (record.partition, record.offset)
        if not rows:
            return out
        X = np.vstack([fv.values for fv, _, _ in rows])
        names = list(rows[0][0].names)
        if self.detector is None:
            self.detector = make_sensor_detector(self.config, names)
        # A backlog arrives as one big batch; scoring all of it against the state at its
        # start would judge hundreds of readings by none of their predecessors. The
        # detector learns in chunks of ``chunk`` readings (numbered from the sensor's first
        # reading, whatever the micro-batches), each scored against the detector as it was
        # before the chunk: close to one-at-a-time while the detector still works on arrays.
        step = self.config.learn_chunk
        lo = 0
        while lo < len(rows):
            filled = 0 if self.pending is None else len(self.pending[0])
            Xc = X[lo : lo + step - filled]
            try:
                scores, members, raw = self._scores(Xc)
            except Exception:
                scores, members, raw = self._scores_one_by_one(Xc)
            ok = np.zeros(len(Xc), dtype=bool)
            for i, score in enumerate(scores):
                fv, reading, record = rows[lo + i]
                if not np.isfinite(score):
                    out.dead.append(
                        internal_error(record, FloatingPointError(f"score {score}"), "scoring")
                    )
                    continue
                try:
                    out.scored.append(
                        self._event(fv, reading, record, float(score), members[i], policy, Xc[i])
                    )
                    ok[i] = True
                except Exception as exc:
                    out.dead.append(internal_error(record, exc, "scoring"))
            lo += len(Xc)
            self._add_pending(Xc[ok], None if raw is None else raw[ok])
            if self.pending is not None and len(self.pending[0]) >= step:
                # Prequential: the calibrators take these scores (of data not learned
                # yet, the anomalous ones left out: a reference full of past spikes makes
                # the next one look ordinary), then the members learn the chunk.
                self._learn(*self.pending, names)
                self.pending = None
        return out

    def _add_pending(self, X: np.ndarray, raw: np.ndarray | None) -> None:
        if not len(X):
            return
        if self.pending is None:
            self.pending = (X, raw)
            return
        px, praw = self.pending
        # Raw scores exist for all rows of a chunk or for none (the detector's fitted
        # state only changes when a chunk is learned).
        both = praw is not None and raw is not None
        self.pending = (np.vstack([px, X]), np.vstack([praw, raw]) if both else None)

    def _scores_one_by_one(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`_scores` row by row, NaN where a row raises: one row that breaks the
        detector must not take its chunk with it."""
        n_members = len(self.detector.members) if self.detector is not None else 0
        scores = np.full(len(X), np.nan)
        members = np.zeros((len(X), n_members))
        raw: np.ndarray | None = None
        for i in range(len(X)):
            try:
                s, m, r = self._scores(X[i : i + 1])
            except Exception as exc:
                log.error("score_failed", sensor=self.sensor_id, error=repr(exc)[:1000])
                continue
            scores[i] = s[0]
            if m.shape[1] == n_members:
                members[i] = m[0]
            if r is not None:
                raw = np.full((len(X), r.shape[1]), np.nan) if raw is None else raw
                raw[i] = r[0]
        return scores, members, raw

    def _learn(self, X: np.ndarray, raw: np.ndarray | None, names: list[str]) -> None:
        try:
            self.detector.learn_many(X, feature_names=names, raw_scores=raw)  # type: ignore[union-attr]
        except Exception as exc:
            # The readings are scored and published already; the model just misses them.
            log.error("learn_failed", sensor=self.sensor_id, rows=len(X), error=repr(exc)[:1000])

    def _scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Combined scores ``(n,)``, calibrated member scores ``(n, n_members)``, and the
        members' raw scores (``None`` before the detector has learned anything)."""
        det = self.detector
        if det is None or not det.is_fitted:
            return np.zeros(len(X)), np.zeros((len(X), 0)), None
        raw, members, scores = det.score_parts(X)
        return scores, members, raw

    def _event(
        self,
        fv: FeatureVector,
        reading: SensorReading,
        record: RawRecord,
        score: float,
        member_scores: np.ndarray,
        policy: AlertPolicy,
        x: np.ndarray,
    ) -> ScoredEvent:
        warm = self.n_scored >= policy.warmup
        self.n_scored += 1
        is_anomaly = warm and score >= policy.threshold
        alert_id, opened = self.episodes.observe(
            is_anomaly, reading.timestamp, policy, SOURCE_SENSORS, reading.sensor_id
        )
        meta = fv.meta
        context = {
            "warm": warm,
            "alert_id": alert_id,
            "differenced": bool(meta.get("differenced")),
            "stationarity": meta.get("stationarity"),
            "adf_pvalue": meta.get("adf_pvalue"),
            "kpss_pvalue": meta.get("kpss_pvalue"),
            "gap": bool(meta.get("gap")),
            "missing": meta.get("missing"),
            "members": member_surprises(self.detector, member_scores),
        }
        alert = None
        if opened and alert_id is not None:
            alert = new_alert(
                alert_id,
                SOURCE_SENSORS,
                reading.sensor_id,
                score,
                policy,
                detectors=alarmed_members(self.detector, member_scores, policy.threshold),
                features=self._top_features(x),
                timestamp=reading.timestamp,
                record=record,
                value=reading.value,
                stationarity=context["stationarity"],
                differenced=context["differenced"],
            )
        return ScoredEvent(
            source=SOURCE_SENSORS,
            entity=reading.sensor_id,
            timestamp=reading.timestamp,
            value=reading.value,
            score=score,
            raw_score=surprise(score),
            threshold=policy.threshold,
            is_anomaly=is_anomaly,
            detector=self.config.detector,
            model_version="online",
            features=jsonable(fv.as_dict()),
            context=jsonable(context),
            record=record,
            alert=alert,
        )

    def _top_features(self, x: np.ndarray) -> list[dict[str, Any]]:
        names = self.features.names
        try:
            top = top_k_contributions(self.detector, x, k=self.config.top_k)
        except (NotImplementedError, ValueError):
            return []
        # Calendar columns are context, not evidence on their own.
        top = [(n, c, r) for n, c, r in top if n in names and not n.startswith(_CALENDAR_PREFIXES)]
        return contribution_records(top, x, {n: i for i, n in enumerate(names)})

    def to_state(self) -> dict[str, Any]:
        return {
            "version": 3,
            "sensor_id": self.sensor_id,
            "config": asdict(self.config),
            "features": self.features.to_state(),
            "detector": None if self.detector is None else self.detector.to_state(),
            "episodes": self.episodes.to_state(),
            "n_scored": self.n_scored,
            "position": list(self.position) if self.position is not None else None,
            "pending": None
            if self.pending is None
            else {
                "x": self.pending[0].tolist(),
                "raw": None if self.pending[1] is None else self.pending[1].tolist(),
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SensorScorer:
        if state.get("version") != 3:
            raise ValueError(f"unsupported sensor state version {state.get('version')!r}")
        return cls(
            state["sensor_id"],
            SensorModelConfig(**state["config"]),
            features=SensorFeaturePipeline.from_state(state["features"]),
            detector=None if state["detector"] is None else Ensemble.from_state(state["detector"]),  # type: ignore[arg-type]
            episodes=EpisodeTracker.from_state(state["episodes"]),
            n_scored=state["n_scored"],
            position=tuple(state["position"]) if state.get("position") else None,
            pending=_pending_from_state(state.get("pending")),
        )


def _pending_from_state(pending: dict[str, Any] | None) -> tuple[np.ndarray, Any] | None:
    if not pending:
        return None
    raw = pending.get("raw")
    return (np.asarray(pending["x"], dtype=float), None if raw is None else np.asarray(raw))


def member_surprises(ensemble: Ensemble | None, member_scores: np.ndarray) -> dict[str, float]:
    """Each member's calibrated score as :func:`surprise`, by member name (score records)."""
    if ensemble is None or not len(member_scores):
        return {}
    return {
        name: surprise(float(m))
        for name, m in zip(ensemble.member_names_, member_scores, strict=True)
    }


def alarmed_members(ensemble: Ensemble, member_scores: np.ndarray, threshold: float) -> list[str]:
    """Members that alone would have called the event anomalous, most alarmed first (at
    least the most alarmed one): the ``detectors`` of an alert."""
    names = ensemble.member_names_
    order = np.argsort(-member_scores, kind="stable")
    return [names[i] for i in order if member_scores[i] >= threshold] or [names[order[0]]]


def surprise(score: float) -> float:
    """``-log10(1 - score)``: tells apart scores that all print as 0.9999….

    >>> surprise(0.999)
    3.0
    """
    return round(-math.log10(max(1.0 - score, 1e-12)), 6)


def new_alert(
    alert_id: str,
    source: str,
    entity: str,
    score: float,
    policy: AlertPolicy,
    *,
    detectors: list[str],
    features: list[dict[str, Any]],
    timestamp: float,
    record: RawRecord,
    **details: Any,
) -> dict[str, Any]:
    """The alert record an episode opens with; ``details`` are the source's own fields.

    Two orders of magnitude rarer than the alert threshold is ``critical``:

    >>> policy = AlertPolicy(threshold=0.99)
    >>> rec = RawRecord(b"k", b"{}", "sensors", 0, 7)
    >>> a = new_alert("id", "sensors", "t1", 0.9999, policy, detectors=["zscore"],
    ...               features=[], timestamp=10.0, record=rec, value=3.5)
    >>> a["severity"], a["first_seen"], a["input"]["offset"], a["value"]
    ('critical', 10.0, 7, 3.5)
    """
    return {
        "alert_id": alert_id,
        "source": source,
        "entity": entity,
        "severity": "critical" if score >= 1 - (1 - policy.threshold) / 100 else "warning",
        "score": score,
        "threshold": policy.threshold,
        "detectors": detectors,
        "features": features,
        "first_seen": timestamp,
        "last_seen": timestamp,
        **details,
        "input": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
    }


def contribution_records(
    top: Iterable[tuple[str, float, float]], x: np.ndarray, index: Mapping[str, int]
) -> list[dict[str, Any]]:
    """``(name, contribution, ratio_to_normal)`` triples as an alert's ``features``, with
    each feature's value from ``x`` (a non-finite ratio, from a zero normal, is ``None``).

    >>> contribution_records([("rate", 2.0, float("inf"))], np.array([0.5]), {"rate": 0})
    [{'name': 'rate', 'value': 0.5, 'contribution': 2.0, 'ratio_to_normal': None}]
    """
    return [
        {
            "name": name,
            "value": float(x[index[name]]),
            "contribution": float(c),
            "ratio_to_normal": None if not np.isfinite(r) else float(r),
        }
        for name, c, r in top
    ]


def validate_batch(
    records: Iterable[RawRecord],
    parse: Callable[[bytes], E],
    group: Callable[[E, RawRecord], K],
) -> tuple[dict[K, list[tuple[E, RawRecord]]], list[DeadLetter]]:
    """Parse every record; valid events grouped by ``group`` (input order kept), the rest
    as dead letters with their reason. Both agents validate this way."""
    dead: list[DeadLetter] = []
    groups: dict[K, list[tuple[E, RawRecord]]] = {}
    for record in records:
        if record.value is None:
            dead.append(DeadLetter(record, "empty", "record has no value (tombstone)"))
            continue
        try:
            event = parse(record.value)
            key = group(event, record)
        except RejectedEvent as exc:
            dead.append(dead_letter(record, exc))
            continue
        except Exception as exc:  # a validator bug must not stop the worker
            dead.append(internal_error(record, exc, "validation"))
            continue
        groups.setdefault(key, []).append((event, record))
    return groups, dead


def score_sensor_batch(
    records: Iterable[RawRecord],
    scorers: MutableMapping[str, SensorScorer],
    policy: AlertPolicy,
    config: SensorModelConfig | None = None,
    *,
    restore: Callable[[str], SensorScorer | None] | None = None,
    limits: InputLimits | None = None,
) -> BatchResult:
    """Validate, featurise and score a micro-batch, updating ``scorers`` in place.

    State is keyed by the ``sensor_id`` in the body, never by the message key: a reading
    keyed otherwise is scored under its body's id (and counted as ``key_mismatch``). A
    sensor not in ``scorers`` is restored with ``restore(sensor_id)`` (the agent reads its
    table) or starts fresh (counted as ``new_entities``). One sensor whose scoring raises
    takes only its own readings to the dead letters (``internal_error``); its in-memory
    state is dropped, so it is restored from its last checkpoint next time.

    Returns score records in input order per sensor, dead letters and replayed inputs.
    """
    config = config or SensorModelConfig()
    per_sensor, dead = validate_batch(
        records,
        lambda raw: parse_sensor_reading(raw, limits=limits),
        lambda reading, _: reading.sensor_id,
    )
    out = BatchResult(dead=dead)
    for sensor_id, items in per_sensor.items():
        key = sensor_id.encode()
        out.count("key_mismatch", sum(1 for _, record in items if record.key != key))
    score_groups(
        per_sensor,
        scorers,
        policy,
        out,
        new=lambda sensor_id: SensorScorer(sensor_id, config),
        restore=restore,
    )
    return out


class EntityScorer(Protocol[E]):
    """What :func:`score_groups` needs of a per-entity scorer."""

    def score_batch(
        self, items: Sequence[tuple[E, RawRecord]], policy: AlertPolicy
    ) -> BatchResult: ...


S = TypeVar("S", bound=EntityScorer[Any])


def score_groups(
    groups: Mapping[K, Sequence[tuple[E, RawRecord]]],
    scorers: MutableMapping[K, S],
    policy: AlertPolicy,
    out: BatchResult,
    *,
    new: Callable[[K], S],
    restore: Callable[[K], S | None] | None = None,
) -> None:
    """Hand each entity's events to its scorer (live, else restored, else new), into ``out``.

    An entity whose scoring raises takes only its own events to the dead letters
    (``internal_error``) and its scorer is dropped, so the next batch restores it from
    its last checkpoint. Counts ``new_entities`` and ``restored_entities``.
    """
    for entity, items in groups.items():
        try:
            scorer = scorers.get(entity)
            if scorer is None and restore is not None:
                # (A restore that raises must not fall through to a fresh state, which
                # the checkpoint would then write over the saved one.)
                scorer = restore(entity)
                out.count("restored_entities", scorer is not None)
            if scorer is None:
                scorer = new(entity)
                out.count("new_entities")
            scorers[entity] = scorer
            result = scorer.score_batch(items, policy)
        except Exception as exc:
            log.error("entity_failed", entity=str(entity), error=repr(exc)[:1000])
            out.dead += [internal_error(record, exc, "scoring") for _, record in items]
            scorers.pop(entity, None)
            continue
        out.extend(result)
        out.touched[entity] = items[-1][1]
