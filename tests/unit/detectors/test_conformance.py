"""Every registered detector obeys the protocol (like scikit-learn's ``check_estimator``).

Parametrised over ``detectors.available()``, so a detector registered later is checked too.
Detectors whose input has a special layout get their data from :data:`DATA` (the seasonal
profile needs time columns); everything else gets a small standard Gaussian.
"""


from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import detectors
from detectors import NotFittedError
from detectors.persistence import ManifestError

N_TRAIN, D = 240, 4

# Smaller parameters still for the slow ones, on top of each class's fast_params().
EXTRA_PARAMS: dict[str, dict[str, Any]] = {
    "ensemble": {"calibration": {"window": 200}},
}


def _gaussian(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=(n, D))


def _seasonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Value column + cyclic hour / day-of-week columns, hourly samples."""
    t = np.arange(n)
    hour, dow = t % 24, (t // 24) % 7
    value = np.sin(2 * np.pi * hour / 24) + 0.3 * rng.normal(size=n)
    return np.column_stack([value, np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24),
                            np.sin(2 * np.pi * dow / 7), np.cos(2 * np.pi * dow / 7)])


def _gaussian_extreme(X: np.ndarray, k: float) -> np.ndarray:
    """A point ``k`` standard deviations out along a fixed diagonal direction."""
    direction = np.array([1.0, -1.0, 1.0, -1.0])[: X.shape[1]]
    return X.mean(axis=0) + k * X.std(axis=0) * direction / np.sqrt(X.shape[1])


def _seasonal_extreme(X: np.ndarray, k: float) -> np.ndarray:
    row = X[5].copy()  # same time slot as row 5, value pushed k sigma above its slot
    row[0] = np.sin(2 * np.pi * 5 / 24) + 0.3 * k
    return row


DATA: dict[str, tuple[Callable[[np.random.Generator, int], np.ndarray],
                      Callable[[np.ndarray, float], np.ndarray]]] = {
    "seasonal_profile": (_seasonal, _seasonal_extreme),
}


def _make(name: str) -> detectors.Detector:
    cls = detectors.get(name)
    return cls(**{**cls.fast_params(), **EXTRA_PARAMS.get(name, {})})


def _data(name: str, seed: int = 0, n: int = N_TRAIN) -> np.ndarray:
    maker = DATA.get(name, (_gaussian, _gaussian_extreme))[0]
    return maker(np.random.default_rng(seed), n)


def _extreme(name: str, X: np.ndarray, k: float) -> np.ndarray:
    return DATA.get(name, (_gaussian, _gaussian_extreme))[1](X, k)


_FITTED: dict[str, tuple[detectors.Detector, np.ndarray]] = {}


def _fitted(name: str) -> tuple[detectors.Detector, np.ndarray]:
    """One fitted instance per detector, shared by the read-only checks (training is the
    slow part)."""
    if name not in _FITTED:
        X = _data(name)
        _FITTED[name] = (_make(name).fit(X, feature_names=[f"f{i}" for i in range(X.shape[1])]),
                         X)
    return _FITTED[name]


NAMES = detectors.available()


def test_registry_lists_every_family() -> None:
    for name in ("robust_zscore", "ew_gaussian", "seasonal_profile", "half_space_trees",
                 "loda", "online_ocsvm", "isolation_forest", "ocsvm", "pca", "lof", "kmeans",
                 "gaussian", "autoencoder", "vae", "seq2seq_lstm", "novelty_ae",
                 "clustered_ae", "bigan", "ensemble", "open_set_classifier"):
        assert name in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_not_fitted_error_before_fit(name: str) -> None:
    det = _make(name)
    assert not det.is_fitted
    with pytest.raises(NotFittedError):
        det.score_many(_data(name, n=5))


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_finite_scores(name: str) -> None:
    det, X = _fitted(name)
    assert det.n_features_in_ == X.shape[1]
    assert det.feature_names_ == [f"f{i}" for i in range(X.shape[1])]
    scores = det.score_many(X[:37])
    assert scores.shape == (37,)
    assert scores.dtype == np.float64
    assert np.isfinite(scores).all()
    assert isinstance(det.score_one(X[0]), float)
    assert det.score_one(X[3]) == pytest.approx(scores[3], rel=1e-6, abs=1e-9)
    assert det.score_many(X[:0]).shape == (0,)


@pytest.mark.parametrize("name", NAMES)
def test_no_nan_for_extreme_finite_input(name: str) -> None:
    det, X = _fitted(name)
    wild = np.vstack([_extreme(name, X, 1e6), _extreme(name, X, -1e6),
                      np.zeros(X.shape[1]), np.full(X.shape[1], 1e-300)])
    assert np.isfinite(det.score_many(wild)).all()


@pytest.mark.parametrize("name", NAMES)
def test_constant_feature_does_not_break_training(name: str) -> None:
    X = _data(name).copy()
    X[:, 0] = 1.0  # a flat value column (the seasonal profile's value column is 0 too)
    det = _make(name).fit(X)
    assert np.isfinite(det.score_many(X[:10])).all()


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shapes_raise_value_error(name: str) -> None:
    det, X = _fitted(name)
    with pytest.raises(ValueError, match="features"):
        det.score_many(np.zeros((3, X.shape[1] + 1)))
    with pytest.raises(ValueError, match="2-D"):
        det.score_many(np.zeros((2, 3, X.shape[1])))
    with pytest.raises(ValueError, match="NaN"):
        bad = X[:2].copy()
        bad[0, 0] = np.nan
        det.score_many(bad)
    with pytest.raises(ValueError):
        _make(name).fit(np.zeros((0, X.shape[1])))


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_with_seed(name: str) -> None:
    X = _data(name)
    a = _make(name).fit(X).score_many(X[:50])
    b = _make(name).fit(X).score_many(X[:50])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_more_extreme_scores_higher(name: str) -> None:
    det, X = _fitted(name)
    center = det.score_one(_extreme(name, X, 0.0))
    far = det.score_one(_extreme(name, X, 8.0))
    farther = det.score_one(_extreme(name, X, 30.0))
    assert center < far, (center, far)
    # Saturating detectors (trees, kernels, calibrated ensembles) may tie far out.
    assert far <= farther + 1e-9 * max(abs(far), 1.0), (far, farther)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name: str, tmp_path: Any) -> None:
    det, X = _fitted(name)
    det.save(tmp_path / "m", time_range=("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"))
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["detector"] == name
    assert manifest["feature_names"] == det.feature_names_
    assert manifest["training_range"]["n_samples"] == len(X)
    assert manifest["training_range"]["time_range"][0].startswith("2024-01-01")
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    loaded = detectors.load(tmp_path / "m")
    assert type(loaded) is type(det)
    np.testing.assert_array_equal(loaded.score_many(X[:50]), det.score_many(X[:50]))
    assert type(det).load(tmp_path / "m").feature_names_ == det.feature_names_


@pytest.mark.parametrize("name", NAMES)
def test_load_refuses_altered_files(name: str, tmp_path: Any) -> None:
    det, _ = _fitted(name)
    det.save(tmp_path / "m")
    for fname in json.loads((tmp_path / "m" / "manifest.json").read_text())["files"]:
        path = tmp_path / "m" / fname
        original = path.read_bytes()
        path.write_bytes(original + b" ")
        with pytest.raises(ManifestError, match="sha256"):
            detectors.load(tmp_path / "m")
        path.write_bytes(original)
    detectors.load(tmp_path / "m")


@pytest.mark.parametrize("name", NAMES)
def test_json_state_round_trip(name: str) -> None:
    det, X = _fitted(name)
    if not det.json_state:
        with pytest.raises(TypeError):
            det.to_state()
        return
    state = json.loads(json.dumps(det.to_state()))
    restored = type(det).from_state(state)
    np.testing.assert_array_equal(restored.score_many(X[:20]), det.score_many(X[:20]))


@pytest.mark.parametrize("name", [n for n in NAMES if detectors.get(n).online is True])
def test_online_learning_matches_batch(name: str) -> None:
    X = _data(name)
    batch = _make(name).fit(X)
    stream = _make(name)
    for start in range(0, len(X), 60):
        stream.learn_many(X[start : start + 60])
    assert stream.n_samples_seen_ == len(X)
    one = _make(name).learn_many(X[:-1]).learn_one(X[-1])
    assert one.n_samples_seen_ == len(X)
    assert np.isfinite(stream.score_many(X[:10])).all()
    if name not in ("half_space_trees", "loda", "online_ocsvm"):
        # Order-exact learners give the same model whatever the batching.
        np.testing.assert_allclose(stream.score_many(X[:10]), batch.score_many(X[:10]),
                                   rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in NAMES if detectors.get(n).online is False])
def test_batch_detectors_refuse_learn_many(name: str) -> None:
    with pytest.raises(NotImplementedError):
        _make(name).learn_many(_data(name, n=10))


@pytest.mark.parametrize("name", NAMES)
def test_explain_shape_when_supported(name: str) -> None:
    det, X = _fitted(name)
    try:
        contrib = det.explain(X[:5])
    except NotImplementedError:
        return
    assert contrib.shape == (5, X.shape[1])
    assert np.isfinite(contrib).all()


@pytest.mark.parametrize("name", NAMES)
def test_repr_and_clone(name: str) -> None:
    det, _ = _fitted(name)
    assert type(det).__name__ in repr(det)
    fresh = det.clone()
    assert not fresh.is_fitted
    assert fresh.get_params().keys() == det.get_params().keys()
