"""BiGAN / ALI scored as in "Efficient GAN-based anomaly detection" (Zenati et al. 2018)."""


from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors.deep._nets import latent_size, mlp
from detectors.deep.base import TorchDetector, resolve_device

__all__ = ["BiGAN"]


def _bigan_net(d: int, hidden: Sequence[int], latent: int, disc_hidden: int,
               spectral: bool) -> Any:
    """Encoder E, generator G and a discriminator D on ``(x, z)`` pairs, as one module."""
    import torch
    from torch import nn

    def lin(a: int, b: int) -> Any:
        layer = nn.Linear(a, b)
        return nn.utils.parametrizations.spectral_norm(layer) if spectral else layer

    def block(a: int, b: int) -> Any:
        return nn.Sequential(lin(a, b), nn.LeakyReLU(0.2))

    class _BiGAN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = mlp([d, *hidden, latent])
            self.generator = mlp([latent, *reversed(hidden), d])
            # D reads x and z through separate layers before joining them (as in Zenati et
            # al.): x and z live on different scales and widths.
            self.disc_x = block(d, disc_hidden)
            self.disc_z = block(latent, disc_hidden)
            self.disc_joint = block(2 * disc_hidden, disc_hidden)
            self.disc_out = lin(disc_hidden, 1)

        def features(self, x: Any, z: Any) -> Any:
            """D's penultimate layer on the pairs ``(x, z)`` (the feature-matching space)."""
            return self.disc_joint(torch.cat([self.disc_x(x), self.disc_z(z)], dim=1))

        def discriminate(self, x: Any, z: Any) -> Any:
            """D's logit that ``(x, z)`` is a data row with its code (not a generated one)."""
            return self.disc_out(self.features(x, z)).squeeze(1)

        def disc_parameters(self) -> list[Any]:
            return [p for m in (self.disc_x, self.disc_z, self.disc_joint, self.disc_out)
                    for p in m.parameters()]

        def encgen_parameters(self) -> list[Any]:
            return [*self.encoder.parameters(), *self.generator.parameters()]

        def forward(self, x: Any) -> Any:
            return self.generator(self.encoder(x))

    return _BiGAN()


def _swap_in(params: list[Any], values: list[Any] | None) -> list[Any] | None:
    """Copy ``values`` into ``params`` (nothing for ``None``); returns the old values."""
    if values is None:
        return None
    import torch

    old = [q.detach().clone() for q in params]
    with torch.no_grad():
        for q, v in zip(params, values, strict=True):
            q.copy_(v)
    return old


