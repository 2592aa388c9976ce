"""Online detectors: learn one sample (or a micro-batch) at a time."""

from detectors.online.ew_gaussian import EWGaussian
from detectors.online.hst import HalfSpaceTrees
from detectors.online.knn_likelihood import KNNLikelihood
from detectors.online.loda import LODA
from detectors.online.ocsvm import OnlineOneClassSVM
from detectors.online.robust_zscore import RobustZScore
from detectors.online.seasonal import SeasonalProfile, decode_slot

__all__ = [
    "LODA",
    "EWGaussian",
    "HalfSpaceTrees",
    "KNNLikelihood",
    "OnlineOneClassSVM",
    "RobustZScore",
    "SeasonalProfile",
    "decode_slot",
]
