"""Where the labelled data of an evaluation is, and what its labels mean.

Reading the files is :mod:`windowing.readers`' job (``read_nab_csv``, ``read_kdd``,
``read_csv_events``: the same readers ``anomstream features`` and ``replay`` use). This
module only adds what is specific to evaluating: finding the series of a NAB-layout corpus
and their labelled windows, choosing a CSV's label column, and turning labels into 0/1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation.kdd_categories import category_of

__all__ = [
    "LABEL_COLUMNS",
    "NABCorpus",
    "NABSeries",
    "binary_labels",
    "find_label_column",
    "find_nab_corpus",
    "kdd_categories",
    "naive_utc",
]

#: Label column candidates of a generic CSV, in order of preference.
LABEL_COLUMNS = ("label", "is_anomaly", "anomaly", "target", "y")
_NORMAL_TEXT = ("normal", "0", "false", "no", "ok", "")


@dataclass(frozen=True)
class NABSeries:
    """One labelled NAB series: ``name`` is its path relative to ``data/``."""

    name: str
    path: Path
    windows: list[list[str]]

    @property
    def group(self) -> str:
        return self.name.rsplit("/", 1)[0] if "/" in self.name else ""

    @property
    def file(self) -> str:
        return self.name.rsplit("/", 1)[-1]


@dataclass
class NABCorpus:
    series: list[NABSeries]
    labels_path: Path
    skipped: list[str] = field(default_factory=list)


def _find_labels(root: Path) -> Path:
    for candidate in (root / "labels" / "combined_windows.json", root / "windows.json"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no windows file under {root}: expected labels/combined_windows.json or windows.json"
    )


def find_nab_corpus(root: str | Path) -> NABCorpus:
    """Every labelled ``data/**.csv`` of a NAB-layout folder, with its windows.

    Files with no entry in the windows JSON are skipped (NAB does the same): without labels
    they cannot be scored. The files themselves are read later, one at a time, with
    :func:`windowing.readers.read_nab_csv`.
    """
    root = Path(root)
    labels_path = _find_labels(root)
    windows = json.loads(labels_path.read_text())
    data_dir = root / "data" if (root / "data").is_dir() else root
    series, skipped = [], []
    for csv in sorted(data_dir.rglob("*.csv")):
        name = csv.relative_to(data_dir).as_posix()
        if name not in windows:
            skipped.append(name)
            continue
        series.append(NABSeries(name, csv, [list(w) for w in windows[name]]))
    if not series:
        raise FileNotFoundError(f"no labelled CSV files under {data_dir}")
    return NABCorpus(series, labels_path, skipped)


def naive_utc(column: pd.Series) -> np.ndarray:
    """tz-aware timestamps (as the windowing readers return them) as naive UTC datetime64.

    NAB's windows file and its data files both write naive times; plots and the results
    layout want them as they were written.

    >>> naive_utc(pd.Series(pd.to_datetime(["2014-01-01 00:05"], utc=True))).tolist()
    [1388534700000000000]
    """
    col = pd.to_datetime(column, utc=True)
    return col.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")


def find_label_column(columns: list[str], wanted: str | None, path: Any = "") -> str:
    """``wanted``, or the first of :data:`LABEL_COLUMNS` present (case-insensitive).

    >>> find_label_column(["timestamp", "value", "Is_Anomaly"], None)
    'Is_Anomaly'
    """
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{path}: no column {wanted!r}")
        return wanted
    lower = {c.lower(): c for c in columns}
    found = next((lower[c] for c in LABEL_COLUMNS if c in lower), None)
    if found is None:
        raise ValueError(f"{path}: no label column (tried {', '.join(LABEL_COLUMNS)})")
    return found


def binary_labels(col: pd.Series) -> np.ndarray:
    """0/1 per row: non-zero numbers, and any text but ``normal``/``0``/``false``/... are 1.

    >>> binary_labels(pd.Series(["normal.", "smurf.", "0", "1"])).tolist()
    [0, 1, 0, 1]
    >>> binary_labels(pd.Series([0, 2, 0])).tolist()
    [0, 1, 0]
    """
    if col.dtype == bool:
        return col.to_numpy().astype(np.int8)
    if pd.api.types.is_numeric_dtype(col):
        return (np.nan_to_num(col.to_numpy(dtype=np.float64)) != 0).astype(np.int8)
    text = col.astype(str).str.strip().str.lower().str.rstrip(".")
    return (~text.isin(_NORMAL_TEXT)).to_numpy().astype(np.int8)


def kdd_categories(labels: Any) -> np.ndarray:
    """KDD category per row (``normal``, ``dos``, ``probe``, ``r2l``, ``u2r``, ``unknown``).

    >>> kdd_categories(["normal", "smurf", "apache2"]).tolist()
    ['normal', 'dos', 'unknown']
    """
    values = pd.Series(labels, dtype=object).astype(str)
    # Few distinct labels, many rows: map each distinct value once.
    uniques = values.unique()
    mapping = {u: category_of(u) for u in uniques}
    return values.map(mapping).to_numpy(dtype=object)
