"""A public session's life: opening it, its timers, the worker, and its charge at the charger.

Every status change is `statuses.move`, a conditional UPDATE in SQLite, so concurrent paths (the
driver's stop, the charger's StopTransaction, a timer) never undo one another. The charger side is
hooked into the transaction lifecycle: `transaction_changed` runs inside the same store write as
StartTransaction / StopTransaction, so the transaction and the session change commit together.
Payment calls (payments.py) happen after the commit, from the worker, and are idempotent, so after
a crash they are simply repeated.

Timers (payment expiry, abandonment, forgetting the token) are Trio deadlines computed from the
stored wall-clock timestamps when a session is loaded or changed, so they survive restarts and can
be driven by a MockClock in tests.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from controller.elapsed import Ages
from controller.errors import (
    AnswerLost, ChargerOffline, ChargerRejected, Conflict, ConnectorNotReady, ConnectorReserved, DomainError, Invalid,
    NotFound, NotInTransaction, RateLimited, StorageUnavailable,
)
from controller.public_charging import money, statuses
from controller.public_charging.payments import Payments, backoff_s, hold_to_release
from controller.public_charging.providers import PaymentProvider
from controller.public_charging.statuses import may
from controller.public_charging.tokens import new_id_tag, new_token, new_uid, token_hash
from controller.store import public_sessions as q
from controller.timefmt import now_iso

if TYPE_CHECKING:
    from controller.chargers import ChargerRegistry
    from controller.config import ChargerConfig, PublicChargingSection
    from controller.store import Store
    from controller.transactions import Transactions

log = logging.getLogger("evedge.public_charging")

WORKER_TICK_S = 0.25
CONNECTOR_POLL_S = 0.5
START_RETRY_S = 1.0
SESSION_CAP_RETRY_AFTER_S = 600
SESSION_CAP_WINDOW_S = 3600.0  # max_sessions_per_charger_per_hour counts the sessions of this long, on Trio's clock
"""What a driver refused by the hourly per-charger cap is told to wait: the cap frees up as the
hour slides, so there is no exact moment to name."""


@dataclass(frozen=True)
class Deadline:
    """A move the clock makes: `event` once the configured seconds have passed since `anchor`."""

    anchor: str  # the stored timestamp it counts from
    seconds: Callable[[PublicChargingSection], float]
    failure_reason: str
    outcome: str  # for the log


DEADLINES: dict[str, Deadline] = {
    "expire": Deadline("created_at", lambda s: s.session_expiry_s, "payment_not_completed", "expired unpaid"),
    "abandon": Deadline("authorized_at", lambda s: s.start_timeout_s, "charging_not_started",
                        "abandoned: paid but charging never started"),
}
FORGET = "forget"
"""The timer of an ended session's token (token_ttl_s after the end), which is then forgotten."""


RESOLUTIONS: dict[str, str] = {statuses.target(event): event for event in statuses.OPERATOR_EVENTS}
"""The statuses the operator may set through the keyed API, and the move each one is."""


@dataclass
class Timer:
    deadline: float
    kind: str  # an event of DEADLINES, or FORGET


Step = Callable[[sqlite3.Row], Awaitable[float | None]]
"""A worker step for one session; returns the seconds to wait before it is tried again, or None."""


