"""Whether a charger is still there. A cut cable sends no FIN, so its connection looks open for
ever, and a call to it waits out the whole call timeout.

Anything the charger sends is a sign of life. When it has been quiet for half the limit we send
a WebSocket ping, which every WebSocket stack answers by itself, so a charger that is quiet but
healthy stays online whatever its heartbeat interval (with the default limit, two heartbeat
intervals and a grace, one that keeps its heartbeat is never pinged at all). When nothing at all
has come for the limit (`[ocpp] offline_after_s`: no frame, no pong), it is gone.
"""

from __future__ import annotations

from collections.abc import Callable

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection


class Liveness:
    def __init__(self, ws: WebSocketConnection, offline_after: Callable[[], float]) -> None:
        self.ws = ws
        self.offline_after = offline_after  # read at each check: a reload may change it
        self.last_heard = trio.current_time()
        self._pinging = False

    def heard(self) -> None:
        """The charger sent something."""
        self.last_heard = trio.current_time()

    async def wait_silent(self, nursery: trio.Nursery) -> float:
        """Return once nothing has come from the charger for `offline_after()` seconds: how long.
        Pings run in `nursery` (the connection's: they end with it)."""
        while True:
            # Deadlines compared with the clock, never differences with limits: with floats,
            # now - heard < limit does not imply heard + limit > now, and a check that says
            # "not yet" must not wake at once, for ever.
            limit, now = self.offline_after(), trio.current_time()
            if now >= self.last_heard + limit:
                return now - self.last_heard
            if now < self.last_heard + limit / 2:
                await trio.sleep_until(self.last_heard + limit / 2)
                continue
            if not self._pinging:
                nursery.start_soon(self._ping)
            await trio.sleep_until(self.last_heard + limit)

    async def _ping(self) -> None:
        """One ping at a time: a charger that never answers has one outstanding, not one a round
        (trio-websocket keeps each unanswered ping)."""
        self._pinging = True
        try:
            await self.ws.ping()
            self.heard()
        except ConnectionClosed:
            pass  # the session's reader sees the close and ends the session
        finally:
            self._pinging = False
