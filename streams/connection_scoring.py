"""What the connection agent does to a micro-batch, as plain code (no Kafka, no I/O).

Traffic features ("connections to this host in the last 2 s", "of the last 100
connections") span hosts, so state is kept per input partition, not per host: one
:class:`ConnectionScorer` per partition holds the feature pipeline (with its traffic
windows), the detector and one alert episode tracker per source host.

Until a scorer has seen ``bootstrap_events`` connections it has no scaling bounds or
vocabulary: those events are published with score 0 and ``context.bootstrap = true``,
then the pipeline is fitted on them and the detector learns them. Nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from detectors import Detector
from detectors.ensemble import Ensemble
from detectors.explain import top_k_contributions
from detectors.online import LODA, HalfSpaceTrees
from streams.scoring import (
    AlertPolicy,
    DeadLetter,
    EpisodeTracker,
    RawRecord,
    ScoredEvent,
    dead_letter,
    surprise,
)
from windowing.connection import ConnectionFeaturePipeline
from windowing.features import FeatureVector, jsonable
from windowing.schemas import ConnectionEvent, RejectedEvent, parse_connection_event

__all__ = [
    "SOURCE_CONNECTIONS",
    "ConnectionModelConfig",
    "ConnectionScorer",
    "event_row",
    "make_connection_detector",
    "score_connection_batch",
]

SOURCE_CONNECTIONS = "connections"
DETECTOR_NAME = "hst+loda"


@dataclass(frozen=True)
class ConnectionModelConfig:
    """How a partition's connection scorer is built."""

    bootstrap_events: int = 1000
    chunk: int = 32
    top_k: int = 3


def make_connection_detector() -> Ensemble:
    """Half-Space Trees + LODA, max of calibrated scores.

    Both are online and vectorised; their JSON state (~200 kB at 54 features) fits a
    Kafka message, which the default connection ensemble's (1.4 MB) does not.
    """
    return Ensemble(
        members=[
            {"detector": HalfSpaceTrees(n_trees=10, height=8, window_size=500), "name": "hst"},
            {"detector": LODA(n_projections=50, decay=1e-5), "name": "loda"},
        ],
        method="max",
        calibration={"window": 2000, "tail_quantile": 0.98},
    )


def _entity(ev: ConnectionEvent) -> str:
    """Scores and alerts are per destination host.

    The traffic features describe what happens to a destination (and a service) in a
    window, so a flood makes every connection to the victim look odd, the clients' too;
    one alert per victim per episode is what an operator can act on. The source host is
    in the score record's context.
    """
    return ev.dst_host or ev.src_host or ev.service


def event_row(ev: ConnectionEvent) -> dict[str, Any]:
    """A validated event as one row of the frame ``ConnectionFeaturePipeline.fit`` takes."""
    return {
        "timestamp": ev.timestamp,
        "protocol_type": ev.protocol_type,
        "service": ev.service,
        "flag": ev.flag,
        "src_host": ev.src_host,
        "dst_host": ev.dst_host,
        "src_port": ev.src_port,
        **ev.numeric,
    }


