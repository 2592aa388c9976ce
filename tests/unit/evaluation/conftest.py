"""Synthetic labelled datasets in the NAB, KDD and CSV layouts (never the real data)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.kdd_categories import KDD_COLUMNS

N_ROWS = 600
WINDOW = (400, 459)  # inclusive rows of the labelled window in every anomalous series


def _stamps(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="5min")


def _window_json(stamps: pd.DatetimeIndex, left: int, right: int) -> list[str]:
    # NAB's label files carry microseconds, its data files do not.
    return [
        stamps[left].strftime("%Y-%m-%d %H:%M:%S.%f"),
        stamps[right].strftime("%Y-%m-%d %H:%M:%S.%f"),
    ]


def write_nab_corpus(
    root: Path, seed: int = 0, spike_at: int = 405, tail_shift: float = 0.0
) -> Path:
    """Three series: a spike inside a window, a level jump inside a window, a quiet one.

    ``tail_shift`` is added to the last 100 rows of the spike series (to test that the
    past does not depend on the future).
    """
    rng = np.random.default_rng(seed)
    stamps = _stamps(N_ROWS)
    t = np.arange(N_ROWS)
    base = 20 + 5 * np.sin(2 * np.pi * t / 288)

    spike = base + rng.normal(0, 0.3, N_ROWS)
    spike[spike_at] += 15.0
    spike[-100:] += tail_shift
    jump = base + rng.normal(0, 0.3, N_ROWS)
    jump[WINDOW[0] + 10 :] += 12.0
    quiet = base + rng.normal(0, 0.3, N_ROWS)

    files = {
        "groupA/spike.csv": spike,
        "groupB/jump.csv": jump,
        "groupB/quiet.csv": quiet,
        "groupC/unlabelled.csv": quiet,
    }
    for name, values in files.items():
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "value": values}).to_csv(
            path, index=False
        )
    windows = {
        "groupA/spike.csv": [_window_json(stamps, *WINDOW)],
        "groupB/jump.csv": [_window_json(stamps, *WINDOW)],
        "groupB/quiet.csv": [],
    }
    (root / "windows.json").write_text(json.dumps(windows, indent=1))
    return root


@pytest.fixture
def nab_corpus(tmp_path: Path) -> Path:
    return write_nab_corpus(tmp_path / "nab")


def _kdd_rows(rng: np.random.Generator, n: int, label: str) -> list[list[object]]:
    rows = []
    for _ in range(n):
        f: dict[str, object] = dict.fromkeys(KDD_COLUMNS, 0)
        f.update(protocol_type="tcp", service="http", flag="SF", logged_in=1)
        f["src_bytes"] = int(rng.lognormal(5.5, 0.4))
        f["dst_bytes"] = int(rng.lognormal(8.0, 0.6))
        f["count"] = int(rng.integers(1, 12))
        f["srv_count"] = int(rng.integers(1, 12))
        f["same_srv_rate"] = 1.0
        f["dst_host_count"] = int(rng.integers(1, 255))
        f["dst_host_srv_count"] = int(rng.integers(1, 255))
        f["dst_host_same_srv_rate"] = round(float(rng.uniform(0.8, 1.0)), 2)
        if label == "smurf":
            f.update(
                protocol_type="icmp",
                service="ecr_i",
                logged_in=0,
                src_bytes=1032,
                dst_bytes=0,
                count=511,
                srv_count=511,
            )
        elif label == "portsweep":
            f.update(
                flag="REJ",
                src_bytes=0,
                dst_bytes=0,
                rerror_rate=1.0,
                srv_rerror_rate=1.0,
                dst_host_rerror_rate=1.0,
                same_srv_rate=0.05,
            )
        elif label == "guess_passwd":
            f.update(
                service="telnet", num_failed_logins=1, logged_in=0, duration=int(rng.integers(2, 9))
            )
        elif label == "buffer_overflow":
            f.update(
                service="telnet",
                root_shell=1,
                hot=int(rng.integers(2, 6)),
                duration=int(rng.integers(50, 300)),
            )
        rows.append([*(f[c] for c in KDD_COLUMNS), f"{label}."])
    return rows


def write_kdd(path: Path, seed: int, counts: dict[str, int]) -> Path:
    """A raw KDD file (no header, label with its trailing dot), shuffled; gzip by suffix."""
    rng = np.random.default_rng(seed)
    rows = [r for label, n in counts.items() for r in _kdd_rows(rng, n, label)]
    order = rng.permutation(len(rows))
    text = "\n".join(",".join(str(v) for v in rows[i]) for i in order) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def kdd_files(tmp_path: Path) -> tuple[Path, Path]:
    train = write_kdd(tmp_path / "train.gz", 1, {"normal": 800, "smurf": 100, "portsweep": 20})
    test = write_kdd(
        tmp_path / "test.txt",
        2,
        {"normal": 400, "smurf": 60, "portsweep": 20, "guess_passwd": 10, "buffer_overflow": 5},
    )
    return train, test


@pytest.fixture
def labelled_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    n = 500
    value = rng.normal(0, 1, n)
    label = np.zeros(n, dtype=int)
    for i in (200, 300, 420):
        value[i] += 9.0
        label[i] = 1
    path = tmp_path / "events.csv"
    pd.DataFrame(
        {"timestamp": _stamps(n).strftime("%Y-%m-%dT%H:%M:%S"), "value": value, "is_anomaly": label}
    ).to_csv(path, index=False)
    return path
