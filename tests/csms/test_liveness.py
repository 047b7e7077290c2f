"""csms/liveness.py under a MockClock: when a ping goes out, and when silence means a charger is gone.

The fault suite (tests/faults/test_silent_chargers.py) proves it over real sockets with a short
limit; here the default limit of a real site runs in mock time.
"""

from __future__ import annotations

import pytest
import trio

from controller.config import OFFLINE_GRACE_S, OcppSection
from controller.csms.liveness import Liveness

LIMIT = OcppSection().offline_after  # 2 x 300 s + the grace


class FakeWebSocket:
    """Answers pings after `round_trip_s`, or never."""

    def __init__(self, answers: bool, round_trip_s: float = 0.05) -> None:
        self.answers, self.round_trip_s = answers, round_trip_s
        self.pings: list[float] = []
        self.in_flight = self.most_in_flight = 0

    async def ping(self) -> None:
        self.pings.append(trio.current_time())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if not self.answers:
                await trio.sleep_forever()
            await trio.sleep(self.round_trip_s)
        finally:
            self.in_flight -= 1


async def silent(liveness: Liveness) -> float:
    """Watch `liveness` until it reports the charger silent: how long it had been quiet. Its pings
    run in a nursery ended with the watch, as a session's connection ends."""
    quiet: list[float] = []
    async with trio.open_nursery() as pings:
        gone = trio.Event()
        liveness.start(pings, lambda seconds: (quiet.append(seconds), gone.set()))
        try:
            await gone.wait()
        finally:
            liveness.stop()
        pings.cancel_scope.cancel()
    return quiet[0]


def test_the_default_follows_the_heartbeat_interval() -> None:
    assert LIMIT == 2 * 300 + OFFLINE_GRACE_S
    assert OcppSection(heartbeat_interval_s=60).offline_after == 120 + OFFLINE_GRACE_S
    assert OcppSection(heartbeat_interval_s=60, offline_after_s=5).offline_after == 5


async def test_a_dead_charger_is_gone_after_the_limit_with_one_ping_unanswered(autojump_clock) -> None:
    ws = FakeWebSocket(answers=False)
    started = trio.current_time()
    quiet = await silent(Liveness(ws, lambda: LIMIT))  # type: ignore[arg-type]
    assert quiet == pytest.approx(LIMIT) and trio.current_time() - started == pytest.approx(LIMIT)
    assert ws.pings == [pytest.approx(started + LIMIT / 2)]


async def test_a_quiet_charger_that_answers_pings_stays(autojump_clock) -> None:
    ws = FakeWebSocket(answers=True)
    with trio.move_on_after(100 * LIMIT) as waited:
        await silent(Liveness(ws, lambda: LIMIT))  # type: ignore[arg-type]
    assert waited.cancelled_caught
    assert len(ws.pings) >= 100 and ws.most_in_flight == 1


async def test_a_talking_charger_is_never_pinged(autojump_clock) -> None:
    ws = FakeWebSocket(answers=False)
    liveness = Liveness(ws, lambda: LIMIT)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        async def talk() -> None:
            while True:
                await trio.sleep(300)  # a heartbeat every interval: never quiet for half the limit
                liveness.heard()

        nursery.start_soon(talk)
        with trio.move_on_after(100 * LIMIT) as waited:
            await silent(liveness)
        nursery.cancel_scope.cancel()
    assert waited.cancelled_caught and ws.pings == []


async def test_a_shorter_limit_applies_at_the_next_check(autojump_clock) -> None:
    """The watch reads the limit when it wakes (half the old limit here), not at the reload."""
    ws = FakeWebSocket(answers=False)
    limit = [LIMIT]
    liveness = Liveness(ws, lambda: limit[0])  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        async def reload() -> None:
            await trio.sleep(1)  # a SIGHUP sets offline_after_s = 30
            limit[0] = 30

        nursery.start_soon(reload)
        started = trio.current_time()
        quiet = await silent(liveness)
    assert quiet == pytest.approx(LIMIT / 2) and trio.current_time() - started == pytest.approx(LIMIT / 2)


async def test_one_watch_keeps_each_connection_to_its_own_times(autojump_clock) -> None:
    """Every connection is checked by the run's one watch at its own times: a dead one goes at
    its limit, one that talks stays, one whose connection ended is never pinged nor reported,
    and the watch holds nothing of it."""
    dead, talking, ended = FakeWebSocket(answers=False), FakeWebSocket(answers=False), FakeWebSocket(answers=False)
    gone: dict[str, float] = {}
    started = trio.current_time()
    async with trio.open_nursery() as pings:
        watched: dict[str, Liveness] = {}
        for name, ws in (("dead", dead), ("talking", talking), ("ended", ended)):
            await trio.sleep(10)  # each connects 10 s after the one before
            watched[name] = Liveness(ws, lambda: LIMIT)  # type: ignore[arg-type]
            watched[name].start(pings, lambda quiet, name=name: gone.setdefault(name, trio.current_time() - started))
        watched["ended"].stop()
        for _ in range(int(3 * LIMIT / 300)):
            await trio.sleep(300)
            watched["talking"].heard()
        pings.cancel_scope.cancel()
    assert gone == {"dead": pytest.approx(10 + LIMIT)}
    assert dead.pings == [pytest.approx(started + 10 + LIMIT / 2)] and talking.pings == ended.pings == []
    assert watched["ended"].ws is None
