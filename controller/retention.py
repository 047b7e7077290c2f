"""Retention of raw meter samples: what a long-finished charge no longer needs is deleted.

A site stores a reading every few seconds per charging connector; kept for ever, that is
gigabytes on an SD card after a few years. Billing needs a completed charge's start and stop
readings and its energy, which its own row keeps; its raw samples go once the charge is older
than `[site] meter_values_retention_days`. The work runs in small batches with pauses between
them, so chargers' writes never wait behind it for long, and the pages freed go back to the file
system (incremental vacuum) so the file shrinks.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import trio

from controller.errors import StorageUnavailable
from controller.live_config import LiveConfig
from controller.store import Store
from controller.store import meter_samples, space
from controller.timefmt import iso, utcnow

log = logging.getLogger("evedge.retention")
FIRST_RUN_S = 120.0  # after start-up, once chargers have reconnected
EVERY_S = 6 * 3600.0
TRANSACTIONS_PER_READ = 100
READINGS_PER_WRITE = 500  # one short write transaction (a few ms on a Pi)
VACUUM_PAGES = 256  # pages given back per step
PAUSE_S = 0.05  # between two batches: the loop and the writer serve chargers meanwhile


async def prune(store: Store, stopped_before: str, pause_s: float = PAUSE_S) -> int:
    """Delete the raw readings of charges completed before `stopped_before` (our UTC text), then
    give the freed pages back. Returns how many readings went."""
    deleted, after = 0, 0
    while ids := await store.read(meter_samples.transactions_to_prune, stopped_before, after, TRANSACTIONS_PER_READ):
        while n := await store.write(meter_samples.delete_readings, ids, READINGS_PER_WRITE):
            deleted += n
            await trio.sleep(pause_s)
        after = ids[-1]
    free = await store.on_writer(_vacuum_step)
    while free:
        await trio.sleep(pause_s)
        before, free = free, await store.on_writer(_vacuum_step)
        if free >= before:  # nothing more to give back
            break
    return deleted


def _vacuum_step(conn) -> int:
    return space.vacuum_step(conn, VACUUM_PAGES)


async def prune_forever(store: Store, config: LiveConfig) -> None:
    """Prune every few hours, by the retention the config has then."""
    await trio.sleep(FIRST_RUN_S)
    while True:
        days = config.current.site.meter_values_retention_days
        if days:
            try:
                deleted = await prune(store, iso(utcnow() - timedelta(days=days)))
            except StorageUnavailable as exc:  # disk full or read-only, a damaged page: the next round tries again
                log.warning("cannot prune meter values now: %s", exc)
            else:
                if deleted:
                    log.info("deleted %d meter readings of charges completed over %d days ago", deleted, days)
        await trio.sleep(EVERY_S)
