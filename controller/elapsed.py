"""Ages measured on the monotonic clock, never as differences of wall-clock times.

A Pi without a real-time clock boots with a wrong time and steps it when NTP answers: a wall-clock
difference across that step is years (a 30-second charge shown as 1,576,800 minutes, a 180-second
timeout over in 29). So what this process starts, it times with `trio.current_time()`; what it
finds from before its start (rows on the books) counts from when it first asks: a timeout after a
restart is never shorter than configured, only longer.
"""

from __future__ import annotations

from collections.abc import Hashable

import trio


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
