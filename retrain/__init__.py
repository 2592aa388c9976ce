"""Drift monitors, training buffers, background training, model registry, hot swap.

Present so far:

* the drift monitors (:mod:`retrain.drift`, :mod:`retrain.feature_drift`,
  :mod:`retrain.score_drift`, :mod:`retrain.exceedance`, :mod:`retrain.monitors`): pure
  logic, no I/O; a monitor takes events and returns a :class:`DriftReport` when its stream
  drifted, and the stream code publishes it (``drift_detected``). Exported here.
* :mod:`retrain.registry` (MLflow model registry: candidates, the ``champion`` alias,
  promotion rule, rollback, verified loading) and :mod:`retrain.served`. Not imported
  here: the registry pulls in MLflow (about 2 s), which importing ``retrain`` alone should
  not cost.

>>> import retrain
>>> sorted(m.name for m in (retrain.FeatureDriftMonitor, retrain.ScoreDriftMonitor))
['feature_ks', 'score_ph']
"""

from retrain.drift import DriftMonitor, DriftReport, check_alpha
from retrain.exceedance import ExceedanceMonitor
from retrain.feature_drift import FeatureDriftMonitor
from retrain.monitors import DriftSettings, ModelDriftMonitors
from retrain.page_hinkley import PageHinkley, cusum_arl, threshold_for_arl
from retrain.score_drift import ScoreDriftMonitor, probit_scores

__all__ = [
    "DriftMonitor",
    "DriftReport",
    "DriftSettings",
    "ExceedanceMonitor",
    "FeatureDriftMonitor",
    "ModelDriftMonitors",
    "PageHinkley",
    "ScoreDriftMonitor",
    "check_alpha",
    "cusum_arl",
    "probit_scores",
    "threshold_for_arl",
]
