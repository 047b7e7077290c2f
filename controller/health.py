"""GET /healthz: which parts of the site work, and whether the controller can do its job.

The database check fails while the database is damaged (`store.damage`: a failed quick_check, a
damaged page a query met; controller/store/integrity.py), naming the damage and how to restore.
It also fails while the Store's last write was refused (`store.write_failure`:
disk full, read-only, I/O error); it probes with a real write then, so it recovers as soon as the
disk does, without a restart and without waiting for a charger to write something.

Each check is "ok", "degraded" (charging works, something around it does not: the upstream is
behind, a meter bus is silent) or "failing" (the controller cannot do its job: the database takes
no writes, the OCPP listener is down). Any failing check makes the whole answer "failing" and
/healthz answers 503, so a load balancer, a monitoring probe or an installer sees it at once.

Other parts (the Modbus buses and card readers in drivers/) add their own checks to the site's
`health_checks` (passed here as `checks`): name -> fn, where `fn()` returns a dict with at least
"status".
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import trio

from controller import metrics
from controller.store import stats
from controller.store.integrity import RESTORE
from controller.timefmt import iso

if TYPE_CHECKING:
    from controller.chargers import ChargerRegistry
    from controller.store import Store

HealthCheck = Callable[[], dict]
DB_PROBE_TIMEOUT_S = 1.0
MIN_FREE_BYTES = 16 * 1024 * 1024  # an SD card this full is about to refuse writes
OUTBOX_BEHIND_S = 900.0  # oldest undelivered notification older than this: upstream degraded
_RANK = {"ok": 0, "degraded": 1, "failing": 2}


async def _database(store: Store) -> dict:
    path = store.path
    if store.damage is not None:
        return {"status": "failing", "error": f"the database {path} is damaged: {store.damage}; {RESTORE}"}
    if store.write_failure is not None:
        # A write was refused (disk full, read-only, I/O error): failing until a write (or this
        # probe write) goes through again. The lock probe below cannot see these: it writes nothing.
        with trio.move_on_after(DB_PROBE_TIMEOUT_S * 5):
            await store.probe()  # clears write_failure if the database takes writes again
        failure = store.write_failure
        if failure is not None:
            return {"status": "failing", "error": f"database refuses writes: {failure.error}",
                    "lastWriteErrorAt": iso(failure.at)}
    problem = await trio.to_thread.run_sync(stats.probe_writable, path, DB_PROBE_TIMEOUT_S)
    if problem is None and not os.access(path.parent, os.W_OK):
        problem = f"{path.parent} is not writable"
    if problem is None:
        free = shutil.disk_usage(path.parent).free
        if free < MIN_FREE_BYTES:
            problem = f"only {free // 1024} KiB free in {path.parent}"
    if problem is not None:
        return {"status": "failing", "error": problem}
    return {"status": "ok", "sizeBytes": stats.database_bytes(path)}


async def _books(store: Store) -> tuple[dict, dict]:
    snap = await store.read(stats.snapshot, store.outbox_queued)
    upstream = {"status": "ok", "outboxPending": snap.outbox_pending,
                "oldestPendingAgeS": round(snap.outbox_oldest_age_s, 1)}
    if snap.outbox_oldest_age_s > OUTBOX_BEHIND_S:
        upstream["status"] = "degraded"
    return upstream, {"open": snap.transactions_open}


async def check(store: Store, chargers: ChargerRegistry, ocpp_port: int | None,
                checks: Mapping[str, HealthCheck]) -> dict:
    """The /healthz body: the database, the upstream's backlog, the OCPP listener (`ocpp_port`
    None: not listening), the event loop, then each of `checks`."""
    results: dict[str, dict] = {"database": await _database(store)}
    if results["database"]["status"] == "ok":
        try:
            results["upstream"], transactions = await _books(store)
        except Exception as exc:  # a read that fails is as bad as a write that does
            results["database"] = {"status": "failing", "error": f"read failed: {exc}"}
            transactions = None
    else:
        transactions = None
    results["ocpp"] = {"status": "ok" if ocpp_port else "failing", "port": ocpp_port}
    lag = metrics.last_loop_lag()
    results["eventLoop"] = {"status": "ok" if lag < 1.0 else "degraded", "lagS": round(lag, 4)}
    for name, fn in sorted(checks.items()):
        try:
            result = dict(fn())
        except Exception as exc:
            result = {"status": "degraded", "error": f"health check failed: {exc}"}
        result.setdefault("status", "degraded")
        results[name] = result
    status = max((c["status"] for c in results.values()), key=lambda s: _RANK.get(s, 1))
    body = {"status": status, "chargersOnline": chargers.online_count(), "checks": results}
    if transactions is not None:
        body["transactionsOpen"] = transactions["open"]
    return body
