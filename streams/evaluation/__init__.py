"""Offline evaluation: labelled replay, NAB / KDD metrics, reports, model cards, micro-benchmarks.

File I/O and plotting live here; the metrics themselves are in :mod:`detectors.metrics` and
:mod:`detectors.nab` so the stream and ``thresholds.py`` share them.
"""

from streams.evaluation.harness import FORMATS, SCHEMA_VERSION, run_evaluation, to_json
from streams.evaluation.microbench import run_microbench
from streams.evaluation.model_card import ModelCard, cards_to_markdown, profile_detector

__all__ = [
    "FORMATS",
    "SCHEMA_VERSION",
    "ModelCard",
    "cards_to_markdown",
    "profile_detector",
    "run_evaluation",
    "run_microbench",
    "to_json",
]
