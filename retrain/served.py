"""A trained connection model as the connection agent serves it.

A :class:`ServedConnectionModel` is a fitted detector together with what it needs to be
used on a live connection and trusted:

* its own :class:`~windowing.ConnectionFeaturePipeline`, fitted on its training rows and
  used statelessly (:meth:`~windowing.ConnectionFeaturePipeline.transform_fields`): every
  partition of the stream scales its features with its own bootstrap bounds, a trained
  model with the bounds it was trained under;
* a :class:`~detectors.calibration.ScoreCalibrator` over the raw scores of held-out normal
  training rows, so its score is a tail probability like every other score in the stream;
* a version that names it in every score record it contributes to.

A classifier over known classes (``open_set_classifier``) also gives a *verdict* per
connection: the known class it is confident about, with its probability, or ``unknown``.

It is saved as a detector folder (:func:`detectors.persistence.save_detector`): the
pipeline, the calibration and the version go into the manifest's ``extra``, every file's
sha256 is checked before anything is loaded.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detectors import Detector, create
from detectors.calibration import ScoreCalibrator
from detectors.persistence import load_detector, read_manifest, save_detector
from windowing import CATEGORICAL_FIELDS, NUMERIC_FIELDS, ConnectionFeaturePipeline

__all__ = ["KIND", "ServedConnectionModel", "Verdict", "train_connection_model"]

#: The manifest's ``extra.kind`` of a served connection model.
KIND = "served_connection_model"
#: Share of the normal training rows held out to calibrate the model's scores.
CALIBRATION_FRACTION = 0.2
_MAX_CALIBRATION_ROWS = 20_000


@dataclass(frozen=True)
class Verdict:
    """What a classifier over known classes says of one connection."""

    label: str
    probability: float

    @property
    def known(self) -> bool:
        return self.label != "unknown"

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "probability": round(self.probability, 6)}


@dataclass
class ServedConnectionModel:
    """A fitted connection detector, its feature bounds, its calibration and its version.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 600
    >>> frame = pd.DataFrame({f: rng.exponential(1.0, n) for f in NUMERIC_FIELDS})
    >>> frame = frame.assign(protocol_type="tcp", service="http", flag="SF", label="normal")
    >>> model = train_connection_model(frame, "robust_zscore", seed=0)
    >>> odd = frame.head(2).copy()
    >>> odd.loc[odd.index[1], "src_bytes"] = 1e9
    >>> p = model.score(model.features_of_frame(odd))
    >>> bool(p[0] < 0.99 < p[1] < 1.0), model.version.startswith("robust_zscore@")
    (True, True)
    """

    detector: Detector
    pipeline: ConnectionFeaturePipeline
    calibrator: ScoreCalibrator
    version: str
    trained: Mapping[str, Any]

    # -- features -------------------------------------------------------------------------
    def features(
        self, numeric: np.ndarray, categories: Sequence[Mapping[str, str]]
    ) -> np.ndarray:
        """The model's feature rows for connections given as their unscaled numeric fields
        (``NUMERIC_FIELDS`` order) and categories."""
        return self.pipeline.transform_fields(numeric, categories)

    def features_of_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Feature rows of KDD-format rows, or of raw connections in arrival order."""
        return self.features(
            self.pipeline.numeric_fields(frame), _categories(frame)
        )

    # -- scoring --------------------------------------------------------------------------
    def score(self, X: np.ndarray) -> np.ndarray:
        """Calibrated score of each row in [0, 1): one batched pass of the detector."""
        raw = self.detector.score_many(X)
        return np.asarray(self.calibrator.transform(raw), dtype=np.float64)

    @property
    def gives_verdicts(self) -> bool:
        return hasattr(self.detector, "predict_verdict")

    def verdicts(self, X: np.ndarray) -> list[Verdict] | None:
        """Per row, the known class the classifier is confident about or ``unknown``;
        None for a detector that knows no classes."""
        if not self.gives_verdicts:
            return None
        labels, probs = self.detector.predict_verdict(X)  # type: ignore[attr-defined]
        return [Verdict(str(lab), float(p)) for lab, p in zip(labels, probs, strict=True)]

    # -- files ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder; returns its manifest path."""
        extra = {
            "kind": KIND,
            "version": self.version,
            "pipeline": self.pipeline.to_state(),
            "calibrator": self.calibrator.to_state(),
            "trained": dict(self.trained),
        }
        return save_detector(self.detector, path, extra=extra)

    @classmethod
    def load(cls, path: str | Path) -> ServedConnectionModel:
        """Load a model folder, every file checked against its manifest's sha256 first."""
        manifest = read_manifest(path)
        extra = manifest.get("extra") or {}
        if extra.get("kind") != KIND:
            raise ValueError(f"{path}: not a served connection model (kind {extra.get('kind')!r})")
        return cls(
            detector=load_detector(path, allow_pickle=False),
            pipeline=ConnectionFeaturePipeline.from_state(extra["pipeline"]),
            calibrator=ScoreCalibrator.from_state(extra["calibrator"]),
            version=str(extra["version"]),
            trained=extra.get("trained", {}),
        )


