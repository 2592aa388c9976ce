"""Run the doctests of streams.evaluation (pytest's --doctest-modules only covers detectors/)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "streams.evaluation.cli",
    "streams.evaluation.datasets",
    "streams.evaluation.features",
    "streams.evaluation.kdd_categories",
    "streams.evaluation.microbench",
    "streams.evaluation.model_card",
    "streams.evaluation.online",
    "streams.evaluation.report",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
