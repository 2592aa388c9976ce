"""Feature tables: what the detectors see, one row per event, for a whole file.

:func:`feature_table` reads a recorded dataset and runs it through the same pipelines the
stream agents use (vectorised path), returning a DataFrame with named columns:

* sensors (``nab``, ``csv``): ``entity``, ``timestamp``, the raw ``value`` (and channels),
  ``label`` if the file has one, the features (``value_z`` …, ``hour_sin``, ``hour_cos``,
  ``dow_sin``, ``dow_cos``), then the decision columns ``differenced``,
  ``seasonal_differenced``, ``stationarity``, ``adf_pvalue``, ``kpss_pvalue``, ``gap``,
  ``missing``, ``warm``, ``aligned_timestamp``;
* connections (``kdd``, or a ``csv`` with the KDD columns): ``label``, the 38 scaled numeric
  fields, the one-hot columns, then ``traffic``, ``out_of_range``, ``n_out_of_range``,
  ``out_of_range_fields``.

The index is the row number in the file; rows the pipeline refused are left out and
counted in ``attrs["rejected"]`` (``{reason: count}``); ``attrs["feature_names"]`` lists the
feature columns. :func:`format_feature_table` renders a table for the terminal
(``anomstream features PATH --format nab|kdd|csv``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from windowing.connection import ConnectionFeaturePipeline
from windowing.readers import epoch_seconds, read_csv_events, read_kdd, read_nab_csv
from windowing.sensor import SensorFeaturePipeline

__all__ = [
    "FORMATS",
    "connection_feature_table",
    "feature_table",
    "format_feature_table",
    "sensor_feature_table",
]

FORMATS = ("nab", "kdd", "csv")
_READER_OPTIONS = ("timestamp_col", "value_cols", "label_col", "entity_col")
_DECISION_COLUMNS = (
    "differenced", "seasonal_differenced", "stationarity", "adf_pvalue", "kpss_pvalue",
    "gap", "missing", "warm", "aligned_timestamp",
)  # fmt: skip
_CONNECTION_META = ("traffic", "out_of_range", "n_out_of_range", "out_of_range_fields")


def _utc_column(seconds: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(seconds, unit="s", utc=True))


def sensor_feature_table(
    frame: pd.DataFrame, *, entity: str = "sensor", **pipeline_options: Any
) -> pd.DataFrame:
    """Feature table of a readings frame (``timestamp``, ``value``, optional channels in
    ``attrs["channels"]``, optional ``sensor_id`` and ``label``); one pipeline per sensor.

    >>> ts = pd.date_range("2024-03-30", periods=400, freq="5min", tz="UTC")
    >>> frame = pd.DataFrame({"timestamp": ts, "value": np.arange(400.0)})
    >>> table = sensor_feature_table(frame, entity="t1", tz="Europe/Berlin")
    >>> table.attrs["feature_names"]
    ['value_z', 'hour_sin', 'hour_cos', 'dow_sin', 'dow_cos']
    >>> table["stationarity"].iloc[-1], bool(table["differenced"].iloc[-1])  # a ramp
    ('difference_stationary', True)
    """
    channels = list(frame.attrs.get("channels", []))
    groups = frame.groupby("sensor_id", sort=False) if "sensor_id" in frame else [
        (entity, frame)]
    parts: list[pd.DataFrame] = []
    rejected: Counter[str] = Counter()
    names: tuple[str, ...] = ()
    for sensor_id, group in groups:
        pipe = SensorFeaturePipeline(str(sensor_id), channels=channels, **pipeline_options)
        batch = pipe.update_many(
            epoch_seconds(group["timestamp"]),
            group["value"].to_numpy(dtype=np.float64),
            {c: group[c].to_numpy(dtype=np.float64) for c in channels},
        )
        names = batch.names
        rejected.update(reason for _, reason in batch.rejected)
        rows = group.iloc[batch.index] if batch.index is not None else group
        part = pd.DataFrame(index=rows.index)
        part["entity"] = str(sensor_id)
        part["timestamp"] = _utc_column(batch.timestamps).to_numpy()
        part["value"] = batch.meta["value"]
        for c in channels:
            part[c] = batch.meta[f"{c}_raw"]
        if "label" in rows:
            part["label"] = rows["label"].to_numpy()
        for j, name in enumerate(batch.names):
            part[name] = batch.values[:, j]
        for key in _DECISION_COLUMNS:
            part[key] = batch.meta[key]
        part["aligned_timestamp"] = _utc_column(batch.meta["aligned_timestamp"]).to_numpy()
        for c in channels:
            for key in ("differenced", "stationarity"):
                part[f"{c}_{key}"] = batch.meta[f"{c}_{key}"]
        parts.append(part)
    table = pd.concat(parts).sort_index() if parts else pd.DataFrame()
    table.attrs.update(feature_names=list(names), rejected=dict(rejected), kind="sensors")
    return table


def connection_feature_table(
    frame: pd.DataFrame, *, fit_fraction: float = 1.0, **pipeline_options: Any
) -> pd.DataFrame:
    """Feature table of a connections frame (KDD columns, with or without traffic fields).

    Scaling bounds and vocabulary are fitted on the first ``fit_fraction`` of the rows
    (default: all of them, as for a training file).
    """
    if not 0.0 < fit_fraction <= 1.0:
        raise ValueError("fit_fraction must be in (0, 1]")
    data = frame.copy()
    if "timestamp" in data:
        data["timestamp"] = epoch_seconds(data["timestamp"])
    n_fit = max(1, round(len(data) * fit_fraction))
    pipe = ConnectionFeaturePipeline(**pipeline_options).fit(data.iloc[:n_fit])
    batch = pipe.update_many(data)
    rows = data.iloc[batch.index] if batch.index is not None else data
    columns: dict[str, Any] = {}
    if "timestamp" in data:
        columns["timestamp"] = _utc_column(batch.timestamps).to_numpy()
    if "label" in rows:
        columns["label"] = rows["label"].to_numpy()
    columns.update({name: batch.values[:, j] for j, name in enumerate(batch.names)})
    columns.update({key: batch.meta[key] for key in _CONNECTION_META})
    table = pd.DataFrame(columns, index=rows.index)
    table.attrs.update(feature_names=list(batch.names),
                       rejected=dict(Counter(r for _, r in batch.rejected)), kind="connections")
    return table


def feature_table(path: str | Path, fmt: str = "nab", **options: Any) -> pd.DataFrame:
    """The feature table of a file.

    Parameters
    ----------
    path
        The dataset file.
    fmt
        ``"nab"`` (NAB csv), ``"kdd"`` (KDD Cup 99, gzip or plain) or ``"csv"`` (generic:
        see :func:`~windowing.readers.read_csv_events`).
    **options
        ``timestamp_col``, ``value_cols``, ``label_col``, ``entity_col`` go to the CSV
        reader; ``nrows`` to the KDD reader; ``fit_fraction`` to
        :func:`connection_feature_table`; the rest to the pipeline
        (:class:`~windowing.sensor.SensorFeaturePipeline` for sensors, e.g. ``tz``,
        ``cadence``, ``seasonal_period``, ``warmup``;
        :class:`~windowing.connection.ConnectionFeaturePipeline` for connections).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    path = Path(path)
    if fmt == "nab":
        return sensor_feature_table(read_nab_csv(path), entity=path.stem, **options)
    if fmt == "kdd":
        nrows = options.pop("nrows", None)
        return connection_feature_table(read_kdd(path, nrows=nrows), **options)
    reader_options = {k: options.pop(k) for k in _READER_OPTIONS if k in options}
    frame = read_csv_events(path, **reader_options)
    if frame.attrs.get("kind") == "connections":
        return connection_feature_table(frame, **options)
    return sensor_feature_table(frame, entity=path.stem, **options)


