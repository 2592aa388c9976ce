"""Readers and feature tables on small files the tests write themselves."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from windowing.kdd import KDD_FIELDS, NUMERIC_FIELDS
from windowing.readers import epoch_seconds, read_csv_events, read_kdd, read_nab_csv
from windowing.table import feature_table, format_feature_table

KDD_ROWS = [
    "0,tcp,http,SF,181,5450,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,8,8,0.00,0.00,0.00,0.00,1.00,0.00,"
    "0.00,9,9,1.00,0.00,0.11,0.00,0.00,0.00,0.00,0.00,normal.",
    "0,tcp,http,SF,239,486,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,8,8,0.00,0.00,0.00,0.00,1.00,0.00,"
    "0.00,19,19,1.00,0.00,0.05,0.00,0.00,0.00,0.00,0.00,normal.",
    "0,icmp,ecr_i,SF,1032,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,511,511,0.00,0.00,0.00,0.00,1.00,"
    "0.00,0.00,255,255,1.00,0.00,1.00,0.00,0.00,0.00,0.00,0.00,smurf.",
    "0,tcp,private,S0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,123,6,1.00,1.00,0.00,0.00,0.05,0.07,"
    "0.00,255,26,0.10,0.05,0.00,0.00,1.00,1.00,0.00,0.00,neptune.",
]


@pytest.fixture
def nab_file(tmp_path: Path) -> Path:
    ts = pd.date_range("2014-03-09 00:00", periods=600, freq="5min")
    values = 50 + 0.02 * np.arange(600) + np.random.default_rng(0).normal(0, 1, 600)
    frame = pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": values})
    frame = frame.drop(index=range(100, 110))  # a gap
    path = tmp_path / "machine_temp.csv"
    frame.to_csv(path, index=False)
    return path


def test_read_nab_csv(nab_file: Path) -> None:
    frame = read_nab_csv(nab_file)
    assert list(frame.columns) == ["timestamp", "value"] and len(frame) == 590
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert epoch_seconds(frame["timestamp"])[0] == pd.Timestamp("2014-03-09", tz="UTC").timestamp()


def test_nab_feature_table(nab_file: Path) -> None:
    table = feature_table(nab_file, "nab", warmup=200, tz="America/New_York")
    assert table.attrs["feature_names"] == ["value_z", "hour_sin", "hour_cos", "dow_sin",
                                            "dow_cos"]
    for col in ("entity", "timestamp", "value", "differenced", "stationarity", "adf_pvalue",
                "kpss_pvalue", "gap", "missing", "warm", "aligned_timestamp"):
        assert col in table
    assert table["entity"].iloc[0] == "machine_temp"
    # The index is the row in the file: row 100 is the first reading after the gap.
    assert table.loc[100, "gap"] and table.loc[100, "missing"] == 10
    assert (table["stationarity"].iloc[:199] == "pending").all()
    assert table["differenced"].iloc[-1]
    assert np.isfinite(table[table.attrs["feature_names"]].to_numpy()).all()
    # New York's DST starts on 2014-03-09 at 07:00 UTC: local hour jumps 01:55 -> 03:00.
    hours = np.arctan2(table["hour_sin"], table["hour_cos"]) * 24 / (2 * np.pi) % 24
    assert hours.loc[83] == pytest.approx(1 + 55 / 60) and hours.loc[84] == pytest.approx(3)
    text = format_feature_table(table, max_rows=6)
    assert text.startswith("590 rows; features (5): value_z") and "stationarity:" in text


@pytest.mark.parametrize("compress", [False, True])
def test_read_kdd_and_table(tmp_path: Path, compress: bool) -> None:
    text = "\n".join(KDD_ROWS) + "\n"
    path = tmp_path / ("kdd.data.gz" if compress else "kdd.data")
    if compress:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    frame = read_kdd(path)
    assert list(frame.columns) == [*KDD_FIELDS, "label"]
    assert frame["label"].tolist() == ["normal", "normal", "smurf", "neptune"]
    table = feature_table(path, "kdd")
    names = table.attrs["feature_names"]
    assert names[:38] == list(NUMERIC_FIELDS) and "service=other" in names
    assert table["label"].tolist() == ["normal", "normal", "smurf", "neptune"]
    assert table[names].to_numpy().min() >= 0 and table[names].to_numpy().max() <= 1
    assert not table["out_of_range"].any()
    half = feature_table(path, "kdd", fit_fraction=0.5)
    assert half["out_of_range"].tolist() == [False, False, True, True]
    assert "out_of_range" in format_feature_table(half)


def test_generic_csv_with_entities_channels_labels(tmp_path: Path) -> None:
    rows = []
    for sensor in ("a", "b"):
        for i in range(50):
            rows.append({"time": 1_700_000_000 + 60 * i, "sensor_id": sensor,
                         "temp": 20.0 + i % 7, "RH %": 40.0 + i % 3, "is_anomaly": int(i == 30)})
    rows.append({"time": 1_700_000_000, "sensor_id": "a", "temp": 1.0, "RH %": 1.0,
                 "is_anomaly": 0})  # sensor a again at its first time: late
    path = tmp_path / "events.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    frame = read_csv_events(path)
    assert list(frame.columns) == ["sensor_id", "timestamp", "value", "RH", "label"]
    assert frame.attrs["channels"] == ["RH"] and frame.attrs["value_source"] == "temp"
    table = feature_table(path, "csv", warmup=30)
    assert table.attrs["rejected"] == {"out_of_order": 1}
    assert len(table) == 100 and set(table["entity"]) == {"a", "b"}
    assert table.attrs["feature_names"][:2] == ["value_z", "RH_z"]
    assert table["label"].sum() == 2 and "RH_stationarity" in table


def test_csv_of_raw_connections(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 60
    frame = pd.DataFrame({name: 0 for name in KDD_FIELDS[:22]}, index=range(n))
    frame["timestamp"] = pd.date_range("2024-01-01", periods=n, freq="300ms").astype(str)
    frame["dst_host"] = rng.choice(["h1", "h2"], n)
    frame["protocol_type"] = "tcp"
    frame["service"] = rng.choice(["http", "ftp"], n)
    frame["flag"] = rng.choice(["SF", "S0"], n)
    path = tmp_path / "flows.csv"
    frame.to_csv(path, index=False)
    table = feature_table(path, "csv")
    assert set(table["traffic"]) == {"derived"}
    assert "timestamp" in table and len(table) == n


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        feature_table("x", "parquet")


def test_windowing_never_imports_the_stream_stack() -> None:
    code = ("import sys, windowing; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('faust', 'kafka', 'aiokafka', 'influxdb_client', 'streams', 'torch')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_rows_in_a_file_are_refused_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n2024-01-01 00:00:00,1\nnot a time,2\n"
                    "2024-01-01 00:05:00,\n2024-01-01 00:10:00,nan\n2024-01-01 00:15:00,4\n"
                    "2024-01-01 00:15:00,5\n2024-01-01 00:20:00,6\n")
    table = feature_table(path, "nab")
    assert table.index.tolist() == [0, 4, 6]
    assert table.attrs["rejected"] == {"bad_timestamp": 1, "not_finite": 2, "duplicate": 1}
