"""Ensembles of calibrated detectors, and the default ensemble per event source."""


from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from detectors.base import Detector, check_matrix
from detectors.calibration import BodyTailCalibrator, PassThroughCalibrator, ScoreCalibrator

__all__ = [
    "CALIBRATORS",
    "METHODS",
    "Ensemble",
    "connection_ensemble",
    "default_ensemble",
    "sensor_ensemble",
]

METHODS = ("mean", "max", "min_p", "fisher", "rank", "weighted")


#: Calibrator kinds a member's ``calibration`` may ask for (``"kind"``, default empirical).
CALIBRATORS = {"empirical": ScoreCalibrator, "body_tail": BodyTailCalibrator,
               "as_is": PassThroughCalibrator}


def _make_calibrator(options: dict[str, Any]) -> ScoreCalibrator | BodyTailCalibrator:
    options = dict(options)
    kind = options.pop("kind", "empirical")
    if kind not in CALIBRATORS:
        raise ValueError(f"calibration kind must be one of {sorted(CALIBRATORS)}, not {kind!r}")
    return CALIBRATORS[kind](**options)


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
        "calibration": dict(m.get("calibration") or {}),
    }


class Ensemble(Detector):
    """Several detectors, each behind its own :class:`ScoreCalibrator`, combined in [0, 1].

    Every member sees its own ``columns`` of the input (all by default), its raw score is
    calibrated against its recent scores on normal data, and the calibrated scores are
    combined with ``method``:

    * ``"mean"``: weighted mean (member ``weight``);
    * ``"max"``: the most alarmed member decides;
    * ``"min_p"``: the most alarmed member decides, Bonferroni-corrected: ``1 - min(1,
      min_j p_j / w_j)`` with ``p_j = 1 - s_j`` and ``w_j`` the member's share of the
      weights (``1 / m`` by default), so the members together raise no more false alarms
      at a threshold than one member does; a small weight makes a member speak alone
      only when it is very sure;
    * ``"fisher"``: Fisher's method, ``-2 sum_j ln p_j`` against a chi-square with
      ``2m`` degrees of freedom: members that are all somewhat alarmed add up;
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
        Detectors, or dicts ``{"detector", "columns", "name", "weight", "calibration"}``
        (``calibration``: this member's calibrator arguments over the ensemble's, e.g.
        an analytic ``prior`` for a z-score member).
        ``None`` = robust z-score + exponentially weighted Gaussian on all columns.
    method
        One of :data:`METHODS`.
    calibration
        Keyword arguments of every member's calibrator; ``"kind"`` picks it from
        :data:`CALIBRATORS` (default ``"empirical"``: :class:`ScoreCalibrator`;
        ``"body_tail"``: :class:`BodyTailCalibrator`, whose tail ignores its reference's
        own tail, for references that may hold missed anomalies; ``"as_is"``:
        :class:`PassThroughCalibrator`, for members whose score is already calibrated).
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
        self.calibrators_ = [_make_calibrator({**(self.calibration or {}), **s["calibration"]})
                             for s in specs]
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

    def learn_many(self, X: Any, feature_names: Sequence[str] | None = None, *,
                   raw_scores: Any = None) -> Ensemble:
        """Learn ``X`` (online ensembles), prequentially.

        ``raw_scores``: the members' raw scores of ``X`` from just before this call
        (:meth:`member_scores` with ``calibrated=False``), when the caller already scored
        ``X``: the calibrators then learn them instead of scoring ``X`` again.
        """
        self._raw_scores = None if raw_scores is None else np.asarray(raw_scores, np.float64)
        try:
            super().learn_many(X, feature_names=feature_names)
        finally:
            self._raw_scores = None
        return self

    def _learn(self, X: np.ndarray) -> None:
        if not hasattr(self, "detectors_"):
            self._init_members(X.shape[1])
        ready = all(d.is_fitted for d in self.detectors_) and all(
            c.is_fitted for c in self.calibrators_)
        raw = getattr(self, "_raw_scores", None)
        if ready and raw is None:
            raw = self.member_scores(X, calibrated=False)
        if raw is not None and raw.shape != (len(X), len(self.detectors_)):
            raise ValueError(f"raw_scores must have shape ({len(X)}, {len(self.detectors_)})")
        if self.gate is not None and ready:
            keep = self.combine(raw) < self.gate
            X, raw = X[keep], raw[keep]
            if not len(X):
                return
        normal = np.ones(len(X), dtype=bool)
        if self.calibration_gate is not None and ready:
            normal = self.combine(raw) < self.calibration_gate
        for j, (det, calib, cols) in enumerate(zip(self.detectors_, self.calibrators_,
                                                   self.columns_, strict=True)):
            Xc = X[:, cols]
            if not det.is_fitted:
                # Cold start: the first batch is learned, then scored in-sample to seed
                # a calibrator without a prior (prequential from the next batch on). One
                # with a prior needs no seed, and in-sample scores of a detector that
                # has seen a handful of rows would only put outliers in its reference.
                det.learn_many(Xc, feature_names=self._names(cols))
                if not calib.is_fitted:
                    calib.learn_many(det.score_many(Xc))
                continue
            calib.learn_many(raw[normal, j] if raw is not None else det.score_many(Xc[normal]))
            det.learn_many(Xc)

    # -- driven from outside -------------------------------------------------------------
    # A caller with its own learning rules (the connection agent gates what the members
    # learn and what the calibrators learn separately) uses these instead of learn_many.
    def learn_members(self, X: Any, feature_names: Sequence[str] | None = None) -> Ensemble:
        """The members learn ``X``; the calibrators are left alone."""
        X = check_matrix(X, self.n_features_in_ if self.is_fitted else None)
        if not len(X):
            return self
        if not self.is_fitted:
            self._set_features(X, feature_names)
        self._observe(X)
        if not hasattr(self, "detectors_"):
            self._init_members(X.shape[1])
        for det, cols in zip(self.detectors_, self.columns_, strict=True):
            det.learn_many(X[:, cols], feature_names=self._names(cols))
        return self

    def learn_calibration(self, raw: Any) -> Ensemble:
        """Each calibrator learns its column of raw member scores ``(n, n_members)``."""
        raw = self._check_raw(raw)
        for j, calib in enumerate(self.calibrators_):
            calib.learn_many(raw[:, j])
        return self

    def fit_calibration(self, raw: Any) -> Ensemble:
        """Each calibrator forgets its reference and takes its column of ``raw``."""
        raw = self._check_raw(raw)
        for j, calib in enumerate(self.calibrators_):
            calib.fit(raw[:, j])
        return self

    def combine(self, raw: Any) -> np.ndarray:
        """Raw member scores ``(n, n_members)`` -> the ensemble's score in [0, 1]."""
        return np.clip(self._combine(self.calibrate(raw)), 0, 1)

    def calibrate(self, raw: Any) -> np.ndarray:
        """Raw member scores ``(n, n_members)`` -> calibrated member scores in [0, 1]."""
        raw = self._check_raw(raw)
        return np.column_stack([c.transform(raw[:, j]) for j, c in enumerate(self.calibrators_)])

    def score_parts(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(raw, calibrated, combined)``: the members' raw and calibrated scores
        ``(n, n_members)`` and the ensemble's score ``(n,)``, computed once (a caller that
        publishes member scores and then learns with ``raw_scores=`` needs all three)."""
        raw = self.member_scores(X, calibrated=False)
        calibrated = self.calibrate(raw)
        return raw, calibrated, self.combine_calibrated(calibrated)

    def combine_calibrated(self, calibrated: Any) -> np.ndarray:
        """Calibrated member scores (:meth:`member_scores`) -> the ensemble's score."""
        return np.clip(self._combine(self._check_raw(calibrated)), 0, 1)

    def _check_raw(self, raw: Any) -> np.ndarray:
        if not hasattr(self, "calibrators_"):
            raise ValueError("the ensemble has no members yet: learn_members first")
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != len(self.calibrators_):
            raise ValueError(f"raw member scores must have shape (n, {len(self.calibrators_)})"
                             f", got {raw.shape}")
        return raw

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
            if rank and getattr(calib, "count_", 0):
                ref = np.sort(calib.scores_[: min(calib.count_, calib.window)])
                out[:, j] = np.searchsorted(ref, raw, side="left") / max(len(ref), 1)
            else:
                out[:, j] = calib.transform(raw)
        return out

    def _combine(self, cal: np.ndarray) -> np.ndarray:
        if self.method == "max":
            return cal.max(axis=1)
        if self.method == "min_p":
            total = self.weights_.sum()
            share = self.weights_ / total if total > 0 else np.ones(cal.shape[1]) / cal.shape[1]
            # A member with no weight has no say (its p counts as 1).
            p = np.where(share > 0, np.clip(1.0 - cal, 0.0, 1.0) / np.maximum(share, 1e-300), 1.0)
            return 1.0 - np.minimum(1.0, p.min(axis=1))
        if self.method == "fisher":
            p = np.clip(1.0 - cal, 1e-300, 1.0)
            return stats.chi2.cdf(-2.0 * np.log(p).sum(axis=1), 2 * cal.shape[1])
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