def format_feature_table(table: pd.DataFrame, max_rows: int = 20, digits: int = 4) -> str:
    """The table as terminal text: a summary line, then the first and last rows.

    >>> t = pd.DataFrame({"value_z": [0.5, -1.25]}, index=[0, 2])
    >>> t.attrs.update(feature_names=["value_z"], rejected={"duplicate": 1})
    >>> print(format_feature_table(t))
    2 rows; features (1): value_z; rejected: duplicate=1
       value_z
    0      0.5
    2    -1.25
    """
    names = list(table.attrs.get("feature_names", []))
    shown = ", ".join(names) if len(names) <= 12 else ", ".join(names[:12]) + ", …"
    summary = f"{len(table)} rows; features ({len(names)}): {shown}"
    rejected = table.attrs.get("rejected") or {}
    if rejected:
        summary += "; rejected: " + ", ".join(f"{k}={v}" for k, v in sorted(rejected.items()))
    if "stationarity" in table and len(table):
        counts = table["stationarity"].value_counts()
        summary += "\nstationarity: " + ", ".join(f"{k}={v}" for k, v in counts.items())
    if len(table) > max_rows:
        half = max(1, max_rows // 2)
        body = pd.concat([table.head(half), table.tail(half)])
        text = body.to_string(float_format=lambda v: f"{v:.{digits}g}", max_cols=40)
        lines = text.splitlines()
        lines.insert(half + 1, "…")
        text = "\n".join(lines)
    else:
        text = table.to_string(float_format=lambda v: f"{v:.{digits}g}", max_cols=40)
    return f"{summary}\n{text}"
