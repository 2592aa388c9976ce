"""Model cards: the table operators use to pick a detector.

One card per trained detector: what it is (name, parameters), what it costs (size
serialised, training time, inference time per 10k events) and how well it did (metrics of
the evaluation that produced it). Cards render as a Markdown table or JSON.
"""

from __future__ import annotations

import json
import math
import pickle
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detectors.base import Detector

__all__ = [
    "ModelCard",
    "build_model_card",
    "cards_to_json",
    "cards_to_markdown",
    "profile_detector",
    "serialized_size",
    "write_model_cards",
]


@dataclass
class ModelCard:
    """Facts about one trained detector. Times are seconds, sizes bytes."""

    detector: str
    entity: str
    params: dict[str, Any]
    n_features: int
    train_rows: int
    train_seconds: float
    size_bytes: int
    inference_seconds_per_10k: float
    inference_mode: str
    metrics: dict[str, float | int | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["params"] = {k: _jsonable(v) for k, v in self.params.items()}
        d["metrics"] = {k: _jsonable(v) for k, v in self.metrics.items()}
        return d


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    return repr(v)


def serialized_size(detector: Detector) -> int:
    """Bytes the detector takes on disk.

    Uses the detector's own ``save(dir)`` (what the model registry stores) when it has
    one and it works, else the length of its pickle.

    >>> import detectors
    >>> serialized_size(detectors.create("robust_zscore")) > 0
    True
    """
    save = getattr(detector, "save", None)
    if callable(save) and getattr(detector, "is_fitted", False):
        try:
            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / "model"
                save(target)
                files = [target] if target.is_file() else list(target.rglob("*"))
                return sum(p.stat().st_size for p in files if p.is_file())
        except Exception:  # a detector that cannot save still has a size: its pickle
            pass
    return len(pickle.dumps(detector, protocol=pickle.HIGHEST_PROTOCOL))


def build_model_card(
    detector: Detector,
    *,
    entity: str,
    train_rows: int,
    train_seconds: float,
    inference_seconds: float,
    inference_rows: int,
    inference_mode: str,
    metrics: dict[str, Any] | None = None,
) -> ModelCard:
    """A card for a detector trained and run elsewhere (times measured by the caller)."""
    per_10k = inference_seconds / inference_rows * 10_000 if inference_rows else float("nan")
    return ModelCard(
        detector=type(detector).name or type(detector).__name__,
        entity=entity,
        params=detector.get_params(),
        n_features=int(getattr(detector, "n_features_in_", 0)),
        train_rows=int(train_rows),
        train_seconds=float(train_seconds),
        size_bytes=serialized_size(detector),
        inference_seconds_per_10k=float(per_10k),
        inference_mode=inference_mode,
        metrics=dict(metrics or {}),
    )


def profile_detector(
    factory: Callable[[], Detector],
    x_train: np.ndarray,
    x_eval: np.ndarray,
    *,
    entity: str = "",
    metrics: dict[str, Any] | None = None,
    max_eval_rows: int = 10_000,
) -> ModelCard:
    """Train a fresh detector on ``x_train``, time batch scoring of up to 10k rows of ``x_eval``.

    >>> import detectors
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> card = profile_detector(lambda: detectors.create("robust_zscore"), X, X)
    >>> card.detector, card.train_rows, card.n_features
    ('robust_zscore', 200, 2)
    """
    det = factory()
    t0 = time.perf_counter()
    det.fit(x_train)
    train_seconds = time.perf_counter() - t0
    x_eval = np.asarray(x_eval, dtype=np.float64)[:max_eval_rows]
    t0 = time.perf_counter()
    det.score_many(x_eval)
    infer = time.perf_counter() - t0
    return build_model_card(
        det,
        entity=entity,
        train_rows=len(x_train),
        train_seconds=train_seconds,
        inference_seconds=infer,
        inference_rows=len(x_eval),
        inference_mode="batch",
        metrics=metrics,
    )


def cards_to_json(cards: Sequence[ModelCard]) -> list[dict[str, Any]]:
    """JSON-ready list (NaN and infinities become ``null``)."""
    return [c.to_dict() for c in cards]


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        return f"{v:.4g}"
    return str(v)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover - loop always returns


def cards_to_markdown(cards: Sequence[ModelCard]) -> str:
    """One Markdown table, one row per card; metric columns are the union over cards.

    >>> card = ModelCard("robust_zscore", "s1", {"window": 288}, 1, 100, 0.01, 2048, 0.5,
    ...                  "online", {"roc_auc": 0.9})
    >>> print(cards_to_markdown([card]).splitlines()[2])
    | robust_zscore | s1 | window=288 | 1 | 100 | 0.01 | 2.0 KiB | 0.5 (online) | 0.9 |
    """
    metric_keys: list[str] = []
    for c in cards:
        metric_keys += [k for k in c.metrics if k not in metric_keys]
    head = [
        "detector",
        "entity",
        "parameters",
        "features",
        "train rows",
        "train s",
        "size",
        "inference s / 10k",
        *metric_keys,
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cards:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in c.params.items())
        row = [
            c.detector,
            c.entity,
            params,
            str(c.n_features),
            str(c.train_rows),
            _fmt(c.train_seconds),
            _size(c.size_bytes),
            f"{_fmt(c.inference_seconds_per_10k)} ({c.inference_mode})",
            *(_fmt(c.metrics.get(k)) for k in metric_keys),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def write_model_cards(cards: Sequence[ModelCard], out_dir: str | Path) -> list[Path]:
    """``model_cards.md`` and ``model_cards.json`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "model_cards.md"
    md.write_text("# Model cards\n\n" + cards_to_markdown(cards))
    js = out / "model_cards.json"
    js.write_text(json.dumps(cards_to_json(cards), indent=2) + "\n")
    return [md, js]
