"""Exponential backoff for reopening ports and gateways that went away."""

from __future__ import annotations

import random

import trio


class Backoff:
    """Delays of min, 2*min, 4*min ... capped at max, with +-10 % jitter so that several devices
    that failed together (one gateway, one USB hub) do not retry in lockstep."""

    def __init__(self, min_s: float, max_s: float) -> None:
        self.min_s = min_s
        self.max_s = max(min_s, max_s)
        self._next = min_s
        self.not_before = 0.0  # trio clock time before which no attempt should be made

    def reset(self) -> None:
        self._next = self.min_s
        self.not_before = 0.0

    def failed(self) -> float:
        """Record a failure; returns the delay chosen and sets `not_before` from the Trio clock."""
        delay = self._next * random.uniform(0.9, 1.1)
        self._next = min(self._next * 2, self.max_s)
        self.not_before = trio.current_time() + delay
        return delay

    async def sleep(self) -> None:
        """Record a failure and wait out its delay."""
        await trio.sleep(self.failed())
