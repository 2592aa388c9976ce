"""Readers for recorded datasets, shared by ``anomstream features``, ``replay`` and ``evaluate``.

* :func:`read_nab_csv` — a Numenta Anomaly Benchmark series (``timestamp,value``);
* :func:`read_kdd` — a KDD Cup 99 file (41 fields + label, no header; gzip or plain);
* :func:`read_csv_events` — a generic CSV of timestamped readings (one or more value
  columns, optional entity and label columns) or of raw connections.

Timestamps come back as a tz-aware UTC ``timestamp`` column (naive text is taken as UTC,
unparsable text becomes NaT and its row is refused downstream with ``bad_timestamp``);
:func:`epoch_seconds` turns such a column into the epoch floats the pipelines take.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from windowing.kdd import CATEGORICAL_FIELDS, KDD_FIELDS

__all__ = ["epoch_seconds", "read_csv_events", "read_kdd", "read_nab_csv"]

_TIME_COLUMNS = ("timestamp", "time", "ts", "datetime", "date")
_LABEL_COLUMNS = ("label", "is_anomaly", "anomaly", "target")
_ENTITY_COLUMNS = ("sensor_id", "entity", "sensor", "id")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def epoch_seconds(column: Any) -> np.ndarray:
    """Epoch seconds (float) from datetimes (naive = UTC) or epoch numbers (ms if > 1e11).

    >>> epoch_seconds(pd.Series(pd.to_datetime(["1970-01-01 00:01:00"]))).tolist()
    [60.0]
    >>> epoch_seconds([1709290800000, 1709290800.5]).tolist()
    [1709290800.0, 1709290800.5]
    >>> epoch_seconds(["1709290800", "1709290800.5"]).tolist()
    [1709290800.0, 1709290800.5]
    >>> epoch_seconds(["2024-03-01T12:00:00+01:00", "noon"]).tolist()  # unparsable -> NaN
    [1709290800.0, nan]
    """
    series = column if isinstance(column, pd.Series) else pd.Series(column)
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(
            series)):
        # Text or mixed objects: epoch numbers written as text stay epoch numbers.
        numeric = pd.to_numeric(series, errors="coerce")
        if numeric.notna().sum() == series.notna().sum() and series.notna().any():
            series = numeric
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        ts = series.to_numpy(dtype=np.float64)
        return np.where(np.abs(ts) > 1e11, ts / 1000.0, ts)
    stamps = pd.to_datetime(series, utc=True, format="mixed", errors="coerce")
    return ((stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(
        dtype=np.float64)


def _utc(series: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return pd.to_datetime(epoch_seconds(series), unit="s", utc=True).to_series(
            index=series.index)
    # Unparsable entries become NaT, which the pipelines refuse row by row (bad_timestamp).
    return pd.to_datetime(series, utc=True, format="mixed", errors="coerce")


def read_nab_csv(path: str | Path) -> pd.DataFrame:
    """A NAB series: columns ``timestamp`` (UTC) and ``value`` (float), file order kept.

    >>> import io
    >>> df = read_nab_csv(io.StringIO("timestamp,value\\n2014-01-01 00:00:00,1.5\\n"))
    >>> str(df["timestamp"].dt.tz), epoch_seconds(df["timestamp"]).tolist(), df["value"].tolist()
    ('UTC', [1388534400.0], [1.5])
    """
    frame = pd.read_csv(path)
    missing = {"timestamp", "value"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: a NAB file needs columns timestamp,value; missing "
                         f"{', '.join(sorted(missing))}")
    return pd.DataFrame({
        "timestamp": _utc(frame["timestamp"]),
        "value": pd.to_numeric(frame["value"], errors="coerce").astype(np.float64),
    })


def read_kdd(path: str | Path, *, nrows: int | None = None) -> pd.DataFrame:
    """A KDD Cup 99 file: the 41 named columns plus ``label`` (``normal``, ``smurf`` …).

    No header; gzip or plain (by extension). The trailing ``.`` of KDD labels is dropped;
    a 43rd column (NSL-KDD's difficulty level) is ignored.
    """
    dtypes: dict[Any, Any] = {i: str for i, f in enumerate(KDD_FIELDS) if f in CATEGORICAL_FIELDS}
    dtypes[len(KDD_FIELDS)] = str
    frame = pd.read_csv(path, header=None, dtype=dtypes, nrows=nrows, compression="infer")
    if frame.shape[1] not in (len(KDD_FIELDS) + 1, len(KDD_FIELDS) + 2):
        raise ValueError(f"{path}: expected {len(KDD_FIELDS) + 1} fields per row, "
                         f"got {frame.shape[1]}")
    frame = frame.iloc[:, : len(KDD_FIELDS) + 1]
    frame.columns = [*KDD_FIELDS, "label"]
    frame["label"] = frame["label"].str.strip().str.rstrip(".")
    return frame


def _pick(columns: Sequence[str], wanted: str | None, candidates: Sequence[str],
          what: str) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"no {what} column {wanted!r}; columns: {', '.join(columns)}")
        return wanted
    lower = {c.lower(): c for c in columns}
    return next((lower[c] for c in candidates if c in lower), None)


def read_csv_events(
    path: str | Path,
    *,
    timestamp_col: str | None = None,
    value_cols: Sequence[str] | None = None,
    label_col: str | None = None,
    entity_col: str | None = None,
) -> pd.DataFrame:
    """A CSV of timestamped events, with canonical column names.

    * ``timestamp_col`` (default: the first of ``timestamp``, ``time``, ``ts``, ``datetime``,
      ``date``) becomes ``timestamp`` (UTC; epoch numbers accepted);
    * ``entity_col`` (default: ``sensor_id``, ``entity``, ``sensor``, ``id`` if present)
      becomes ``sensor_id``;
    * ``label_col`` (default: ``label``, ``is_anomaly``, ``anomaly``, ``target`` if present)
      becomes ``label``;
    * ``value_cols`` (default: ``value`` first if present, then every other numeric
      column): the first becomes ``value``, the others are extra channels, renamed to safe
      names. ``attrs["channels"]`` lists the channels, ``attrs["value_source"]`` the
      original name of ``value``.

    A file with the KDD intrinsic columns (``protocol_type``, ``service``, ``flag`` …) is a
    connection file: it is returned with only ``timestamp`` / ``label`` renamed and
    ``attrs["kind"] = "connections"`` (otherwise ``"sensors"``).
    """
    frame = pd.read_csv(path)
    columns = list(frame.columns)
    ts_col = _pick(columns, timestamp_col, _TIME_COLUMNS, "timestamp")
    lbl_col = _pick(columns, label_col, _LABEL_COLUMNS, "label")
    out = frame.copy()
    if ts_col is not None:
        out = out.rename(columns={ts_col: "timestamp"})
        out["timestamp"] = _utc(out["timestamp"])
    if lbl_col is not None:
        out = out.rename(columns={lbl_col: "label"})
    if all(f in columns for f in CATEGORICAL_FIELDS):
        out.attrs.update(kind="connections", channels=[], value_source=None)
        return out
    if ts_col is None:
        raise ValueError(f"{path}: no timestamp column (tried {', '.join(_TIME_COLUMNS)})")
    ent_col = _pick(columns, entity_col, _ENTITY_COLUMNS, "entity")
    if ent_col is not None:
        out = out.rename(columns={ent_col: "sensor_id"})
        out["sensor_id"] = out["sensor_id"].astype(str)
    if value_cols is None:
        taken = {ts_col, lbl_col, ent_col}
        numeric = [c for c in columns if c not in taken
                   and pd.api.types.is_numeric_dtype(frame[c])
                   and not pd.api.types.is_bool_dtype(frame[c])]
        value_cols = sorted(numeric, key=lambda c: c != "value")
    if not value_cols:
        raise ValueError(f"{path}: no numeric value column")
    for c in value_cols:
        if c not in columns:
            raise ValueError(f"no value column {c!r}; columns: {', '.join(columns)}")
    main, *extra = value_cols
    renames = {main: "value"}
    channels = []
    for c in extra:
        safe = _UNSAFE.sub("_", str(c)).strip("_") or "channel"
        if not safe[0].isalpha():
            safe = f"c_{safe}"
        while safe in channels or safe in ("value", "timestamp", "label", "sensor_id"):
            safe += "_"
        renames[c] = safe
        channels.append(safe)
    out = out.rename(columns=renames)
    for c in ("value", *channels):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(np.float64)
    keep = [c for c in ("sensor_id", "timestamp", "value", *channels, "label") if c in out]
    out = out[keep]
    out.attrs.update(kind="sensors", channels=channels, value_source=str(main))
    return out
