"""Retraining a served connection model from the stream's own score records.

:class:`ConnectionTrainer` is the trainer process's logic, without Kafka: it reads score
records (:meth:`observe`), keeps clean training rows in a :class:`~retrain.buffer.
TrainingBuffer`, says when a retrain is due (:meth:`due`: every ``every_events`` new clean
rows; drift and commands come from outside), and :meth:`retrain` trains a candidate,
registers it and lets the registry decide on promotion, returning the ``model-events``
records to publish.

Training rows are the unscaled numeric fields and categories a connection's score record
carries (``context.numeric``, ``protocol_type``, ``service``, ``flag``). Rows the stream
called anomalous (``is_anomaly``, or inside an open alert episode) stay out.

Validation, for want of labels: the newest ``validation_fraction`` of the rows is held out
of training, and candidate and champion are both scored on it; the metric is
``clean_alarm_rate``, the share of those (clean) rows at or above the alert threshold —
lower is better, the champion is replaced only if the candidate is not worse by more than
``tolerance``. After a drift the stale champion alarms on the new regime and the candidate
does not; a candidate trained on a polluted slice alarms more and is rejected.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.buffer import TrainingBuffer
from retrain.drift import DriftReport
from retrain.monitors import ModelDriftMonitors
from retrain.served import ServedConnectionModel, train_connection_model
from windowing import CATEGORICAL_FIELDS, NUMERIC_FIELDS

__all__ = ["CLEAN_ALARM_RATE", "ConnectionTrainer", "RetrainPolicy"]

#: The validation metric (lower is better).
CLEAN_ALARM_RATE = "clean_alarm_rate"


@dataclass(frozen=True)
class RetrainPolicy:
    """When and how the trainer retrains (see ``retrain.*`` settings)."""

    detector: str = "marginal_tail"
    params: Mapping[str, Any] = field(default_factory=dict)
    every_events: int = 50_000
    min_rows: int = 2_000
    validation_fraction: float = 0.2
    alert_threshold: float = 0.999
    tolerance: float = 0.0005
    seed: int = 0
    #: Refused rows kept, by alert, until an analyst's verdict on it.
    held_rows: int = 20_000


def training_row(record: Mapping[str, Any]) -> tuple[dict[str, Any], bool] | None:
    """A connection score record as a training row and whether it was anomalous; None for
    anything else (sensor records, bootstrap records, records without raw fields).

    >>> rec = {"source": "connections", "is_anomaly": False, "model_version": "online",
    ...        "context": {"numeric": [0.0] * 38, "protocol_type": "tcp",
    ...                    "service": "http", "flag": "SF", "alert_id": None}}
    >>> row, anomalous = training_row(rec)
    >>> row["service"], len(row), anomalous
    ('http', 41, False)
    >>> training_row({**rec, "context": "garbage"}), training_row({"source": "connections"})
    (None, None)
    """
    if record.get("source") != "connections" or record.get("model_version") == "bootstrap":
        return None
    ctx = record.get("context")
    numeric = ctx.get("numeric") if isinstance(ctx, dict) else None
    if (
        not isinstance(numeric, list)
        or len(numeric) != len(NUMERIC_FIELDS)
        or not all(isinstance(v, int | float) and math.isfinite(v) for v in numeric)
    ):
        return None
    row: dict[str, Any] = dict(zip(NUMERIC_FIELDS, numeric, strict=True))
    for c in CATEGORICAL_FIELDS:
        row[c] = str(ctx.get(c, ""))
    anomalous = bool(record.get("is_anomaly")) or ctx.get("alert_id") is not None
    return row, anomalous


class ConnectionTrainer:
    """Buffer, schedule and retrain-register-promote for one served connection model."""

    def __init__(
        self,
        model_name: str,
        policy: RetrainPolicy | None = None,
        buffer: TrainingBuffer | None = None,
        drift: ModelDriftMonitors | None = None,
    ) -> None:
        self.model_name = model_name
        self.policy = policy or RetrainPolicy()
        self.buffer = buffer or TrainingBuffer(seed=self.policy.seed)
        #: Watches the connections' numeric fields and the published scores.
        self.drift = drift
        self.drifted: list[DriftReport] = []
        #: Rows refused as anomalous, by alert id, until an analyst's verdict: a false
        #: alarm's rows are normal traffic after all (bounded: oldest alerts dropped).
        self._held: dict[str, list[dict[str, Any]]] = {}
        self._held_rows = 0
        self._accepted_at_drift = 0
        self._accepted_at_last_train = 0
        self._first_time: float | None = None
        self._last_time: float | None = None

    def observe(self, record: Mapping[str, Any]) -> list[DriftReport]:
        """Take one score record; the drift reports it completes (to publish)."""
        parsed = training_row(record)
        if parsed is None:
            return []
        row, anomalous = parsed
        reports: list[DriftReport] = []
        if self.drift is not None:
            names = self.drift.feature_names or ()
            numeric = np.array([row[f] for f in names], dtype=np.float64)
            score = record.get("score")
            reports = self.drift.update(numeric, float(score) if score is not None else None)
            if reports and not self.drifted:
                self._accepted_at_drift = self.buffer.accepted
            self.drifted += reports
        alert_id = record["context"].get("alert_id")
        if anomalous and isinstance(alert_id, str):
            self._hold(alert_id, row)
        if self.buffer.offer(row, anomalous=anomalous, key=alert_id):
            ts = record.get("timestamp")
            if isinstance(ts, int | float):
                self._first_time = ts if self._first_time is None else self._first_time
                self._last_time = ts
        return reports

    def _hold(self, alert_id: str, row: dict[str, Any]) -> None:
        self._held.setdefault(alert_id, []).append(row)
        self._held_rows += 1
        while self._held_rows > self.policy.held_rows and self._held:
            oldest = next(iter(self._held))
            self._held_rows -= len(self._held.pop(oldest))

    def verdict(self, alert_id: str, confirmed: bool) -> int:
        """An analyst's verdict on an alert: a confirmed incident's rows stay out of
        training for good; a false alarm's rows join it. Returns the rows affected."""
        rows = self._held.pop(alert_id, [])
        self._held_rows -= len(rows)
        if confirmed:
            self.buffer.exclude([alert_id])
            return len(rows)
        for row in rows:
            self.buffer.offer(row)
        return len(rows)

    def due(self) -> str | None:
        """``"drift"`` once ``min_rows`` clean rows arrived after a drift report (the new
        regime must be in the training rows), ``"schedule"`` when ``every_events`` clean
        rows arrived since the last training; else None."""
        since_drift = self.buffer.accepted - self._accepted_at_drift
        if self.drifted and since_drift >= self.policy.min_rows:
            return "drift"
        every = self.policy.every_events
        fresh = self.buffer.accepted - self._accepted_at_last_train
        if every > 0 and fresh >= every and len(self.buffer) >= self.policy.min_rows:
            return "schedule"
        return None

    def retrain(
        self,
        registry: Any,
        reason: str,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Train a candidate on the buffer, register it, let the registry promote or reject
        it; the ``model-events`` records of all of it, in order."""
        say = progress or (lambda _msg: None)
        p = self.policy
        rows = self.buffer.rows()
        base = {"model": self.model_name, "reason": reason, "rows": len(rows)}
        events: list[dict[str, Any]] = [{**base, "event": "started", "at": _now()}]
        if len(rows) < p.min_rows:
            events.append({**base, "event": "skipped", "at": _now(),
                           "why": f"{len(rows)} clean rows, {p.min_rows} needed"})
            return events
        frame = pd.DataFrame(rows)
        n_val = max(1, int(len(frame) * p.validation_fraction))
        train, val = frame.iloc[:-n_val], frame.iloc[-n_val:]
        t0 = time.perf_counter()
        model = train_connection_model(
            train.assign(label="normal"), p.detector, p.params, seed=p.seed, progress=say
        )
        seconds = time.perf_counter() - t0
        self._accepted_at_last_train = self.buffer.accepted
        self.drifted = []
        if self.drift is not None:
            self.drift.reset()  # a new model: new references
        metrics = {CLEAN_ALARM_RATE: self.clean_alarm_rate(model, val)}
        with tempfile.TemporaryDirectory(prefix="anomstream-candidate-") as tmp:
            model.save(Path(tmp) / "model")
            version = registry.register_candidate(
                self.model_name,
                Path(tmp) / "model",
                metrics=metrics,
                data_range=self._data_range(),
                params={**model.trained, "served_version": model.version, "reason": reason},
            )
        events.append({**base, "event": "finished", "at": _now(), "version": str(version),
                       "served_version": model.version, "train_rows": len(train),
                       "validation_rows": len(val), "seconds": round(seconds, 3),
                       "metrics": metrics})
        from retrain.registry import PromotionRule

        decision = registry.promote(
            self.model_name,
            version,
            PromotionRule(CLEAN_ALARM_RATE, higher_is_better=False, tolerance=p.tolerance),
            evaluate=lambda m: {CLEAN_ALARM_RATE: self.clean_alarm_rate(m, val)},
            loader=ServedConnectionModel.load,
        )
        events.append({**decision.to_dict(), "event": decision.status,
                       "served_version": model.version, "model": self.model_name})
        return events

    def clean_alarm_rate(self, model: ServedConnectionModel, rows: pd.DataFrame) -> float:
        """Share of (clean) ``rows`` the model scores at or above the alert threshold."""
        p = model.score(model.features_of_frame(rows))
        return float(np.mean(p >= self.policy.alert_threshold)) if len(p) else 0.0

    def _data_range(self) -> tuple[str, str] | None:
        if self._first_time is None or self._last_time is None:
            return None
        return (_iso(self._first_time), _iso(self._last_time))


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
