"""How many API requests the controller works on at once.

The API shares one event loop with the chargers. A thousand busy REST clients must not make a
charger's Heartbeat wait behind a thousand handlers, so at most `[api] max_requests_in_flight`
requests are handled at a time; the next ones queue for up to QUEUE_WAIT_S and then answer 503
with Retry-After (the connections themselves are capped in controller/api/http_server.py).
"""

from __future__ import annotations

import trio

from controller.api.errors import Problem
from controller.live_config import LiveConfig

QUEUE_WAIT_S = 5.0
"""How long a request waits for its turn before it answers 503."""
RETRY_AFTER_S = 1


class RequestLimit:
    def __init__(self, live: LiveConfig) -> None:
        self.limiter = trio.CapacityLimiter(live.current.api.max_requests_in_flight)  # a restart changes it

    async def admit(self, borrower: object) -> None:
        """Wait for a turn for `borrower` (the request); Problem 503 when none comes in time.
        Every admitted borrower must be released with `release`."""
        with trio.move_on_after(QUEUE_WAIT_S):
            await self.limiter.acquire_on_behalf_of(borrower)
            return
        raise Problem(503, "Busy", f"the controller is handling {self.limiter.borrowed_tokens} API requests;"
                      f" try again in {RETRY_AFTER_S} s", {"Retry-After": str(RETRY_AFTER_S)})

    def release(self, borrower: object) -> None:
        self.limiter.release_on_behalf_of(borrower)
