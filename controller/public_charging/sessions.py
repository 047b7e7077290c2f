"""Public (pay-by-phone) charging sessions as the rest of the controller sees them.

`PublicCharging` is the one object the site builds: it runs the worker (`run`), hears the charger
through the transactions (`transaction_changed`), and answers the driver's and the operator's API
(api.py). The work is done by its parts: statuses.py (the state machine's table), lifecycle.py
(timers, the worker, the charge at the charger), payments.py (the provider's hold, capture and
release), views.py (what the API shows) and tokens.py (the driver's token, the OCPP id tag).
docs/public-charging.md has the whole picture.

Failures are domain errors (controller/errors.py); api.py turns them into HTTP answers.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

import trio

from controller.errors import NotFound
from controller.public_charging.lifecycle import Lifecycle
from controller.public_charging.providers import PaymentProvider, make_provider
from controller.public_charging.tokens import MAX_TOKEN_LENGTH, token_hash
from controller.public_charging.views import Views, payment_object
from controller.store import public_sessions as q

if TYPE_CHECKING:
    from controller.chargers import ChargerRegistry
    from controller.config import ChargerConfig, Config
    from controller.store import Store
    from controller.transactions import Transactions

log = logging.getLogger("evedge.public_charging")


class PublicCharging:
    def __init__(self, config: Config, store: Store, chargers: ChargerRegistry, transactions: Transactions,
                 provider: PaymentProvider | None = None) -> None:
        self.section = config.public_charging
        self.store = store
        self.provider = provider or make_provider(self.section)
        self.lifecycle = Lifecycle(self.section, store, chargers, transactions, self.provider)
        self.payments = self.lifecycle.payments
        self.views = Views(config, store, chargers, transactions, self.provider.name)
        self.by_code: dict[str, ChargerConfig] = {
            c.public_code.upper(): c for c in config.chargers if c.public_code is not None
        }

    @property
    def enabled(self) -> bool:
        return self.section.enabled

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """The worker: timers, remote starts, captures and releases, until cancelled."""
        await self.lifecycle.run(task_status=task_status)

    def transaction_changed(self, conn: sqlite3.Connection, kind: str, txn: sqlite3.Row) -> dict | None:
        """The transactions' hook: move the session a StartTransaction / StopTransaction belongs
        to, in the same store write; the `payment` object for the upstream notification, if any."""
        row = self.lifecycle.transaction_changed(conn, kind, txn)
        return payment_object(row) if row is not None else None

    # -- the driver's API -------------------------------------------------------------------

    def _charger_by_code(self, code: str) -> ChargerConfig:
        cfg = self.by_code.get(code.strip().upper()) if self.enabled else None
        if cfg is None:
            raise NotFound("Charger", code, "no public charger with this code")
        return cfg

    async def _by_token(self, token: str) -> sqlite3.Row:
        """The session of a token; unknown, malformed and expired tokens are all the same NotFound,
        so an answer tells nothing about other sessions. A token expires when the lifecycle's
        timer forgets it (token_ttl_s after the session ended, on the monotonic clock)."""
        row = None
        if self.enabled and token and len(token) <= MAX_TOKEN_LENGTH:
            row = await self.store.read(q.by_token_hash, token_hash(token))
        if row is None:
            raise NotFound("Session", "token", "unknown or expired session token")
        return row

    def charger_info(self, code: str) -> dict:
        return self.views.charger(self._charger_by_code(code))

    async def create(self, code: str, connector_id: int, email: str | None) -> tuple[str, dict, dict]:
        """A new session and its card hold: the token, the session document, the `payment` context."""
        cfg = self._charger_by_code(code)
        token, row = await self.lifecycle.open(cfg, connector_id, email)
        row, payment = await self.payments.open_hold(row)
        log.info("public session %s created on %s/%s (%s)", row["id"], cfg.id, connector_id, row["status"])
        return token, await self.views.session(row), payment

    async def get(self, token: str) -> tuple[dict, dict | None]:
        row = await self._by_token(token)
        return await self.views.session(row), self.payments.context(row)

    async def confirm(self, token: str) -> dict:
        row = await self._by_token(token)
        return await self.views.session(await self.payments.confirm(row))

    async def stop(self, token: str) -> dict:
        row = await self._by_token(token)
        return await self.views.session(await self.lifecycle.stop(row))

    async def cancel(self, token: str) -> dict:
        row = await self._by_token(token)
        return await self.views.session(await self.lifecycle.cancel(row))

    # -- the operator's (keyed) API ---------------------------------------------------------

    async def resolve(self, session_id: int, status: str) -> dict:
        return await self.views.admin(await self.lifecycle.resolve(session_id, status))

    async def admin_get(self, session_id: int) -> dict:
        return await self.views.admin(await self.lifecycle.get(session_id))

    async def admin_page(self, status: str | None, limit: int, offset: int) -> dict:
        rows, total = await self.store.read(q.page, status, limit, offset)
        return {"sessions": [await self.views.admin(r) for r in rows],
                "pagination": {"total": total, "limit": limit, "offset": offset}}
