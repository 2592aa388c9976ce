"""A sensor series scored by exactly the code the sensor agent runs.

``anomstream evaluate`` on NAB or sensor CSV files replays each series as the JSON records a
producer would send, through :func:`streams.scoring.score_sensor_batch` with the worker's
settings (feature pipeline, detector, calibration, chunking, warm-up, input limits). Scores
do not depend on how readings are cut into micro-batches, so the score of every reading
here is the score the worker publishes for it: the NAB number *is* the stream's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.features import SensorFeatures
from evaluation.online import ReplayResult
from streams.scoring import (
    RawRecord,
    SensorScorer,
    score_sensor_batch,
    sensor_alert_policy,
    sensor_model_config,
)
from streams.settings import Settings

__all__ = ["StreamRun", "sensor_records", "stream_calibration", "stream_series"]


def stream_calibration(settings: Settings) -> str:
    """How ``evaluate`` names the calibration of the stream path in its results.

    >>> stream_calibration(Settings())
    "stream: the sensor agent's own (the detector's tail probability, as is)"
    """
    if sensor_model_config(settings).self_judging:
        return "stream: the sensor agent's own (the detector's tail probability, as is)"
    return "stream: the sensor agent's own (analytic prior, then empirical tail)"


@dataclass
class StreamRun:
    """One series through the agent's scoring: scores per accepted reading and the rest."""

    features: SensorFeatures
    scores: np.ndarray
    alerts: np.ndarray
    replay: ReplayResult
    scorer: SensorScorer | None


def sensor_records(
    entity: str,
    timestamps: Any,
    values: Any,
    channels: Mapping[str, Any] | None = None,
    topic: str = "sensors",
) -> list[RawRecord]:
    """The series as the Kafka records a producer sends (offset = row number).

    >>> recs = sensor_records("t1", [0.0, 60.0], [1.5, 2.0])
    >>> recs[1].value, recs[1].offset
    (b'{"sensor_id": "t1", "timestamp": 60.0, "value": 2.0}', 1)
    """
    ts = np.asarray(timestamps, dtype=float)
    vs = np.asarray(values, dtype=float)
    chans = {k: np.asarray(v, dtype=float) for k, v in (channels or {}).items()}
    out = []
    for i in range(ts.size):
        body: dict[str, Any] = {
            "sensor_id": entity,
            "timestamp": float(ts[i]),
            "value": float(vs[i]),
        }
        if chans:
            body["channels"] = {k: float(v[i]) for k, v in chans.items()}
        out.append(RawRecord(entity.encode(), json.dumps(body).encode(), topic, 0, i))
    return out


def stream_series(
    entity: str,
    timestamps: Any,
    values: Any,
    channels: Mapping[str, Any] | None = None,
    *,
    settings: Settings | None = None,
    batch_size: int = 500,
    progress: Callable[[int], Any] | None = None,
) -> StreamRun:
    """Score one series with the sensor agent's code and settings, in micro-batches.

    Refused readings (late, duplicate, invalid) get no score: ``features.rejected`` lists
    them with their reason, as the agent's dead letters would.
    """
    settings = settings or Settings()
    config = sensor_model_config(settings)
    policy = sensor_alert_policy(settings)
    limits = settings.limits.input_limits()
    records = sensor_records(entity, timestamps, values, channels)
    n = len(records)
    scorers: dict[str, SensorScorer] = {}
    events = []
    rejected: list[tuple[int, str]] = []
    t0 = time.perf_counter()
    for lo in range(0, n, max(1, batch_size)):
        batch = records[lo : lo + batch_size]
        result = score_sensor_batch(batch, scorers, policy, config, limits=limits)
        events += result.scored
        rejected += [(d.record.offset, d.reason) for d in result.dead]
        if progress is not None:
            progress(len(batch))
    seconds = time.perf_counter() - t0
    events.sort(key=lambda ev: ev.record.offset)
    names = list(events[0].features) if events else []
    matrix = np.array([[ev.features[k] for k in names] for ev in events], dtype=float)
    features = SensorFeatures(
        matrix=matrix.reshape(len(events), len(names)),
        names=names,
        index=np.array([ev.record.offset for ev in events], dtype=np.int64),
        rejected=tuple(sorted(rejected)),
        n_input=n,
        n_value_columns=sum(1 for k in names if k.endswith("_z")),
        differenced=np.array([bool(ev.context.get("differenced")) for ev in events], dtype=bool),
        verdicts=np.array([ev.context.get("stationarity") for ev in events], dtype=object),
    )
    scores = np.array([ev.score for ev in events], dtype=float)
    alerts = np.array([ev.alert is not None for ev in events], dtype=bool)
    replay = ReplayResult(scores, seconds, 0.0, len(events), len(events))
    return StreamRun(features, scores, alerts, replay, scorers.get(entity))
