"""BiGAN: what it detects, that its score is the documented EGBAD combination, persistence."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import detectors
from detectors import BiGAN


def _small(**over: Any) -> BiGAN:
    return BiGAN(**{"hidden": (16,), "latent_dim": 2, "disc_hidden": 16, "batch_size": 64,
                    "epochs": 15, "progress": False, **over})


@pytest.fixture(scope="module")
def blob() -> tuple[BiGAN, np.ndarray]:
    X = np.random.default_rng(7).normal(size=(1200, 4))
    return _small().fit(X), X


def _recompute(det: BiGAN, X: np.ndarray) -> np.ndarray:
    """The class doc's formula, straight from E, G and D's penultimate layer."""
    import torch

    Z = torch.from_numpy(((X - det.mean_) / det.scale_).astype(np.float32))
    m = det.module_
    with torch.no_grad():
        z = m.encoder(Z)
        x_rec = m.generator(z)
        fm = (m.features(Z, z) - m.features(x_rec, z)).double().numpy()
        rec = (Z - x_rec).double().numpy()
    if det.norm == 1:
        rec_term, fm_term = np.abs(rec).sum(axis=1), np.abs(fm).sum(axis=1)
    else:
        rec_term, fm_term = np.linalg.norm(rec, axis=1), np.linalg.norm(fm, axis=1)
    return det.alpha * rec_term + (1 - det.alpha) * fm_term


def test_far_points_score_above_held_out_normal_ones(blob: tuple[BiGAN, np.ndarray]) -> None:
    from sklearn.metrics import roc_auc_score

    det, _ = blob
    rng = np.random.default_rng(8)
    normal = rng.normal(size=(300, 4))
    direction = rng.normal(size=(300, 4))
    far = 6 * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    scores = det.score_many(np.vstack([normal, far]))
    assert roc_auc_score(np.r_[np.zeros(300), np.ones(300)], scores) > 0.9


@pytest.mark.parametrize("norm", [1, 2])
def test_score_is_the_documented_weighted_combination(norm: int) -> None:
    X = np.random.default_rng(1).normal(size=(300, 4))
    det = _small(norm=norm, alpha=0.7, epochs=3).fit(X)
    test = np.vstack([X[:20], 5 * X[20:25]])
    np.testing.assert_allclose(det.score_many(test), _recompute(det, test), rtol=1e-5)
    # alpha only weighs the two terms at scoring time: the ends isolate each term.
    det.alpha = 0.0
    fm_only = det.score_many(test)
    det.alpha = 1.0
    rec_only = det.score_many(test)
    det.alpha = 0.7
    np.testing.assert_allclose(det.score_many(test), 0.7 * rec_only + 0.3 * fm_only,
                               rtol=1e-9)
    assert (fm_only > 0).all() and (rec_only > 0).all()


def test_explain_sums_to_score_and_ranks_features_by_reconstruction_error(
        blob: tuple[BiGAN, np.ndarray]) -> None:
    import torch

    det, X = blob
    test = X[:50] + np.array([0.0, 0.0, 8.0, 0.0])  # feature 2 pushed far out
    contrib = det.explain(test)
    np.testing.assert_allclose(contrib.sum(axis=1), det.score_many(test), rtol=1e-9)
    Z = torch.from_numpy(((test - det.mean_) / det.scale_).astype(np.float32))
    with torch.no_grad():
        err = (Z - det.module_(Z)).abs().numpy()
    np.testing.assert_array_equal(contrib.argmax(axis=1), err.argmax(axis=1))
    assert (contrib.argmax(axis=1) == 2).mean() > 0.9
    normal = det.normal_contribution()
    assert normal is not None and normal.shape == (4,) and (normal > 0).all()


def test_save_load_gives_identical_scores(blob: tuple[BiGAN, np.ndarray], tmp_path: Any) -> None:
    det, X = blob
    det.save(tmp_path / "m")
    loaded = detectors.load_detector(tmp_path / "m", allow_pickle=False)
    assert isinstance(loaded, BiGAN)
    np.testing.assert_array_equal(loaded.score_many(X[:100]), det.score_many(X[:100]))
    np.testing.assert_array_equal(loaded.explain(X[:5]), det.explain(X[:5]))
    np.testing.assert_array_equal(loaded.encode(X[:5]), det.encode(X[:5]))


def test_training_report_and_validation_choice(blob: tuple[BiGAN, np.ndarray]) -> None:
    det, _ = blob
    rep = det.training_report_
    assert {"parameters", "size_bytes", "train_seconds", "epochs", "final_d_loss",
            "final_eg_loss"} <= set(rep)
    # The kept weights are the best validation epoch's (not merely the last).
    assert rep["best_val_loss"] is not None and np.isfinite(rep["best_val_loss"])
    assert det.encode(np.zeros((3, 4))).shape == (3, 2)


@pytest.mark.parametrize("bad", [{"norm": 3}, {"alpha": 1.5}, {"ema_decay": 1.0}])
def test_invalid_parameters_raise(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _small(epochs=1, **bad).fit(np.zeros((30, 4)))
