"""Autoencoder with an additive novelty head and min-max normalised scores (Wu et al.)."""


from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors.deep._nets import latent_size, mlp
from detectors.deep.base import TorchDetector

__all__ = ["NoveltyAutoencoder"]


def _novelty_net(d: int, hidden: Sequence[int], latent: int, head: int) -> Any:
    from torch import nn

    class _Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = mlp([d, *hidden, latent])
            self.decoder = mlp([latent, *reversed(hidden), d])
            # Bias-free head (Deep SVDD's rule): with biases it could map every input to
            # the centre and the novelty term would carry no information.
            self.head = nn.Sequential(nn.Linear(latent, head, bias=False), nn.ReLU(),
                                      nn.Linear(head, head, bias=False))

        def forward(self, x: Any) -> tuple[Any, Any]:
            z = self.encoder(x)
            return self.decoder(z), self.head(z)

    return _Net()


class NoveltyAutoencoder(TorchDetector):
    """Reconstruction error + novelty score, each min-max normalised, added.

    After "One-class anomaly detection via novelty normalization" (Wu et al.): an
    autoencoder is trained jointly with a novelty-scoring head on its latent code. Here the
    head is a bias-free network whose outputs are pulled towards a fixed centre ``c`` (the
    mean head output over the training data after a warm-up), so its distance to ``c`` is
    small for normal codes. Training minimises reconstruction error plus the novelty term
    rescaled in every batch to the reconstruction loss's magnitude (so neither dominates,
    whatever their raw scales). The two terms of the score also live on different scales,
    so each is min-max normalised before they are added, with ``normalization``:

    * ``"train"`` (default): min and max of each term over the training data, fixed after
      fitting; a score then does not depend on which other rows share its micro-batch, as
      the stream agents need (values above 1 mean "beyond anything seen in training");
    * ``"batch"``: min-max within the scored batch, as in the paper (offline evaluation only).

    :meth:`explain` returns the per-feature reconstruction terms, scaled like the score.

    Parameters
    ----------
    head_dim
        Width of the novelty head's output.
    novelty_weight
        Weight of the novelty loss relative to the (normalised) reconstruction loss.
    warmup_epochs
        Autoencoder-only epochs before ``c`` is fixed and the head trains.
    normalization
        ``"train"`` or ``"batch"``.
    hidden, latent_dim, epochs, batch_size, lr, weight_decay, validation_fraction,
    patience, random_state, device, progress
        As in :class:`~detectors.deep.autoencoder.Autoencoder`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = NoveltyAutoencoder(hidden=(16,), latent_dim=2, epochs=20)
    >>> _ = det.fit(rng.normal(size=(400, 4)))
    >>> det.score_one([0, 0, 0, 0]) < det.score_one([5, -5, 5, -5])
    True
    """

    name = "novelty_ae"

    def __init__(self, hidden: Sequence[int] = (64, 32), latent_dim: int = 8,
                 head_dim: int = 8, novelty_weight: float = 1.0, warmup_epochs: int = 5,
                 normalization: str = "train", epochs: int = 100, batch_size: int = 256,
                 lr: float = 1e-3, weight_decay: float = 1e-5,
                 validation_fraction: float = 0.1, patience: int = 8,
                 random_state: int | None = 0, device: str = "auto",
                 progress: bool | None = None) -> None:
        self.hidden = hidden
        self.latent_dim = latent_dim
        self.head_dim = head_dim
        self.novelty_weight = novelty_weight
        self.warmup_epochs = warmup_epochs
        self.normalization = normalization
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
        return {**super().fast_params(), "head_dim": 2, "warmup_epochs": 1}

    def _build_module(self, d: int) -> Any:
        return _novelty_net(d, list(self.hidden), latent_size(self.latent_dim, d),
                            self.head_dim)

    def _fit(self, X: np.ndarray) -> None:
        if self.normalization not in ("train", "batch"):
            raise ValueError("normalization must be 'train' or 'batch'")
        self._phase = "warmup"
        super()._fit(X)

    def _train(self, module: Any, Z: np.ndarray, epochs: int | None = None,
               desc: str | None = None) -> dict[str, Any]:
        import torch

        warm = min(self.warmup_epochs, self.epochs)
        self._phase = "warmup"
        self.center_ = np.zeros(self.head_dim, dtype=np.float32)
        first = super()._train(module, Z, epochs=warm, desc="warm-up") if warm else None
        with torch.no_grad():
            device = next(module.parameters()).device
            _, h = module(torch.from_numpy(Z[:5000]).to(device))
            c = h.mean(dim=0).cpu().numpy()
        # Keep the centre away from 0 so a bias-free head cannot reach it by outputting 0.
        c = np.where(np.abs(c) < 0.1, np.where(c < 0, -0.1, 0.1), c).astype(np.float32)
        self.center_ = c
        self._phase = "joint"
        hist = super()._train(module, Z, epochs=max(self.epochs - warm, 1), desc=desc)
        if first is not None:
            hist["train"] = first["train"] + hist["train"]
        return hist

    def _terms(self, module: Any, xb: Any) -> tuple[Any, Any]:
        import torch

        recon, h = module(xb)
        err = (recon - xb) ** 2
        nov = ((h - torch.as_tensor(self.center_, device=xb.device)) ** 2).sum(dim=1)
        return err, nov

    def _loss(self, module: Any, xb: Any) -> Any:
        err, nov = self._terms(module, xb)
        rec = err.mean()
        if getattr(self, "_phase", "joint") == "warmup":
            return rec
        # Rescaled per batch so the two terms weigh the same whatever their raw scales; the
        # raw reconstruction loss keeps the decoder's gradient well conditioned.
        scale = rec.detach() / (nov.detach().mean() + 1e-6)
        return rec + self.novelty_weight * scale * nov.mean()

    def _after_fit(self, Z: np.ndarray) -> None:
        import torch

        module, device = self._device_module()
        errs, novs = [], []
        with torch.no_grad():
            for start in range(0, len(Z), 8192):
                err, nov = self._terms(module, torch.from_numpy(Z[start : start + 8192])
                                       .to(device))
                errs.append(err.sum(dim=1).double().cpu().numpy())
                novs.append(nov.double().cpu().numpy())
        e, n = np.concatenate(errs), np.concatenate(novs)
        self.err_range_ = np.array([e.min(), e.max()])
        self.nov_range_ = np.array([n.min(), n.max()])

    def _row_errors(self, module: Any, xb: Any) -> Any:
        import torch

        err, nov = self._terms(module, xb)
        e = err.sum(dim=1)
        if self.normalization == "batch" or not hasattr(self, "err_range_"):
            e_lo, e_hi, n_lo, n_hi = e.min(), e.max(), nov.min(), nov.max()
        else:
            e_lo, e_hi = (torch.as_tensor(v, device=xb.device) for v in self.err_range_)
            n_lo, n_hi = (torch.as_tensor(v, device=xb.device) for v in self.nov_range_)
        e_norm = (e - e_lo) / (e_hi - e_lo + 1e-12)
        n_norm = (nov - n_lo) / (n_hi - n_lo + 1e-12)
        # Spread the reconstruction part over features in proportion to each feature's
        # error, and put the novelty part on top evenly, so rows still sum to the score.
        share = err / (e[:, None] + 1e-12)
        return (share * e_norm[:, None] + n_norm[:, None] / err.shape[1]).double()
