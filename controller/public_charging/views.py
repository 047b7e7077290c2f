"""How public sessions and chargers look from outside.

The driver's session document (the published public-charging format, field for field), the
operator's view of a session with the ids needed to find it at the payment provider, a public
charger with its price, and the `payment` object that upstream notifications of a public charge
carry. Nothing here changes a session: a view of a running charge reads the live meter, never
writes.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from controller.public_charging import money
from controller.public_charging.statuses import may
from controller.store import public_sessions as q
from controller.timefmt import now_iso

if TYPE_CHECKING:
    from controller.chargers import ChargerRegistry
    from controller.config import ChargerConfig, Config
    from controller.store import Store
    from controller.transactions import Transactions


def payment_object(row: sqlite3.Row) -> dict:
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


class Views:
    def __init__(self, config: Config, store: Store, chargers: ChargerRegistry, transactions: Transactions,
                 provider_name: str) -> None:
        self.config = config
        self.store = store
        self.chargers = chargers
        self.transactions = transactions
        self.provider_name = provider_name

    def charger(self, cfg: ChargerConfig) -> dict:
        """A public charger as the driver's page shows it before a session: connectors, price, hold."""
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
            "payment_provider": self.provider_name,
            "operator": {"name": self.config.public_charging.operator_name or self.config.site.name,
                         "contact": self.config.public_charging.operator_contact or None},
        }

    async def session(self, row: sqlite3.Row) -> dict:
        """The driver's session document; while charging, energy and cost are the live ones."""
        cfg = self.config.charger(row["charger_id"])
        state = self.chargers.get(row["charger_id"])
        energy_wh: int | None = row["energy_wh"]
        cost: int | None = row["cost_amount"]
        if may(row["status"], "stopped") and row["transaction_id"] is not None:  # the charge still runs
            live = await self._live_energy_wh(row)
            if live is not None:
                energy_wh, cost = live, money.running_cost(live, money.Price.of_session(row))
        return {
            "status": row["status"],
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

    async def _live_energy_wh(self, row: sqlite3.Row) -> int | None:
        """Energy delivered so far: the connector meter when configured, else the last MeterValues."""
        meter = await self.store.read(q.transaction_meter, row["transaction_id"])
        if meter is None:
            return None
        meter = self.transactions.current(meter)
        last = self.transactions.booked_energy(row["charger_id"], row["connector_id"], meter["meter_last"],
                                               now_iso(), meter["energy_source"])
        return money.delivered_wh(row["meter_start"], meter["meter_last"] if last is None else last)

    async def admin(self, row: sqlite3.Row) -> dict:
        """The operator's view: the session document with the ids to find it at the provider."""
        return {"id": row["id"], "charger_id": row["charger_id"], "transaction_id": row["transaction_id"],
                "provider": row["provider"], "payment_id": row["payment_id"],
                "hold_released": bool(row["hold_released"]), **await self.session(row)}
