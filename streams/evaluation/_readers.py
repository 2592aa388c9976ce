"""Minimal dataset readers for the evaluation harness.

STOPGAP: ``windowing/readers.py`` (``read_nab_csv``, ``read_kdd``, ``read_csv_events``) will
own reading these formats. Until it lands the harness uses these private readers; every
call site goes through the four functions below, so swapping is local to this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from streams.evaluation.kdd_categories import KDD_COLUMNS, category_of, normalize_label

__all__ = [
    "KDDData",
    "LabeledTable",
    "NABCorpus",
    "NABFile",
    "read_kdd",
    "read_labeled_csv",
    "read_nab_corpus",
]

_LABEL_CANDIDATES = ("label", "is_anomaly", "anomaly", "target", "y")
_TIME_CANDIDATES = ("timestamp", "time", "ts", "datetime", "date")


@dataclass
class NABFile:
    """One NAB series: ``name`` is its path relative to ``data/`` (``group/file.csv``)."""

    name: str
    timestamps: np.ndarray
    values: np.ndarray
    windows: list[list[str]]

    @property
    def group(self) -> str:
        return self.name.rsplit("/", 1)[0] if "/" in self.name else ""

    @property
    def file(self) -> str:
        return self.name.rsplit("/", 1)[-1]


@dataclass
class NABCorpus:
    files: list[NABFile]
    labels_path: Path
    skipped: list[str] = field(default_factory=list)


def _find_labels(root: Path) -> Path:
    for candidate in (root / "labels" / "combined_windows.json", root / "windows.json"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no windows file under {root}: expected labels/combined_windows.json or windows.json"
    )


def read_nab_corpus(root: str | Path) -> NABCorpus:
    """Every labelled ``data/**.csv`` of a NAB-layout folder, with its windows.

    Files with no entry in the windows JSON are skipped (NAB does the same): without
    labels they cannot be scored.
    """
    root = Path(root)
    labels_path = _find_labels(root)
    windows = json.loads(labels_path.read_text())
    data_dir = root / "data" if (root / "data").is_dir() else root
    files, skipped = [], []
    for csv in sorted(data_dir.rglob("*.csv")):
        name = csv.relative_to(data_dir).as_posix()
        if name not in windows:
            skipped.append(name)
            continue
        df = pd.read_csv(csv)
        if not {"timestamp", "value"} <= set(df.columns):
            raise ValueError(f"{csv}: NAB files need 'timestamp' and 'value' columns")
        files.append(
            NABFile(
                name=name,
                timestamps=np.asarray(pd.to_datetime(df["timestamp"]), dtype="datetime64[ns]"),
                values=df["value"].to_numpy(dtype=np.float64),
                windows=[list(w) for w in windows[name]],
            )
        )
    if not files:
        raise FileNotFoundError(f"no labelled CSV files under {data_dir}")
    return NABCorpus(files, labels_path, skipped)


@dataclass
class KDDData:
    """A KDD file: the 41 features (symbolic ones as text), raw labels and categories."""

    features: pd.DataFrame
    labels: np.ndarray
    categories: np.ndarray

    @property
    def is_anomaly(self) -> np.ndarray:
        return (self.categories != "normal").astype(np.int8)


def read_kdd(path: str | Path) -> KDDData:
    """A raw KDD Cup 99 file (no header; gzip or plain, by extension)."""
    df = pd.read_csv(path, header=None, compression="infer", low_memory=False)
    if df.shape[1] == len(KDD_COLUMNS) + 2:
        # NSL-KDD appends a difficulty level after the label.
        df = df.iloc[:, : len(KDD_COLUMNS) + 1]
    if df.shape[1] != len(KDD_COLUMNS) + 1:
        raise ValueError(
            f"{path}: expected {len(KDD_COLUMNS) + 1} fields per row, got {df.shape[1]}"
        )
    df.columns = [*KDD_COLUMNS, "label"]
    labels = np.asarray([normalize_label(str(v)) for v in df["label"]], dtype=object)
    cats = np.asarray([category_of(v) for v in labels], dtype=object)
    return KDDData(df.drop(columns="label"), labels, cats)


@dataclass
class LabeledTable:
    """A generic labelled CSV: numeric feature matrix, 0/1 labels, optional timestamps."""

    features: np.ndarray
    feature_names: list[str]
    labels: np.ndarray
    timestamps: np.ndarray | None


def _binary_labels(col: pd.Series) -> np.ndarray:
    if col.dtype == bool:
        return col.to_numpy().astype(np.int8)
    if pd.api.types.is_numeric_dtype(col):
        return (col.to_numpy(dtype=np.float64) != 0).astype(np.int8)
    text = col.astype(str).str.strip().str.lower().str.rstrip(".")
    normal = text.isin(["normal", "0", "false", "no", "ok", ""])
    return (~normal).to_numpy().astype(np.int8)


def read_labeled_csv(path: str | Path, label_column: str | None = None) -> LabeledTable:
    """A CSV with a header, a label column and numeric feature columns.

    The label column is ``label_column`` or the first of ``label``, ``is_anomaly``,
    ``anomaly``, ``target``, ``y``; non-zero / non-"normal" means anomalous. A
    ``timestamp`` (or ``time``, ``ts``...) column is kept for plots; other non-numeric
    columns are ignored.
    """
    df = pd.read_csv(path)
    lower = {c.lower(): c for c in df.columns}
    if label_column is None:
        found = next((lower[c] for c in _LABEL_CANDIDATES if c in lower), None)
        if found is None:
            raise ValueError(f"{path}: no label column (tried {', '.join(_LABEL_CANDIDATES)})")
        label_column = found
    elif label_column not in df.columns:
        raise ValueError(f"{path}: no column {label_column!r}")
    time_col = next((lower[c] for c in _TIME_CANDIDATES if c in lower), None)
    timestamps = None
    if time_col is not None:
        raw = df[time_col]
        timestamps = (
            raw.to_numpy(dtype=np.float64)
            if pd.api.types.is_numeric_dtype(raw)
            else np.asarray(pd.to_datetime(raw), dtype="datetime64[ns]")
        )
    feats = df.drop(columns=[c for c in (label_column, time_col) if c is not None])
    feats = feats.select_dtypes(include=["number", "bool"])
    if feats.shape[1] == 0:
        raise ValueError(f"{path}: no numeric feature column")
    return LabeledTable(
        features=feats.to_numpy(dtype=np.float64),
        feature_names=list(feats.columns),
        labels=_binary_labels(df[label_column]),
        timestamps=timestamps,
    )
