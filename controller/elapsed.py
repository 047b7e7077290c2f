"""Ages measured on the monotonic clock, never as differences of wall-clock times.

A Pi without a real-time clock boots with a wrong time and steps it when NTP answers: a wall-clock
difference across that step is years (a 30-second charge shown as 1,576,800 minutes, a 180-second
timeout over in 29). So what this process starts, it times with `trio.current_time()`; what it
finds from before its start (rows on the books) counts from when it first asks: a timeout after a
restart is never shorter than configured, only longer.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import trio

from controller.timefmt import parse_iso, utcnow


class Ages:
    """Monotonic start moments by key (a transaction id, a session id)."""

    def __init__(self) -> None:
        self._since: dict[Hashable, float] = {}

    def start(self, key: Hashable) -> None:
        self._since[key] = trio.current_time()

    def known(self, key: Hashable) -> bool:
        """Whether `key` was started in this process (or asked about before)."""
        return key in self._since

    def age(self, key: Hashable) -> float:
        """Seconds since `key` started; a key never started counts from now (0)."""
        now = trio.current_time()
        return now - self._since.setdefault(key, now)

    def forget(self, key: Hashable) -> None:
        self._since.pop(key, None)

    def forget_all(self, which: Callable[[Hashable], bool]) -> None:
        for key in [key for key in self._since if which(key)]:
            del self._since[key]


def charge_duration_s(row: Mapping[str, Any], running_s: float | None = None) -> float | None:
    """How long a charge has lasted: `running_s` (monotonic, for a charge running since this
    process booked its start), else from the charger's timestamps; for a charge whose timestamps are
    flagged as far from our clock (a charger's clock gone wrong), from when we booked its start
    and stop."""
    if running_s is not None and not row["stop_time"]:
        return running_s
    start, stop = row["start_time"], row["stop_time"]
    if "clock_suspect" in row.keys() and row["clock_suspect"] and row["booked_at"]:
        start, stop = row["booked_at"], row["updated_at"] if row["stop_time"] else None
    if not start:
        return None
    end = parse_iso(stop) if stop else utcnow()
    return max(0.0, (end - parse_iso(start)).total_seconds())


class QueueTimes:
    """When rows with growing ids (the outbox's) were queued, on the monotonic clock, so the age of
    the oldest one waiting is true across a step of the wall clock (its `created_at` is a wall-clock
    stamp, and a difference of two of those across a step is years, or nothing). Rows from before
    this process count from its start: a lower bound, never a step.

    One mark per RESOLUTION_S at most (the highest id queued by then, and when that second began),
    and never more than MAX_MARKS: beyond, neighbours merge, each keeping the earlier time, so an
    age may grow coarser (too old by at most the merged span) but never too young. Thread-safe:
    the store's writer thread marks, its reader threads ask."""

    RESOLUTION_S = 1.0
    MAX_MARKS = 4096

    def __init__(self, last_id_before: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._before = last_id_before
        self._start = clock()
        self._marks: list[tuple[int, float]] = []  # (highest id queued, monotonic time), ascending
        self._lock = threading.Lock()

    def queued(self, last_id: int) -> None:
        """Rows up to `last_id` are queued now."""
        now = self._clock()
        with self._lock:
            if self._marks and now - self._marks[-1][1] < self.RESOLUTION_S:
                self._marks[-1] = (max(last_id, self._marks[-1][0]), self._marks[-1][1])
                return
            self._marks.append((last_id, now))
            if len(self._marks) > self.MAX_MARKS:
                marks = self._marks
                self._marks = [(later[0], earlier[1]) for earlier, later in zip(marks[::2], marks[1::2])]
                if len(marks) % 2:
                    self._marks.append(marks[-1])

    def age(self, oldest_id: int) -> float:
        """Seconds since the row `oldest_id` was queued; the oldest still waiting is what is asked
        about, so the marks before it are dropped."""
        now = self._clock()
        if oldest_id <= self._before:
            return now - self._start
        with self._lock:
            i = bisect.bisect_left(self._marks, oldest_id, key=lambda mark: mark[0])
            del self._marks[:i]
            return now - self._marks[0][1] if self._marks else 0.0  # not marked yet: just queued
