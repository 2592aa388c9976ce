"""The alert record both agents open an episode with (``streams.scoring.new_alert``)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import streams.scoring
from streams.scoring import AlertPolicy, RawRecord, contribution_records, new_alert

RECORD = RawRecord(b"k", b"{}", "connections", 3, 41)


def _alert(score: float, **details: object) -> dict:
    return new_alert(
        "a1",
        "connections",
        "10.0.0.7",
        score,
        AlertPolicy(threshold=0.999),
        detectors=["marginal_tail"],
        features=[],
        timestamp=1_700_000_000.0,
        record=RECORD,
        **details,
    )


@pytest.mark.parametrize(
    ("score", "severity"),
    [(0.999, "warning"), (0.99998, "warning"), (0.99999, "critical"), (1.0, "critical")],
)
def test_severity_is_critical_from_one_hundredth_of_the_threshold_tail(
    score: float, severity: str
) -> None:
    assert _alert(score)["severity"] == severity


def test_alert_carries_the_episode_start_the_input_position_and_the_source_details() -> None:
    alert = _alert(0.9995, src_host="10.0.0.7", flag="S0")
    assert alert["first_seen"] == alert["last_seen"] == 1_700_000_000.0
    assert alert["input"] == {"topic": "connections", "partition": 3, "offset": 41}
    assert (alert["src_host"], alert["flag"], alert["threshold"]) == ("10.0.0.7", "S0", 0.999)
    assert alert["detectors"] == ["marginal_tail"]


def test_contribution_records_take_values_by_name_and_drop_infinite_ratios() -> None:
    x = np.array([1.5, -2.0, 7.0])
    index = {"a": 0, "b": 1, "c": 2}
    out = contribution_records([("c", 3.0, 12.0), ("b", 1.0, float("inf"))], x, index)
    assert out == [
        {"name": "c", "value": 7.0, "contribution": 3.0, "ratio_to_normal": 12.0},
        {"name": "b", "value": -2.0, "contribution": 1.0, "ratio_to_normal": None},
    ]


def test_scoring_module_doctests_pass() -> None:
    # streams/ is outside the doctest collection (its app module starts Faust on import).
    result = doctest.testmod(streams.scoring)
    assert result.attempted >= 3 and result.failed == 0
