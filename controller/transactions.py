"""The transaction lifecycle: pending -> active -> stopping -> completed (or failed).

`pending` is a remote start the charger accepted; the row's id is the transactionId the charger
gets when StartTransaction arrives on that connector. Every answer that tells a charger something
is stored (StartTransaction.conf, StopTransaction.conf) is sent only after the commit.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from controller.authorization import Authorization, Verdict
from controller.chargers import Availability, ChargeOperation, ChargerLink, ChargerRegistry
from controller.elapsed import Ages
from controller.errors import (
    AnswerLost,
    ChargerCallError,
    ChargerRejected,
    ConnectorNotReady,
    DomainError,
    Invalid,
    NotFound,
    NotInTransaction,
    StorageUnavailable,
)
from controller.live_config import LiveConfig
from controller.reservations import Held, Reservations
from controller.store import Store
from controller.store import transactions as q
from controller.store.outbox import insert_events
from controller.timefmt import iso_from_now, now_iso, parse_iso, utcnow
from controller.upstream.events import Events
from controller.upstream.events import record as record_events

log = logging.getLogger("evedge.transactions")

LIVE_S = 120  # a charger's reading older than this is history, not the meter's present state
BACKLOG_MAX_S = 366 * 86400
"""A charge a charger reports as started longer ago than this (1970, year 1) is its clock gone
wrong, not an offline backlog; ahead of our clock, [ocpp] clock_tolerance_s is the limit."""
QUEUE_CHECKS = 6  # after a reconnect, how often a charger with messages still queued is asked again
QUEUE_RECHECK_S = 10.0


@dataclass(slots=True)
class StartReport:
    """A charger says a charge began. Chargers that name their transactions themselves give their
    id (`charger_transaction_id`); a start we asked for may carry our pending id (`remote_start_id`)."""

    connector_id: int
    id_tag: str
    meter_start_wh: float | None
    timestamp: str  # ISO 8601, UTC
    reservation_id: int | None = None
    charger_transaction_id: str | None = None
    remote_start_id: int | None = None


@dataclass(slots=True)
class StopReport:
    """A charger says a charge ended; `begin_*` is its own record of the start, when it sent one."""

    transaction_id: int
    meter_stop_wh: float | None  # None: no reading with the stop (the last one booked counts)
    timestamp: str
    reason: str
    id_tag: str | None = None
    begin_at: str | None = None
    begin_wh: float | None = None
    data_json: str | None = None  # the charger's meter data for the charge, kept as it came


@dataclass(slots=True)
class MeterReport:
    """Meter samples from a charger: each (timestamp, its sampled values), and the latest totals."""

    connector_id: int
    transaction_id: int | None
    samples: list[tuple[str, list[dict]]]
    energy_wh: float | None
    power_w: float | None


BookingHook = Callable[[sqlite3.Connection, str, sqlite3.Row], "dict | None"]
"""Runs in the store's writer thread, inside the write that books a start ("start") or a stop
("stop") of the row given, and returns the `payment` object for the upstream event (public charging:
controller/public_charging/sessions.py `transaction_changed`)."""

EnergySource = Callable[[str, int], "tuple[float | None, bool]"]
"""(charger id, connector id) -> (import register Wh or None, online): the connector meter's latest
reading for chargers with `meter = "connector-meter"`, (None, False) for the others. A plain
attribute read, safe in the store's writer thread (see start_energy, booked_energy)."""


