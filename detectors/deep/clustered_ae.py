"""Autoencoder trained on a cluster-filtered normal set, for polluted training data."""


from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors.deep.autoencoder import Autoencoder

__all__ = ["ClusteredAutoencoder"]


class ClusteredAutoencoder(Autoencoder):
    """Iterative clustering-filtered autoencoder (after Li et al., "Deep Unsupervised Anomaly
    Detection", WACV 2021).

    Training data is assumed to be mostly normal but polluted with anomalies. Repeat:

    1. train the autoencoder on the current normal set (all rows at first);
    2. map every row of the normal set to ``[latent code; log reconstruction error]``
       (standardised) and fit a Gaussian mixture with ``n_clusters`` components;
    3. judge each cluster and drop the polluted ones from the normal set, retrain;
    4. stop when no cluster is dropped / the set changes by less than ``tol`` (fraction of
       rows), or after ``max_rounds`` (default 1; with ``"loco"`` the normal set only
       shrinks, so later rounds re-check the clusters of what is left).

    The cluster rule (``selection``):

    * ``"loco"`` (default), leave one cluster out: for every cluster holding at least
      ``min_cluster_fraction`` of the normal set, a model is trained from the initial
      weights on the normal set *without that cluster*; the cluster is dropped when its
      median reconstruction error under that model is more than ``readmit_factor`` (20)
      times its median error under the round's model, which saw it. Normal modes lie on
      the manifold the rest of the normal data spans, so a model that never saw them
      still reconstructs them within a small factor; a flood of near-identical records
      (KDD's smurf / neptune, a DoS inside a training window) is memorised by a model
      that saw it (tiny error) and is far off the manifold of the rest (errors 50-700x
      larger on KDD). The paper's low-variance rule keeps exactly those floods; the
      error rule and plain score trimming keep them too (they are reconstructed best).
      No blanket trimming of the hardest rows: those are rare normal traffic.
    * ``"holdout"``: the previous rule: compact clusters held out together and judged
      against the ``readmit_quantile`` error quantile of the training rows, the others
      by cross-fitting over ``n_groups`` folds with a ``readmit_factor`` allowance, and
      rows above the ``keep_fraction`` error quantile dropped (set ``readmit_factor=2``);
    * ``"variance"``: the paper's rule, clusters of low total variance are normal; keep
      the lowest-variance clusters until they hold ``keep_fraction`` of the rows;
    * ``"error"``: clusters of low mean reconstruction error are normal (same stopping).

    Each round trains from fresh weights (a warm-started model would still reconstruct
    what it learnt from the polluted rows); the last round's model is the detector. The
    final score is its reconstruction error; ``selected_fraction_`` records the kept share
    per round, and ``training_report_`` the rounds run.

    Parameters
    ----------
    n_clusters
        Mixture components.
    keep_fraction
        Share of the training rows kept as normal per round (``"holdout"``,
        ``"variance"``, ``"error"``).
    max_rounds, tol
        Iteration limits.
    round_epochs
        Epochs of retraining per round (the first round uses ``epochs``).
    selection
        ``"loco"``, ``"holdout"``, ``"variance"`` or ``"error"``.
    readmit_factor
        ``"loco"``: largest ratio of held-out to seen median reconstruction error of a
        kept cluster; ``"holdout"``: allowance of the cross-fitted clusters.
    min_cluster_fraction
        ``"loco"``: smaller clusters are not judged (kept).
    compact_ratio, n_groups, readmit_quantile
        Settings of ``"holdout"`` (``n_groups=0``: only compact clusters are checked).
    hidden, latent_dim, epochs, batch_size, lr, weight_decay, validation_fraction,
    patience, random_state, device, progress
        As in :class:`~detectors.deep.autoencoder.Autoencoder`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = rng.normal(size=(400, 1))
    >>> normal = np.hstack([t, -t, 2 * t, 0.5 * t]) + 0.05 * rng.normal(size=(400, 4))
    >>> polluted = np.vstack([normal, rng.normal(3, 1, size=(40, 4))])
    >>> det = ClusteredAutoencoder(hidden=(8,), latent_dim=1, epochs=20, round_epochs=5,
    ...                            n_clusters=4, max_rounds=2).fit(polluted)
    >>> det.score_one([1, -1, 2, 0.5]) < det.score_one([3, 3, 3, 3])
    True
    """

    name = "clustered_ae"

    def __init__(self, hidden: Sequence[int] = (64, 32), latent_dim: int = 8,
                 n_clusters: int = 10, keep_fraction: float = 0.95, max_rounds: int = 1,
                 tol: float = 0.01, round_epochs: int = 60, selection: str = "loco",
                 compact_ratio: float = 0.2, n_groups: int = 4,
                 readmit_quantile: float = 0.99, readmit_factor: float = 20.0,
                 min_cluster_fraction: float = 0.01,
                 epochs: int = 100, batch_size: int = 256, lr: float = 1e-3,
                 weight_decay: float = 1e-5, validation_fraction: float = 0.1,
                 patience: int = 8, random_state: int | None = 0, device: str = "auto",
                 progress: bool | None = None) -> None:
        super().__init__(hidden=hidden, latent_dim=latent_dim, epochs=epochs,
                         batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         validation_fraction=validation_fraction, patience=patience,
                         random_state=random_state, device=device, progress=progress)
        self.n_clusters = n_clusters
        self.keep_fraction = keep_fraction
        self.max_rounds = max_rounds
        self.tol = tol
        self.round_epochs = round_epochs
        self.selection = selection
        self.compact_ratio = compact_ratio
        self.n_groups = n_groups
        self.readmit_factor = readmit_factor
        self.readmit_quantile = readmit_quantile
        self.min_cluster_fraction = min_cluster_fraction

    @classmethod
    def fast_params(cls) -> dict[str, Any]:
        return {**super().fast_params(), "n_clusters": 3, "round_epochs": 2, "n_groups": 2}

    def _train(self, module: Any, Z: np.ndarray, epochs: int | None = None,
               desc: str | None = None) -> dict[str, Any]:
        import torch

        if self.selection not in ("variance", "error", "holdout", "loco"):
            raise ValueError("selection must be 'loco', 'holdout', 'variance' or 'error'")
        init = {k: v.detach().clone() for k, v in module.state_dict().items()}
        hist = super()._train(module, Z, epochs=epochs, desc="round 0")
        keep = np.ones(len(Z), dtype=bool)
        self._keep_history: list[np.ndarray] = []  # diagnostics only, not saved
        fractions = [1.0]
        rounds = 0

        def fresh_fit(rows: np.ndarray, tag: str) -> dict[str, Any]:
            module.load_state_dict(init)
            torch.manual_seed(self._seed() + rounds)
            return super(ClusteredAutoencoder, self)._train(
                module, Z[rows], epochs=self.round_epochs, desc=tag)

        for r in range(1, self.max_rounds + 1):
            rounds = r
            latent, log_err = self._embed(module, Z)
            if self.selection == "loco":
                current = {k: v.detach().clone() for k, v in module.state_dict().items()}
                new_keep = self._loco_select(fresh_fit, module, Z, latent, log_err, r, keep)
                if np.array_equal(new_keep, keep):
                    # nothing dropped: the model trained on this normal set is the answer
                    module.load_state_dict(current)
                    module.eval()
                    self._keep_history.append(keep.copy())
                    fractions.append(round(float(keep.mean()), 4))
                    break
                h = fresh_fit(new_keep, f"round {r}")
                keep = new_keep
                self._keep_history.append(keep.copy())
                fractions.append(round(float(keep.mean()), 4))
                hist["train"] += h["train"]
                hist["best_val"], hist["stopped_early"] = h["best_val"], h["stopped_early"]
                continue
            label, spread, sizes = self._cluster(latent, log_err)
            if self.selection == "holdout":
                new_keep = self._holdout_select(fresh_fit, module, Z, label, spread, sizes,
                                                log_err, r, keep)
                h = fresh_fit(new_keep, f"round {r}")
            else:
                new_keep = self._rank_clusters(label, spread, sizes, log_err)
                h = fresh_fit(new_keep, f"round {r}")
            changed = float(np.mean(new_keep != keep))
            keep = new_keep
            self._keep_history.append(keep.copy())
            fractions.append(round(float(keep.mean()), 4))
            hist["train"] += h["train"]
            hist["best_val"], hist["stopped_early"] = h["best_val"], h["stopped_early"]
            if changed < self.tol:
                break
        self.selected_fraction_ = fractions
        self._rounds = rounds
        return hist

    def _loco_select(self, fresh_fit: Any, module: Any, Z: np.ndarray, latent: np.ndarray,
                     log_err: np.ndarray, r: int, keep: np.ndarray) -> np.ndarray:
        """Leave-one-cluster-out: reject clusters a model that never saw them reconstructs
        much worse than the model that did (see the class doc)."""
        idx = np.flatnonzero(keep)
        lab, _, sizes = self._cluster(latent[idx], log_err[idx])
        label = np.full(len(Z), -1)
        label[idx] = lab
        new_keep = keep.copy()
        self._gaps = []
        min_size = max(2, int(self.min_cluster_fraction * len(idx)))
        for c in np.flatnonzero(sizes >= min_size):
            held = label == c
            if (keep & ~held).sum() < max(min_size, 10):
                continue  # nothing left to learn the rest from
            fresh_fit(keep & ~held, f"round {r} without cluster {c}")
            _, err2 = self._embed(module, Z)
            gap = float(np.median(err2[held]) - np.median(log_err[held]))
            self._gaps.append((int(sizes[c]), gap))
            if gap > np.log(self.readmit_factor):
                new_keep &= ~held
        return new_keep if new_keep.sum() >= 10 else keep

    def _holdout_select(self, fresh_fit: Any, module: Any, Z: np.ndarray, label: np.ndarray,
                        spread: np.ndarray, sizes: np.ndarray, log_err: np.ndarray,
                        r: int, prev: np.ndarray) -> np.ndarray:
        """Clusters a model that never saw them still reconstructs (see the class doc)."""
        # Only rows kept last round train the fold models: an excluded flood must not help
        # a fold model reconstruct its own held-out part.
        low = prev & (log_err <= np.quantile(log_err[prev], self.keep_fraction))
        compact = spread < self.compact_ratio * np.median(np.repeat(spread, sizes))
        keep = np.zeros(len(Z), dtype=bool)
        # Fold 0 holds out the compact clusters (flood suspects, strict check); folds 1..
        # deal the other clusters round-robin by size (lenient check: a normal mode may be
        # reconstructed a little worse by a model that never saw it).
        order = [c for c in np.argsort(-sizes, kind="stable") if not compact[c]]
        group = np.zeros(len(sizes), dtype=int)
        for i, c in enumerate(order):
            group[c] = 1 + i % self.n_groups if self.n_groups > 0 else -1
        keep |= low & (group[label] == -1)  # n_groups=0: only the compact clusters are checked
        for g in np.unique(group[group >= 0]):
            held = group[label] == g
            train = low & ~held
            if not train.any():
                continue
            fresh_fit(train, f"round {r} fold {g}")
            _, err2 = self._embed(module, Z)
            limit = np.quantile(err2[train], self.readmit_quantile)
            if g > 0:
                limit += np.log(self.readmit_factor)
            for c in np.flatnonzero((group == g) & (sizes > 0)):
                members = label == c
                if np.median(err2[members]) <= limit:
                    # Row level too: a small flood can hide inside a mostly normal cluster.
                    keep |= members & low & (err2 <= limit + np.log(self.readmit_factor))
        return keep

    def _report(self, Z: np.ndarray, train_seconds: float, history: dict[str, Any]) -> None:
        super()._report(Z, train_seconds, history)
        self.training_report_["rounds"] = int(getattr(self, "_rounds", 0))
        self.training_report_["selected_fraction"] = list(self.selected_fraction_)

    def _embed(self, module: Any, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent codes and log mean squared reconstruction error of every row."""
        import torch

        device = next(module.parameters()).device
        lat, err = [], []
        module.eval()
        with torch.no_grad():
            for start in range(0, len(Z), 8192):
                xb = torch.from_numpy(Z[start : start + 8192]).to(device)
                z = module.encoder(xb)
                lat.append(z.double().cpu().numpy())
                err.append(((module.decoder(z) - xb) ** 2).mean(dim=1).double().cpu().numpy())
        return np.concatenate(lat), np.log(np.concatenate(err) + 1e-12)

    def _cluster(self, latent: np.ndarray, log_err: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """GMM labels on standardised ``[latent; log error]``, per-cluster spread and size."""
        from sklearn.mixture import GaussianMixture

        F = np.column_stack([latent, log_err])
        F = (F - F.mean(axis=0)) / (F.std(axis=0) + 1e-9)
        seed = self._seed()
        fit_rows = F if len(F) <= 20000 else F[np.random.default_rng(seed)
                                                .choice(len(F), 20000, replace=False)]
        k = max(1, min(self.n_clusters, len(fit_rows) // 10))
        gmm = GaussianMixture(n_components=k, covariance_type="diag", random_state=seed,
                              reg_covar=1e-4, max_iter=200).fit(fit_rows)
        label = gmm.predict(F)
        sizes = np.bincount(label, minlength=k)
        spread = np.array([F[label == c].var(axis=0).sum() if sizes[c] > 1 else np.inf
                           for c in range(k)])
        return label, spread, sizes

    def _rank_clusters(self, label: np.ndarray, spread: np.ndarray, sizes: np.ndarray,
                       log_err: np.ndarray) -> np.ndarray:
        if self.selection == "variance":
            key = spread
        else:
            key = np.array([log_err[label == c].mean() if sizes[c] else np.inf
                            for c in range(len(sizes))])
        keep_c, held = [], 0.0
        for c in np.argsort(key):
            if held >= self.keep_fraction * len(label):
                break
            keep_c.append(c)
            held += sizes[c]
        return np.isin(label, keep_c)
