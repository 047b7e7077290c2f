"""The age of the oldest undelivered notification (controller/elapsed.py QueueTimes), on a clock
the test moves: since the row was queued, since the start for rows from before it, and after a
long outage still bounded in memory and never younger than the truth."""

from __future__ import annotations

from controller.elapsed import QueueTimes


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_age_counts_from_queueing_and_from_the_start_for_rows_before_it() -> None:
    clock = Clock()
    times = QueueTimes(10, clock)  # rows 1-10 were on the books at the start
    clock.now = 105.0
    times.queued(12)
    clock.now = 107.5
    times.queued(15)
    clock.now = 110.0
    assert times.age(4) == 10.0  # from before the start: since the start, a lower bound
    assert times.age(11) == 5.0
    assert times.age(13) == 2.5
    assert times.age(16) == 0.0  # committed, not marked yet: just queued


def test_a_long_outage_stays_bounded_in_memory_and_no_age_is_too_young() -> None:
    clock = Clock()
    times = QueueTimes(0, clock)
    queued_at = {}
    for row in range(1, 20_001):  # a row every 1.5 s for over eight hours, nobody asking
        clock.now += 1.5
        times.queued(row)
        queued_at[row] = clock.now
    assert len(times._marks) <= QueueTimes.MAX_MARKS
    clock.now += 1.0
    for row in (1, 777, 12_345, 20_000):  # the oldest waiting, as deliveries go on
        true_age = clock.now - queued_at[row]
        assert true_age <= times.age(row) <= true_age + 1.5 * 16  # merged: coarser, never younger