@dataclass
class ConnectionScorer:
    """Per-partition state: features, detector, episodes per source host, input position."""

    config: ConnectionModelConfig = field(default_factory=ConnectionModelConfig)
    pipeline: ConnectionFeaturePipeline | None = None
    detector: Detector | None = None
    episodes: dict[str, EpisodeTracker] = field(default_factory=dict)
    n_scored: int = 0
    position: tuple[int, int] | None = None
    # In memory only: lost on a restart during bootstrap, which then simply starts over.
    _bootstrap: list[ConnectionEvent] = field(default_factory=list)

    def already_absorbed(self, record: RawRecord) -> bool:
        return (
            self.position is not None
            and record.partition == self.position[0]
            and record.offset <= self.position[1]
        )

    def score_batch(
        self, items: Sequence[tuple[ConnectionEvent, RawRecord]], policy: AlertPolicy
    ) -> list[ScoredEvent]:
        out: list[ScoredEvent] = []
        pending: list[tuple[FeatureVector, ConnectionEvent, RawRecord]] = []
        for ev, record in items:
            if self.already_absorbed(record):
                continue
            if self.pipeline is None:
                out.append(self._bootstrap_event(ev, record))
                self._bootstrap.append(ev)
                if len(self._bootstrap) >= self.config.bootstrap_events:
                    self._fit_bootstrap(out)
                continue
            pending.append((self.pipeline.update_one(ev), ev, record))
            self.position = (record.partition, record.offset)
        step = max(1, self.config.chunk)
        for lo in range(0, len(pending), step):
            chunk = pending[lo : lo + step]
            X = np.vstack([fv.values for fv, _, _ in chunk])
            scores = np.clip(self.detector.score_many(X), 0.0, 1.0)  # type: ignore[union-attr]
            for (fv, ev, record), score, x in zip(chunk, scores, X, strict=True):
                out.append(self._event(fv, ev, record, float(score), policy, x))
            self.detector.learn_many(X, feature_names=list(chunk[0][0].names))  # type: ignore[union-attr]
        return out

    def _fit_bootstrap(self, out: list[ScoredEvent]) -> None:
        frame = pd.DataFrame([event_row(ev) for ev in self._bootstrap])
        self.pipeline = ConnectionFeaturePipeline().fit(frame)
        X = np.vstack([self.pipeline.update_one(ev).values for ev in self._bootstrap])
        self.detector = make_connection_detector()
        # In chunks, so the calibrators see scores of rows the members had not yet
        # learned (prequential), not in-sample scores that would make every later normal
        # connection look rare.
        for lo in range(0, len(X), 100):
            self.detector.learn_many(X[lo : lo + 100], feature_names=list(self.pipeline.names))
        self._bootstrap = []
        last = out[-1].record
        self.position = (last.partition, last.offset)

    def _bootstrap_event(self, ev: ConnectionEvent, record: RawRecord) -> ScoredEvent:
        return ScoredEvent(
            source=SOURCE_CONNECTIONS,
            entity=_entity(ev),
            timestamp=ev.timestamp,
            value=None,
            score=0.0,
            raw_score=0.0,
            threshold=1.0,
            is_anomaly=False,
            detector=DETECTOR_NAME,
            model_version="bootstrap",
            features={},
            context={"bootstrap": True, "src_host": ev.src_host, "service": ev.service},
            record=record,
        )

    def _event(
        self,
        fv: FeatureVector,
        ev: ConnectionEvent,
        record: RawRecord,
        score: float,
        policy: AlertPolicy,
        x: np.ndarray,
    ) -> ScoredEvent:
        warm = self.n_scored >= policy.warmup
        self.n_scored += 1
        entity = _entity(ev)
        is_anomaly = warm and score >= policy.threshold
        tracker = self.episodes.setdefault(entity, EpisodeTracker())
        alert_id, opened = tracker.observe(
            is_anomaly, ev.timestamp, policy, SOURCE_CONNECTIONS, entity
        )
        if not is_anomaly and tracker.open_alert_id is None and entity in self.episodes:
            # Quiet hosts need no tracker: keeps the state small with many clients.
            del self.episodes[entity]
        context = {
            "warm": warm,
            "alert_id": alert_id,
            "src_host": ev.src_host,
            "service": ev.service,
            "flag": ev.flag,
            "traffic": fv.meta.get("traffic"),
            "out_of_range_fields": list(fv.meta.get("out_of_range_fields", ())),
        }
        alert = None
        if opened and alert_id is not None:
            alert = {
                "alert_id": alert_id,
                "source": SOURCE_CONNECTIONS,
                "entity": entity,
                "severity": "critical" if score >= 1 - (1 - policy.threshold) / 100 else "warning",
                "score": score,
                "threshold": policy.threshold,
                "detectors": [DETECTOR_NAME],
                "features": self._top_features(x),
                "first_seen": ev.timestamp,
                "last_seen": ev.timestamp,
                "src_host": ev.src_host,
                "service": ev.service,
                "flag": ev.flag,
                "input": {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                },
            }
        named = dict(zip(fv.names, fv.values.tolist(), strict=True))
        return ScoredEvent(
            source=SOURCE_CONNECTIONS,
            entity=entity,
            timestamp=ev.timestamp,
            value=None,
            score=score,
            raw_score=surprise(score),
            threshold=policy.threshold,
            is_anomaly=is_anomaly,
            detector=DETECTOR_NAME,
            model_version="online",
            # The traffic and size features explain connections; the one-hot columns are
            # implied by service/flag in the context.
            features=jsonable({k: v for k, v in named.items() if "=" not in k}),
            context=jsonable(context),
            record=record,
            alert=alert,
        )

    def _top_features(self, x: np.ndarray) -> list[dict[str, Any]]:
        try:
            top = top_k_contributions(self.detector, x, k=self.config.top_k)  # type: ignore[arg-type]
        except (NotImplementedError, ValueError):
            return []
        names = list(self.pipeline.names)  # type: ignore[union-attr]
        return [
            {
                "name": n,
                "value": float(x[names.index(n)]),
                "contribution": float(c),
                "ratio_to_normal": None if not np.isfinite(r) else float(r),
            }
            for n, c, r in top
        ]

    def to_state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "config": asdict(self.config),
            "pipeline": None if self.pipeline is None else self.pipeline.to_state(),
            "detector": None if self.detector is None else self.detector.to_state(),
            "episodes": {k: v.to_state() for k, v in self.episodes.items()},
            "n_scored": self.n_scored,
            "position": list(self.position) if self.position is not None else None,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ConnectionScorer:
        if state.get("version") != 1:
            raise ValueError(f"unsupported connection state version {state.get('version')!r}")
        return cls(
            config=ConnectionModelConfig(**state["config"]),
            pipeline=None
            if state["pipeline"] is None
            else ConnectionFeaturePipeline.from_state(state["pipeline"]),
            detector=None if state["detector"] is None else Detector.from_state(state["detector"]),
            episodes={k: EpisodeTracker.from_state(v) for k, v in state["episodes"].items()},
            n_scored=state["n_scored"],
            position=tuple(state["position"]) if state.get("position") else None,
        )


def score_connection_batch(
    records: Iterable[RawRecord],
    scorers: MutableMapping[int, ConnectionScorer],
    policy: AlertPolicy,
    config: ConnectionModelConfig | None = None,
) -> tuple[list[ScoredEvent], list[DeadLetter]]:
    """Validate, featurise and score a micro-batch; one scorer per input partition."""
    config = config or ConnectionModelConfig()
    dead: list[DeadLetter] = []
    per_partition: dict[int, list[tuple[ConnectionEvent, RawRecord]]] = {}
    for record in records:
        if record.value is None:
            dead.append(DeadLetter(record, "empty", "record has no value (tombstone)"))
            continue
        try:
            ev = parse_connection_event(record.value)
        except RejectedEvent as exc:
            dead.append(dead_letter(record, exc))
            continue
        per_partition.setdefault(record.partition, []).append((ev, record))
    scored: list[ScoredEvent] = []
    for partition, items in per_partition.items():
        scorer = scorers.get(partition)
        if scorer is None:
            scorer = scorers[partition] = ConnectionScorer(config)
        scored.extend(scorer.score_batch(items, policy))
    return scored, dead
