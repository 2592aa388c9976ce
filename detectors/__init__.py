"""Anomaly detectors: one protocol (fit / learn_many / score_many), many models.

No Faust, Kafka or InfluxDB here: plain numpy / scikit-learn / river / torch.

>>> import detectors
>>> "autoencoder" in detectors.available() and "ensemble" in detectors.available()
True
"""

from detectors.base import Detector, NotFittedError, check_matrix
from detectors.batch import (
    GaussianDensity,
    IsolationForest,
    KMeansDistance,
    LOFNovelty,
    OneClassSVM,
    PCAReconstruction,
)
from detectors.calibration import BodyTailCalibrator, ScoreCalibrator
from detectors.deep import (
    VAE,
    Autoencoder,
    BiGAN,
    ClusteredAutoencoder,
    NoveltyAutoencoder,
    OpenSetClassifier,
    Seq2SeqLSTM,
)
from detectors.ensemble import Ensemble, default_ensemble
from detectors.explain import top_k_contributions
from detectors.marginal_tail import MarginalTail
from detectors.online import (
    LODA,
    EWGaussian,
    HalfSpaceTrees,
    KNNLikelihood,
    OnlineOneClassSVM,
    RobustZScore,
    SeasonalProfile,
)
from detectors.persistence import ManifestError, load_detector, read_manifest
from detectors.registry import available, create, get, register
from detectors.thresholds import SPOT, MeanStdThreshold, QuantileThreshold, SupervisedThreshold

for _cls in (
    RobustZScore, EWGaussian, SeasonalProfile, HalfSpaceTrees, LODA, OnlineOneClassSVM,
    IsolationForest, OneClassSVM, PCAReconstruction, LOFNovelty, KMeansDistance,
    GaussianDensity, Autoencoder, VAE, Seq2SeqLSTM, NoveltyAutoencoder, ClusteredAutoencoder,
    Ensemble, MarginalTail, KNNLikelihood, BiGAN, OpenSetClassifier,
):
    register(_cls)


def load(path: str) -> Detector:
    """Load any saved detector (manifest verified first); see :mod:`detectors.persistence`."""
    return load_detector(path)


__all__ = [
    "LODA",
    "SPOT",
    "VAE",
    "Autoencoder",
    "BiGAN",
    "BodyTailCalibrator",
    "ClusteredAutoencoder",
    "Detector",
    "EWGaussian",
    "Ensemble",
    "GaussianDensity",
    "HalfSpaceTrees",
    "IsolationForest",
    "KMeansDistance",
    "KNNLikelihood",
    "LOFNovelty",
    "ManifestError",
    "MarginalTail",
    "MeanStdThreshold",
    "NotFittedError",
    "NoveltyAutoencoder",
    "OneClassSVM",
    "OnlineOneClassSVM",
    "OpenSetClassifier",
    "PCAReconstruction",
    "QuantileThreshold",
    "RobustZScore",
    "ScoreCalibrator",
    "SeasonalProfile",
    "Seq2SeqLSTM",
    "SupervisedThreshold",
    "available",
    "check_matrix",
    "create",
    "default_ensemble",
    "get",
    "load",
    "read_manifest",
    "register",
    "top_k_contributions",
]
