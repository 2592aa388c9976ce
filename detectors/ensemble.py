"""Ensembles of calibrated detectors, and the default ensemble per event source."""


from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors.base import Detector
from detectors.calibration import ScoreCalibrator

__all__ = ["METHODS", "Ensemble", "default_ensemble"]

METHODS = ("mean", "max", "rank", "weighted")


def _member_spec(m: Any, i: int) -> dict[str, Any]:
    if isinstance(m, Detector):
        m = {"detector": m}
    if not isinstance(m, dict) or not isinstance(m.get("detector"), Detector):
        raise TypeError("an ensemble member is a Detector or a dict with a 'detector' key")
    return {
        "detector": m["detector"],
        "columns": None if m.get("columns") is None else [int(c) for c in m["columns"]],
        "name": str(m.get("name") or f"{type(m['detector']).name}{i}"),
        "weight": float(m.get("weight", 1.0)),
    }


class Ensemble(Detector):
    """Several detectors, each behind its own :class:`ScoreCalibrator`, combined in [0, 1].

    Every member sees its own ``columns`` of the input (all by default), its raw score is
    calibrated against its recent scores on normal data, and the calibrated scores are
    combined with ``method``:

    * ``"mean"``: weighted mean (member ``weight``);
    * ``"max"``: the most alarmed member decides;
    * ``"rank"``: weighted mean of each member's empirical rank among its reference
      scores (no fitted tail: robust, but saturates at the largest reference score);
    * ``"weighted"``: mean weighted by validation quality, learned by
      :meth:`fit_weights` from labelled data (equal weights until then).

    Online ensembles (every member online) learn prequentially: each new batch is first
    scored, those scores feed the calibrators (scores of data the members have not seen
    yet, so the calibration is honest), then the members learn it. :meth:`fit` on a batch
    ensemble trains members on the first ``1 - calibration_fraction`` of the rows and
    calibrates on the rest.

    With ``gate`` set, rows whose combined score is at or above it are not learned (the
    model does not absorb an ongoing anomaly); leave it ``None`` where level shifts must
    eventually become the new normal.

    Parameters
    ----------
    members
        Detectors, or dicts ``{"detector", "columns", "name", "weight"}``.
        ``None`` = robust z-score + exponentially weighted Gaussian on all columns.
    method
        One of :data:`METHODS`.
    calibration
        Keyword arguments of every member's :class:`ScoreCalibrator`.
    calibration_fraction
        Share of the rows held out for calibration in :meth:`fit` (batch members).
    gate
        Combined score at or above which rows are not learned online.
    calibration_gate
        Combined score at or above which rows are learned by the members but kept out of
        the calibrators' reference: calibration is against recent *normal* scores, and a
        reference full of past anomalies would make the next one look ordinary.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ens = Ensemble(calibration={"window": 500})
    >>> _ = ens.learn_many(rng.normal(size=(500, 2)))
    >>> s = ens.score_many([[0.0, 0.0], [6.0, -6.0]])
    >>> bool(0 <= s[0] < 0.9 < s[1] <= 1)
    True
    >>> ens.member_scores([[6.0, -6.0]]).shape
    (1, 2)
    """

    name = "ensemble"

    def __init__(self, members: Sequence[Any] | None = None, method: str = "mean",
                 calibration: dict[str, Any] | None = None,
                 calibration_fraction: float = 0.2, gate: float | None = None,
                 calibration_gate: float | None = None) -> None:
        self.members = members
        self.method = method
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.gate = gate
        self.calibration_gate = calibration_gate

    # -- layout ---------------------------------------------------------------------------
    def _specs(self) -> list[dict[str, Any]]:
        members = self.members
        if members is None:
            from detectors.online import EWGaussian, RobustZScore

            members = [{"detector": RobustZScore(), "name": "robust_zscore"},
                       {"detector": EWGaussian(), "name": "ew_gaussian"}]
        if not members:
            raise ValueError("an ensemble needs at least one member")
        return [_member_spec(m, i) for i, m in enumerate(members)]

    @property
    def online(self) -> bool:  # type: ignore[override]
        return all(s["detector"].online for s in self._specs())

    @property
    def json_state(self) -> bool:  # type: ignore[override]
        return all(s["detector"].json_state for s in self._specs())

    def _init_members(self, d: int) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}")
        specs = self._specs()
        self.member_names_ = [s["name"] for s in specs]
        self.columns_ = []
        for s in specs:
            cols = list(range(d)) if s["columns"] is None else s["columns"]
            if any(not -d <= c < d for c in cols):
                raise ValueError(f"member {s['name']!r}: columns {cols} out of range for "
                                 f"{d} features")
            self.columns_.append([c % d for c in cols])
        self.detectors_ = [s["detector"].clone() for s in specs]
        self.calibrators_ = [ScoreCalibrator(**(self.calibration or {})) for _ in specs]
        self.weights_ = np.array([s["weight"] for s in specs], dtype=np.float64)

    def _names(self, cols: list[int]) -> list[str]:
        return [self.feature_names_[c] for c in cols]

    # -- learning -------------------------------------------------------------------------
    def _fit(self, X: np.ndarray) -> None:
        self._init_members(X.shape[1])
        if self.online:
            self._learn(X)
            return
        n_cal = round(self.calibration_fraction * len(X))
        n_cal = min(max(n_cal, 1), len(X) - 1) if len(X) > 1 else 0
        train, cal = X[: len(X) - n_cal], X[len(X) - n_cal :]
        for det, calib, cols in zip(self.detectors_, self.calibrators_, self.columns_,
                                    strict=True):
            det.fit(train[:, cols], feature_names=self._names(cols))
            ref = cal if len(cal) else train
            calib.learn_many(det.score_many(ref[:, cols]))
            if det.online and len(cal):
                det.learn_many(cal[:, cols])

    def _learn(self, X: np.ndarray) -> None:
        if not hasattr(self, "detectors_"):
            self._init_members(X.shape[1])
        ready = all(d.is_fitted for d in self.detectors_) and all(
            c.is_fitted for c in self.calibrators_)
        if self.gate is not None and ready:
            X = X[self._combine(self._calibrated(X)) < self.gate]
            if not len(X):
                return
        normal = np.ones(len(X), dtype=bool)
        if self.calibration_gate is not None and ready:
            normal = self._combine(self._calibrated(X)) < self.calibration_gate
        for det, calib, cols in zip(self.detectors_, self.calibrators_, self.columns_,
                                    strict=True):
            Xc = X[:, cols]
            if not det.is_fitted:
                # Cold start: the first batch is learned, then scored in-sample to seed
                # the calibrator (prequential from the next batch on).
                det.learn_many(Xc, feature_names=self._names(cols))
                calib.learn_many(det.score_many(Xc))
                continue
            calib.learn_many(det.score_many(Xc[normal]))
            det.learn_many(Xc)

    def fit_weights(self, X: Any, y: Any, metric: str = "average_precision") -> Ensemble:
        """Weight members by their validation quality on labelled ``X`` (1 = anomaly).

        The weight is ``max(metric - baseline, 0)`` (baseline: 0.5 for ROC AUC, the anomaly
        rate for average precision), so a member no better than chance gets no say.
        """
        from detectors import metrics

        X = self._check_input(X)
        y = np.asarray(y).astype(bool)
        cal = self._calibrated(X)
        w = []
        for j in range(cal.shape[1]):
            if metric == "roc_auc":
                w.append(max(metrics.roc_auc(y, cal[:, j]) - 0.5, 0.0))
            elif metric == "average_precision":
                w.append(max(metrics.average_precision(y, cal[:, j]) - y.mean(), 0.0))
            else:
                raise ValueError("metric must be 'roc_auc' or 'average_precision'")
        w_arr = np.asarray(w)
        self.weights_ = w_arr / w_arr.sum() if w_arr.sum() > 0 else np.ones(len(w_arr))
        return self

    # -- scoring --------------------------------------------------------------------------
    def member_scores(self, X: Any, calibrated: bool = True) -> np.ndarray:
        """Per-member scores, shape ``(n, n_members)`` (calibrated to [0, 1] by default)."""
        X = self._check_input(X)
        if calibrated:
            return self._calibrated(X)
        return np.column_stack([d.score_many(X[:, c])
                                for d, c in zip(self.detectors_, self.columns_, strict=True)])

    def _calibrated(self, X: np.ndarray, rank: bool = False) -> np.ndarray:
        out = np.empty((len(X), len(self.detectors_)))
        for j, (det, calib, cols) in enumerate(zip(self.detectors_, self.calibrators_,
                                                   self.columns_, strict=True)):
            raw = det.score_many(X[:, cols])
            if rank:
                ref = np.sort(calib.scores_[: min(calib.count_, calib.window)])
                out[:, j] = np.searchsorted(ref, raw, side="left") / max(len(ref), 1)
            else:
                out[:, j] = calib.transform(raw)
        return out

    def _combine(self, cal: np.ndarray) -> np.ndarray:
        if self.method == "max":
            return cal.max(axis=1)
        w = self.weights_ if self.method in ("mean", "weighted", "rank") else None
        return cal @ (w / w.sum()) if w is not None and w.sum() > 0 else cal.mean(axis=1)

    def score_many(self, X: Any) -> np.ndarray:
        X = self._check_input(X)
        return np.clip(self._combine(self._calibrated(X, rank=self.method == "rank")), 0, 1)

    def explain(self, X: Any) -> np.ndarray:
        """Per-feature ratio to normal, the largest over the members that explain.

        Each explaining member's contributions are divided by its typical contribution on
        normal data, so "3.0" means "three times what this feature usually contributes".
        """
        X = self._check_input(X)
        out = np.zeros_like(X)
        explained = False
        for det, cols in zip(self.detectors_, self.columns_, strict=True):
            normal = det.normal_contribution()
            try:
                contrib = det.explain(X[:, cols])
            except NotImplementedError:
                continue
            explained = True
            base = np.ones(len(cols)) if normal is None else np.asarray(normal, dtype=float)
            # A feature with no normal contribution (a time column of the seasonal
            # profile) contributes nothing, not 0/0.
            ratio = np.where(base > 0, np.abs(contrib) / np.where(base > 0, base, 1.0), 0.0)
            out[:, cols] = np.maximum(out[:, cols], ratio)
        if not explained:
            raise NotImplementedError("no member of this ensemble explains its scores")
        return out

    def normal_contribution(self) -> np.ndarray | None:
        return np.ones(self.n_features_in_) if self.is_fitted else None

    def clone(self) -> Ensemble:
        return Ensemble(members=self.members, method=self.method,
                        calibration=self.calibration,
                        calibration_fraction=self.calibration_fraction, gate=self.gate,
                        calibration_gate=self.calibration_gate)

    @property
    def members_(self) -> dict[str, Detector]:
        """Fitted member detectors by name."""
        return dict(zip(self.member_names_, self.detectors_, strict=True))


