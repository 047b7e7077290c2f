"""Helpers for the driver tests: bounded waits on real I/O, and a tap collector.

Import as `from tests.drivers.support import ...` (tests/conftest.py puts the project root on
sys.path; a bare `conftest` import would be ambiguous next to tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

import trio

#: Short but generous bounds so that a loaded CI machine does not flake, while a broken
#: driver still fails fast.
WAIT_S = 10.0


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Wait for a condition driven by real I/O in other threads (not a timing assertion)."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def spin_until(predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """`wait_until` for tests on a MockClock, where sleeping would wait for a clock jump:
    yields to other tasks without using Trio's clock, bounded in real time."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await trio.lowlevel.checkpoint()


class TapSink:
    """Collects taps from a reader's on_tap callback into a channel the test awaits."""

    def __init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel(100)
        self.taps: list = []

    async def __call__(self, tap) -> None:  # noqa: ANN001 - the Tap type is what is under test
        self.taps.append(tap)
        await self.send.send(tap)

    async def next(self, timeout: float = WAIT_S):  # noqa: ANN201
        with trio.fail_after(timeout):
            return await self.receive.receive()

    async def next_spinning(self, timeout: float = WAIT_S):  # noqa: ANN201
        """`next` on a MockClock (see spin_until)."""
        await spin_until(lambda: self.receive.statistics().current_buffer_used > 0, timeout)
        return self.receive.receive_nowait()
