"""Manifest checks, online detector specifics and deep-training behaviour."""


from __future__ import annotations

import json

import numpy as np
import pytest

import detectors
from detectors import ManifestError
from detectors.online import HalfSpaceTrees, RobustZScore, SeasonalProfile, decode_slot


def test_manifest_rejects_unknown_detector_and_missing_files(tmp_path, rng) -> None:
    det = RobustZScore().learn_many(rng.normal(size=(50, 2)))
    det.save(tmp_path / "m", extra={"owner": "tests"})
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["extra"] == {"owner": "tests"}
    assert manifest["version"]
    assert manifest["training_range"]["feature_min"] == det.feature_min_.tolist()
    manifest["detector"] = "os.system"
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(KeyError, match="unknown detector"):
        detectors.load(tmp_path / "m")
    det.save(tmp_path / "m")
    (tmp_path / "m" / "arrays.npz").unlink()
    with pytest.raises(ManifestError, match="missing"):
        detectors.load(tmp_path / "m")
    with pytest.raises(ManifestError, match="no manifest"):
        detectors.load(tmp_path / "nowhere")
    with pytest.raises(detectors.NotFittedError):
        RobustZScore().save(tmp_path / "unfitted")


def test_pickled_objects_can_be_refused(tmp_path, rng) -> None:
    det = detectors.IsolationForest(n_estimators=10).fit(rng.normal(size=(100, 2)))
    det.save(tmp_path / "m")
    assert (tmp_path / "m" / "objects.pkl").exists()
    with pytest.raises(ManifestError, match="allow_pickle"):
        detectors.load_detector(tmp_path / "m", allow_pickle=False)
    with pytest.raises(TypeError):
        detectors.RobustZScore.load(tmp_path / "m")


def test_robust_zscore_legacy_state_format(rng) -> None:
    det = RobustZScore(window=10).learn_many(rng.normal(size=(30, 1)))
    state = det.to_state()
    assert set(state) == {"params", "feature_names", "buffer"}
    back = RobustZScore.from_state(json.loads(json.dumps(state)))
    assert back.n_seen == 10
    assert back.score_one([3.0]) == det.score_one([3.0])
    assert RobustZScore.from_state(RobustZScore().to_state()).n_seen == 0


def test_half_space_trees_use_given_limits(rng) -> None:
    X = rng.uniform(0.3, 0.7, size=(600, 2))
    det = HalfSpaceTrees(window_size=100, limits=([0, 0], [1, 1])).learn_many(X)
    assert det.score_one([0.5, 0.5]) < det.score_one([0.99, 0.01])
    with pytest.raises(ValueError, match="limits"):
        HalfSpaceTrees(limits=([0], [1])).learn_many(X)


def test_seasonal_profile_slots_and_fallbacks(rng) -> None:
    for h, d in [(0, 0), (23.99, 6), (12.5, 3)]:
        hs, hc = np.sin(2 * np.pi * h / 24), np.cos(2 * np.pi * h / 24)
        ds, dc = np.sin(2 * np.pi * d / 7), np.cos(2 * np.pi * d / 7)
        assert decode_slot(hs, hc, ds, dc)[0] == d * 24 + int(h)
    det = SeasonalProfile(time_encoding="slot", time_columns=(0,), n_slots=4, min_count=3)
    X = np.column_stack([np.r_[np.zeros(20), np.ones(2)], np.r_[np.full(20, 10.0), [0, 0]]])
    det.learn_many(X[:, ::-1][:, ::-1])  # columns: slot, value
    # Slot 0 has 20 values of 10, slot 2 (22 % 4) nothing: falls back to the global window.
    assert det.score_one([0, 10.0]) < det.score_one([0, 30.0])
    assert np.isfinite(det.score_one([3, 10.0]))
    with pytest.raises(ValueError, match="time column"):
        SeasonalProfile(time_encoding="cyclic", time_columns=(0, 1)).learn_many(X)


def _deep_fast(name: str, **over):
    cls = detectors.get(name)
    return cls(**{**cls.fast_params(), **over})


def test_training_report_and_early_stopping(rng) -> None:
    X = rng.normal(size=(300, 4))
    det = _deep_fast("autoencoder", epochs=200, patience=2, lr=0.05).fit(X)
    rep = det.training_report_
    assert {"parameters", "size_bytes", "train_seconds", "inference_seconds_per_10k",
            "epochs", "best_val_loss", "stopped_early", "device"} <= set(rep)
    assert rep["stopped_early"] and rep["epochs"] < 200
    assert rep["parameters"] > 0 and rep["size_bytes"] > 0
    assert det.explain(X[:3]).sum(axis=1) == pytest.approx(det.score_many(X[:3]))


