"""Variational autoencoder scored by reconstruction probability (An & Cho 2015)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors.deep._nets import latent_size, mlp
from detectors.deep.base import TorchDetector

__all__ = ["VAE"]

_LOG2PI = float(np.log(2 * np.pi))


def _vae_net(d: int, hidden: Sequence[int], latent: int) -> Any:
    from torch import nn

    class _VAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            h = list(hidden)
            self.encoder = mlp([d, *h], last_activation=True)
            self.enc_mu = nn.Linear(h[-1], latent)
            self.enc_logvar = nn.Linear(h[-1], latent)
            self.decoder = mlp([latent, *reversed(h)], last_activation=True)
            self.dec_mu = nn.Linear(h[0], d)
            self.dec_logvar = nn.Linear(h[0], d)

        def encode(self, x: Any) -> tuple[Any, Any]:
            h = self.encoder(x)
            return self.enc_mu(h), self.enc_logvar(h).clamp(-10, 6)

        def decode(self, z: Any) -> tuple[Any, Any]:
            h = self.decoder(z)
            # Floor of the decoder variance: a collapsed variance would make every tiny
            # deviation of a near-constant feature look astronomically improbable.
            return self.dec_mu(h), self.dec_logvar(h).clamp(-6, 6)

        def forward(self, x: Any) -> Any:  # pragma: no cover - not used directly
            mu, _ = self.encode(x)
            return self.decode(mu)[0]

    return _VAE()


class VAE(TorchDetector):
    """VAE with a Gaussian decoder; score = negative reconstruction log-probability.

    Following An & Cho, the score is ``-1/L sum_l log p(x | mu_x(z_l), var_x(z_l))`` with
    ``z_l`` drawn from the encoder's posterior: unlike a plain reconstruction error it
    accounts for the decoder's own uncertainty per feature (a feature that is always noisy
    costs less when it deviates). The ``L`` draws use noise fixed by ``random_state``, so
    scores are deterministic and do not depend on the other rows of the batch.
    :meth:`explain` returns the per-feature negative log-probability terms.

    Parameters
    ----------
    hidden, latent_dim, epochs, batch_size, lr, weight_decay, validation_fraction,
    patience, random_state, device, progress
        As in :class:`~detectors.deep.autoencoder.Autoencoder`.
    beta
        Weight of the KL term.
    n_samples
        Posterior draws ``L`` per scored row.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = VAE(hidden=(16,), latent_dim=2, epochs=20).fit(rng.normal(size=(400, 4)))
    >>> det.score_one([0, 0, 0, 0]) < det.score_one([4, -4, 4, -4])
    True
    """

    name = "vae"

    def __init__(self, hidden: Sequence[int] = (64, 32), latent_dim: int = 8, beta: float = 1.0,
                 n_samples: int = 10, epochs: int = 100, batch_size: int = 256,
                 lr: float = 1e-3, weight_decay: float = 1e-5,
                 validation_fraction: float = 0.1, patience: int = 8,
                 random_state: int | None = 0, device: str = "auto",
                 progress: bool | None = None) -> None:
        self.hidden = hidden
        self.latent_dim = latent_dim
        self.beta = beta
        self.n_samples = n_samples
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    @classmethod
    def fast_params(cls) -> dict[str, Any]:
        return {**super().fast_params(), "n_samples": 4}

    def _build_module(self, d: int) -> Any:
        return _vae_net(d, list(self.hidden), latent_size(self.latent_dim, d))

    def _loss(self, module: Any, xb: Any) -> Any:
        import torch

        mu, logvar = module.encode(xb)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        x_mu, x_logvar = module.decode(z)
        nll = 0.5 * (x_logvar + (xb - x_mu) ** 2 / torch.exp(x_logvar) + _LOG2PI)
        kl = -0.5 * (1 + logvar - mu**2 - torch.exp(logvar))
        return nll.sum(dim=1).mean() + self.beta * kl.sum(dim=1).mean()

    def _noise(self, latent: int, device: str) -> Any:
        import torch

        gen = torch.Generator().manual_seed(self._seed() + 1)
        return torch.randn(self.n_samples, latent, generator=gen).to(device)

    def _row_errors(self, module: Any, xb: Any) -> Any:
        import torch

        mu, logvar = module.encode(xb)
        eps = self._noise(mu.shape[1], str(xb.device))
        total = torch.zeros_like(xb)
        for l_idx in range(self.n_samples):
            z = mu + torch.exp(0.5 * logvar) * eps[l_idx]
            x_mu, x_logvar = module.decode(z)
            total += 0.5 * (x_logvar + (xb - x_mu) ** 2 / torch.exp(x_logvar) + _LOG2PI)
        return total / self.n_samples