class Lifecycle:
    """The state machine at work: it opens sessions, keeps their timers, runs the worker that
    starts paid sessions and settles finished ones, and applies the charger's and people's moves."""

    def __init__(self, section: PublicChargingSection, store: Store, chargers: ChargerRegistry,
                 transactions: Transactions, provider: PaymentProvider) -> None:
        self.section = section
        self.store = store
        self.chargers = chargers
        self.transactions = transactions
        self.payments = Payments(store, provider, self.move)
        self.busy: set[int] = set()
        """Sessions a worker step runs for; the worker leaves them alone meanwhile."""
        self._timers: dict[int, Timer] = {}
        self._anchors = Ages()  # (session, anchor) -> when this process first saw that anchor
        # per charger: when its recent sessions were created (Trio's clock: no wall-clock step moves
        # the cap; a restart forgets them)
        self._created: dict[str, deque[float]] = {}
        self._not_before: dict[int, float] = {}  # the worker waits until then (backoff, polling)
        self._dirty = True
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None

    # -- running ----------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for row in await self.store.read(q.needing_attention):
                    self._schedule(row)
                log.info("public charging: %d session(s) to continue, provider %s",
                         len(self._timers), self.payments.provider.name)
                task_status.started()
                await self._worker()
        finally:
            with trio.CancelScope(shield=True):
                await self.payments.aclose()

    def poke(self) -> None:
        self._dirty = True
        self._wake.set()

    async def move(self, session_id: int, event: str, **fields: object) -> sqlite3.Row | None:
        """Apply `event` (statuses.TRANSITIONS) and retime the session; None if its status did
        not allow the event (another path moved it first)."""
        row = await self.store.write(statuses.move, session_id, event, **fields)
        if row is not None:
            self._schedule(row)
        self.poke()
        return row

    def _remaining(self, sid: int, anchor: str | None, seconds: float) -> float:
        """Seconds left of `seconds` since `anchor`, on the monotonic clock from when this process
        first saw that anchor (just after writing it; after a restart, at the restart): a step of
        the wall clock never cuts a timer, a restart only lengthens one."""
        if anchor is None:
            return seconds
        return seconds - self._anchors.age((sid, anchor))

    def _schedule(self, row: sqlite3.Row) -> None:
        """(Re)compute the session's timer from its stored state."""
        sid, status = row["id"], row["status"]
        kind = next((event for event in DEADLINES if may(status, event)), None)
        if kind is not None:
            anchor, seconds = row[DEADLINES[kind].anchor], DEADLINES[kind].seconds(self.section)
        elif status in q.FINAL and row["token_hash"] is not None:
            kind, anchor, seconds = FORGET, row["ended_at"], self.section.token_ttl_s
        else:
            self._timers.pop(sid, None)
            self._anchors.forget_all(lambda key: key[0] == sid)
            return
        self._timers[sid] = Timer(trio.current_time() + self._remaining(sid, anchor, seconds), kind)

    async def _worker(self) -> None:
        while True:
            next_at = min((t.deadline for t in self._timers.values()), default=float("inf"))
            with trio.move_on_at(min(next_at, trio.current_time() + WORKER_TICK_S)):
                await self._wake.wait()
            self._wake = trio.Event()
            now = trio.current_time()
            for sid, timer in list(self._timers.items()):
                if timer.deadline <= now:
                    del self._timers[sid]
                    try:
                        await self._timer_fired(sid, timer.kind)
                    except StorageUnavailable as exc:  # disk full or read-only: fire again later
                        log.warning("public session %s: %s postponed: %s", sid, timer.kind, exc)
                        self._timers.setdefault(sid, Timer(now + backoff_s(0), timer.kind))
            if self._dirty or any(at <= now for at in self._not_before.values()):
                self._dirty = False
                await self._do_work()

    async def _timer_fired(self, sid: int, kind: str) -> None:
        if kind == FORGET:
            await self.store.write(q.update, sid, None, token_hash=None)
            return
        deadline = DEADLINES[kind]
        row = await self.move(sid, kind, failure_reason=deadline.failure_reason)
        if row is not None:
            log.info("public session %s %s", sid, deadline.outcome)
            return
        row = await self.store.read(q.get, sid)  # moved on meanwhile: time it from where it is
        if row is not None:
            self._schedule(row)

    async def _do_work(self) -> None:
        """Start paid sessions whose connector is ready, capture settled ones, release holds."""
        now = trio.current_time()
        for sid in [sid for sid, at in self._not_before.items() if at <= now]:
            del self._not_before[sid]
        for row in await self.store.read(q.needing_attention):
            sid, status = row["id"], row["status"]
            if sid in self.busy or sid in self._not_before:
                continue
            if may(status, "start"):
                if not self._connector_ready(row):
                    self._not_before[sid] = now + CONNECTOR_POLL_S  # wait for the car to be plugged in
                    continue
                self._spawn(self._start_charging, row)
            elif may(status, "capture"):
                self._spawn(self.payments.settle, row)
            elif hold_to_release(row):
                self._spawn(self.payments.release, row)

    def _connector_ready(self, row: sqlite3.Row) -> bool:
        state = self.chargers.get(row["charger_id"])
        return state is not None and state.online and state.connector(row["connector_id"]).ready_to_start

    def _spawn(self, step: Step, row: sqlite3.Row) -> None:
        sid = row["id"]
        self.busy.add(sid)

        async def run() -> None:
            try:
                wait_s = await step(row)
            except Exception:
                log.exception("public session %s: %s failed", sid, step.__name__)
                wait_s = backoff_s(row["capture_attempts"])
            finally:
                self.busy.discard(sid)
            if wait_s is not None:
                self._not_before[sid] = trio.current_time() + wait_s

        assert self._nursery is not None
        self._nursery.start_soon(run)

    # -- opening a session ------------------------------------------------------------------

    async def open(self, cfg: ChargerConfig, connector_id: int, email: str | None) -> tuple[str, sqlite3.Row]:
        """A new `created` session on a connector that can take a charge: its token (which
        exists only here and with the driver) and its row."""
        pricing = cfg.pricing
        assert pricing is not None
        state = self.chargers.get(cfg.id)
        if state is None or not state.online:
            raise ChargerOffline(cfg.id, "the charger is offline")
        if not 1 <= connector_id <= cfg.connectors:
            raise Invalid(f"the charger has no connector {connector_id}", code="ConnectorNotValid")
        connector = state.connector(connector_id)
        if not connector.can_start:
            raise Conflict(f"connector {connector_id} is {connector.status or 'in an unknown state'}",
                           code="ConnectorUnavailable")
        self.transactions.check_reservation(cfg.id, connector_id, None)  # held for a driver's card
        token = new_token()
        fields = {
            "uid": new_uid(), "token_hash": token_hash(token), "status": "created", "charger_id": cfg.id,
            "connector_id": connector_id, "id_tag": new_id_tag(), "driver_email": email,
            "currency": pricing.currency, "price_per_kwh": pricing.price_per_kwh,
            "start_fee": pricing.start_fee, "tax_rate": pricing.tax_rate,
            "amount_authorized": pricing.amount_authorized, "provider": self.payments.provider.name,
        }

        def insert(conn: sqlite3.Connection) -> sqlite3.Row:
            # checked in the write itself, so two drivers cannot both take the connector
            if q.open_on_connector(conn, cfg.id, connector_id):
                raise Conflict(f"connector {connector_id} is in use", code="ConnectorUnavailable")
            return q.insert(conn, fields)

        now = trio.current_time()
        recent = self._created.setdefault(cfg.id, deque())
        while recent and recent[0] <= now - SESSION_CAP_WINDOW_S:
            recent.popleft()
        if len(recent) >= self.section.max_sessions_per_charger_per_hour:
            raise RateLimited("too many sessions on this charger; try again later", code="TooManySessions",
                              retry_after_s=SESSION_CAP_RETRY_AFTER_S)
        recent.append(now)  # counted before the write: two drivers at once cannot both pass the cap
        try:
            row = await self.store.write(insert)
        except BaseException:
            recent.remove(now)
            raise
        self._schedule(row)
        return token, row

    async def get(self, session_id: int) -> sqlite3.Row:
        row = await self.store.read(q.get, session_id)
        if row is None:
            raise NotFound("Session", session_id, f"public session {session_id} not found")
        return row

    # -- the charge at the charger ----------------------------------------------------------

    async def _start_charging(self, row: sqlite3.Row) -> float | None:
        sid = row["id"]
        row = await self.move(sid, "start")
        if row is None:
            return None
        try:
            await self.transactions.remote_start(row["charger_id"], row["connector_id"], row["id_tag"], mode="remote")
        except AnswerLost as exc:
            # sent, answer lost: the charger may be starting; its StartTransaction or the
            # abandonment timer decides (a second remote start could start a second charge)
            log.warning("public session %s: no answer to the remote start (%s)", sid, exc.code)
            return None
        except (ChargerOffline, ConnectorNotReady, ConnectorReserved):
            # not sent: wait for the connector again, until the abandonment timer
            await self.move(sid, "start_not_sent")
            return START_RETRY_S
        except DomainError as exc:
            await self.move(sid, "start_rejected", failure_reason="charger_rejected")
            log.info("public session %s: charger refused the start (%s)", sid, exc.code)
            return None
        log.info("public session %s: remote start accepted", sid)
        return None

    def transaction_changed(self, conn: sqlite3.Connection, kind: str, txn: sqlite3.Row) -> sqlite3.Row | None:
        """Move the session a StartTransaction / StopTransaction belongs to (inside that
        transaction's store write); the session's row, or None for a charge of no session."""
        if kind == "start":
            row = q.by_id_tag(conn, txn["id_tag"], statuses.sources("started"))
            if row is None:
                return None
            row = statuses.move(conn, row["id"], "started", transaction_id=txn["id"], meter_start=txn["meter_start"],
                                charging_started_at=txn["start_time"] or now_iso())
        elif kind == "stop":
            row = q.by_transaction(conn, txn["id"])
            if row is None:
                return None
            if may(row["status"], "stopped"):
                energy = money.delivered_wh(row["meter_start"], txn["meter_stop"])
                row = statuses.move(conn, row["id"], "stopped", meter_stop=txn["meter_stop"], energy_wh=energy,
                                    cost_amount=money.final_amount(energy, money.Price.of_session(row)),
                                    completed_at=txn["stop_time"] or now_iso())
        else:
            return None
        self.store.after_commit(self._changed)  # the worker looks once the row can be read
        return row

    def _changed(self) -> None:
        self._dirty = True  # the worker's next tick reads the sessions (store's writer thread: a plain flag)

    async def stop(self, row: sqlite3.Row) -> sqlite3.Row:
        """Ask the charger to stop the session's charge; a charge already stopping or over is
        left as it is."""
        if not may(row["status"], "stop"):
            if row["transaction_id"] is not None:
                return row  # already stopping or stopped: nothing to do
            raise Conflict(f"the session is {row['status']}, not charging", code="NotCharging")
        try:
            await self.transactions.remote_stop(row["transaction_id"])
        except StorageUnavailable:
            raise  # 503 with Retry-After: the driver tries again
        except NotInTransaction:
            return await self.get(row["id"])  # the charger stopped first
        except DomainError as exc:
            raise ChargerRejected("the charger did not accept the stop; it may be offline",
                                  code="ChargerRefused") from exc
        return await self.move(row["id"], "stop") or await self.get(row["id"])

    async def cancel(self, row: sqlite3.Row) -> sqlite3.Row:
        """End a session before it charges; the worker then releases its hold."""
        changed = await self.move(row["id"], "cancel", failure_reason="cancelled")
        if changed is None:
            raise Conflict(f"the session is {row['status']} and can no longer be cancelled", code="NotCancellable")
        log.info("public session %s cancelled by the driver", row["id"])
        return changed

    # -- the operator's moves ---------------------------------------------------------------

    async def resolve(self, session_id: int, status: str) -> sqlite3.Row:
        """The operator's `status` for a session the controller cannot finish alone."""
        event = RESOLUTIONS.get(status)
        if event is None:
            raise Invalid(f"body field 'status': one of {sorted(RESOLUTIONS)}")
        fields: dict[str, object] = {}
        if event == "retry_capture":
            fields.update(capture_attempts=0, ended_at=None)
        changed = await self.move(session_id, event, **fields)
        if changed is None:
            row = await self.get(session_id)
            raise Conflict(f"session {session_id} is {row['status']}; "
                           f"{status} needs one of {', '.join(statuses.sources(event))}", code="InvalidTransition")
        self._not_before.pop(session_id, None)  # a retried capture goes at once
        return changed
