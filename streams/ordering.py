"""Process each input partition in offset order, asking for a redelivery when one is missing.

Why: faust-streaming can lose a fetched message at start-up or after a rebalance — the
fetcher marks it read, then table recovery clears the stream's queues before an agent saw
it (faust-streaming#596) — and then commit past it, because a single missing offset at the
head of the acknowledged ones is taken for a compacted-topic gap (faust-streaming#606).
The restart test caught exactly that: the first reading after a restart never reached the
agent, its offset was committed, and no score was ever published for it.

:class:`OffsetGuard` sees every batch before it is processed. Per partition it knows the
next offset it expects (the committed offset, then one past the last event admitted). An
event beyond it means something in between never arrived: that event and the partition's
later ones in the batch are held back (not processed, not acknowledged, so nothing past
the hole can be committed) and the caller seeks the partition back to the missing offset,
so the consumer fetches it again. A hole that is still there after ``max_seeks`` seeks,
spaced ``seek_interval_s`` apart, is real (transaction markers and compaction leave holes
in offsets): the guard then lets the stream go on past it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

__all__ = ["OffsetGuard"]


@dataclass
class OffsetGuard:
    """Admit events per partition in offset order; report holes to seek back to.

    Examples
    --------
    >>> guard = OffsetGuard(seek_interval_s=0.0)
    >>> committed = {"p0": 70}.get
    >>> guard.admit([("p0", 71), ("p0", 72)], committed)   # 70 never arrived
    ([], {'p0': 70})
    >>> guard.admit([("p0", 70), ("p0", 71)], committed)   # the redelivery
    ([0, 1], {})
    """

    max_seeks: int = 3
    seek_interval_s: float = 2.0
    clock: Callable[[], float] = time.monotonic
    #: Per partition, the offset expected next.
    next_offset: dict[Hashable, int] = field(default_factory=dict)
    #: Per partition with a hole: (missing offset, seeks so far, time of the last seek).
    holes: dict[Hashable, tuple[int, int, float]] = field(default_factory=dict)

    def admit(
        self,
        events: Sequence[tuple[Hashable, int]],
        committed: Callable[[Hashable], int | None],
    ) -> tuple[list[int], dict[Hashable, int]]:
        """Which of ``events`` (``(partition, offset)`` in arrival order) to process now.

        ``committed(partition)`` is the consumer's committed offset (the next one to read),
        ``None`` when unknown. Returns the indices of the admitted events, and the
        partitions to seek back, with the offset to seek to.
        """
        admitted: list[int] = []
        seeks: dict[Hashable, int] = {}
        held: set[Hashable] = set()
        for i, (tp, offset) in enumerate(events):
            if tp in held:
                continue
            expected = self._expected(tp, committed(tp))
            if expected is None or offset <= expected or self._hole_is_real(tp, expected):
                # offset < expected: a redelivery of something already handled; the
                # scorers skip what their state has absorbed.
                admitted.append(i)
                self.next_offset[tp] = max(self.next_offset.get(tp, 0), offset + 1)
                self.holes.pop(tp, None)
                continue
            held.add(tp)
            if self._seek_due(tp, expected):
                seeks[tp] = expected
        return admitted, seeks

    def _expected(self, tp: Hashable, committed: int | None) -> int | None:
        known = [o for o in (self.next_offset.get(tp), committed) if o is not None]
        return max(known) if known else None

    def _hole_is_real(self, tp: Hashable, expected: int) -> bool:
        hole = self.holes.get(tp)
        return (
            hole is not None
            and hole[0] == expected
            and hole[1] >= self.max_seeks
            and self.clock() - hole[2] >= self.seek_interval_s
        )

    def idle_reseeks(self) -> dict[Hashable, int]:
        """Holes whose last seek is older than the interval: seek them again.

        A partition whose whole backlog was fetched once and held back gets no further
        batch to trigger a seek, and a seek made while Faust was still recovering its
        tables can be undone by it; the agent calls this on a timer so such a partition
        is fetched again. These seeks do not count towards ``max_seeks``: only a hole
        seen again in delivered events can turn out to be real.

        >>> t = [0.0]
        >>> guard = OffsetGuard(seek_interval_s=2.0, clock=lambda: t[0])
        >>> guard.admit([("p0", 75)], {"p0": 70}.get)
        ([], {'p0': 70})
        >>> guard.idle_reseeks(), (t.__setitem__(0, 2.5), guard.idle_reseeks())[1]
        ({}, {'p0': 70})
        """
        now = self.clock()
        due = {}
        for tp, (offset, seeks, last) in list(self.holes.items()):
            if now - last >= self.seek_interval_s:
                self.holes[tp] = (offset, seeks, now)
                due[tp] = offset
        return due

    def _seek_due(self, tp: Hashable, expected: int) -> bool:
        """Record a seek to ``expected`` unless one was made less than the interval ago
        (later events of the old fetch may still be queued: they are held back too)."""
        now = self.clock()
        hole = self.holes.get(tp)
        if hole is not None and hole[0] == expected:
            if now - hole[2] < self.seek_interval_s:
                return False
            self.holes[tp] = (expected, hole[1] + 1, now)
            return True
        self.holes[tp] = (expected, 1, now)
        return True
