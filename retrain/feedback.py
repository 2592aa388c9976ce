"""Analysts' verdicts turned into an alert threshold.

Every alert an analyst labelled (``anomstream label``) is a point: its score, and whether
it was a real incident. :func:`suggest_threshold` picks the alert threshold that is best on
those points for a labelled objective (F-beta, or a cost of misses and false alarms). It
can only *raise* the threshold: alerts below the current one were never raised, so never
labelled; that is said in the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from detectors.thresholds import SupervisedThreshold

__all__ = ["ThresholdSuggestion", "suggest_threshold"]


@dataclass(frozen=True)
class ThresholdSuggestion:
    """What the verdicts say about one source's alert threshold."""

    source: str
    current: float
    suggested: float
    objective: str
    value: float
    verdicts: int
    confirmed: int
    false_alarms: int
    #: Among the labelled alerts, at the suggested threshold.
    precision: float
    recall: float
    false_alarms_removed: int
    incidents_missed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def suggest_threshold(
    source: str,
    alert_scores: Mapping[str, float],
    verdicts: Mapping[str, bool],
    current: float,
    *,
    objective: str = "fbeta",
    beta: float = 1.0,
    cost_fn: float = 10.0,
    cost_fp: float = 1.0,
    min_verdicts: int = 20,
) -> ThresholdSuggestion:
    """The threshold the labelled alerts of ``source`` favour (never below ``current``).

    ``alert_scores``: alert id → the alert's score; ``verdicts``: alert id → True for a
    real incident. Alerts without a verdict, and verdicts on unknown alerts, are left out.

    >>> scores = {f"a{i}": 0.999 + i * 1e-5 for i in range(40)}
    >>> verdicts = {f"a{i}": i >= 10 for i in range(40)}  # the 10 lowest were false alarms
    >>> s = suggest_threshold("connections", scores, verdicts, current=0.999)
    >>> round(s.suggested, 5), s.false_alarms_removed, s.incidents_missed
    (0.9991, 10, 0)
    """
    ids = [a for a in verdicts if a in alert_scores]
    if len(ids) < min_verdicts:
        raise ValueError(
            f"{len(ids)} labelled {source} alerts: at least {min_verdicts} are needed "
            "(anomstream label ALERT_ID --verdict true|false)"
        )
    scores = np.array([alert_scores[a] for a in ids], dtype=np.float64)
    y = np.array([bool(verdicts[a]) for a in ids])
    if y.all() or not y.any():
        raise ValueError(
            f"the {len(ids)} labelled {source} alerts are all "
            f"{'incidents' if y.all() else 'false alarms'}: both kinds are needed"
        )
    fitted = SupervisedThreshold(objective, beta=beta, cost_fn=cost_fn, cost_fp=cost_fp)
    fitted.fit(scores, y)
    suggested = max(current, fitted.threshold_)
    flagged = scores >= suggested
    tp = int((flagged & y).sum())
    fp = int((flagged & ~y).sum())
    return ThresholdSuggestion(
        source=source,
        current=current,
        suggested=float(suggested),
        objective=objective if objective != "fbeta" else f"f{beta:g}",
        value=float(fitted.value_),
        verdicts=len(ids),
        confirmed=int(y.sum()),
        false_alarms=int((~y).sum()),
        precision=tp / max(tp + fp, 1),
        recall=tp / max(int(y.sum()), 1),
        false_alarms_removed=int((~y).sum()) - fp,
        incidents_missed=int(y.sum()) - tp,
    )
