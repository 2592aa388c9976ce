"""``anomstream replay``: publish a recorded dataset to Kafka in event-time order."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from windowing.kdd import CATEGORICAL_FIELDS, KDD_FIELDS
from windowing.readers import epoch_seconds, read_csv_events, read_kdd, read_nab_csv

__all__ = ["dataset_records", "replay"]

#: Event-time spacing given to KDD rows, which carry no timestamps of their own.
KDD_STEP_S = 0.01


def _nab_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    root = path / "data" if (path / "data").is_dir() else path
    return sorted(root.rglob("*.csv"))


def dataset_records(
    path: Path, fmt: str, *, limit: int | None = None, now: float | None = None
) -> Iterator[tuple[str, float, bytes, bytes]]:
    """``(kind, event_time, key, value)`` in event-time order; kind is sensors|connections."""
    now = time.time() if now is None else now
    if fmt == "nab":
        frames = []
        for f in _nab_files(path):
            df = read_nab_csv(f)
            frames.append(
                pd.DataFrame(
                    {
                        "t": epoch_seconds(df["timestamp"]),
                        "value": df["value"].to_numpy(),
                        "sensor": f.stem,
                    }
                )
            )
        if not frames:
            raise FileNotFoundError(f"no NAB csv files under {path}")
        all_rows = pd.concat(frames).sort_values("t", kind="stable")
        for i, row in enumerate(all_rows.itertuples(index=False)):
            if limit is not None and i >= limit:
                return
            body = {"sensor_id": row.sensor, "timestamp": float(row.t), "value": float(row.value)}
            yield "sensors", float(row.t), row.sensor.encode(), json.dumps(body).encode()
    elif fmt == "kdd":
        df = read_kdd(path, nrows=limit)
        start = now - len(df) * KDD_STEP_S
        for i, rec in enumerate(df.itertuples(index=False)):
            d = rec._asdict()
            body: dict[str, Any] = {"timestamp": start + i * KDD_STEP_S}
            for name in KDD_FIELDS:
                v = d[name]
                body[name] = v if name in CATEGORICAL_FIELDS else float(v)
            key = f"{d['service']}".encode()
            yield "connections", body["timestamp"], key, json.dumps(body).encode()
    elif fmt == "csv":
        df = read_csv_events(path)
        ts = epoch_seconds(df["timestamp"])
        order = np.argsort(ts, kind="stable")
        value_cols = [c for c in df.columns if c not in ("timestamp", "sensor_id", "label")]
        main = "value" if "value" in value_cols else value_cols[0]
        entity = df["sensor_id"] if "sensor_id" in df.columns else pd.Series([path.stem] * len(df))
        for n, i in enumerate(order):
            if limit is not None and n >= limit:
                return
            sid = str(entity.iloc[i])
            body = {"sensor_id": sid, "timestamp": float(ts[i]), "value": float(df[main].iloc[i])}
            extra = {c: float(df[c].iloc[i]) for c in value_cols if c != main}
            if extra:
                body["channels"] = extra
            yield "sensors", float(ts[i]), sid.encode(), json.dumps(body).encode()
    else:
        raise ValueError(f"unknown format {fmt!r}: use nab, kdd or csv")


def replay(
    bootstrap_servers: str,
    topics: dict[str, str],
    path: Path,
    fmt: str,
    *,
    speed: float = 0.0,
    limit: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Send ``path`` to Kafka. ``speed``: event-time seconds per wall second (0 = max)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        linger_ms=20,
        batch_size=256 * 1024,
        client_id="anomstream-replay",
    )
    sent: dict[str, int] = {}
    t0 = time.monotonic()
    first: float | None = None
    try:
        for kind, ts, key, value in dataset_records(path, fmt, limit=limit):
            if first is None:
                first = ts
            if speed > 0:
                ahead = (ts - first) / speed - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(min(ahead, 60.0))
            producer.send(topics[kind], key=key, value=value)
            sent[kind] = sent.get(kind, 0) + 1
            total = sum(sent.values())
            if on_progress is not None and total % 1000 == 0:
                on_progress(total)
        producer.flush()
    finally:
        producer.close()
    seconds = time.monotonic() - t0
    total = sum(sent.values())
    return {
        "sent": sent,
        "seconds": seconds,
        "events_per_s": total / seconds if seconds > 0 and not math.isclose(seconds, 0) else 0,
    }
