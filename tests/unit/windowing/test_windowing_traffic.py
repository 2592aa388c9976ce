"""KDD traffic features: online, vectorised and a plain pandas reference agree, and a
KDD-format row and the raw stream it came from give the same feature vector."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from windowing.connection import ConnectionFeaturePipeline
from windowing.kdd import INTRINSIC_NUMERIC_FIELDS, TRAFFIC_FIELDS
from windowing.schemas import parse_connection_event
from windowing.traffic import TrafficFeatureExtractor


def raw_stream(n: int, seed: int) -> pd.DataFrame:
    """Raw connections in bursts (so 2 s windows fill up), some arriving late."""
    rng = np.random.default_rng(seed)
    gaps = np.where(rng.random(n) < 0.1, rng.exponential(3.0, n), rng.exponential(0.08, n))
    ts = 1_700_000_000.0 + np.cumsum(gaps)
    late = rng.random(n) < 0.05
    ts[late] -= rng.uniform(0.1, 1.5, late.sum())
    frame = pd.DataFrame({
        "timestamp": ts,
        "src_host": rng.choice(["10.1.0.1", "10.1.0.2"], n),
        "dst_host": rng.choice([f"10.0.0.{i}" for i in range(6)], n, p=[.4, .2, .1, .1, .1, .1]),
        "src_port": pd.array(rng.choice([80, 443, 1024, 5000], n), dtype="Int64"),
        "protocol_type": rng.choice(["tcp", "udp", "icmp"], n),
        "service": rng.choice(["http", "ftp", "smtp", "domain_u"], n),
        "flag": rng.choice(["SF", "S0", "REJ", "RSTO", "S1", "SH"], n,
                           p=[.5, .2, .1, .1, .05, .05]),
    })
    frame.loc[rng.random(n) < 0.1, "src_port"] = pd.NA
    for name in INTRINSIC_NUMERIC_FIELDS:
        frame[name] = 0.0
    frame["src_bytes"] = rng.lognormal(5, 2, n).round()
    frame["dst_bytes"] = rng.lognormal(6, 2, n).round()
    frame["duration"] = rng.exponential(2, n).round()
    frame["logged_in"] = rng.integers(0, 2, n).astype(float)
    return frame


def pandas_reference(frame: pd.DataFrame, horizon: float = 2.0, last_n: int = 100) -> pd.DataFrame:
    """The NSL-KDD definitions, one connection at a time, in plain pandas."""
    df = frame.reset_index(drop=True).copy()
    df["tau"] = df["timestamp"].cummax()  # late connections count at the watermark
    df["serror"] = df["flag"].isin(["S0", "S1", "S2", "S3"])
    df["rerror"] = df["flag"] == "REJ"
    rows = []
    for i, cur in df.iterrows():
        seen = df.iloc[: i + 1]
        recent = seen[seen["tau"] > cur["tau"] - horizon]
        last = seen.iloc[max(0, i + 1 - last_n):]
        same_host = recent[recent["dst_host"] == cur["dst_host"]]
        same_srv = recent[recent["service"] == cur["service"]]
        ring_host = last[last["dst_host"] == cur["dst_host"]]
        ring_srv = last[last["service"] == cur["service"]]
        port = cur["src_port"]
        same_port = 0 if pd.isna(port) else int((ring_host["src_port"] == port).fillna(False).sum())
        rows.append({
            "count": len(same_host),
            "srv_count": len(same_srv),
            "serror_rate": same_host["serror"].mean(),
            "srv_serror_rate": same_srv["serror"].mean(),
            "rerror_rate": same_host["rerror"].mean(),
            "srv_rerror_rate": same_srv["rerror"].mean(),
            "same_srv_rate": (same_host["service"] == cur["service"]).mean(),
            "diff_srv_rate": (same_host["service"] != cur["service"]).mean(),
            "srv_diff_host_rate": (same_srv["dst_host"] != cur["dst_host"]).mean(),
            "dst_host_count": len(ring_host),
            "dst_host_srv_count": len(ring_srv),
            "dst_host_same_srv_rate": (ring_host["service"] == cur["service"]).mean(),
            "dst_host_diff_srv_rate": (ring_host["service"] != cur["service"]).mean(),
            "dst_host_same_src_port_rate": same_port / len(ring_host),
            "dst_host_srv_diff_host_rate": (ring_srv["dst_host"] != cur["dst_host"]).mean(),
            "dst_host_serror_rate": ring_host["serror"].mean(),
            "dst_host_srv_serror_rate": ring_srv["serror"].mean(),
            "dst_host_rerror_rate": ring_host["rerror"].mean(),
            "dst_host_srv_rerror_rate": ring_srv["rerror"].mean(),
        })
    return pd.DataFrame(rows, columns=list(TRAFFIC_FIELDS)).astype(np.float64)


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    return raw_stream(450, seed=11)


@pytest.fixture(scope="module")
def reference(stream: pd.DataFrame) -> pd.DataFrame:
    return pandas_reference(stream)


def test_reference_is_not_trivial(reference: pd.DataFrame) -> None:
    assert reference["count"].max() >= 5 and reference["dst_host_count"].max() > 30
    assert 0 < reference["serror_rate"].mean() < 1
    assert 0 < reference["dst_host_same_src_port_rate"].mean() < 1


def test_online_matches_pandas_reference(stream: pd.DataFrame, reference: pd.DataFrame) -> None:
    tx = TrafficFeatureExtractor(sweep_every=16)
    got = []
    for row in stream.itertuples(index=False):
        port = None if pd.isna(row.src_port) else int(row.src_port)
        got.append(tx.update(row.timestamp, row.dst_host, row.service, row.flag, port))
    np.testing.assert_allclose(pd.DataFrame(got)[list(TRAFFIC_FIELDS)], reference, rtol=1e-12)


def test_batch_matches_reference_across_checkpoints(stream: pd.DataFrame,
                                                    reference: pd.DataFrame) -> None:
    tx = TrafficFeatureExtractor()
    parts = []
    for lo, hi in itertools.pairwise([0, 1, 40, 41, 260, len(stream)]):
        tx = TrafficFeatureExtractor.from_state(json.loads(json.dumps(tx.to_state())))
        parts.append(tx.update_frame(stream.iloc[lo:hi]))
    np.testing.assert_allclose(np.vstack(parts), reference.to_numpy(), rtol=1e-12)
    # What is remembered is bounded: the last 100 plus the last 2 seconds.
    assert len(tx.to_state()["records"]) <= 100 + int(reference["count"].max()) * 6


def test_online_and_batch_continue_each_other(stream: pd.DataFrame,
                                              reference: pd.DataFrame) -> None:
    tx = TrafficFeatureExtractor()
    head = tx.update_frame(stream.iloc[:200])
    tail = []
    for row in stream.iloc[200:].itertuples(index=False):
        port = None if pd.isna(row.src_port) else int(row.src_port)
        tail.append(list(tx.update(row.timestamp, row.dst_host, row.service, row.flag,
                                   port).values()))
    np.testing.assert_allclose(np.vstack([head, tail]), reference.to_numpy(), rtol=1e-12)


def test_kdd_format_rows_and_raw_stream_give_the_same_vectors(
    stream: pd.DataFrame, reference: pd.DataFrame
) -> None:
    kdd_rows = pd.concat([stream.reset_index(drop=True), reference], axis=1)
    kdd_rows = kdd_rows.drop(columns=["dst_host", "src_host", "src_port"])
    pipe_kdd = ConnectionFeaturePipeline().fit(kdd_rows)
    pipe_raw = ConnectionFeaturePipeline().fit(stream)  # derives the traffic fields itself
    assert pipe_raw.to_state()["scaler"] == pipe_kdd.to_state()["scaler"]
    from_kdd = pipe_kdd.update_many(kdd_rows)
    from_raw = pipe_raw.update_many(stream)
    assert from_kdd.names == from_raw.names
    np.testing.assert_allclose(from_kdd.values, from_raw.values, rtol=1e-12)
    assert set(from_kdd.meta["traffic"]) == {"given"} and set(from_raw.meta["traffic"]) == {
        "derived"}
    # One event at a time, through the validating parser, both ways.
    online_raw = ConnectionFeaturePipeline.from_state(pipe_kdd.to_state())
    for i, (raw, kdd) in enumerate(zip(stream.to_dict("records"), kdd_rows.to_dict("records"),
                                       strict=True)):
        raw = {k: (None if pd.isna(v) else v) for k, v in raw.items()}
        raw["src_port"] = None if raw["src_port"] is None else int(raw["src_port"])
        fv_raw = online_raw.update_one(parse_connection_event(raw, now=2e9))
        fv_kdd = pipe_kdd.update_one(parse_connection_event(kdd, now=2e9))
        np.testing.assert_allclose(fv_raw.values, from_raw.values[i], rtol=1e-12)
        np.testing.assert_allclose(fv_kdd.values, from_raw.values[i], rtol=1e-12)


def test_late_connection_counts_at_the_watermark() -> None:
    tx = TrafficFeatureExtractor()
    tx.update(100.0, "h", "http", "SF")
    late = tx.update(90.0, "h", "http", "SF")  # treated as t=100
    assert late["count"] == 2.0
    assert tx.update(101.5, "h", "http", "SF")["count"] == 3.0
    assert tx.update(102.5, "h", "http", "SF")["count"] == 2.0
