"""Fully connected autoencoder; score = squared reconstruction error."""


from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors.deep._nets import latent_size, mlp
from detectors.deep.base import TorchDetector

__all__ = ["Autoencoder", "AutoencoderNet"]


def AutoencoderNet(d: int, hidden: Sequence[int], latent: int) -> Any:  # noqa: N802
    """Encoder ``d -> hidden -> latent`` and a mirrored decoder, as one module."""
    from torch import nn

    class _AE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = mlp([d, *hidden, latent])
            self.decoder = mlp([latent, *reversed(hidden), d])

        def forward(self, x: Any) -> Any:
            return self.decoder(self.encoder(x))

    return _AE()


class Autoencoder(TorchDetector):
    """Autoencoder trained on normal data; anomalies are reconstructed badly.

    Score = sum over features of the squared reconstruction error on standardised
    features; :meth:`explain` returns those per-feature terms (which features were worst
    reconstructed).

    Parameters
    ----------
    hidden
        Widths of the encoder's hidden layers (the decoder mirrors them).
    latent_dim
        Bottleneck width (capped at half the number of features).
    epochs, batch_size, lr, weight_decay
        Adam training.
    validation_fraction, patience
        Early stopping on the validation loss.
    random_state
        Seed of initialisation, split and shuffling.
    device
        ``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"``.
    progress
        Show a tqdm bar (``None``: only on a terminal).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = rng.normal(size=(400, 1))
    >>> X = np.hstack([t, -t, 2 * t, 0.5 * t]) + 0.05 * rng.normal(size=(400, 4))
    >>> det = Autoencoder(hidden=(8,), latent_dim=1, epochs=30).fit(X)
    >>> det.score_one([1, -1, 2, 0.5]) < det.score_one([1, 1, 2, 0.5])
    True
    >>> sorted(det.training_report_)[:3]
    ['best_val_loss', 'device', 'epochs']
    """

    name = "autoencoder"

    def __init__(self, hidden: Sequence[int] = (64, 32), latent_dim: int = 8,
                 epochs: int = 100, batch_size: int = 256, lr: float = 1e-3,
                 weight_decay: float = 1e-5, validation_fraction: float = 0.1,
                 patience: int = 8, random_state: int | None = 0, device: str = "auto",
                 progress: bool | None = None) -> None:
        self.hidden = hidden
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    def _build_module(self, d: int) -> Any:
        return AutoencoderNet(d, list(self.hidden), latent_size(self.latent_dim, d))

    def _loss(self, module: Any, xb: Any) -> Any:
        return ((module(xb) - xb) ** 2).mean()

    def _row_errors(self, module: Any, xb: Any) -> Any:
        return (module(xb) - xb) ** 2

    def encode(self, X: Any) -> np.ndarray:
        """Latent codes of ``X``."""
        import torch

        X = self._check_input(X)
        Z = torch.from_numpy(((X - self.mean_) / self.scale_).astype(np.float32))
        module, device = self._device_module()
        with torch.no_grad():
            return module.encoder(Z.to(device)).double().cpu().numpy()
