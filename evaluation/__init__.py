"""Offline evaluation: labelled replay, NAB / KDD metrics, reports, model cards, micro-benchmarks.

Everything here runs offline, never in the Faust worker: datasets, the harness, the NAB
scorer (:mod:`evaluation.nab`), reports, model cards and the detector micro-benchmark. The
classification metrics stay in :mod:`detectors.metrics`, because ``detectors.thresholds``
and ``detectors.ensemble`` use them too.
"""

from evaluation.harness import FORMATS, SCHEMA_VERSION, run_evaluation, to_json
from evaluation.microbench import run_microbench
from evaluation.model_card import ModelCard, cards_to_markdown, profile_detector

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