def _categories(frame: pd.DataFrame) -> list[dict[str, str]]:
    return frame[list(CATEGORICAL_FIELDS)].astype(str).to_dict("records")  # type: ignore[return-value]


def _accepts_labels(detector: Detector) -> bool:
    import inspect

    return "y" in inspect.signature(detector.fit).parameters


def train_connection_model(
    frame: pd.DataFrame,
    detector: str,
    params: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> ServedConnectionModel:
    """Train a served connection model on labelled connections: KDD-format rows, or raw
    connections in arrival order (their traffic fields are derived), with a ``label``
    column.

    The feature bounds and the detector's normal model come from the ``normal`` rows
    (a fifth of them, at most 20,000, held out to calibrate the scores); a detector whose
    ``fit`` takes labels (``open_set_classifier``) also learns every attack class present.
    """
    say = progress or (lambda _msg: None)
    if "label" not in frame:
        raise ValueError("training rows need a 'label' column ('normal' or an attack name)")
    labels = frame["label"].astype(str).to_numpy()
    normal = np.flatnonzero(labels == "normal")
    if normal.size < 10:
        raise ValueError(f"{normal.size} normal rows: at least 10 are needed to train on")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(normal)
    n_cal = min(max(round(normal.size * CALIBRATION_FRACTION), 1), _MAX_CALIBRATION_ROWS)
    cal_rows, fit_normal = np.sort(perm[:n_cal]), np.sort(perm[n_cal:])

    t0 = time.perf_counter()
    # Traffic fields are derived over every row in order, before any row is set aside.
    numeric = ConnectionFeaturePipeline().numeric_fields(frame)
    cats = _categories(frame)
    rows = pd.DataFrame(numeric, columns=list(NUMERIC_FIELDS)).assign(
        **{c: frame[c].astype(str).to_numpy() for c in CATEGORICAL_FIELDS}
    )
    pipeline = ConnectionFeaturePipeline().fit(rows.iloc[fit_normal])
    X = pipeline.transform_fields(numeric, cats)
    names = list(pipeline.names)

    det = create(detector, **dict(params or {}))
    if _accepts_labels(det):
        train_rows = np.setdiff1d(np.arange(len(frame)), cal_rows)
        say(f"training {detector} on {train_rows.size:,} rows, {len(set(labels[train_rows]))} "
            f"classes")
        det.fit(X[train_rows], y=labels[train_rows], feature_names=names)  # type: ignore[call-arg]
    else:
        train_rows = fit_normal
        say(f"training {detector} on {train_rows.size:,} normal rows")
        det.fit(X[train_rows], feature_names=names)
    calibrator = ScoreCalibrator(window=int(cal_rows.size)).fit(det.score_many(X[cal_rows]))
    seconds = time.perf_counter() - t0
    trained = {
        "detector": detector,
        "params": dict(params or {}),
        "rows": int(train_rows.size),
        "calibration_rows": int(cal_rows.size),
        "classes": sorted(set(labels[train_rows].tolist())),
        "seconds": round(seconds, 3),
        "seed": seed,
    }
    digest = hashlib.sha256(
        json.dumps(trained, sort_keys=True).encode() + X[train_rows[:1000]].tobytes()
    ).hexdigest()[:12]
    say(f"trained in {seconds:.1f} s")
    return ServedConnectionModel(det, pipeline, calibrator, f"{detector}@{digest}", trained)
