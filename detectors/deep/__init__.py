"""Deep detectors (PyTorch; CPU by default, CUDA when present)."""

from detectors.deep.autoencoder import Autoencoder
from detectors.deep.base import TorchDetector, resolve_device
from detectors.deep.bigan import BiGAN
from detectors.deep.clustered_ae import ClusteredAutoencoder
from detectors.deep.novelty_ae import NoveltyAutoencoder
from detectors.deep.open_set import OpenSetClassifier
from detectors.deep.seq2seq import Seq2SeqLSTM
from detectors.deep.vae import VAE

__all__ = [
    "VAE",
    "Autoencoder",
    "BiGAN",
    "ClusteredAutoencoder",
    "NoveltyAutoencoder",
    "OpenSetClassifier",
    "Seq2SeqLSTM",
    "TorchDetector",
    "resolve_device",
]
