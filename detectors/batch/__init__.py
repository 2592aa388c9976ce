"""Batch detectors (scikit-learn / numpy): trained with ``fit`` on a window of normal data."""

from detectors.batch.base import BatchDetector
from detectors.batch.gaussian import GaussianDensity
from detectors.batch.isolation_forest import IsolationForest
from detectors.batch.kmeans import KMeansDistance
from detectors.batch.lof import LOFNovelty
from detectors.batch.ocsvm import OneClassSVM
from detectors.batch.pca import PCAReconstruction

__all__ = [
    "BatchDetector",
    "GaussianDensity",
    "IsolationForest",
    "KMeansDistance",
    "LOFNovelty",
    "OneClassSVM",
    "PCAReconstruction",
]