class Transactions:
    def __init__(self, config: LiveConfig, store: Store, chargers: ChargerRegistry,
                 authorization: Authorization, events: Events, on_booked: BookingHook | None = None,
                 energy_source: EnergySource | None = None, reservations: Reservations | None = None) -> None:
        self.config = config
        self.store = store
        self.chargers = chargers
        self.authorization = authorization
        self.events = events
        self.on_booked = on_booked
        self.energy_source = energy_source
        self.reservations = reservations
        self._pending = Ages()  # remote starts waiting for their charge: the timeout's clock
        self._running = Ages()  # charges started in this process: their duration's clock
        self._latest: dict[int, float] = {}
        """Running charges' latest energy (Wh) booked by their readings in this process: their rows
        catch up only at the stop (store.transactions.latest_wh); `current` shows it meanwhile."""

    def clock_suspect(self, timestamp: str) -> bool:
        """Whether a charger's timestamp is too far from our clock to be true (its clock gone
        wrong): more than [ocpp] clock_tolerance_s ahead, or more than BACKLOG_MAX_S behind."""
        offset = (parse_iso(timestamp) - utcnow()).total_seconds()
        return offset > self.config.current.ocpp.clock_tolerance_s or offset < -BACKLOG_MAX_S

    def current(self, row: sqlite3.Row) -> Mapping[str, Any]:
        """`row` as it is now: a running charge's `meter_last` is its latest reading's energy."""
        wh = self._latest.get(row["id"])
        if wh is None or row["status"] not in ("active", "stopping") or (row["meter_last"] or 0) >= wh:
            return row
        return {**dict(row), "meter_last": wh}

    def _ended(self, transaction_id: int) -> None:
        self._running.forget(transaction_id)
        self._latest.pop(transaction_id, None)

    def running_for(self, transaction_id: int) -> float | None:
        """Seconds since a charge started in this process was booked (monotonic: a step of the
        wall clock does not change it); None for charges from before this process."""
        return self._running.age(transaction_id) if self._running.known(transaction_id) else None

    # -- REST side --------------------------------------------------------------------------

    def _changed(self, charger_id: str, transaction_id: int) -> None:
        """Live watchers (the dashboard) hear that a transaction began, moved on or ended."""
        self.chargers.changes.publish("transaction", charger=charger_id, transaction=transaction_id)

    def _link(self, charger_id: str) -> ChargerLink:
        return self.chargers.online_link(charger_id)

    async def remote_start(self, charger_id: str, connector_id: int, id_tag: str, mode: str = "api",
                           require_preparing: bool = True) -> dict:
        """`require_preparing=False` (card taps) also sends to a free connector: the charger
        accepts and waits for the cable (until ocpp.remote_start_timeout_s marks it failed)."""
        state = self.chargers.require(charger_id)
        link = self._link(charger_id)
        if not state.accepts_connector(connector_id, charging=True):
            raise Invalid(f"charger {charger_id} has no connector {connector_id}", "ConnectorNotValid")
        connector = state.connector(connector_id)
        # a connector reserved for this tag takes its start (the charger shows it Reserved)
        reserved = self.check_reservation(charger_id, connector_id, id_tag) is not None
        ready = connector.ready_to_start if require_preparing else connector.can_start
        if not ready and not (reserved and connector.availability is Availability.RESERVED):
            raise ConnectorNotReady(connector_id, connector.status, need_plug=require_preparing)
        try:
            transaction_id, accepted = await self._book_start(
                charger_id, connector_id, id_tag, mode,
                lambda transaction_id: link.remote_start(connector_id, id_tag, transaction_id,
                                                         self.authorization.token_type(id_tag)))
        except ChargerCallError as exc:
            raise ChargerRejected(exc.message) from None
        if not accepted:
            raise ChargerRejected(f"charger {charger_id} rejected the remote start")
        return {"transactionId": transaction_id, "chargeBoxId": charger_id, "connectorId": connector_id}

    def check_reservation(self, charger_id: str, connector_id: int, id_tag: str | None) -> Held | None:
        """Raises ConnectorReserved when a reservation holds the connector for another id tag
        (`id_tag` None: for any tag); the reservation `id_tag` may use, if any."""
        return self.reservations.check(charger_id, connector_id, id_tag) if self.reservations is not None else None

    async def _book_start(self, charger_id: str, connector_id: int, id_tag: str, mode: str,
                          send: Callable[[int], Awaitable[bool]]) -> tuple[int, bool]:
        """A start we ask for: its pending row, then `send(its id)`; (id, whether accepted).

        The pending row exists before the call, so a StartTransaction racing the answer finds it.
        A start the charger refused or never got is failed; a lost answer is not (see below).
        """
        transaction_id = await self.store.write(q.create_pending, charger_id, connector_id, id_tag, mode)
        self._pending.start(transaction_id)
        self._changed(charger_id, transaction_id)
        try:
            accepted = await send(transaction_id)
        except AnswerLost:
            # The charger may have accepted and start any moment (its answer got lost): the row
            # stays pending, so its StartTransaction gets this id and the tag is accepted, until
            # ocpp.remote_start_timeout_s marks it failed (expire_pending_forever).
            raise
        except Exception:
            await self._fail_start(transaction_id, "NotSent")
            raise
        if not accepted:
            await self._fail_start(transaction_id, "Rejected")
        return transaction_id, accepted

    async def operation(self, charger_id: str, action: str, payload: dict) -> Any:
        """An operator's raw operation; one that starts or stops a charge is booked like our own
        remote start or stop (a pending row, remote_started, mode "remote"; stopping), and the
        charger's answer is returned as it came. The payload is sent as given: a 2.0.1 start's
        remoteStartId is the operator's, so its charge is matched by EVSE and id token."""
        protocol = self.chargers.check_operation(charger_id, action, payload)
        request = protocol.charge_operation(action, payload)
        if request is None:
            return await self.chargers.operation(charger_id, action, payload)
        link = self._link(charger_id)
        answer: Any = None

        async def send(_: int = 0) -> bool:
            nonlocal answer
            answer = await link.call(action, payload)
            return isinstance(answer, dict) and answer.get("status") == "Accepted"

        if request.kind == "start":
            await self._operator_start(charger_id, request, send)
        else:
            await self._operator_stop(charger_id, request, send)
        return answer

    async def _operator_start(self, charger_id: str, request: ChargeOperation,
                              send: Callable[[int], Awaitable[bool]]) -> None:
        state = self.chargers.require(charger_id)
        if request.connector_id:
            if not state.accepts_connector(request.connector_id, charging=True):
                raise Invalid(f"connectorId: charger {charger_id} has no connector {request.connector_id}",
                              "ConnectorNotValid")
            self.check_reservation(charger_id, request.connector_id, request.id_tag)
        await self._book_start(charger_id, request.connector_id, request.id_tag, "remote", send)

    async def _operator_stop(self, charger_id: str, request: ChargeOperation,
                             send: Callable[[int], Awaitable[bool]]) -> None:
        row = None
        if request.transaction_id is not None:
            row = await self.store.read(q.get, request.transaction_id)
        elif request.charger_transaction_id is not None:
            row = await self.store.read(q.by_ocpp_id, charger_id, request.charger_transaction_id)
        ours = row is not None and row["charger_id"] == charger_id and row["status"] in ("active", "stopping")
        if await send():
            if ours:
                await self.store.write(self._mark_stopping, row["id"])
        elif ours:
            await record_events(self.store, self.events.stop_rejected(self.current(row)))

    async def _fail_start(self, transaction_id: int, reason: str) -> None:
        self._pending.forget(transaction_id)
        def write(conn: sqlite3.Connection) -> None:
            q.set_status(conn, transaction_id, "failed", reason)
            insert_events(conn, self.events.start(q.get(conn, transaction_id), accepted=False))

        await self.store.write(write)
        self.chargers.changes.publish("transaction", transaction=transaction_id)

    async def remote_stop(self, transaction_id: int) -> dict:
        row = await self.store.read(q.get, transaction_id)
        if row is None:
            raise NotFound("Transaction", transaction_id)
        if row["status"] not in ("active", "stopping"):
            raise NotInTransaction(f"transaction {transaction_id} is {row['status']}, not active")
        try:
            accepted = await self._link(row["charger_id"]).remote_stop(transaction_id, row["ocpp_transaction_id"])
        except ChargerCallError as exc:
            raise ChargerRejected(exc.message) from None
        if not accepted:
            await record_events(self.store, self.events.stop_rejected(self.current(await self.store.read(q.get, transaction_id))))
            raise ChargerRejected(f"charger {row['charger_id']} rejected the remote stop")
        await self.store.write(self._mark_stopping, transaction_id)
        self._changed(row["charger_id"], transaction_id)
        return {"transactionId": transaction_id, "chargeBoxId": row["charger_id"]}

    @staticmethod
    def _mark_stopping(conn: sqlite3.Connection, transaction_id: int) -> None:
        row = q.get(conn, transaction_id)
        if row is not None and row["status"] == "active":  # StopTransaction may have come first
            q.set_status(conn, transaction_id, "stopping")

    async def get(self, transaction_id: int) -> Mapping[str, Any]:
        row = await self.store.read(q.get, transaction_id)
        if row is None:
            raise NotFound("Transaction", transaction_id)
        return self.current(row)

    async def page(self, match: q.TransactionFilter, limit: int, offset: int = 0,
                   before_id: int | None = None) -> tuple[list[Mapping[str, Any]], int]:
        """One page of transactions, newest first, and how many `match` holds in all."""
        rows, total = await self.store.read(q.page, match, limit, offset, before_id)
        return [self.current(row) for row in rows], total

    async def each(self, match: q.TransactionFilter, batch: int = 500) -> AsyncIterator[Mapping[str, Any]]:
        """Every transaction `match` holds, newest first, read `batch` rows at a time (an export
        of years of books never sits in memory, and never holds the reader for long)."""
        before_id = None
        while rows := await self.store.read(q.batch, match, before_id, batch):
            for row in rows:
                yield self.current(row)
            before_id = rows[-1]["id"]

    async def meter_values(self, transaction_id: int, limit: int, offset: int) -> tuple[list[sqlite3.Row], int]:
        """A page of the transaction's meter values (in the order they arrived) and their count."""
        def read(conn: sqlite3.Connection) -> tuple[list[sqlite3.Row], int] | None:
            if q.get(conn, transaction_id) is None:
                return None
            return q.meter_values(conn, transaction_id, limit, offset), q.meter_values_count(conn, transaction_id)

        found = await self.store.read(read)
        if found is None:
            raise NotFound("Transaction", transaction_id)
        return found

    async def resolve(self, charger_id: str, charger_transaction_id: str) -> tuple[int, int] | None:
        """(our id, connector) of the transaction a charger knows as `charger_transaction_id`, if
        on the books."""
        row = await self.store.read(q.by_ocpp_id, charger_id, charger_transaction_id)
        return (row["id"], row["connector_id"]) if row is not None else None

    async def open_for_connector(self, charger_id: str, connector_id: int) -> list[sqlite3.Row]:
        """The connector's transactions that are pending, active or stopping."""
        return await self.store.read(q.open_for_connector, charger_id, connector_id)

    # -- charger side -----------------------------------------------------------------------

    async def load(self) -> None:
        """After a restart: connectors with a charge on the books are busy, whatever status was
        stored last (a 2.0.1 Occupied reads as plugged, and a start must not go on top of it)."""
        for row in await self.store.read(q.charging):
            state = self.chargers.get(row["charger_id"])
            if state is not None:
                self.chargers.set_availability(state, row["connector_id"], Availability.BUSY)

    async def on_authorize(self, charger_id: str, id_tag: str) -> Verdict:
        """The verdict on a tag; a tag we just asked this charger to start with is Accepted.

        Chargers that authorize the tag of a remote start before starting would otherwise undo
        our own (API, card-reader or public-session) start.
        """
        verdict = await self.authorization.decide(charger_id, 0, id_tag)  # 0: no connector named yet
        if verdict.accepted or verdict.blocked:
            return verdict
        if self.reservations is not None and self.reservations.reserved_tag(charger_id, id_tag):
            return verdict.with_status("Accepted")  # the operator reserved a connector for it
        if await self.store.read(q.has_pending_tag, charger_id, id_tag):
            verdict = verdict.with_status("Accepted")
        return verdict

    def start_energy(self, charger_id: str, connector_id: int, charger_wh: float | None,
                     at: str) -> tuple[float | None, str | None]:
        """(meterStart to book, energy source) of a new transaction.

        A transaction books its energy from one source from start to stop, as mixing two registers
        would book nonsense: the connector meter ("meter") when one is configured, online and the
        start is live (not a backlog entry more than LIVE_S old), else the charger's own (None).
        """
        if self.energy_source is None or at < iso_from_now(-LIVE_S):
            return charger_wh, None
        wh, online = self.energy_source(charger_id, connector_id)
        return (round(wh), "meter") if wh is not None and online else (charger_wh, None)

    def booked_energy(self, charger_id: str, connector_id: int, charger_wh: float | None, at: str,
                      source: str | None) -> float | None:
        """The reading to book at `at` for a transaction whose energy comes from `source`; None:
        nothing new to book (keep the last).

        A "meter" transaction books the meter's latest reading, even while the meter is offline
        (the energy since is missed, never invented), and nothing for a backlog reading more than
        LIVE_S old: the meter only knows the register now, not then. `energy_source` is a plain
        attribute read, safe in the store's thread.
        """
        if source != "meter" or self.energy_source is None:
            return charger_wh
        if at < iso_from_now(-LIVE_S):
            return None
        wh, online = self.energy_source(charger_id, connector_id)
        if wh is not None and not online:
            log.warning("charger=%s connector=%s: connector meter offline; booking its last reading",
                        charger_id, connector_id)
        return round(wh) if wh is not None else None

    async def on_start(self, charger_id: str, report: StartReport) -> tuple[int, Verdict]:
        """Books a charge the charger began; returns its transaction id and the tag's verdict."""
        id_tag, connector_id = report.id_tag, report.connector_id
        verdict = self.authorization.verdict(id_tag)
        if id_tag and not self.authorization.listed(id_tag):  # a card the site does not know: the upstream's say
            verdict = await self.authorization.decide(charger_id, connector_id, id_tag)
        if report.charger_transaction_id is not None:  # the charger's own id names the charge
            key_source = f"{charger_id}|tx|{report.charger_transaction_id}"
        else:
            key_source = f"{charger_id}|{connector_id}|{id_tag}|{report.timestamp}|{report.meter_start_wh}"
        start_key = hashlib.sha256(key_source.encode()).hexdigest()
        suspect = self.clock_suspect(report.timestamp)
        if suspect:
            log.warning("charger=%s connector=%s: start stamped %s, far from our clock: booked and flagged",
                        charger_id, connector_id, report.timestamp)

        reservation = (self.reservations.usable(charger_id, connector_id, id_tag, verdict.parent_id_tag,
                                                report.reservation_id) if self.reservations is not None else None)

        def write(conn: sqlite3.Connection) -> tuple[sqlite3.Row, bool, bool, list[sqlite3.Row]]:
            # A charge we asked for (or reserved for) is accepted even for a tag that is not on the local list.
            asked_for = q.pending_for_connector(conn, charger_id, connector_id, id_tag) is not None
            status = "Accepted" if (asked_for or reservation is not None) and not verdict.blocked else verdict.status
            if not id_tag:
                status = None  # no tag yet: judged when the charger names it (identified)
            meter_start, source = self.start_energy(charger_id, connector_id, report.meter_start_wh, report.timestamp)
            row, created = q.begin(
                conn, charger_id=charger_id, connector_id=connector_id, id_tag=id_tag, id_tag_status=status,
                meter_start=meter_start, start_time=report.timestamp,
                reservation_id=report.reservation_id if reservation is None else reservation.id,
                start_key=start_key, default_mode="local", energy_source=source,
                ocpp_transaction_id=report.charger_transaction_id, pending_id=report.remote_start_id,
                clock_suspect="start" if suspect else None,
            )
            if not created:
                return row, False, False, []
            # The charger started a charge on a connector whose previous one it never stopped (the
            # stop got lost): that one is over, closed by the controller with its last reading.
            closed = q.close_superseded(conn, row)
            for old in closed:
                self._stopped(conn, old)
            used = reservation is not None and self.reservations.use(conn, reservation, row["id"])
            if id_tag:  # a charge without a tag yet is announced once it has one (identified)
                self._started(conn, row)
            return row, True, used, closed

        row, created, used, closed = await self.store.write(write)
        self._changed(charger_id, row["id"])
        if created:
            self._running.start(row["id"])
            self._pending.forget(row["id"])
        if used:
            self.reservations.used(reservation, row["id"])
        for old in closed:
            self._ended(old["id"])
            log.warning("charger=%s connector=%s: transaction %s was still open when transaction %s started;"
                        " closed by the controller with its last reading", charger_id, connector_id, old["id"], row["id"])
        status = row["id_tag_status"]
        log.info("charger=%s connector=%s transaction=%s started id_tag=%s status=%s",
                 charger_id, connector_id, row["id"], id_tag, status)
        return row["id"], verdict.with_status(status) if status else verdict

    def _started(self, conn: sqlite3.Connection, row: sqlite3.Row) -> None:
        """The start's bookkeeping beyond the row, inside its write: public charging, the upstream."""
        payment = self.on_booked(conn, "start", row) if self.on_booked else None
        insert_events(conn, self.events.start(row, accepted=row["id_tag_status"] == "Accepted", payment=payment))

    def _stopped(self, conn: sqlite3.Connection, row: sqlite3.Row) -> None:
        """A stop's bookkeeping beyond the row, inside its write: public charging, the upstream."""
        payment = self.on_booked(conn, "stop", row) if self.on_booked else None
        insert_events(conn, self.events.stop(row, payment=payment))

    async def identified(self, charger_id: str, transaction_id: int, id_tag: str) -> Verdict:
        """A charge booked without an id tag (a station that starts its transactions when the car
        is plugged in) learns its tag: booked with the tag's verdict and announced now."""
        verdict = await self.on_authorize(charger_id, id_tag)

        def write(conn: sqlite3.Connection) -> None:
            row = q.get(conn, transaction_id)
            if row is None or row["charger_id"] != charger_id or row["id_tag"]:
                return  # not this charger's, or it has its tag already
            q.identify(conn, transaction_id, id_tag, verdict.status)
            self._started(conn, q.get(conn, transaction_id))

        await self.store.write(write)
        self._changed(charger_id, transaction_id)
        return verdict

    async def on_stop(self, charger_id: str, report: StopReport) -> Verdict | None:
        """Books the end of a charge; returns the verdict on the tag that stopped it, if any."""
        stop_suspect = self.clock_suspect(report.timestamp)

        def write(conn: sqlite3.Connection) -> tuple[sqlite3.Row, bool]:
            before = q.get(conn, report.transaction_id)
            meter_stop = report.meter_stop_wh
            if before is not None and before["charger_id"] == charger_id:
                meter_stop = self.booked_energy(charger_id, before["connector_id"], meter_stop, report.timestamp,
                                                before["energy_source"])
            row, known, new = q.finish(
                conn, transaction_id=report.transaction_id, charger_id=charger_id, meter_stop=meter_stop,
                stop_time=report.timestamp, reason=report.reason, id_tag=report.id_tag,
                transaction_data=report.data_json, start_time=report.begin_at, meter_start=report.begin_wh,
                stop_suspect=stop_suspect,
            )
            if new:  # not a re-sent stop
                self._stopped(conn, row)
            return row, known

        row, known = await self.store.write(write)
        self._changed(charger_id, row["id"])
        self._ended(row["id"])
        if not known:
            log.warning("charger=%s stopped transaction %s, not on the books as its own; recorded as transaction %s",
                        charger_id, report.transaction_id, row["id"])
        log.info("charger=%s transaction=%s stopped reason=%s", charger_id, row["id"], row["stop_reason"])
        return self.authorization.verdict(report.id_tag) if report.id_tag else None

    async def on_meter_values(self, charger_id: str, report: MeterReport) -> None:
        connector_id, transaction_id = report.connector_id, report.transaction_id
        energy, power = report.energy_wh, report.power_w
        at = max(ts for ts, _ in report.samples) if report.samples else None
        state = self.chargers.get(charger_id)
        known_at = state.connector(connector_id).meter_at if state is not None else None
        # The connector's live reading only moves forward in time: a backlog replays old samples.
        # A time ahead of ours (a charger's clock gone wrong, 2099) is booked with its samples but
        # is not the live reading, and an earlier one of those never hides the readings after it.
        ahead = iso_from_now(self.config.current.ocpp.clock_tolerance_s)
        if known_at is not None and known_at > ahead:
            known_at = None
        live = (at is not None and at <= ahead and (energy is not None or power is not None)
                and (known_at is None or at >= known_at))
        if at is not None and at > ahead:
            log.warning("charger=%s connector=%s: meter values stamped %s, ahead of our clock: booked, not live",
                        charger_id, connector_id, at)

        book_live = live and self.chargers.reading_due(charger_id, connector_id)

        def write(conn: sqlite3.Connection) -> float | None:
            booked, running = energy, None
            if transaction_id is not None and energy is not None:
                charge = q.charge(conn, transaction_id)
                if charge is not None and charge.charger_id == charger_id:
                    if self.energy_source is not None and at is not None:
                        booked = self.booked_energy(charger_id, connector_id, energy, at, charge.energy_source)
                    running = booked if charge.status in ("active", "stopping") else None
            q.add_meter_values(conn, charger_id, connector_id, transaction_id, report.samples, booked)
            if book_live:
                self.chargers.book_reading(conn, charger_id, connector_id, energy, power, at)
            return running

        running = await self.store.write(write, telemetry=True)
        if running is not None and transaction_id is not None:
            self._latest[transaction_id] = max(running, self._latest.get(transaction_id, running))
        if state is not None and live:
            self.chargers.reading(state, connector_id, energy, power, at, booked=book_live)

    async def check_open_charges(self, charger_id: str) -> None:
        """After a charger (re)connects: ask it about each charge the books have running on it, where
        its protocol can tell (2.0.1's GetTransactionStatus). A charge it no longer runs, with
        nothing about it left in its queue, ended while we could not hear it: it is completed on
        its last reading (stop reason `Other`). Messages still queued are waited for; a charger
        that cannot tell changes nothing."""
        try:
            await self._check_open_charges(charger_id)
        except Exception:  # a side task of the connection: never the connection's end
            log.exception("charger=%s: its open charges could not be checked", charger_id)

    async def _check_open_charges(self, charger_id: str) -> None:
        for _ in range(QUEUE_CHECKS):
            waiting = False
            for row in await self.store.read(q.named_by_charger, charger_id):
                state = self.chargers.get(charger_id)
                if state is None or state.link is None or state.registration != "accepted":
                    return
                try:
                    status = await state.link.charge_status(row["ocpp_transaction_id"])
                except DomainError as exc:
                    log.info("charger=%s: no answer on transaction %s: %s", charger_id, row["id"], exc.message)
                    return
                if status is None:
                    return
                if status.queued:
                    waiting = True
                elif status.ongoing is False:
                    await self._close_unheard(charger_id, row["id"])
            if not waiting:
                return
            await trio.sleep(QUEUE_RECHECK_S)  # its queue is replayed meanwhile, the Ended among it

    async def _close_unheard(self, charger_id: str, transaction_id: int) -> None:
        def write(conn: sqlite3.Connection) -> bool:
            row = q.get(conn, transaction_id)
            if row is None or row["status"] not in ("active", "stopping"):
                return False  # its end came in meanwhile
            self._stopped(conn, q.close_by_controller(conn, transaction_id, now_iso()))
            return True

        if await self.store.write(write):
            self._ended(transaction_id)
            self._changed(charger_id, transaction_id)
            log.warning("charger=%s transaction=%s: the charger no longer runs it and has no message about it;"
                        " closed by the controller with its last reading", charger_id, transaction_id)

    async def expire_pending_forever(self) -> None:
        """Mark remote starts that never became a charge as failed, after [ocpp]
        remote_start_timeout_s on the monotonic clock (a step of the wall clock neither cuts nor
        stretches it; a start pending from before a restart gets the whole timeout again)."""
        while True:
            timeout = self.config.current.ocpp.remote_start_timeout_s
            await trio.sleep(min(timeout / 4, 30))
            waiting = await self.store.read(q.pending_ids)
            overdue = [i for i in waiting if self._pending.age(i) >= timeout]
            if not overdue:
                continue
            try:
                expired = await self.store.write(self._expire, overdue)
            except StorageUnavailable as exc:  # the disk is full or read-only: try on the next round
                log.warning("cannot expire remote starts now: %s", exc)
                continue
            for transaction_id in overdue:
                self._pending.forget(transaction_id)
            for row in expired:
                log.info("transaction=%s remote start never began: failed", row["id"])
                self._changed(row["charger_id"], row["id"])

    def _expire(self, conn: sqlite3.Connection, transaction_ids: list[int]) -> list[sqlite3.Row]:
        rows = q.expire_pending(conn, transaction_ids)
        for row in rows:  # the upstream hears that the start it was waiting for did not happen
            insert_events(conn, self.events.start(row, accepted=False))
        return rows
