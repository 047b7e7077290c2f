"""Public (pay-by-phone) charging sessions: the lifecycle, its timers and the payment calls.

created -> authorized -> starting -> charging -> stopping -> settling -> captured | no_charge,
or expired, abandoned, failed, capture_failed, requires_review; refunded / written_off by an
operator. docs/public-charging.md has the whole picture.

Every state change is a conditional UPDATE in SQLite (only from the states it may come from),
so concurrent paths (the driver's stop, the charger's StopTransaction, a timer) never undo one
another. The charger side is hooked into the transaction lifecycle: `transaction_changed` runs
inside the same store write as StartTransaction / StopTransaction, so the transaction and the
session change commit together. Payment calls happen after the commit, from the worker, and are
idempotent (keys derived from the session's uid), so after a crash they are simply repeated.

Timers (payment expiry, abandonment, token expiry) are Trio deadlines computed from the stored
wall-clock timestamps when the session is loaded or changed, so they survive restarts and can
be driven by a MockClock in tests.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import trio

from controller.errors import (
    AnswerLost, ChargerOffline, ChargerRejected, Conflict, ConnectorNotReady, DomainError, Invalid, NotFound,
    NotInTransaction, ProviderUnavailable, RateLimited, StorageUnavailable,
)
from controller.public_charging import money
from controller.public_charging.providers import (
    Hold, PaymentError, PaymentProvider, PaymentUnavailable, make_provider,
)
from controller.store import public_sessions as q
from controller.timefmt import iso, now_iso, parse_iso, utcnow

if TYPE_CHECKING:
    from controller.chargers import ChargerRegistry
    from controller.config import ChargerConfig, Config
    from controller.store import Store
    from controller.transactions import Transactions

log = logging.getLogger("evedge.public_charging")

CANCELLABLE = ("created", "authorized", "starting")
CAPTURE_ATTEMPTS = 5
RETRY_BACKOFF_S = (5.0, 15.0, 60.0, 300.0)
WORKER_TICK_S = 0.25
CONNECTOR_POLL_S = 0.5
PROVIDER_UNAVAILABLE = "the payment provider is not available; try again"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """256 random bits, URL-safe."""
    return "pcs_" + secrets.token_urlsafe(32)


def new_id_tag() -> str:
    """A per-session OCPP id tag (20 characters, the CiString20 limit)."""
    return "PC" + secrets.token_hex(9).upper()


def price_of(row: sqlite3.Row) -> money.Price:
    return money.Price(row["currency"], row["price_per_kwh"], row["start_fee"], row["tax_rate"],
                       row["amount_authorized"])


@dataclass
class Timer:
    deadline: float
    kind: str  # expire | abandon | forget


class PublicCharging:
    def __init__(self, config: Config, store: Store, chargers: ChargerRegistry, transactions: Transactions,
                 provider: PaymentProvider | None = None) -> None:
        self.config = config
        self.section = config.public_charging
        self.store = store
        self.chargers = chargers
        self.transactions = transactions
        self.provider = provider or make_provider(self.section)
        self.by_code: dict[str, ChargerConfig] = {
            c.public_code.upper(): c for c in config.chargers if c.public_code is not None
        }
        self._timers: dict[int, Timer] = {}
        self._retry_at: dict[int, float] = {}
        self._busy: set[int] = set()
        self._dirty = True
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None

    @property
    def enabled(self) -> bool:
        return self.section.enabled

    # -- running ----------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for row in await self.store.read(q.needing_attention):
                    self._schedule(row)
                log.info("public charging: %d session(s) to continue, provider %s",
                         len(self._timers), self.provider.name)
                task_status.started()
                await self._worker()
        finally:
            with trio.CancelScope(shield=True):
                await self.provider.aclose()

    def poke(self) -> None:
        self._dirty = True
        self._wake.set()

    def _remaining(self, anchor: str | None, seconds: float) -> float:
        if anchor is None:
            return seconds
        elapsed = (utcnow() - parse_iso(anchor)).total_seconds()
        return seconds - max(0.0, elapsed)

    def _schedule(self, row: sqlite3.Row) -> None:
        """(Re)compute the session's timer from its stored state."""
        sid, status = row["id"], row["status"]
        now = trio.current_time()
        if status == "created":
            timer = Timer(now + self._remaining(row["created_at"], self.section.session_expiry_s), "expire")
        elif status in ("authorized", "starting"):
            timer = Timer(now + self._remaining(row["authorized_at"], self.section.start_timeout_s), "abandon")
        elif status in q.FINAL and row["token_hash"] is not None:
            timer = Timer(now + self._remaining(row["ended_at"], self.section.token_ttl_s), "forget")
        else:
            self._timers.pop(sid, None)
            return
        self._timers[sid] = timer

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
                        self._timers.setdefault(sid, Timer(now + RETRY_BACKOFF_S[0], timer.kind))
            if self._dirty or any(at <= now for at in self._retry_at.values()):
                self._dirty = False
                await self._do_work()

    async def _timer_fired(self, sid: int, kind: str) -> None:
        if kind == "expire":
            row = await self.store.write(q.update, sid, ("created",), status="expired",
                                         failure_reason="payment_not_completed")
            if row is not None:
                log.info("public session %s expired unpaid", sid)
        elif kind == "abandon":
            row = await self.store.write(q.update, sid, ("authorized", "starting"), status="abandoned",
                                         failure_reason="charging_not_started")
            if row is not None:
                log.info("public session %s abandoned: paid but charging never started", sid)
        else:
            row = await self.store.write(q.update, sid, None, token_hash=None)
            return
        if row is None:
            row = await self.store.read(q.get, sid)
        self._after_change(row)

    def _after_change(self, row: sqlite3.Row | None) -> None:
        if row is not None:
            self._schedule(row)
        self.poke()

    async def _do_work(self) -> None:
        """Start paid sessions whose connector is ready, capture settled ones, release holds."""
        now = trio.current_time()
        for sid in [sid for sid, at in self._retry_at.items() if at <= now]:
            del self._retry_at[sid]
        for row in await self.store.read(q.needing_attention):
            sid = row["id"]
            if sid in self._busy or sid in self._retry_at:
                continue
            status = row["status"]
            if status == "authorized":
                state = self.chargers.get(row["charger_id"])
                if state is None or not state.online or not state.connector(row["connector_id"]).ready_to_start:
                    self._retry_at[sid] = now + CONNECTOR_POLL_S  # wait for the car to be plugged in
                    continue
                self._spawn(self._start_charging, row)
            elif status == "settling":
                self._spawn(self._settle, row)
            elif status in q.RELEASE and not row["hold_released"] and row["payment_id"]:
                self._spawn(self._release, row)

    def _spawn(self, fn, row: sqlite3.Row) -> None:
        sid = row["id"]
        self._busy.add(sid)

        async def run() -> None:
            try:
                await fn(row)
            except Exception:
                log.exception("public session %s: %s failed", sid, fn.__name__)
                self._retry_later(sid, row["capture_attempts"])
            finally:
                self._busy.discard(sid)

        assert self._nursery is not None
        self._nursery.start_soon(run)

    def _retry_later(self, sid: int, attempts: int) -> None:
        self._retry_at[sid] = trio.current_time() + RETRY_BACKOFF_S[min(attempts, len(RETRY_BACKOFF_S) - 1)]

    # -- payment steps -----------------------------------------------------------------------

    async def _start_charging(self, row: sqlite3.Row) -> None:
        sid = row["id"]
        row = await self.store.write(q.update, sid, ("authorized",), status="starting")
        if row is None:
            return
        try:
            await self.transactions.remote_start(row["charger_id"], row["connector_id"], row["id_tag"], mode="remote")
        except AnswerLost as exc:
            # sent, answer lost: the charger may be starting; its StartTransaction or the
            # abandonment timer decides (a second RemoteStart could start a second charge)
            log.warning("public session %s: no answer to RemoteStartTransaction (%s)", sid, exc.code)
        except (ChargerOffline, ConnectorNotReady):
            # not sent: wait for the connector again, until the abandonment timer
            await self.store.write(q.update, sid, ("starting",), status="authorized")
            self._retry_at[sid] = trio.current_time() + 1.0
        except DomainError as exc:
            changed = await self.store.write(q.update, sid, ("starting",), status="failed",
                                             failure_reason="charger_rejected")
            self._after_change(changed)
            log.info("public session %s: charger refused the start (%s)", sid, exc.code)
            return
        log.info("public session %s: RemoteStartTransaction accepted", sid)

    async def _settle(self, row: sqlite3.Row) -> None:
        sid = row["id"]
        amount = row["cost_amount"] or 0
        if amount <= 0:
            await self.provider.release(row["payment_id"], f"evedge-{row['uid']}-release")
            changed = await self.store.write(q.update, sid, ("settling",), status="no_charge", amount_captured=0,
                                             tax_amount=0, hold_released=1)
            self._after_change(changed)
            return
        try:
            captured = await self.provider.capture(row["payment_id"], amount, f"evedge-{row['uid']}-capture")
        except PaymentUnavailable as exc:
            attempts = row["capture_attempts"] + 1
            if attempts >= CAPTURE_ATTEMPTS:
                changed = await self.store.write(q.update, sid, ("settling",), status="requires_review",
                                                 capture_attempts=attempts, failure_reason="provider_unreachable")
                self._after_change(changed)
            else:
                await self.store.write(q.update, sid, ("settling",), capture_attempts=attempts)
                self._retry_later(sid, attempts - 1)
            log.warning("public session %s: capture attempt %d failed: %s", sid, attempts, exc)
            return
        except PaymentError as exc:
            changed = await self.store.write(q.update, sid, ("settling",), status="capture_failed",
                                             failure_reason=exc.code)
            self._after_change(changed)
            log.warning("public session %s: capture refused: %s", sid, exc)
            return
        changed = await self.store.write(
            q.update, sid, ("settling",), status="captured",
            amount_captured=captured, tax_amount=money.tax_included(captured, row["tax_rate"]),
            captured_at=now_iso(), hold_released=1,
        )
        self._retry_at.pop(sid, None)
        self._after_change(changed)
        log.info("public session %s: captured %d %s", sid, captured, row["currency"])

    async def _release(self, row: sqlite3.Row) -> None:
        sid = row["id"]
        try:
            await self.provider.release(row["payment_id"], f"evedge-{row['uid']}-release")
        except PaymentUnavailable:
            self._retry_later(sid, 1)
            return
        except PaymentError as exc:
            log.error("public session %s: the provider refused to release the hold: %s", sid, exc)
        await self.store.write(q.update, sid, None, hold_released=1)
        self._retry_at.pop(sid, None)

    # -- the charger side (runs inside the transaction's store write) -----------------------

    def transaction_changed(self, conn: sqlite3.Connection, kind: str, txn: sqlite3.Row) -> dict | None:
        """Move the session a StartTransaction / StopTransaction belongs to; return its payment object."""
        if kind == "start":
            row = q.by_id_tag(conn, txn["id_tag"], ("authorized", "starting"))
            if row is None:
                return None
            row = q.update(conn, row["id"], ("authorized", "starting"), status="charging",
                           transaction_id=txn["id"], meter_start=txn["meter_start"],
                           charging_started_at=txn["start_time"] or now_iso())
        elif kind == "stop":
            row = q.by_transaction(conn, txn["id"])
            if row is None:
                return None
            if row["status"] in ("charging", "stopping"):
                energy = money.delivered_wh(row["meter_start"], txn["meter_stop"])
                row = q.update(conn, row["id"], ("charging", "stopping"), status="settling",
                               meter_stop=txn["meter_stop"], energy_wh=energy,
                               cost_amount=money.final_amount(energy, price_of(row)),
                               completed_at=txn["stop_time"] or now_iso())
        else:
            return None
        self._dirty = True  # the worker picks the change up after the commit
        return self.payment_object(row) if row is not None else None

    def payment_object(self, row: sqlite3.Row) -> dict:
        """The `payment` object of upstream notifications for this session's charge."""
        payment = {
            "provider": row["provider"],
            "payment_id": row["payment_id"],
            "currency": row["currency"],
            "amount_authorized": row["amount_authorized"],
            "session_status": row["status"],
        }
        if row["cost_amount"] is not None:
            payment["amount"] = row["cost_amount"]
        return payment

    # -- the driver's API ---------------------------------------------------------------------

    def _charger_by_code(self, code: str) -> ChargerConfig:
        cfg = self.by_code.get(code.strip().upper()) if self.enabled else None
        if cfg is None:
            raise NotFound("Charger", code, "no public charger with this code")
        return cfg

    def charger_info(self, code: str) -> dict:
        cfg = self._charger_by_code(code)
        state = self.chargers.get(cfg.id)
        assert cfg.pricing is not None
        return {
            "public_code": cfg.public_code,
            "name": cfg.name or cfg.id,
            "online": bool(state and state.online),
            "connectors": [
                {"connector_id": n, "status": state.connector(n).status if state else None}
                for n in range(1, cfg.connectors + 1)
            ],
            "pricing": {"currency": cfg.pricing.currency, "price_per_kwh": cfg.pricing.price_per_kwh,
                        "start_fee": cfg.pricing.start_fee},
            "amount_authorized": cfg.pricing.amount_authorized,
            "payment_provider": self.provider.name,
        }

    async def create(self, code: str, connector_id: int, email: str | None) -> tuple[str, dict, dict]:
        cfg = self._charger_by_code(code)
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
        since = iso(utcnow() - timedelta(hours=1))
        token = new_token()
        uid = secrets.token_hex(12)

        def insert(conn: sqlite3.Connection) -> sqlite3.Row:
            if q.open_on_connector(conn, cfg.id, connector_id):
                raise Conflict(f"connector {connector_id} is in use", code="ConnectorUnavailable")
            if q.count_created_since(conn, cfg.id, since) >= self.section.max_sessions_per_charger_per_hour:
                raise RateLimited("too many sessions on this charger; try again later", code="TooManySessions",
                                  retry_after_s=600)
            return q.insert(conn, {
                "uid": uid, "token_hash": token_hash(token), "status": "created", "charger_id": cfg.id,
                "connector_id": connector_id, "id_tag": new_id_tag(), "driver_email": email,
                "currency": pricing.currency, "price_per_kwh": pricing.price_per_kwh,
                "start_fee": pricing.start_fee, "tax_rate": pricing.tax_rate,
                "amount_authorized": pricing.amount_authorized, "provider": self.provider.name,
            })

        row = await self.store.write(insert)
        sid = row["id"]
        self._schedule(row)
        try:
            hold = await self.provider.create_hold(
                pricing.amount_authorized, pricing.currency, f"evedge-{uid}-hold",
                {"evedge_session": uid, "charger": cfg.id, "connector": str(connector_id)},
            )
        except (PaymentError, PaymentUnavailable) as exc:
            changed = await self.store.write(q.update, sid, ("created",), status="failed",
                                             failure_reason="payment_provider_error")
            self._after_change(changed)
            log.error("public session %s: could not create the hold: %s", sid, exc)
            raise ProviderUnavailable(PROVIDER_UNAVAILABLE, code="PaymentProviderError") from exc
        row = await self.store.write(q.update, sid, None, payment_id=hold.payment_id, client_secret=hold.client_secret)
        payment = self.provider.client_context(hold)
        if hold.state == "authorized":  # provider `none`: nothing to pay, start at once
            row = await self._authorized(row) or row
        log.info("public session %s created on %s/%s (%s)", sid, cfg.id, connector_id, row["status"])
        return token, await self.data(row), payment

    async def _authorized(self, row: sqlite3.Row) -> sqlite3.Row | None:
        changed = await self.store.write(q.update, row["id"], ("created",), status="authorized",
                                         authorized_at=now_iso(), failure_reason=None)
        self._after_change(changed)
        return changed

    async def _by_token(self, token: str) -> sqlite3.Row:
        if not self.enabled or not token or len(token) > 100:
            raise NotFound("Session", "token", "unknown or expired session token")
        row = await self.store.read(q.by_token_hash, token_hash(token))
        if row is None:
            raise NotFound("Session", "token", "unknown or expired session token")
        if row["ended_at"] and (utcnow() - parse_iso(row["ended_at"])).total_seconds() > self.section.token_ttl_s:
            raise NotFound("Session", "token", "unknown or expired session token")
        return row

    async def get(self, token: str) -> tuple[dict, dict | None]:
        row = await self._by_token(token)
        return await self.data(row), self._payment_context(row)

    def _payment_context(self, row: sqlite3.Row) -> dict | None:
        if row["status"] != "created" or row["payment_id"] is None:
            return None
        return self.provider.client_context(Hold(row["payment_id"], "pending", row["client_secret"]))

    async def confirm(self, token: str) -> dict:
        row = await self._by_token(token)
        if row["status"] == "created" and row["payment_id"]:
            try:
                hold = await self.provider.confirm(row["payment_id"])
            except (PaymentError, PaymentUnavailable) as exc:
                log.warning("public session %s: confirm failed: %s", row["id"], exc)
                raise ProviderUnavailable(PROVIDER_UNAVAILABLE, code="PaymentProviderError") from exc
            if hold.state == "authorized":
                row = await self._authorized(row) or await self.store.read(q.get, row["id"])
            elif hold.state == "canceled":
                changed = await self.store.write(q.update, row["id"], ("created",), status="failed",
                                                 failure_reason="payment_canceled", hold_released=1)
                self._after_change(changed)
                row = changed or row
            elif hold.decline:
                row = await self.store.write(q.update, row["id"], ("created",), failure_reason=hold.decline) or row
        return await self.data(row)

    async def stop(self, token: str) -> dict:
        row = await self._by_token(token)
        if row["status"] in ("stopping", "settling") or row["status"] in q.FINAL and row["transaction_id"]:
            return await self.data(row)  # already stopping or stopped: nothing to do
        if row["status"] != "charging":
            raise Conflict(f"the session is {row['status']}, not charging", code="NotCharging")
        try:
            await self.transactions.remote_stop(row["transaction_id"])
        except StorageUnavailable:
            raise  # 503 with Retry-After: the driver tries again
        except NotInTransaction:
            return await self.data(await self.store.read(q.get, row["id"]))  # the charger stopped first
        except DomainError as exc:
            raise ChargerRejected("the charger did not accept the stop; it may be offline",
                                  code="ChargerRefused") from exc
        changed = await self.store.write(q.update, row["id"], ("charging",), status="stopping")
        return await self.data(changed or await self.store.read(q.get, row["id"]))

    async def cancel(self, token: str) -> dict:
        row = await self._by_token(token)
        changed = await self.store.write(q.update, row["id"], CANCELLABLE, status="failed",
                                         failure_reason="cancelled")
        if changed is None:
            raise Conflict(f"the session is {row['status']} and can no longer be cancelled", code="NotCancellable")
        self._after_change(changed)
        log.info("public session %s cancelled by the driver", row["id"])
        return await self.data(changed)

    # -- the operator's (keyed) API ----------------------------------------------------------

    RESOLUTIONS = {
        "refunded": ("captured",),
        "written_off": ("capture_failed", "requires_review"),
        "settling": ("capture_failed", "requires_review"),  # retry the capture
    }

    async def resolve(self, session_id: int, status: str) -> dict:
        allowed = self.RESOLUTIONS.get(status)
        if allowed is None:
            raise Invalid(f"body field 'status': one of {sorted(self.RESOLUTIONS)}")
        fields: dict = {"status": status}
        if status == "settling":
            fields.update(capture_attempts=0, ended_at=None)
        changed = await self.store.write(q.update, session_id, allowed, **fields)
        if changed is None:
            row = await self.store.read(q.get, session_id)
            if row is None:
                raise NotFound("Session", session_id, f"public session {session_id} not found")
            raise Conflict(f"session {session_id} is {row['status']}; {status} needs one of {', '.join(allowed)}",
                           code="InvalidTransition")
        self._retry_at.pop(session_id, None)
        self._after_change(changed)
        return await self.admin_view(changed)

    async def admin_get(self, session_id: int) -> dict:
        row = await self.store.read(q.get, session_id)
        if row is None:
            raise NotFound("Session", session_id, f"public session {session_id} not found")
        return await self.admin_view(row)

    async def admin_page(self, status: str | None, limit: int, offset: int) -> dict:
        rows, total = await self.store.read(q.page, status, limit, offset)
        return {"sessions": [await self.admin_view(r) for r in rows],
                "pagination": {"total": total, "limit": limit, "offset": offset}}

    async def admin_view(self, row: sqlite3.Row) -> dict:
        return {"id": row["id"], "charger_id": row["charger_id"], "transaction_id": row["transaction_id"],
                "provider": row["provider"], "payment_id": row["payment_id"],
                "hold_released": bool(row["hold_released"]), **await self.data(row)}

    # -- the session document (seed 002, field for field) -----------------------------------

    async def data(self, row: sqlite3.Row) -> dict:
        cfg = self.config.charger(row["charger_id"])
        state = self.chargers.get(row["charger_id"])
        status = row["status"]
        energy_wh: int | None = row["energy_wh"]
        cost: int | None = row["cost_amount"]
        if status in ("charging", "stopping") and row["transaction_id"] is not None:
            meter = await self.store.read(q.transaction_meter, row["transaction_id"])
            if meter is not None:  # live: the connector meter when configured, else the last MeterValues
                last = self.transactions.booked_energy(row["charger_id"], row["connector_id"], meter["meter_last"],
                                                       now_iso(), meter["energy_source"])
                last = meter["meter_last"] if last is None else last
                energy_wh = money.delivered_wh(row["meter_start"], last)
                cost = money.running_cost(energy_wh, price_of(row))
        return {
            "status": status,
            "failure_reason": row["failure_reason"],
            "connector_id": row["connector_id"],
            "connector_status": state.connector(row["connector_id"]).status if state else None,
            "charger": {
                "public_code": cfg.public_code if cfg else None,
                "name": (cfg.name or cfg.id) if cfg else row["charger_id"],
                "online": bool(state and state.online),
            },
            "pricing": {"currency": row["currency"], "price_per_kwh": row["price_per_kwh"],
                        "start_fee": row["start_fee"]},
            "amount_authorized": row["amount_authorized"],
            "energy_kwh": money.kwh_text(energy_wh) if energy_wh is not None else None,
            "cost_amount": cost,
            "amount_captured": row["amount_captured"],
            "tax_amount": row["tax_amount"],
            "driver_email": row["driver_email"],
            "created_at": row["created_at"],
            "authorized_at": row["authorized_at"],
            "charging_started_at": row["charging_started_at"],
            "completed_at": row["completed_at"],
            "captured_at": row["captured_at"],
        }
