"""OpenSetClassifier: known classes named, an unseen cluster called unknown and scored high."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import detectors
from detectors import metrics
from detectors.deep.open_set import UNKNOWN, OpenSetClassifier

CENTRES = {
    "normal": (0.0, 0.0, 0.0, 0.0),
    "flood": (6.0, 0.0, 0.0, 0.0),
    "scan": (0.0, 6.0, 0.0, 0.0),
}
# Not in training: beyond the two attacks, seen from the normal cluster (where a softmax
# extrapolates one of the known attacks, often with high probability).
UNSEEN = (5.0, 5.0, 0.0, 6.0)


def _cluster(rng: np.random.Generator, centre: tuple[float, ...], n: int) -> np.ndarray:
    return rng.normal(size=(n, len(centre))) + np.asarray(centre)


def _data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.vstack([_cluster(rng, c, n) for c in CENTRES.values()])
    y = np.repeat(list(CENTRES), n)
    return X, y


def _make(**over: Any) -> OpenSetClassifier:
    params = {"hidden": (16,), "epochs": 40, "lr": 1e-2, "batch_size": 64, "n_prototypes": 4,
              "progress": False, **over}
    return OpenSetClassifier(**params)


@pytest.fixture(scope="module")
def fitted() -> OpenSetClassifier:
    X, y = _data(0, 400)
    return _make().fit(X, y, feature_names=["a", "b", "c", "d"])


@pytest.fixture(scope="module")
def test_rows() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    rows = {name: _cluster(rng, c, 300) for name, c in CENTRES.items()}
    rows["unseen"] = _cluster(rng, UNSEEN, 300)
    return rows


def test_known_classes_are_named_with_confidence(fitted, test_rows) -> None:
    assert fitted.classes_ == ["normal", "flood", "scan"]  # normal first, then sorted
    for name in CENTRES:
        said, p = fitted.predict_verdict(test_rows[name])
        named = said == name
        assert named.mean() >= 0.9, (name, named.mean())
        assert (p[named] >= fitted.threshold).all()


def test_unseen_cluster_is_unknown_and_scores_above_normal(fitted, test_rows) -> None:
    said, _ = fitted.predict_verdict(test_rows["unseen"])
    assert (said == UNKNOWN).mean() >= 0.8
    normal = fitted.score_many(test_rows["normal"])
    unseen = fitted.score_many(test_rows["unseen"])
    y = np.r_[np.zeros(len(normal)), np.ones(len(unseen))]
    assert metrics.roc_auc(y, np.r_[normal, unseen]) > 0.9
    # Known attacks score high too: both kinds of anomaly are above normal traffic.
    flood = fitted.score_many(test_rows["flood"])
    assert metrics.roc_auc(y, np.r_[normal, flood]) > 0.95


def test_softmax_alone_would_not_flag_the_unseen_cluster(fitted, test_rows) -> None:
    # Why the prototypes are there: the network gives many unseen rows a known class
    # with high probability, so most unknown verdicts come from the novelty check.
    proba = fitted.predict_proba(test_rows["unseen"])
    assert (proba.max(axis=1) >= fitted.threshold).mean() > 0.3
    assert np.median(fitted.novelty(test_rows["unseen"])) > fitted.novelty_limit
    assert np.median(fitted.novelty(test_rows["normal"])) < 1.0


def test_save_load_and_json_state_are_identical(fitted, test_rows, tmp_path) -> None:
    X = np.vstack(list(test_rows.values()))
    fitted.save(tmp_path / "m")
    saved = set(json.loads((tmp_path / "m" / "manifest.json").read_text())["files"])
    assert "objects.pkl" not in saved  # weights + arrays only, nothing pickled
    loaded = detectors.load_detector(tmp_path / "m", allow_pickle=False)
    restored = OpenSetClassifier.from_state(json.loads(json.dumps(fitted.to_state())))
    for other in (loaded, restored):
        assert isinstance(other, OpenSetClassifier)
        assert other.classes_ == fitted.classes_
        np.testing.assert_array_equal(other.score_many(X), fitted.score_many(X))
        np.testing.assert_array_equal(other.predict_proba(X), fitted.predict_proba(X))
        said, p = other.predict_verdict(X)
        said0, p0 = fitted.predict_verdict(X)
        assert said.tolist() == said0.tolist()
        np.testing.assert_array_equal(p, p0)


def test_seeded_fit_is_deterministic(test_rows) -> None:
    X, y = _data(2, 150)
    a = _make(epochs=5).fit(X, y).score_many(test_rows["unseen"])
    b = _make(epochs=5).fit(X, y).score_many(test_rows["unseen"])
    np.testing.assert_array_equal(a, b)


def test_without_labels_one_normal_class_and_distance_score(test_rows) -> None:
    X, _ = _data(3, 300)
    det = _make().fit(X[:300])  # the normal cluster only, no y
    assert det.classes_ == ["normal"] and det.module_ is None
    said, p = det.predict_verdict(np.vstack([np.zeros(4), [9.0, 9.0, 9.0, 9.0]]))
    assert said.tolist() == ["normal", UNKNOWN] and p.tolist() == [1.0, 1.0]
    scores = det.score_many(np.outer([0.0, 2.0, 4.0, 8.0], [1.0, 0.0, 0.0, 0.0]))
    assert (np.diff(scores) > 0).all()
    normal = det.score_many(test_rows["normal"])
    unseen = det.score_many(test_rows["unseen"])
    y = np.r_[np.zeros(len(normal)), np.ones(len(unseen))]
    assert metrics.roc_auc(y, np.r_[normal, unseen]) > 0.99


def test_explain_splits_the_score(fitted, test_rows) -> None:
    x = test_rows["unseen"][:20]
    contrib = fitted.explain(x)
    np.testing.assert_allclose(contrib.sum(axis=1), fitted.score_many(x), rtol=1e-9)
    # The unseen cluster departs from normal in a, b and d, not in c.
    assert (np.abs(contrib[:, 2]).mean() < np.abs(contrib[:, [0, 1, 3]]).mean(axis=0)).all()
    assert fitted.normal_contribution().shape == (4,)


def test_bad_labels_are_refused() -> None:
    X, y = _data(4, 30)
    with pytest.raises(ValueError, match="labels for"):
        _make().fit(X, y[:-1])
    with pytest.raises(ValueError, match="normal_label"):
        _make().fit(X[30:], y[30:])  # no normal row
    with pytest.raises(ValueError, match="verdict"):
        _make().fit(X, np.where(y == "scan", UNKNOWN, y))