def default_ensemble(source: str, *, n_features: int | None = None,
                     time_columns: Sequence[int] | None = (1, 2, 3, 4)) -> Ensemble:
    """The ensemble the pipeline uses for ``source`` unless configured otherwise.

    ``"sensors"`` — one per sensor, online, one reading at a time, JSON state
    (:meth:`Detector.to_state` / :meth:`Detector.from_state`). Expected features per
    reading: column 0 the stationary value (first difference, or the raw value when the
    series is stationary), then ``time_columns`` = hour sin, hour cos, day-of-week sin,
    day-of-week cos (``time_columns=None`` for value-only input). Members:

    * ``zscore``: robust z-score of the value over the last 288 readings (a day at 5 min);
    * ``seasonal``: the value against its hour x day-of-week slot (cyclic time columns);
    * ``gaussian``: exponentially weighted Gaussian over value and time encoding (catches a
      value that is normal in general but not at this time of day);

    combined with ``"max"`` of the calibrated scores (one convinced member is enough).

    ``"connections"`` — one per source (or one global), online, numpy-only, on the numeric
    connection features (heavy-tailed counts log-scaled, categoricals one-hot, as
    ``windowing`` produces): Half-Space Trees, LODA and an exponentially weighted Gaussian,
    averaged. Its state is JSON too, but large: use :meth:`Detector.save` for checkpoints.

    >>> ens = default_ensemble("sensors")
    >>> [m["name"] for m in ens.members]
    ['zscore', 'seasonal', 'gaussian']
    """
    from detectors.online import LODA, EWGaussian, HalfSpaceTrees, RobustZScore, SeasonalProfile

    if source == "sensors":
        members: list[dict[str, Any]] = [
            {"detector": RobustZScore(window=288), "columns": [0], "name": "zscore"},
        ]
        if time_columns is not None:
            tcols = [int(c) for c in time_columns]
            members.append({
                "detector": SeasonalProfile(time_encoding="cyclic",
                                            time_columns=tuple(range(1, len(tcols) + 1)),
                                            per_slot=12, window=1008),
                "columns": [0, *tcols], "name": "seasonal"})
            members.append({"detector": EWGaussian(alpha=0.002), "columns": [0, *tcols],
                            "name": "gaussian"})
        else:
            members.append({"detector": EWGaussian(alpha=0.002), "columns": [0],
                            "name": "gaussian"})
        return Ensemble(members=members, method="max",
                        calibration={"window": 1000, "tail_quantile": 0.95})
    if source == "connections":
        return Ensemble(
            members=[
                {"detector": HalfSpaceTrees(n_trees=25, height=10, window_size=1000),
                 "name": "hst"},
                {"detector": LODA(n_projections=100, decay=1e-5), "name": "loda"},
                {"detector": EWGaussian(alpha=1e-3, shrinkage=1e-2), "name": "gaussian"},
            ],
            method="mean",
            calibration={"window": 5000, "tail_quantile": 0.98},
        )
    raise ValueError(f"unknown source {source!r}: 'sensors' or 'connections'")