class BiGAN(TorchDetector):
    """Bidirectional GAN (BiGAN / ALI) trained on normal data, scored like EGBAD.

    An encoder ``E(x) -> z``, a generator ``G(z) -> x`` and a discriminator ``D(x, z)``
    are trained adversarially: D learns to tell data pairs ``(x, E(x))`` from generated
    pairs ``(G(z), z)`` with ``z ~ N(0, I)``; E and G learn to fool it (non-saturating
    losses, flipped labels). At the optimum E inverts G on the data, so ``G(E(x))``
    reconstructs normal rows and not anomalous ones. Following Zenati et al., the score
    of a (standardised) row is

        ``alpha * ||x - G(E(x))||_p + (1 - alpha) * ||f_D(x, E(x)) - f_D(G(E(x)), E(x))||_p``

    with ``f_D`` D's penultimate layer (feature matching) and ``p = norm`` (1 or 2).

    Training: one D step then one E + G step per batch, Adam with ``beta1 = 0.5`` for both
    (the usual GAN setting: momentum 0.9 makes the two players oscillate). Two standard
    stabilisers, both on by default because without them D wins within a few epochs on
    KDD (its loss falls to 0.1-0.3, E + G's climbs to 9-12) and ``G(E(x))`` stops
    reconstructing anything: spectral normalisation of D's layers (Miyato et al. 2018),
    and scoring with an exponential moving average of E's and G's weights (Yazıcı et al.
    2019), which damps the epoch-to-epoch swings of the adversarial game. Adversarial
    losses do not tell how good a model is, so early stopping and the kept weights use the
    validation rows' mean reconstruction term ``||x - G(E(x))||_p`` (how well G inverts E
    on unseen normal rows, what the score relies on). ``training_report_`` adds the last
    epoch's ``final_d_loss`` and ``final_eg_loss``.

    :meth:`explain` returns the score shared out over the features in proportion to
    ``|x_j - G(E(x))_j|^p``: the rows sum to the score, and the features are ranked by
    their reconstruction error (the feature-matching term lives in D's feature space and
    has no per-feature split of its own).

    Parameters
    ----------
    hidden
        Widths of the encoder's hidden layers (the generator mirrors them).
    latent_dim
        Width of ``z`` (capped at half the number of features).
    disc_hidden
        Width of the discriminator's layers (its penultimate layer is the feature-matching
        space).
    spectral_norm
        Spectrally normalise D's layers.
    ema_decay
        Decay of the moving average of E's and G's weights (per E + G step, warmed up as
        ``min(ema_decay, (1 + t) / (10 + t))``); 0 scores with the raw weights.
    alpha
        Weight of the reconstruction term; ``1 - alpha`` weighs feature matching.
    norm
        1 (L1, the default, as in the paper) or 2 (L2, not squared) for both terms.
    epochs, batch_size, lr, weight_decay
        Adam training (the same rate for D and for E + G).
    validation_fraction, patience
        Early stopping on the validation reconstruction term.
    random_state
        Seed of initialisation, split, shuffling and the generator's noise.
    device
        ``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"``.
    progress
        Show a tqdm bar (``None``: only on a terminal).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = rng.normal(size=(400, 1))
    >>> X = np.hstack([t, -t, 2 * t, 0.5 * t]) + 0.05 * rng.normal(size=(400, 4))
    >>> det = BiGAN(hidden=(16,), latent_dim=1, disc_hidden=16, epochs=30,
    ...             progress=False).fit(X)
    >>> det.score_one([1, -1, 2, 0.5]) < det.score_one([1, 1, 2, 0.5])
    True
    >>> bool(np.allclose(det.explain(X[:3]).sum(axis=1), det.score_many(X[:3])))
    True
    """

    name = "bigan"

    def __init__(self, hidden: Sequence[int] = (64, 32), latent_dim: int = 8,
                 disc_hidden: int = 64, spectral_norm: bool = True, ema_decay: float = 0.999,
                 alpha: float = 0.9, norm: int = 1, epochs: int = 100, batch_size: int = 256,
                 lr: float = 1e-3, weight_decay: float = 0.0,
                 validation_fraction: float = 0.1, patience: int = 20,
                 random_state: int | None = 0, device: str = "auto",
                 progress: bool | None = None) -> None:
        self.hidden = hidden
        self.latent_dim = latent_dim
        self.disc_hidden = disc_hidden
        self.spectral_norm = spectral_norm
        self.ema_decay = ema_decay
        self.alpha = alpha
        self.norm = norm
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
        return {**super().fast_params(), "disc_hidden": 8}

    def _check_params(self) -> None:
        if self.norm not in (1, 2):
            raise ValueError(f"norm must be 1 or 2, got {self.norm!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")

    def _build_module(self, d: int) -> Any:
        self._check_params()
        return _bigan_net(d, list(self.hidden), latent_size(self.latent_dim, d),
                          int(self.disc_hidden), bool(self.spectral_norm))

    # -- training -------------------------------------------------------------------------
    def _train(self, module: Any, Z: np.ndarray, epochs: int | None = None,
               desc: str | None = None) -> dict[str, Any]:
        """Alternate one D step and one E + G step per batch; keep the (averaged) weights
        with the best validation reconstruction term."""
        import torch
        from torch.nn.functional import binary_cross_entropy_with_logits as bce

        epochs = self.epochs if epochs is None else epochs
        device = resolve_device(self.device)
        module.to(device)
        gen = torch.Generator().manual_seed(self._seed())
        Xtr, Xval = self._split(Z, gen, device)
        betas = (0.5, 0.999)
        d_params, eg_params = module.disc_parameters(), module.encgen_parameters()
        opt_d = torch.optim.Adam(d_params, lr=self.lr, betas=betas,
                                 weight_decay=self.weight_decay)
        opt_eg = torch.optim.Adam(eg_params, lr=self.lr, betas=betas,
                                  weight_decay=self.weight_decay)
        latent = module.encoder[-1].out_features
        ema = [q.detach().clone() for q in eg_params] if self.ema_decay > 0 else None
        hist: dict[str, Any] = {"train": [], "val": [], "d_loss": [], "eg_loss": []}
        best, best_state, bad, stopped, step = np.inf, None, 0, False, 0
        bar = self._progress_bar(epochs, desc)
        for _ in bar:
            module.train()
            order = torch.randperm(len(Xtr), generator=gen).to(device)
            d_total = eg_total = rec_total = 0.0
            for start in range(0, len(Xtr), self.batch_size):
                xb = Xtr[order[start : start + self.batch_size]]
                zb = torch.randn(len(xb), latent, generator=gen).to(device)
                ones = torch.ones(len(xb), device=device)
                zeros = torch.zeros(len(xb), device=device)
                z_enc, x_gen = module.encoder(xb), module.generator(zb)

                opt_d.zero_grad()
                d_loss = (bce(module.discriminate(xb, z_enc.detach()), ones)
                          + bce(module.discriminate(x_gen.detach(), zb), zeros))
                d_loss.backward()
                torch.nn.utils.clip_grad_norm_(d_params, 10.0)
                opt_d.step()

                # Flipped labels (non-saturating): E and G get strong gradients even
                # while D is confident.
                opt_eg.zero_grad()
                eg_loss = (bce(module.discriminate(xb, z_enc), zeros)
                           + bce(module.discriminate(x_gen, zb), ones))
                eg_loss.backward()
                torch.nn.utils.clip_grad_norm_(eg_params, 10.0)
                opt_eg.step()
                if ema is not None:
                    step += 1
                    # Warm-up: early on a 0.999 average would still be mostly the random
                    # initialisation.
                    decay = min(self.ema_decay, (1 + step) / (10 + step))
                    with torch.no_grad():
                        for e, q in zip(ema, eg_params, strict=True):
                            e.lerp_(q.detach(), 1.0 - decay)

                d_total += float(d_loss.detach()) * len(xb)
                eg_total += float(eg_loss.detach()) * len(xb)
                with torch.no_grad():
                    rec_total += float(self._loss(module, xb)) * len(xb)
            n_tr = max(len(Xtr), 1)
            hist["d_loss"].append(d_total / n_tr)
            hist["eg_loss"].append(eg_total / n_tr)
            hist["train"].append(rec_total / n_tr)
            if Xval is None:
                continue
            module.eval()
            live = _swap_in(eg_params, ema)
            with torch.no_grad():
                val = float(np.mean([float(self._loss(module, Xval[i : i + 4096]))
                                     for i in range(0, len(Xval), 4096)]))
            hist["val"].append(val)
            bar.set_postfix(d=f"{hist['d_loss'][-1]:.3g}", eg=f"{hist['eg_loss'][-1]:.3g}",
                            val_rec=f"{val:.4g}")
            # First epoch explicitly: with best = inf the relative margin is inf - inf =
            # NaN and no epoch would ever count as an improvement.
            improved = not np.isfinite(best) or val < best - 1e-4 * abs(best)
            if improved:
                best, bad = val, 0
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            _swap_in(eg_params, live)
            if not improved:
                bad += 1
                if bad >= self.patience:
                    stopped = True
                    break
        bar.close()
        if best_state is not None:
            module.load_state_dict(best_state)
        else:  # no validation rows: the last average
            _swap_in(eg_params, ema)
        module.eval()
        hist["best_val"] = None if not np.isfinite(best) else best
        hist["stopped_early"] = stopped
        hist["device"] = device
        return hist

    def _report(self, Z: np.ndarray, train_seconds: float, history: dict[str, Any]) -> None:
        super()._report(Z, train_seconds, history)
        # The last epoch's adversarial losses: near 2 ln 2 = 1.386 each when D is kept
        # guessing; D near 0 means it won and E / G stopped learning.
        for key in ("d_loss", "eg_loss"):
            self.training_report_[f"final_{key}"] = (
                round(history[key][-1], 4) if history[key] else None)

    # -- scoring --------------------------------------------------------------------------
    def _norm(self, diff: Any) -> Any:
        if self.norm == 1:
            return diff.abs().sum(dim=1)
        return (diff**2).sum(dim=1).sqrt()

    def _loss(self, module: Any, xb: Any) -> Any:
        """Mean reconstruction term ``||x - G(E(x))||_p`` (the validation criterion)."""
        return self._norm(xb - module(xb)).mean()

    def _row_errors(self, module: Any, xb: Any) -> Any:
        import torch

        z = module.encoder(xb)
        x_rec = module.generator(z)
        fm = self._norm(module.features(xb, z) - module.features(x_rec, z)).double()
        diff = (xb - x_rec).double()
        score = self.alpha * self._norm(diff) + (1.0 - self.alpha) * fm
        weight = diff.abs() ** self.norm
        total = weight.sum(dim=1, keepdim=True)
        # A perfectly reconstructed row has no reconstruction error to split by: share its
        # (feature-matching only) score out evenly.
        share = torch.where(total > 0, weight / total.clamp_min(1e-300),
                            torch.full_like(weight, 1.0 / weight.shape[1]))
        return score[:, None] * share

    def encode(self, X: Any) -> np.ndarray:
        """Latent codes ``E(x)`` of ``X``."""
        import torch

        X = self._check_input(X)
        Z = torch.from_numpy(((X - self.mean_) / self.scale_).astype(np.float32))
        module, device = self._device_module()
        with torch.no_grad():
            return module.encoder(Z.to(device)).double().cpu().numpy()
