"""Ages measured on the monotonic clock, never as differences of wall-clock times.

A Pi without a real-time clock boots with a wrong time and steps it when NTP answers: a wall-clock
difference across that step is years (a 30-second charge shown as 1,576,800 minutes, a 180-second
timeout over in 29). So what this process starts, it times with `trio.current_time()`; what it
finds from before its start (rows on the books) counts from when it first asks: a timeout after a
restart is never shorter than configured, only longer.
"""

from __future__ import annotations

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
