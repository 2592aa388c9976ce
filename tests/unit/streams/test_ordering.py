"""OffsetGuard: partitions are processed in offset order; holes are fetched again."""

from __future__ import annotations

from streams.ordering import OffsetGuard


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_contiguous_batches_pass_untouched() -> None:
    guard = OffsetGuard()
    committed = {"a": 10, "b": None}.get
    events = [("a", 10), ("b", 3), ("a", 11), ("b", 4)]
    assert guard.admit(events, committed) == ([0, 1, 2, 3], {})
    assert guard.admit([("a", 12), ("b", 5)], committed) == ([0, 1], {})
    assert guard.next_offset == {"a": 13, "b": 6}


def test_a_missing_head_is_fetched_again_and_nothing_past_it_is_processed() -> None:
    clock = Clock()
    guard = OffsetGuard(clock=clock)
    committed = {"a": 70, "b": 5}.get
    # 70 was lost on the way in: 71.. are held back (not processed, not acknowledged),
    # the other partition goes on.
    admitted, seeks = guard.admit([("a", 71), ("b", 5), ("a", 72)], committed)
    assert admitted == [1] and seeks == {"a": 70}
    # Later events of the old fetch are still queued: held, no second seek yet.
    assert guard.admit([("a", 73)], committed) == ([], {})
    # After the seek the consumer delivers from 70 again.
    assert guard.admit([("a", 70), ("a", 71), ("a", 72)], committed) == ([0, 1, 2], {})
    assert guard.next_offset["a"] == 73 and "a" not in guard.holes


def test_a_hole_in_the_middle_of_a_batch_holds_the_rest_of_that_partition() -> None:
    guard = OffsetGuard()
    admitted, seeks = guard.admit([("a", 0), ("a", 1), ("a", 3), ("a", 4)], {"a": 0}.get)
    assert admitted == [0, 1] and seeks == {"a": 2}


def test_a_real_hole_is_passed_after_the_seeks_run_out() -> None:
    # Transaction markers and compaction leave offsets that will never arrive.
    clock = Clock()
    guard = OffsetGuard(max_seeks=3, seek_interval_s=2.0, clock=clock)
    committed = {"a": 5}.get
    seeks_made = 0
    for _ in range(20):
        admitted, seeks = guard.admit([("a", 6), ("a", 7)], committed)
        seeks_made += len(seeks)
        if admitted:
            break
        clock.now += 1.0
    assert admitted == [0, 1] and seeks_made == 3
    assert clock.now >= 3 * 2.0  # seeks spaced by the interval, then one more wait
    assert guard.next_offset["a"] == 8


def test_redeliveries_of_handled_offsets_are_admitted_for_the_scorers_to_skip() -> None:
    guard = OffsetGuard()
    committed = {"a": 0}.get
    guard.admit([("a", 0), ("a", 1), ("a", 2)], committed)
    assert guard.admit([("a", 1), ("a", 2), ("a", 3)], committed) == ([0, 1, 2], {})
    assert guard.next_offset["a"] == 4


def test_a_committed_offset_ahead_of_what_this_worker_saw_wins() -> None:
    # After a rebalance another worker moved the partition on: no false hole.
    guard = OffsetGuard()
    guard.admit([("a", 0)], {"a": 0}.get)
    assert guard.admit([("a", 500)], {"a": 500}.get) == ([0], {})