@pytest.mark.parametrize("name", ["autoencoder", "vae", "novelty_ae", "clustered_ae", "bigan"])
def test_deep_detectors_save_without_pickle(name: str, rng, tmp_path) -> None:
    X = rng.normal(size=(200, 4))
    det = _deep_fast(name, progress=False).fit(X)
    det.save(tmp_path / "m")
    assert (tmp_path / "m" / "weights.pt").exists()
    assert not (tmp_path / "m" / "objects.pkl").exists()
    loaded = detectors.load_detector(tmp_path / "m", allow_pickle=False)
    np.testing.assert_array_equal(loaded.score_many(X[:20]), det.score_many(X[:20]))
    assert det.explain(X[:3]).sum(axis=1) == pytest.approx(det.score_many(X[:3]))


def test_vae_explain_sums_to_score_and_novelty_batch_mode(rng) -> None:
    X = rng.normal(size=(300, 4))
    vae = _deep_fast("vae").fit(X)
    assert vae.explain(X[:5]).sum(axis=1) == pytest.approx(vae.score_many(X[:5]))
    nov = _deep_fast("novelty_ae", normalization="batch").fit(X)
    s = nov.score_many(X[:50])
    assert s.min() >= 0 and s.max() <= 2 + 1e-9  # each term min-max normalised in the batch
    with pytest.raises(ValueError):
        _deep_fast("novelty_ae", normalization="zscore").fit(X)


def test_seq2seq_needs_whole_time_steps(rng) -> None:
    with pytest.raises(ValueError, match="time steps"):
        _deep_fast("seq2seq_lstm", n_channels=3).fit(rng.normal(size=(50, 4)))
    det = _deep_fast("seq2seq_lstm", n_channels=2).fit(rng.normal(size=(60, 4)))
    assert det.explain(rng.normal(size=(2, 4))).shape == (2, 4)


def test_clustered_autoencoder_drops_a_flood_from_polluted_training(rng) -> None:
    t = rng.normal(size=(900, 1))
    normal = np.hstack([t, -t, 0.5 * t, rng.normal(size=(900, 1))])
    flood = np.tile([4.0, 4.0, -4.0, 4.0], (100, 1)) + 0.01 * rng.normal(size=(100, 4))
    X = np.vstack([normal, flood])
    det = detectors.ClusteredAutoencoder(hidden=(16,), latent_dim=2, epochs=30,
                                         round_epochs=30, n_clusters=6, batch_size=32,
                                         lr=1e-2, progress=False).fit(X)
    assert det.selected_fraction_[-1] < 0.93  # the 10 % flood is not all kept
    plain = detectors.Autoencoder(hidden=(16,), latent_dim=2, epochs=30, batch_size=64,
                                  progress=False).fit(X)
    margin = det.score_many(flood[:20]).mean() / det.score_many(normal[:200]).mean()
    plain_margin = plain.score_many(flood[:20]).mean() / plain.score_many(normal[:200]).mean()
    assert margin > plain_margin
    assert det.training_report_["rounds"] >= 1
    with pytest.raises(ValueError):
        detectors.ClusteredAutoencoder(selection="magic", **detectors.ClusteredAutoencoder
                                       .fast_params()).fit(X[:100])


def test_clustered_autoencoder_beats_a_plain_autoencoder_on_polluted_data(rng) -> None:
    """A 15 % flood of near-identical rows in training: the plain AE learns to reconstruct
    it (it then looks normal); the leave-one-cluster-out filter drops it."""
    from sklearn.metrics import roc_auc_score

    def normal(n: int) -> np.ndarray:
        t = rng.normal(size=(n, 2))
        return np.hstack([t, t @ [[1.0, -0.5], [0.5, 1.0]], 0.05 * rng.normal(size=(n, 2))])

    flood_row = np.array([2.5, -2.5, 3.0, 2.5, 1.5, -1.5])
    X = np.vstack([normal(850), flood_row + 0.01 * rng.normal(size=(150, 6))])
    test = np.vstack([normal(200), flood_row + 0.01 * rng.normal(size=(200, 6))])
    y = np.r_[np.zeros(200), np.ones(200)]
    small = {"hidden": (16,), "latent_dim": 2, "batch_size": 32, "lr": 1e-2,
             "progress": False}
    det = detectors.ClusteredAutoencoder(**small, epochs=30, round_epochs=30,
                                         n_clusters=4).fit(X)
    plain = detectors.Autoencoder(**small, epochs=30).fit(X)
    auc, plain_auc = (roc_auc_score(y, m.score_many(test)) for m in (det, plain))
    assert det.selected_fraction_[-1] <= 0.86  # the flood (15 %) is out of the normal set
    assert auc > 0.95
    assert auc > plain_auc + 0.2


def test_early_stopping_keeps_the_best_epoch_and_reports_its_loss() -> None:
    from detectors.deep import Autoencoder

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    det = Autoencoder(epochs=40, patience=3, random_state=0).fit(X)
    report = det.training_report_
    # Training ran past `patience` epochs (it used to stop there, keeping the last ones)
    # and reports the best validation loss it kept.
    assert report["epochs"] > 3
    assert report["best_val_loss"] is not None and np.isfinite(report["best_val_loss"])
