"""What a model is retrained on: the most recent clean events plus a reservoir of older ones.

The trainer reads every score record; :class:`TrainingBuffer` keeps, in bounded memory,

* the last ``recent`` accepted rows (what the data looks like now: after a drift, the new
  regime), and
* a uniform reservoir of ``reservoir`` rows over everything accepted so far (Vitter's
  algorithm R, seeded): the regimes before, so a model does not forget them at once.

Rows the stream judged anomalous (an alert's episode, a score over the threshold) and rows
of confirmed incidents never enter: a model retrained on its own alerts would learn to
stop raising them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np

__all__ = ["TrainingBuffer"]


class TrainingBuffer:
    """Recent window + reservoir of training rows (any JSON-able row).

    Examples
    --------
    >>> buf = TrainingBuffer(recent=3, reservoir=4, seed=0)
    >>> for i in range(100):
    ...     _ = buf.offer({"i": i}, anomalous=(i % 10 == 0))
    >>> [r["i"] for r in buf.recent_rows()]
    [97, 98, 99]
    >>> len(buf.rows()), buf.accepted, buf.refused
    (7, 90, 10)
    >>> buf.offer({"i": 100}, key="incident-1"), buf.exclude(["incident-1"])
    (True, None)
    >>> any(r["i"] == 100 for r in buf.rows())
    False
    """

    def __init__(self, recent: int = 20_000, reservoir: int = 20_000, seed: int = 0) -> None:
        if recent < 1 or reservoir < 0:
            raise ValueError("recent must be >= 1 and reservoir >= 0")
        self.recent = recent
        self.reservoir = reservoir
        self._rng = np.random.default_rng(seed)
        self._recent: deque[tuple[Hashable | None, Any]] = deque(maxlen=recent)
        self._reservoir: list[tuple[Hashable | None, Any]] = []
        self._excluded: set[Hashable] = set()
        self.accepted = 0
        self.refused = 0

    def offer(self, row: Any, *, anomalous: bool = False, key: Hashable | None = None) -> bool:
        """Keep ``row`` unless it is anomalous or its ``key`` was excluded; True if kept."""
        if anomalous or (key is not None and key in self._excluded):
            self.refused += 1
            return False
        item = (key, row)
        self._recent.append(item)
        self.accepted += 1
        if len(self._reservoir) < self.reservoir:
            self._reservoir.append(item)
        elif self.reservoir:
            j = int(self._rng.integers(self.accepted))
            if j < self.reservoir:
                self._reservoir[j] = item
        return True

    def exclude(self, keys: Iterable[Hashable]) -> None:
        """Drop rows with these keys (events of a confirmed incident), now and later."""
        new = set(keys)
        self._excluded |= new
        self._recent = deque((it for it in self._recent if it[0] not in new), maxlen=self.recent)
        self._reservoir = [it for it in self._reservoir if it[0] not in new]

    def recent_rows(self) -> list[Any]:
        return [row for _, row in self._recent]

    def rows(self) -> list[Any]:
        """Reservoir rows not also in the recent window, then the recent window (oldest
        first, so a time split of the result keeps the newest rows last)."""
        recent_ids = {id(it) for it in self._recent}
        older = [row for it in self._reservoir if id(it) not in recent_ids for row in (it[1],)]
        return older + self.recent_rows()

    def __len__(self) -> int:
        return len(self.rows())