def default_ensemble(source: str, **options: Any) -> Ensemble:
    """The ensemble the pipeline uses for ``source`` unless configured otherwise.

    ``options`` are those of :func:`sensor_ensemble` or :func:`connection_ensemble`.

    >>> ens = default_ensemble("sensors")
    >>> [m["name"] for m in ens.members], ens.method
    (['zscore', 'seasonal'], 'min_p')
    >>> [m["name"] for m in default_ensemble("connections").members]
    ['marginal_tail', 'half_space_trees']
    """
    if source == "sensors":
        return sensor_ensemble(**options)
    if source == "connections":
        return connection_ensemble(**options)
    raise ValueError(f"unknown source {source!r}: 'sensors' or 'connections'")


def sensor_ensemble(*, value_columns: Sequence[int] | None = None,
                    time_columns: Sequence[int] | None = (1, 2, 3, 4),
                    prior_until: int = 400,
                    calibration_gate: float | None = 0.999) -> Ensemble:
    """The sensor agent's ensemble: one per sensor, online, JSON state.

    Expected features per reading: ``value_columns`` (default: column 0) hold the
    stationary value, already a robust z-score (windowing's ``value_z``), and
    ``time_columns`` hour sin, hour cos, day-of-week sin, day-of-week cos (``None`` for
    value-only input). Members:

    * ``zscore``: robust z-score of the value over the last 288 readings (a day at 5 min),
      spread floored at 0.5 so a flat stretch does not make the next wiggle "infinitely"
      rare. Its score is z-like, so its calibrator starts from the analytic half-normal
      prior (alert-ready from the first readings) and switches to the member's own
      empirical CDF with a GPD tail after ``prior_until`` reference scores.
    * ``seasonal`` (only with time columns): the value against the median of its hour x
      day-of-week slot's last 24 values (the hour of day pooled over the week while the
      slot has fewer than 12), spread floored at the global spread of the last 288
      readings: it catches a value ordinary in general but not at this time of the week.
      Calibrated empirically only: the z of a slot with a handful of values is far
      heavier-tailed than a normal one, so this member has its say once its own
      reference has a tail (a few hundred readings).

    Scores at or above ``calibration_gate`` stay out of the calibrators' references.
    Combined with ``"min_p"``: the most alarmed member decides, Bonferroni-corrected, so
    two members raise no more false alarms than one.
    """
    from detectors.online import RobustZScore, SeasonalProfile

    vcols = [0] if value_columns is None else [int(c) for c in value_columns]
    members: list[dict[str, Any]] = [
        {"detector": RobustZScore(window=288, min_scale=0.5), "columns": vcols,
         "name": "zscore",
         "calibration": {"prior": "half_normal", "prior_until": prior_until}},
    ]
    if time_columns is not None and len(time_columns) == 4:
        members.append({
            "detector": SeasonalProfile(
                time_encoding="cyclic",
                time_columns=tuple(range(len(vcols), len(vcols) + 4)),
                per_slot=24, min_count=12, window=288, min_spread_ratio=1.0),
            "columns": [*vcols, *(int(c) for c in time_columns)], "name": "seasonal"})
    return Ensemble(members=members, method="min_p",
                    calibration={"window": 1000, "tail_quantile": 0.95},
                    calibration_gate=calibration_gate)


