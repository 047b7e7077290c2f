"""Tap-to-charge: a card presented to a reader assigned to a charger connector starts or stops a charge.

A tap on a connector whose active transaction belongs to the same owner (the same id tag, or a tag
with the same parent: `Authorization.same_owner`) sends a remote stop. Otherwise the tag is
checked against the local list (a reservation of the connector for another tag refuses it:
`Reserved`; one for this tag admits it) and, when Accepted, a remote start goes to that connector
with mode "local" (the card was tapped at the charger). Unlike the API, a tap also starts on a
free connector (`remote_start(require_preparing=False)`): drivers tap before plugging in, the
charger accepts and waits for the cable, and a start that never comes is failed after
`ocpp.remote_start_timeout_s` like any remote start.

Every outcome (started, stopped, a refused tag, an offline or refusing charger, a bug) is logged and
kept as the reader's `lastTapResult` for GET /api/v1/readers (its words: `OUTCOMES`); nothing here
raises into the drivers.
Taps are handled in this module's own nursery (the drivers' callback only schedules them), one at
a time per connector.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import trio

from controller import errors
from controller.authorization import Authorization
from controller.timefmt import iso
from controller.transactions import Transactions
from drivers import Tap

log = logging.getLogger("evedge.tap_to_charge")

# A tap's outcome when the charge could not be started or stopped, by the domain error that said so
# (most specific first).
FAILURES: list[tuple[type[errors.DomainError], str]] = [
    (errors.ChargerOffline, "ChargerOffline"),
    (errors.ChargerDisconnected, "ChargerOffline"),
    (errors.ChargerTimeout, "ChargerTimeout"),
    (errors.ConnectorNotReady, "ConnectorNotAvailable"),
    (errors.ConnectorReserved, "Reserved"),
    (errors.ChargerRejected, "ChargerRejected"),
    (errors.Invalid, "ConnectorNotValid"),
    (errors.NotFound, "ChargerNotFound"),
    (errors.NotInTransaction, "NotInTransaction"),
    (errors.StorageUnavailable, "DatabaseUnavailable"),
    (errors.DomainError, "Error"),
]
OUTCOMES = ("Started", "Stopped", "InProgress", "Occupied", "Rejected", "NotAssigned", "NotReady", "Error",
            *{outcome for _, outcome in FAILURES})


def failure_outcome(exc: errors.DomainError) -> str:
    return next(outcome for cls, outcome in FAILURES if isinstance(exc, cls))


class TapToCharge:
    def __init__(self, authorization: Authorization, transactions: Transactions) -> None:
        self.authorization = authorization
        self.transactions = transactions
        self.results: dict[str, dict[str, Any]] = {}  # reader id -> its last tap's outcome (API shape)
        self._nursery: trio.Nursery | None = None
        self._locks: defaultdict[tuple[str, int], trio.Lock] = defaultdict(trio.Lock)

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def on_tap(self, tap: Tap) -> None:
        """The drivers' callback: only schedules the work, so the reader is never held up."""
        if self._nursery is None:
            self._record(tap, "NotReady", "the controller is still starting")
            return
        self._nursery.start_soon(self.handle, tap)

    async def handle(self, tap: Tap) -> dict[str, Any]:
        if tap.charger is None or tap.connector is None:
            return self._record(tap, "NotAssigned", f"reader {tap.reader_id} is not assigned to a charger connector")
        async with self._locks[(tap.charger, tap.connector)]:
            try:
                return await self._decide(tap)
            except errors.DomainError as exc:
                return self._record(tap, failure_outcome(exc), exc.message)
            except Exception as exc:  # a bug must not take the site down with it
                log.exception("reader=%s id_tag=%s: tap handling failed", tap.reader_id, tap.id_tag)
                return self._record(tap, "Error", f"tap handling failed: {exc}")

    async def _decide(self, tap: Tap) -> dict[str, Any]:
        charger, connector = tap.charger, tap.connector
        assert charger is not None and connector is not None
        rows = await self.transactions.open_for_connector(charger, connector)
        for row in rows:
            if not self.authorization.same_owner(row["id_tag"], tap.id_tag):
                continue
            if row["status"] == "active":
                await self.transactions.remote_stop(row["id"])
                return self._record(tap, "Stopped", "remote stop accepted by the charger", row["id"])
            what = "stop" if row["status"] == "stopping" else "start"
            return self._record(tap, "InProgress", f"transaction {row['id']} is already {row['status']}"
                                f" (a {what} is on its way)", row["id"])
        if rows:
            return self._record(tap, "Occupied", f"connector {connector} is in use by another id tag", rows[0]["id"])
        # a reservation for another tag refuses the tap (Reserved); one for this tag admits it
        # even if it is not on the list (the operator reserved the connector for it)
        reserved = self.transactions.check_reservation(charger, connector, tap.id_tag) is not None
        status = (await self.authorization.decide(charger, connector, tap.id_tag)).status
        if status != "Accepted" and not (reserved and status != "Blocked"):
            return self._record(tap, "Rejected", f"id tag {tap.id_tag} is {status}", id_tag_status=status)
        started = await self.transactions.remote_start(charger, connector, tap.id_tag, mode="local",
                                                       require_preparing=False)
        return self._record(tap, "Started", "remote start accepted by the charger", started["transactionId"],
                            id_tag_status=status)

    def _record(self, tap: Tap, result: str, message: str, transaction_id: int | None = None,
                id_tag_status: str | None = None) -> dict[str, Any]:
        level = logging.INFO if result in ("Started", "Stopped") else logging.WARNING
        log.log(level, "reader=%s charger=%s connector=%s id_tag=%s tap: %s (%s)",
                tap.reader_id, tap.charger, tap.connector, tap.id_tag, result, message)
        outcome = {"result": result, "message": message, "idTag": tap.id_tag, "idTagStatus": id_tag_status,
                   "transactionId": transaction_id, "at": iso(tap.at)}
        self.results[tap.reader_id] = outcome
        return outcome
