"""Whether a charger is still there. A cut cable sends no FIN, so its connection looks open for
ever, and a call to it waits out the whole call timeout.

Anything the charger sends is a sign of life. When it has been quiet for half the limit we send
a WebSocket ping, which every WebSocket stack answers by itself, so a charger that is quiet but
healthy stays online whatever its heartbeat interval (with the default limit, two heartbeat
intervals and a grace, one that keeps its heartbeat is never pinged at all). When nothing at all
has come for the limit (`[ocpp] offline_after_s`: no frame, no pong), it is gone.

One task looks at every connection, each when its next check is due (a heap of times): a task
per connection cost ~2 KB each, a megabyte and more on a site of many chargers doing nothing.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Callable

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

log = logging.getLogger("evedge.ocpp")


class Liveness:
    """One connection's signs of life."""

    def __init__(self, ws: WebSocketConnection, offline_after: Callable[[], float]) -> None:
        self.ws: WebSocketConnection | None = ws
        self.offline_after = offline_after  # read at each check: a reload may change it
        self.last_heard = trio.current_time()
        self._pinging = False
        self._pings: trio.Nursery | None = None
        self._on_silent: Callable[[float], None] | None = None

    def heard(self) -> None:
        """The charger sent something."""
        self.last_heard = trio.current_time()

    def start(self, pings: trio.Nursery, on_silent: Callable[[float], None]) -> None:
        """Watch the connection: pings run in `pings` (the connection's nursery: they end with
        it); `on_silent(seconds)` once nothing has come for `offline_after()` seconds."""
        self._pings, self._on_silent = pings, on_silent
        _watch().add(self)

    def stop(self) -> None:
        """The connection is over: no more checks. The watch drops it at its next, and holds
        nothing of the connection meanwhile (a site whose chargers all reconnect keeps no old ones)."""
        self._pings = self._on_silent = self.ws = None

    def check(self, now: float) -> float | None:
        """(The watch) Ping the charger if it has been quiet for half the limit, report it silent
        after the limit; returns when to look again, None once the watch is over."""
        if self._pings is None or self._on_silent is None:
            return None
        # Deadlines compared with the clock, never differences with limits: with floats,
        # now - heard < limit does not imply heard + limit > now, and a check that says
        # "not yet" must not come back at once, for ever.
        limit = self.offline_after()
        if now >= self.last_heard + limit:
            on_silent, quiet = self._on_silent, now - self.last_heard
            self.stop()
            on_silent(quiet)
            return None
        if now < self.last_heard + limit / 2:
            return self.last_heard + limit / 2
        if not self._pinging:
            self._pings.start_soon(self._ping)
        return self.last_heard + limit

    async def _ping(self) -> None:
        """One ping at a time: a charger that never answers has one outstanding, not one a round
        (trio-websocket keeps each unanswered ping)."""
        ws = self.ws
        if ws is None:
            return
        self._pinging = True
        try:
            await ws.ping()
            self.heard()
        except ConnectionClosed:
            pass  # the session's reader sees the close and ends the session
        finally:
            self._pinging = False


class Watch:
    """The connections' next checks, and the task that makes them."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Liveness]] = []
        self._order = itertools.count()  # equal times: first added, first checked
        self._sooner = trio.Event()

    def add(self, liveness: Liveness) -> None:
        at = liveness.check(trio.current_time())
        if at is not None:
            self._push(at, liveness)

    def _push(self, at: float, liveness: Liveness) -> None:
        if not self._due or at < self._due[0][0]:
            self._sooner.set()
        heapq.heappush(self._due, (at, next(self._order), liveness))

    async def run(self) -> None:
        while True:
            now = trio.current_time()
            while self._due and self._due[0][0] <= now:
                _, _, liveness = heapq.heappop(self._due)
                try:
                    at = liveness.check(now)
                except Exception:  # noqa: BLE001 - one connection's check must not stop the others'
                    log.exception("liveness check failed")
                    continue
                if at is not None:
                    heapq.heappush(self._due, (at, next(self._order), liveness))
            self._sooner = trio.Event()
            with trio.move_on_at(self._due[0][0] if self._due else math.inf):
                await self._sooner.wait()


_WATCH: trio.lowlevel.RunVar[Watch] = trio.lowlevel.RunVar("evedge_liveness_watch")


def _watch() -> Watch:
    """This Trio run's watch, started with its first connection (a system task: it ends with the run)."""
    try:
        return _WATCH.get()
    except LookupError:
        watch = Watch()
        _WATCH.set(watch)
        trio.lowlevel.spawn_system_task(watch.run, name="evedge liveness watch")
        return watch