def connection_ensemble(*, groups: Sequence[Sequence[int]] | None = None,
                        capacity: float = 1000.0, half_life: float = 100_000.0,
                        constant_scale: float = 0.1, calibration_window: int = 2000,
                        trees_weight: float = 0.1) -> Ensemble:
    """The connection agent's ensemble: one per input partition, online, numpy-only.

    Input: the scaled connection features (heavy-tailed counts log-scaled, categoricals
    one-hot, as ``windowing`` produces, unclipped). ``groups`` are column groups that
    measure the same thing (``None``: every column its own group); columns in no group are
    not scored. Members, on the grouped columns:

    * ``marginal_tail``: per-feature upper-tail surprise ``-ln P(X >= x)`` against a
      reference of ``capacity`` weight forgetting with ``half_life`` learned rows, summed
      over groups (the most surprising feature of a group counts): values normal
      connections do not reach;
    * ``half_space_trees``: Half-Space Trees (10 trees of depth 8, reference window of
      ``capacity`` rows): sparse regions of the joint feature space, combinations of
      values that are each ordinary.

    Both are calibrated with a :class:`BodyTailCalibrator` (its tail comes from the body
    of the reference only, so a missed attack in the reference does not hide the next
    one) and combined with ``"min_p"``, the trees weighted ``trees_weight``: they speak
    alone only when very sure. Joint-density members are noisy on network traffic
    (bursty, many modes): measured on the simulator, at equal weight Half-Space Trees,
    LODA or a Gaussian each added tens of false alerts; at 0.1 the trees add none.
    The caller drives learning and calibration (:meth:`Ensemble.learn_members`,
    :meth:`Ensemble.learn_calibration`); the JSON state is a histogram per feature plus
    the trees' mass profiles (about 300 kB).
    """
    from detectors.marginal_tail import MarginalTail
    from detectors.online import HalfSpaceTrees

    if not 0 < trees_weight < 1:
        raise ValueError("trees_weight must be in (0, 1)")
    columns = None if groups is None else sorted({int(c) for g in groups for c in g})
    return Ensemble(
        members=[
            {"detector": MarginalTail(groups=groups, tails="upper", resolution=1e-3,
                                      prior=1.0, capacity=float(max(capacity, 1)),
                                      half_life=half_life, tail_quantile=0.9,
                                      min_scale=0.02, constant_scale=constant_scale),
             "name": "marginal_tail", "weight": 1.0 - trees_weight},
            {"detector": HalfSpaceTrees(n_trees=10, height=8,
                                        window_size=int(max(capacity, 1))),
             "columns": columns, "name": "half_space_trees", "weight": trees_weight},
        ],
        method="min_p",
        calibration={"kind": "body_tail", "window": calibration_window},
    )
