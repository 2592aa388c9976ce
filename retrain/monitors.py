"""A model's drift monitors together: defaults, one budget, debounce, one JSON state.

:class:`DriftSettings` holds the defaults (a plain dataclass; the stream's pydantic settings
map onto it). :class:`ModelDriftMonitors` builds, for one model, the monitors it asks for —
input features (:class:`~retrain.feature_drift.FeatureDriftMonitor`), calibrated scores
(:class:`~retrain.score_drift.ScoreDriftMonitor`), share above the alert threshold
(:class:`~retrain.exceedance.ExceedanceMonitor`) — and splits the model's false-alarm
budget evenly between them, so the model as a whole raises at most one false alarm per
``budget_events`` events in expectation (each monitor's own guarantee, summed).

A persistent drift keeps the exceedance monitor firing (its reference, the share
calibration promises, does not move), and the loop needs time to retrain: a monitor that
reported is silent for ``debounce_events`` events (its reports are counted in
``suppressed``). ``reset()`` is what a model swap calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from retrain.drift import DriftReport
from retrain.exceedance import ExceedanceMonitor
from retrain.feature_drift import FeatureDriftMonitor
from retrain.score_drift import ScoreDriftMonitor

__all__ = ["DriftSettings", "ModelDriftMonitors"]


@dataclass(frozen=True)
class DriftSettings:
    """Defaults of the drift monitors (measured in ``docs/drift.md``).

    Parameters
    ----------
    budget_events
        Expected events between false alarms of one model on a stationary stream, all its
        monitors together.
    feature_reference_events, feature_window_events, feature_check_every
        :class:`~retrain.feature_drift.FeatureDriftMonitor` windows and test interval.
    feature_correction
        ``"holm"`` or ``"bh"`` across features.
    score_block_events, score_reference_events, score_shift, score_scale_margin
        :class:`~retrain.score_drift.ScoreDriftMonitor` block size, reference, the change
        it is tuned for (block standard deviations), and the margin on its scale estimate
        (standard errors).
    exceedance_window_events, exceedance_check_every
        :class:`~retrain.exceedance.ExceedanceMonitor` window and test interval.
    debounce_events
        Events after a report during which the same monitor reports nothing.
    """

    budget_events: float = 1_000_000
    feature_reference_events: int = 2000
    feature_window_events: int = 1000
    feature_check_every: int = 100
    feature_correction: str = "holm"
    score_block_events: int = 32
    score_reference_events: int = 4096
    score_shift: float = 1.0
    score_scale_margin: float = 2.0
    exceedance_window_events: int = 100_000
    exceedance_check_every: int = 1000
    debounce_events: int = 10_000


class ModelDriftMonitors:
    """The drift monitors of one model, fed one (features, score) pair per event.

    Parameters
    ----------
    settings
        Windows, intervals and the model's budget.
    feature_names
        Watch the input features, with these names (deterministic ones such as calendar
        sin/cos left out); ``None``: no feature monitor.
    watch_scores
        Watch the calibrated score stream (Page-Hinkley on probit block means).
    alert_threshold
        Watch the share of scores at or above this; ``None``: no exceedance monitor.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mons = ModelDriftMonitors(DriftSettings(), ["a", "b"], alert_threshold=0.999)
    >>> [m.name for m in mons.monitors], mons.monitors[0].budget_events
    (['feature_ks', 'score_ph', 'score_exceedance'], 3000000.0)
    >>> X, s = rng.normal(size=(20_000, 2)), rng.uniform(size=20_000)
    >>> mons.update_many(X, s)
    []
    >>> X[:, 1] += 3.0
    >>> [(r.monitor, r.features) for r in mons.update_many(X, s)]
    [('feature_ks', ('b',))]
    """

    def __init__(
        self,
        settings: DriftSettings | None = None,
        feature_names: Sequence[str] | None = None,
        watch_scores: bool = True,
        alert_threshold: float | None = None,
    ) -> None:
        self.settings = settings or DriftSettings()
        self.feature_names = None if feature_names is None else tuple(feature_names)
        self.watch_scores = watch_scores
        self.alert_threshold = alert_threshold
        cfg = self.settings
        count = (
            (feature_names is not None) + bool(watch_scores) + (alert_threshold is not None)
        )
        if count == 0:
            raise ValueError("nothing to watch: give feature_names, watch_scores or a threshold")
        share = cfg.budget_events * count  # each monitor's budget: the sum of rates is 1/budget
        self.features: FeatureDriftMonitor | None = None
        self.scores: ScoreDriftMonitor | None = None
        self.exceedance: ExceedanceMonitor | None = None
        if feature_names is not None:
            self.features = FeatureDriftMonitor(
                feature_names,
                reference_size=cfg.feature_reference_events,
                window_size=cfg.feature_window_events,
                check_every=cfg.feature_check_every,
                budget_events=share,
                correction=cfg.feature_correction,
            )
        if watch_scores:
            self.scores = ScoreDriftMonitor(
                budget_events=share,
                block_size=cfg.score_block_events,
                reference_size=cfg.score_reference_events,
                shift=cfg.score_shift,
                scale_margin=cfg.score_scale_margin,
            )
        if alert_threshold is not None:
            self.exceedance = ExceedanceMonitor(
                alert_threshold,
                budget_events=share,
                window_size=cfg.exceedance_window_events,
                check_every=cfg.exceedance_check_every,
            )
        self.n_seen = 0
        self.suppressed = 0
        self._last_report: dict[str, int] = {}  # monitor name -> event_count of its report

    @property
    def monitors(self) -> list[Any]:
        """The active monitors, features first."""
        return [m for m in (self.features, self.scores, self.exceedance) if m is not None]

    def reset(self) -> None:
        """A new model is in place: every monitor takes a new reference."""
        for mon in self.monitors:
            mon.reset()
        self._last_report.clear()

    def update(self, features: Any = None, score: float | None = None) -> list[DriftReport]:
        """One event: its feature vector (if watched) and calibrated score (if watched)."""
        X = None if features is None else np.asarray(features, dtype=np.float64).reshape(1, -1)
        s = None if score is None else [score]
        return self.update_many(X, s)

    def update_many(self, X: Any = None, scores: Any = None) -> list[DriftReport]:
        """A batch of events; the reports that pass the debounce, in event order."""
        n = None
        reports: list[DriftReport] = []
        if self.features is not None:
            if X is None:
                raise ValueError("this model's features are watched: pass X")
            X = np.asarray(X, dtype=np.float64)
            n = X.shape[0]
            reports += self.features.update_many(X)
        if self.scores is not None or self.exceedance is not None:
            if scores is None:
                raise ValueError("this model's scores are watched: pass scores")
            s = np.asarray(scores, dtype=np.float64).ravel()
            if n is not None and s.size != n:
                raise ValueError(f"{n} feature vectors but {s.size} scores")
            n = s.size
            for mon in (self.scores, self.exceedance):
                if mon is not None:
                    reports += mon.update_many(s)
        self.n_seen += n or 0
        reports.sort(key=lambda r: r.event_count)
        kept = []
        for r in reports:
            last = self._last_report.get(r.monitor)
            if last is not None and r.event_count - last < self.settings.debounce_events:
                self.suppressed += 1
                continue
            self._last_report[r.monitor] = r.event_count
            kept.append(r)
        return kept

    def to_state(self) -> dict[str, Any]:
        """JSON-able state; :meth:`from_state` continues with identical decisions."""
        return {
            "settings": asdict(self.settings),
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "watch_scores": self.watch_scores,
            "alert_threshold": self.alert_threshold,
            "n_seen": self.n_seen,
            "suppressed": self.suppressed,
            "last_report": dict(self._last_report),
            "features": None if self.features is None else self.features.to_state(),
            "scores": None if self.scores is None else self.scores.to_state(),
            "exceedance": None if self.exceedance is None else self.exceedance.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ModelDriftMonitors:
        mons = cls(
            DriftSettings(**state["settings"]),
            state["feature_names"],
            state["watch_scores"],
            state["alert_threshold"],
        )
        mons.n_seen = int(state["n_seen"])
        mons.suppressed = int(state["suppressed"])
        mons._last_report = {k: int(v) for k, v in state["last_report"].items()}
        if state["features"] is not None:
            mons.features = FeatureDriftMonitor.from_state(state["features"])
        if state["scores"] is not None:
            mons.scores = ScoreDriftMonitor.from_state(state["scores"])
        if state["exceedance"] is not None:
            mons.exceedance = ExceedanceMonitor.from_state(state["exceedance"])
        return mons
