"""Each evaluation module still has doctests, and they pass (--doctest-modules runs them too)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "evaluation.cli",
    "evaluation.datasets",
    "evaluation.features",
    "evaluation.kdd_categories",
    "evaluation.microbench",
    "evaluation.model_card",
    "evaluation.online",
    "evaluation.report",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
