"""Reservations: a connector held for one id tag (and the cards of its parent) until a time.

The controller gives each reservation its id (the reservationId the charger gets), stores it
before asking the charger (ReserveNow), and keeps the charger's answer as its status: accepted,
or faulted, occupied, rejected, unavailable (refused: not in force). One in force (requested:
asked, answer on its way; accepted) ends as
- used: a StartTransaction on its connector names it, or comes from its tag or a tag with its
  parent (linked to that transaction; `Transactions.on_start` calls `usable` and `use`);
- cancelled: the operator cancelled it (CancelReservation);
- expired: its time passed. Timed on Trio's clock from the wall-clock expiry when it was made (or
  loaded after a restart), so a step of the wall clock neither ends it early nor keeps it forever.

While one is in force, the starts the controller sends for another id tag on that connector are
refused (`check`: API remote starts, card taps, public charging), and the connector shows it.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

import trio

from controller.authorization import Authorization
from controller.chargers import ChargerRegistry
from controller.errors import (
    AnswerLost,
    ChargerCallError,
    ChargerRejected,
    Conflict,
    ConnectorReserved,
    Invalid,
    NotFound,
    ReservationRefused,
    StorageUnavailable,
)
from controller.store import Store
from controller.store import reservations as q
from controller.timefmt import parse_iso, utcnow

log = logging.getLogger("evedge.reservations")

ANSWERS = {"Accepted": "accepted", "Faulted": "faulted", "Occupied": "occupied", "Rejected": "rejected",
           "Unavailable": "unavailable"}
"""A charger's answer to ReserveNow -> the reservation's status."""
RETRY_S = 30.0  # an expiry the disk could not store is tried again this much later


@dataclass
class Held:
    """A reservation in force, as the live picture keeps it."""

    id: int
    charger_id: str
    connector_id: int
    id_tag: str
    parent_id_tag: str | None
    deadline: float  # trio.current_time() at which it expires

    def admits(self, id_tag: str, parent_id_tag: str | None) -> bool:
        """Whether a start for `id_tag` (whose parent is `parent_id_tag`) may use it."""
        if id_tag and id_tag.casefold() == self.id_tag.casefold():
            return True
        return bool(self.parent_id_tag and parent_id_tag) and parent_id_tag.casefold() == self.parent_id_tag.casefold()


def _held(row: sqlite3.Row, deadline: float) -> Held:
    return Held(row["id"], row["charger_id"], row["connector_id"], row["id_tag"], row["parent_id_tag"], deadline)


class Reservations:
    """The one owner of the `reservations` rows."""

    def __init__(self, store: Store, chargers: ChargerRegistry, authorization: Authorization) -> None:
        self.store = store
        self.chargers = chargers
        self.authorization = authorization
        self.held: dict[int, Held] = {}
        self._wake = trio.Event()

    async def load(self) -> None:
        """After a restart: the reservations in force are timed again from their expiry."""
        for row in await self.store.read(q.holding):
            self._hold(row)

    # -- the live picture ------------------------------------------------------------------

    def _hold(self, row: sqlite3.Row) -> None:
        remaining = (parse_iso(row["expires_at"]) - utcnow()).total_seconds()
        self.held[row["id"]] = _held(row, trio.current_time() + remaining)
        state = self.chargers.get(row["charger_id"])
        if state is not None:
            state.connector(row["connector_id"]).reservation_id = row["id"]
        self._wake.set()

    def _release(self, reservation_id: int) -> None:
        held = self.held.pop(reservation_id, None)
        state = self.chargers.get(held.charger_id) if held is not None else None
        if state is not None and state.connector(held.connector_id).reservation_id == reservation_id:
            state.connector(held.connector_id).reservation_id = None

    def holder(self, charger_id: str, connector_id: int) -> Held | None:
        """The reservation in force on a connector, if any."""
        return next((h for h in self.held.values() if (h.charger_id, h.connector_id) == (charger_id, connector_id)),
                    None)

    def parent_of(self, id_tag: str) -> str | None:
        tag = self.authorization.get(id_tag) if id_tag else None
        return tag.parent_id_tag if tag is not None else None

    def check(self, charger_id: str, connector_id: int, id_tag: str | None) -> Held | None:
        """Raises ConnectorReserved when a reservation holds the connector for another tag
        (`id_tag` None: a start that no reservation admits, a public session's); returns the
        reservation the tag may use, if any."""
        held = self.holder(charger_id, connector_id)
        if held is None:
            return None
        if id_tag is None or not held.admits(id_tag, self.parent_of(id_tag)):
            raise ConnectorReserved(connector_id, held.id)
        return held

    def reserved_tag(self, charger_id: str, id_tag: str) -> bool:
        """Whether a reservation in force on this charger admits `id_tag` (its Authorize is accepted)."""
        parent = self.parent_of(id_tag)
        return any(h.charger_id == charger_id and h.admits(id_tag, parent) for h in self.held.values())

    # -- the operator's side ---------------------------------------------------------------

    async def reserve(self, charger_id: str, connector_id: int, id_tag: str, expires_at: str,
                      parent_id_tag: str | None = None) -> sqlite3.Row:
        """Store a reservation and send it; the stored row once the charger accepted.

        Raises ReservationRefused (stored with the charger's answer), ConnectorReserved (one in
        force already), Invalid (no such connector, expiry not in the future), the link's errors.
        """
        state = self.chargers.require(charger_id)
        if not state.accepts_connector(connector_id, charging=True):
            raise Invalid(f"connectorId: charger {charger_id} has no connector {connector_id}", "ConnectorNotValid")
        if parse_iso(expires_at) <= utcnow():
            raise Invalid(f"expiresAt: {expires_at} is not in the future")
        held = self.holder(charger_id, connector_id)
        if held is not None:
            raise Conflict(f"connector {connector_id} is reserved already (reservation {held.id}); cancel that"
                           " one first", "ConnectorReserved")
        link = self.chargers.online_link(charger_id)
        parent = parent_id_tag or self.parent_of(id_tag)
        row = await self.store.write(q.insert, charger_id, connector_id, id_tag, parent, expires_at)
        reservation_id = row["id"]
        self._hold(row)  # in force from now: the charger's StartTransaction may come before its answer
        try:
            answer = await link.reserve(reservation_id, connector_id, id_tag, expires_at, parent,
                                        self.authorization.token_type(id_tag))
        except AnswerLost:
            # the charger may hold it: in force (requested) until used, cancelled or expired
            log.warning("charger=%s reservation=%s: no answer to ReserveNow; kept until it expires",
                        charger_id, reservation_id)
            raise
        except Exception as exc:
            await self._end(reservation_id, "failed")
            if isinstance(exc, ChargerCallError):
                raise ChargerRejected(exc.message) from None
            raise
        status = ANSWERS.get(answer, "rejected") if isinstance(answer, str) else "rejected"
        if status != "accepted":
            await self._end(reservation_id, status)
            log.info("charger=%s reservation=%s refused: %s", charger_id, reservation_id, answer)
            raise ReservationRefused(reservation_id, str(answer))
        row = await self.store.write(q.settle, reservation_id, "accepted", ("requested",))
        log.info("charger=%s connector=%s reservation=%s for id_tag=%s until %s", charger_id, connector_id,
                 reservation_id, id_tag, expires_at)
        return row if row is not None else await self.get(reservation_id)  # used meanwhile

    async def cancel(self, charger_id: str, reservation_id: int) -> sqlite3.Row:
        """Cancel a reservation in force (CancelReservation). A charger that answers Rejected
        holds no reservation of that id: it is cancelled on the books all the same."""
        row = await self.get(reservation_id)
        if row["charger_id"] != charger_id:
            raise NotFound("Reservation", reservation_id)
        if row["status"] not in q.HOLDING:
            raise Conflict(f"reservation {reservation_id} is {row['status']}, not in force", "ReservationNotActive")
        try:
            accepted = await self.chargers.online_link(charger_id).cancel_reservation(reservation_id)
        except ChargerCallError as exc:
            raise ChargerRejected(exc.message) from None
        if not accepted:
            log.info("charger=%s holds no reservation %s (CancelReservation Rejected)", charger_id, reservation_id)
        ended = await self._end(reservation_id, "cancelled")
        log.info("charger=%s reservation=%s cancelled", charger_id, reservation_id)
        return ended or await self.get(reservation_id)

    async def _end(self, reservation_id: int, status: str) -> sqlite3.Row | None:
        row = await self.store.write(q.settle, reservation_id, status)
        self._release(reservation_id)
        return row

    async def get(self, reservation_id: int) -> sqlite3.Row:
        row = await self.store.read(q.get, reservation_id)
        if row is None:
            raise NotFound("Reservation", reservation_id)
        return row

    async def page(self, charger_id: str | None, status: str | None, limit: int,
                   offset: int) -> tuple[list[sqlite3.Row], int]:
        """One page of reservations, newest first, and how many match in all."""
        return await self.store.read(q.page, charger_id, status, limit, offset)

    # -- a charge that uses one (inside the write that books the start) ----------------------

    def usable(self, charger_id: str, connector_id: int, id_tag: str, parent_id_tag: str | None,
               reservation_id: int | None) -> Held | None:
        """The reservation a start uses: the one it names (this charger's), else the one on its
        connector that admits its tag. A plain dict read, safe in the store's writer thread."""
        held = self.held.get(reservation_id) if reservation_id is not None else None
        if held is not None and held.charger_id == charger_id:
            return held
        held = self.holder(charger_id, connector_id)
        return held if held is not None and held.admits(id_tag, parent_id_tag) else None

    @staticmethod
    def use(conn: sqlite3.Connection, held: Held, transaction_id: int) -> bool:
        """Mark it used by the transaction (in the store's writer thread); then `used` in Trio."""
        return q.settle(conn, held.id, "used", transaction_id=transaction_id) is not None

    def used(self, held: Held, transaction_id: int) -> None:
        self._release(held.id)
        log.info("charger=%s reservation=%s used by transaction %s", held.charger_id, held.id, transaction_id)

    # -- expiry ------------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Expire reservations as their time comes."""
        task_status.started()
        while True:
            next_at = min((h.deadline for h in self.held.values()), default=float("inf"))
            with trio.move_on_at(next_at):
                await self._wake.wait()
            self._wake = trio.Event()
            now = trio.current_time()
            for held in [h for h in self.held.values() if h.deadline <= now]:
                try:
                    ended = await self._end(held.id, "expired")
                except StorageUnavailable as exc:  # the disk is full or read-only: try again later
                    log.warning("reservation=%s: cannot store its expiry now: %s", held.id, exc)
                    held.deadline = trio.current_time() + RETRY_S
                    continue
                if ended is not None:
                    log.info("charger=%s connector=%s reservation=%s expired", held.charger_id,
                             held.connector_id, held.id)
