"""Cadence alignment: gaps are marked (not filled), late readings refused, batch == online."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from windowing.resample import CadenceAligner, infer_cadence, order_mask
from windowing.schemas import RejectedEvent, RejectReason


def test_gaps_are_counted_not_filled() -> None:
    al = CadenceAligner(cadence=60)
    placed = [al.update(t) for t in (0, 59, 121, 420, 480)]
    assert [p.missing for p in placed] == [0, 0, 0, 4, 0]
    assert [p.gap for p in placed] == [False, False, False, True, False]
    assert [p.slot for p in placed] == [0, 1, 2, 7, 8]
    assert placed[1].aligned_timestamp == 60.0


def test_cadence_is_inferred_then_fixed() -> None:
    al = CadenceAligner(infer_from=4)
    for t in (0, 300, 600, 905, 1200):
        al.update(t)
    assert al.cadence == 300.0
    assert al.update(2400).missing == 3  # fixed from now on
    assert infer_cadence([0, 10, 20, 50]) == 10.0


def test_late_readings_are_refused_without_state_change() -> None:
    al = CadenceAligner(cadence=10)
    al.update(100.0)
    before = al.to_state()
    for t, reason in ((100.0, RejectReason.DUPLICATE), (90.0, RejectReason.OUT_OF_ORDER)):
        with pytest.raises(RejectedEvent) as info:
            al.update(t)
        assert info.value.reason is reason
    assert al.to_state() == before


def test_order_mask_matches_online_refusals() -> None:
    ts = np.array([5.0, 6.0, 6.0, 4.0, 7.0, 6.5, 8.0])
    ok, reasons = order_mask(ts, last=4.5)
    assert ok.tolist() == [True, True, False, False, True, False, True]
    assert reasons.tolist() == ["", "", "duplicate", "out_of_order", "", "out_of_order", ""]


@settings(max_examples=40, deadline=None)
@given(
    deltas=st.lists(st.sampled_from([1.0, 59.0, 60.0, 61.0, 89.0, 91.0, 150.0, 600.0]),
                    min_size=1, max_size=60),
    cadence=st.sampled_from([None, 60.0]),
    cut=st.integers(0, 60),
)
def test_batch_equals_online(deltas: list[float], cadence: float | None, cut: int) -> None:
    ts = 1_700_000_000.0 + np.cumsum(deltas)
    online = CadenceAligner(cadence, infer_from=5)
    placed = [online.update(t) for t in ts]
    batch = CadenceAligner(cadence, infer_from=5)
    cut = min(cut, ts.size)
    first = batch.update_many(ts[:cut])
    batch = CadenceAligner.from_state(json.loads(json.dumps(batch.to_state())))
    second = batch.update_many(ts[cut:])
    steps = np.concatenate([first.steps, second.steps])
    slots = np.concatenate([first.slot, second.slot])
    assert steps.tolist() == [p.steps for p in placed]
    assert [None if np.isnan(s) else int(s) for s in slots] == [p.slot for p in placed]
    assert batch.to_state() == online.to_state()
