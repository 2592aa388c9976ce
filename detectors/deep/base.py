"""Shared machinery of the PyTorch detectors: scaling, training loop, reports, persistence."""


from __future__ import annotations

import io
import sys
import time
from typing import Any

import numpy as np

from detectors.base import Detector
from detectors.batch._scaling import fit_standardiser

__all__ = ["TorchDetector", "resolve_device"]


def resolve_device(device: str) -> str:
    """``"auto"`` means CUDA when present, else CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class TorchDetector(Detector):
    """Base of the deep detectors.

    Subclasses implement ``_build_module(d)`` (an ``nn.Module``), ``_loss(module, xb)``
    (mean training loss of a batch) and ``_row_errors(module, xb)`` (per-row, per-feature
    contributions whose row sum is the score). Features are standardised with the training
    mean / std; training uses Adam, a validation split with early stopping (best weights are
    kept), a seeded generator, and a tqdm bar shown only on a terminal.

    After fitting, ``training_report_`` holds ``parameters``, ``size_bytes`` (of the saved
    state dict), ``train_seconds``, ``inference_seconds_per_10k``, ``epochs``,
    ``best_val_loss``, ``stopped_early`` and ``device``. Weights are saved with
    ``torch.save(state_dict)`` and loaded with ``weights_only=True`` (never unpickled);
    :meth:`to_state` also works (weights inline as JSON lists), fine for small networks.
    """

    online = False

    # Defaults shared by subclasses (each also lists them in its own __init__).
    def _train_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "epochs", "batch_size", "lr", "weight_decay", "validation_fraction", "patience",
            "random_state", "device", "progress")}

    @classmethod
    def fast_params(cls) -> dict[str, Any]:
        return {"epochs": 3, "batch_size": 64, "hidden": (8,), "latent_dim": 2}

    # -- hooks ----------------------------------------------------------------------------
    def _build_module(self, d: int) -> Any:
        raise NotImplementedError

    def _loss(self, module: Any, xb: Any) -> Any:
        raise NotImplementedError

    def _row_errors(self, module: Any, xb: Any) -> Any:
        raise NotImplementedError

    def _after_fit(self, Z: np.ndarray) -> None:
        """Hook run once the final weights are in place (e.g. normalisation constants)."""

    # -- training -------------------------------------------------------------------------
    def _fit(self, X: np.ndarray) -> None:
        import torch

        t0 = time.perf_counter()
        self.mean_, self.scale_ = fit_standardiser(X)
        Z = ((X - self.mean_) / self.scale_).astype(np.float32)
        torch.manual_seed(self._seed())
        module = self._build_module(X.shape[1])
        history = self._train(module, Z)
        self.module_ = module.cpu()
        self._module_device = None
        self._after_fit(Z)
        ref = Z[: min(len(Z), 5000)].astype(np.float64) * self.scale_ + self.mean_
        self.normal_contribution_ = np.abs(self.explain(ref)).mean(axis=0) + 1e-12
        self._report(Z, time.perf_counter() - t0, history)

    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _split(self, Z: np.ndarray, gen: Any, device: str) -> tuple[Any, Any]:
        """Seeded training / validation tensors (no validation below 20 rows)."""
        import torch

        n = len(Z)
        n_val = round(self.validation_fraction * n) if n >= 20 else 0
        perm = torch.randperm(n, generator=gen).numpy()
        val_idx, tr_idx = perm[:n_val], perm[n_val:]
        Xtr = torch.from_numpy(Z[tr_idx]).to(device)
        Xval = torch.from_numpy(Z[val_idx]).to(device) if n_val else None
        return Xtr, Xval

    def _progress_bar(self, epochs: int, desc: str | None = None) -> Any:
        """tqdm over the epochs, shown when ``progress`` says so (``None``: on a terminal)."""
        from tqdm.auto import tqdm

        show = self.progress if self.progress is not None else sys.stderr.isatty()
        return tqdm(range(epochs), desc=desc or type(self).__name__, disable=not show,
                    leave=False)

    def _train(self, module: Any, Z: np.ndarray, epochs: int | None = None,
               desc: str | None = None) -> dict[str, Any]:
        """Train ``module`` in place on standardised ``Z``; returns the loss history."""
        import torch

        epochs = self.epochs if epochs is None else epochs
        device = resolve_device(self.device)
        module.to(device)
        gen = torch.Generator().manual_seed(self._seed())
        Xtr, Xval = self._split(Z, gen, device)
        opt = torch.optim.Adam(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        best, best_state, bad, hist = np.inf, None, 0, {"train": [], "val": []}
        bar = self._progress_bar(epochs, desc)
        stopped = False
        for _ in bar:
            module.train()
            order = torch.randperm(len(Xtr), generator=gen).to(device)
            total = 0.0
            for start in range(0, len(Xtr), self.batch_size):
                xb = Xtr[order[start : start + self.batch_size]]
                opt.zero_grad()
                loss = self._loss(module, xb)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), 10.0)
                opt.step()
                total += float(loss.detach()) * len(xb)
            hist["train"].append(total / max(len(Xtr), 1))
            if Xval is not None:
                module.eval()
                with torch.no_grad():
                    val = float(np.mean([float(self._loss(module, Xval[i : i + 4096]))
                                         for i in range(0, len(Xval), 4096)]))
                hist["val"].append(val)
                bar.set_postfix(train=f"{hist['train'][-1]:.4g}", val=f"{val:.4g}")
                # The first epoch always improves on "nothing yet" (inf - 1e-4 * inf is
                # NaN, which compared false and stopped training after `patience` epochs
                # with the last weights instead of the best).
                if not np.isfinite(best) or val < best - 1e-4 * abs(best):
                    best, bad = val, 0
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                else:
                    bad += 1
                    if bad >= self.patience:
                        stopped = True
                        break
        bar.close()
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        hist["best_val"] = None if not np.isfinite(best) else best
        hist["stopped_early"] = stopped
        hist["device"] = device
        return hist

    def _report(self, Z: np.ndarray, train_seconds: float, history: dict[str, Any]) -> None:
        import torch

        buf = io.BytesIO()
        torch.save(self.module_.state_dict(), buf)
        sample = Z[: min(len(Z), 2000)].astype(np.float64) * self.scale_ + self.mean_
        t0 = time.perf_counter()
        self.score_many(sample)
        infer = (time.perf_counter() - t0) / max(len(sample), 1) * 10_000
        self.training_report_ = {
            "parameters": int(sum(p.numel() for p in self.module_.parameters())),
            "size_bytes": len(buf.getvalue()),
            "train_seconds": round(train_seconds, 3),
            "inference_seconds_per_10k": round(infer, 4),
            "epochs": len(history["train"]),
            "best_val_loss": history["best_val"],
            "stopped_early": history["stopped_early"],
            "device": history["device"],
            "n_train": len(Z),
        }

    # -- scoring --------------------------------------------------------------------------
    def _device_module(self) -> tuple[Any, str]:
        device = resolve_device(self.device)
        if getattr(self, "_module_device", None) != device:
            self.module_.to(device)
            self._module_device = device
        return self.module_, device

    def _errors(self, X: Any) -> np.ndarray:
        import torch

        X = self._check_input(X)
        Z = ((X - self.mean_) / self.scale_).astype(np.float32)
        module, device = self._device_module()
        module.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(Z), 8192):
                xb = torch.from_numpy(Z[start : start + 8192]).to(device)
                out.append(self._row_errors(module, xb).double().cpu().numpy())
        if not out:
            return np.zeros((0, self.n_features_in_))
        return np.concatenate(out)

    def explain(self, X: Any) -> np.ndarray:
        """Per-feature contributions (reconstruction error terms), row sum = score."""
        return self._errors(X)

    def score_many(self, X: Any) -> np.ndarray:
        return self._errors(X).sum(axis=1)

    # -- persistence ----------------------------------------------------------------------
    def _restore_state(self, state: dict[str, Any]) -> None:
        import torch

        state = dict(state)
        weights = state.pop("module_", None)
        super()._restore_state(state)
        if weights is not None:
            torch.manual_seed(self._seed())
            module = self._build_module(self.n_features_in_)
            module.load_state_dict(weights)
            module.eval()
            self.module_ = module
            self._module_device = None
