"""Anomaly detectors: one protocol (fit / learn_many / score_many), many models.

No Faust, Kafka or InfluxDB here: plain numpy / scikit-learn / river / torch.
"""

from detectors.base import Detector, NotFittedError, check_matrix
from detectors.online import RobustZScore
from detectors.registry import available, create, get, register

register(RobustZScore)

__all__ = [
    "Detector",
    "NotFittedError",
    "RobustZScore",
    "available",
    "check_matrix",
    "create",
    "get",
    "register",
]
