"""Work the controller sends to chargers on its own, in the background.

A charger's boot or reconnection, or an id tag changed by the operator, starts work that calls the
charger (its local list, its charging profiles, a status refresh). None of it may hold up the
charger's own calls (its boot answer goes out first), and none may run twice at once for the same
charger: a job asked for while it runs runs once more when it ends, with the newest request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from controller.errors import DomainError

log = logging.getLogger("evedge.jobs")

Job = Callable[[], Awaitable[None]]
SETTLE_S = 1.0
"""After a boot or a connection, how long a job waits before calling: the charger has its boot
answer and has sent its first statuses by then."""


class ChargerJobs:
    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._running: set[tuple[str, str]] = set()
        self._again: dict[tuple[str, str], Job] = {}

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def submit(self, charger_id: str, name: str, job: Job, delay_s: float = 0.0) -> None:
        """Run `job` (named `name` for this charger) after `delay_s`; once more after the running
        one if it runs already. Ignored before `run` (nothing to run it in)."""
        key = (charger_id, name)
        if key in self._running:
            self._again[key] = job
            return
        if self._nursery is None:
            return
        self._running.add(key)
        self._nursery.start_soon(self._run, key, job, delay_s)

    def busy(self, charger_id: str, name: str) -> bool:
        return (charger_id, name) in self._running

    async def _run(self, key: tuple[str, str], job: Job, delay_s: float) -> None:
        try:
            if delay_s:
                await trio.sleep(delay_s)
            next_job: Job | None = job
            while next_job is not None:
                try:
                    await next_job()
                except DomainError as exc:  # offline, timeout, refused: the job's next trigger retries
                    log.info("charger=%s %s: %s", key[0], key[1], exc.message)
                except Exception:
                    log.exception("charger=%s %s failed", key[0], key[1])
                next_job = self._again.pop(key, None)
        finally:
            self._running.discard(key)
