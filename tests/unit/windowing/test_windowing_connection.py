"""Connection features: training bounds, clipping + flags, log1p, one-hot with other."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from windowing.connection import CategoryEncoder, ConnectionFeaturePipeline
from windowing.kdd import KDD_FIELDS, NUMERIC_FIELDS, RATE_FIELDS, TRAFFIC_FIELDS
from windowing.schemas import parse_connection_event


def kdd_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.integers(0, 5, n).astype(float) for name in NUMERIC_FIELDS})
    for name in RATE_FIELDS:
        frame[name] = rng.random(n).round(2)
    for name in ("land", "logged_in", "is_host_login", "is_guest_login"):
        frame[name] = rng.integers(0, 2, n).astype(float)
    frame["src_bytes"] = rng.lognormal(6, 2, n).round()
    frame["protocol_type"] = rng.choice(["tcp", "udp", "icmp"], n)
    frame["service"] = rng.choice(["http", "private", "other", "ftp"], n, p=[.5, .3, .1, .1])
    frame["flag"] = rng.choice(["SF", "S0", "REJ"], n)
    frame["label"] = rng.choice(["normal", "smurf"], n)
    return frame[[*KDD_FIELDS, "label"]]


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return kdd_frame(300, seed=1)


def test_names_layout(train: pd.DataFrame) -> None:
    pipe = ConnectionFeaturePipeline().fit(train)
    assert pipe.names[:38] == NUMERIC_FIELDS
    # Most frequent value first, the unseen bucket last.
    assert set(pipe.names[38:41]) == {"protocol_type=tcp", "protocol_type=udp",
                                      "protocol_type=icmp"}
    assert pipe.names[41] == "protocol_type=other"
    # KDD's own service "other" is the unseen bucket too: listed once, last.
    services = [n for n in pipe.names if n.startswith("service=")]
    assert services[-1] == "service=other" and services.count("service=other") == 1
    tz_pipe = ConnectionFeaturePipeline(tz="UTC").fit(train)
    assert tz_pipe.names[-4:] == ("hour_sin", "hour_cos", "dow_sin", "dow_cos")


def test_scaling_clipping_flags_and_log(train: pd.DataFrame) -> None:
    pipe = ConnectionFeaturePipeline().fit(train)
    batch = pipe.update_many(train)
    numeric = batch.values[:, :38]
    assert numeric.min() >= 0.0 and numeric.max() <= 1.0
    assert not batch.meta["out_of_range"].any()  # training data is inside its own range
    j = NUMERIC_FIELDS.index("src_bytes")
    lo, hi = np.log1p(train["src_bytes"].min()), np.log1p(train["src_bytes"].max())
    expected = (np.log1p(train["src_bytes"]) - lo) / (hi - lo)
    np.testing.assert_allclose(numeric[:, j], expected, rtol=1e-12)
    test = train.iloc[:3].copy()
    test.loc[test.index[0], "src_bytes"] = 1e12
    test.loc[test.index[1], "service"] = "gopher"
    out = pipe.update_many(test)
    assert out.meta["out_of_range"].tolist() == [True, False, False]
    assert out.meta["out_of_range_fields"][0] == ("src_bytes",)
    assert out.meta["out_of_range_scaled"][0][0] > 1.5
    assert out.values[0, j] == 1.0
    assert out.column("service=other")[1] == 1.0 and out.values[1, 38:].sum() == 3.0


def test_invalid_rows_are_refused(train: pd.DataFrame) -> None:
    pipe = ConnectionFeaturePipeline().fit(train)
    bad = train.iloc[:6].copy().reset_index(drop=True)
    bad.loc[1, "src_bytes"] = -1
    bad.loc[2, "serror_rate"] = 1.5
    bad.loc[3, "service"] = None
    bad.loc[4, "dst_bytes"] = np.inf
    bad.loc[5, "logged_in"] = 3
    batch = pipe.update_many(bad)
    assert batch.index.tolist() == [0]
    assert dict(batch.rejected) == {1: "out_of_range", 2: "out_of_range", 3: "missing_field",
                                    4: "not_finite", 5: "out_of_range"}


def test_one_event_equals_batch_and_state_round_trip(train: pd.DataFrame) -> None:
    pipe = ConnectionFeaturePipeline(max_categories=3).fit(train)
    restored = ConnectionFeaturePipeline.from_state(json.loads(json.dumps(pipe.to_state())))
    batch = restored.update_many(train.iloc[:20])
    for i, row in enumerate(train.iloc[:20].to_dict("records")):
        fv = pipe.update_one(parse_connection_event({**row, "timestamp": 0}, now=1.0))
        np.testing.assert_allclose(fv.values, batch.values[i], rtol=1e-12)
        assert fv.meta["label"] == row["label"] and fv.meta["traffic"] == "given"
    assert len([n for n in pipe.names if n.startswith("service=")]) == 3


def test_unfitted_pipeline_says_so() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        _ = ConnectionFeaturePipeline().names


def test_category_encoder_limits() -> None:
    frame = pd.DataFrame({"f": ["a"] * 5 + ["b"] * 3 + ["c"]})
    enc = CategoryEncoder(["f"], min_count=2).fit(frame)
    assert enc.names == ("f=a", "f=b", "f=other")
    assert enc.transform_many(pd.DataFrame({"f": ["c", None, "b"]})).tolist() == [
        [0, 0, 1], [0, 0, 1], [0, 1, 0]]
    assert TRAFFIC_FIELDS[0] == "count"
