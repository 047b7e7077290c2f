"""What the central system above the site may ask of one charger, and the site's answer.

- Remote starts and stops are booked like the operator's own (mode "remote"), under our ids.
- A charging profile for a charger under load management becomes an upper bound the allocation
  never exceeds (the site keeps its fuse; the central system keeps its say); for other chargers
  it goes to the charger, its transaction id translated.
- Calls the site must keep (`refused_actions`, ChangeConfiguration of a `protected_keys` key)
  are refused with a CALLERROR that says why.
- Everything else goes to the charger as it came, and its answer (or its CALLERROR) goes back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from controller.chargers import ChargerRegistry
from controller.csms.frames import OcppError
from controller.errors import ChargerCallError, DomainError
from controller.live_config import LiveConfig
from controller.local_controller.transaction_ids import TransactionIds
from controller.timefmt import parse_iso, utcnow
from controller.transactions import Transactions
from controller.upstream.config import UpstreamOcppSection

log = logging.getLogger("evedge.local_controller")

VOLTS = 230.0  # a limit in W read as amps per phase (the allocation is in amps)


class UpstreamCommands:
    def __init__(self, charger_id: str, config: LiveConfig, section: Callable[[], UpstreamOcppSection],
                 chargers: ChargerRegistry, transactions: Transactions, ids: TransactionIds, caps: Any) -> None:
        """`section`: [upstream.ocpp] in force."""
        self.charger_id = charger_id
        self.config = config
        self.section = section
        self.chargers = chargers
        self.transactions = transactions
        self.ids = ids
        self.caps = caps
        self.table = {
            "RemoteStartTransaction": self.remote_start,
            "RemoteStopTransaction": self.remote_stop,
            "SetChargingProfile": self.set_charging_profile,
            "ClearChargingProfile": self.clear_charging_profile,
        }

    async def __call__(self, action: str, payload: dict) -> dict:
        self._refuse_what_the_site_keeps(action, payload)
        log.info("charger=%s: the central system calls %s", self.charger_id, action)
        handler = self.table.get(action)
        return await handler(payload) if handler else await self.to_charger(action, payload)

    def _refuse_what_the_site_keeps(self, action: str, payload: dict) -> None:
        ocpp = self.section()
        if action in ocpp.refused_actions:
            raise OcppError("SecurityError", f"{action} is kept by the site's local controller"
                                             " ([upstream.ocpp] refused_actions)")
        if action == "ChangeConfiguration":
            key = str(payload.get("key", ""))
            if key.casefold() in {k.casefold() for k in ocpp.protected_keys}:
                raise OcppError("SecurityError", f"configuration key {key} is kept by the site's local controller"
                                                 " ([upstream.ocpp] protected_keys)")

    async def to_charger(self, action: str, payload: dict) -> dict:
        try:
            return await self.chargers.operation(self.charger_id, action, payload)
        except ChargerCallError as exc:
            raise OcppError(exc.error_code, exc.description, exc.details) from None
        except DomainError as exc:  # offline, no answer in time, ...
            raise OcppError("GenericError", exc.message) from None

    # -- charges -----------------------------------------------------------------------------

    async def remote_start(self, payload: dict) -> dict:
        connector_id = payload.get("connectorId") or self._free_connector()
        if connector_id is None:
            return {"status": "Rejected"}
        try:
            await self.transactions.remote_start(self.charger_id, connector_id, payload["idTag"], mode="remote",
                                                 require_preparing=False)
        except DomainError as exc:
            log.info("charger=%s: remote start from the central system rejected: %s", self.charger_id, exc.message)
            return {"status": "Rejected"}
        return {"status": "Accepted"}

    def _free_connector(self) -> int | None:
        """A RemoteStart without a connector: the plugged-in one, else a free one."""
        state = self.chargers.get(self.charger_id)
        if state is None:
            return None
        ids = list(state.connector_ids(charging=True))
        for ready in (True, False):
            for n in ids:
                c = state.connectors.get(n)
                if c is not None and (c.ready_to_start if ready else c.can_start):
                    return n
        return None

    async def remote_stop(self, payload: dict) -> dict:
        ours = await self.ids.ours(self.charger_id, payload["transactionId"])
        if ours is None:
            return {"status": "Rejected"}
        try:
            await self.transactions.remote_stop(ours)
        except DomainError as exc:
            log.info("charger=%s: remote stop from the central system rejected: %s", self.charger_id, exc.message)
            return {"status": "Rejected"}
        return {"status": "Accepted"}

    # -- charging limits ---------------------------------------------------------------------

    def _managed(self) -> Any:
        """The charger's config when load management sets its limits, else None."""
        charger = self.config.current.charger(self.charger_id)
        return charger if charger is not None and charger.circuit is not None else None

    async def set_charging_profile(self, payload: dict) -> dict:
        charger = self._managed()
        profile = payload["csChargingProfiles"]
        if charger is None:  # the charger itself obeys it: our ids in it
            if profile.get("transactionId") is not None:
                ours = await self.ids.ours(self.charger_id, profile["transactionId"])
                if ours is None:
                    return {"status": "Rejected"}
                payload = {**payload, "csChargingProfiles": {**profile, "transactionId": ours}}
            return await self.to_charger("SetChargingProfile", payload)
        schedule = profile["chargingSchedule"]
        start = _start_of(profile, schedule)
        per_phase = VOLTS * charger.phases
        periods = [(float(p["startPeriod"]), float(p["limit"]) / (per_phase if schedule["chargingRateUnit"] == "W" else 1))
                   for p in schedule["chargingSchedulePeriod"]]
        until = [parse_iso(profile["validTo"])] if profile.get("validTo") else []
        if schedule.get("duration"):
            until.append(start + timedelta(seconds=schedule["duration"]))
        self.caps.set_cap(self.charger_id, payload["connectorId"], profile["chargingProfileId"], start, periods,
                          min(until) if until else None)
        return {"status": "Accepted"}

    async def clear_charging_profile(self, payload: dict) -> dict:
        if self._managed() is None:
            return await self.to_charger("ClearChargingProfile", payload)
        cleared = self.caps.clear_caps(self.charger_id, payload.get("connectorId"), payload.get("id"))
        return {"status": "Accepted" if cleared else "Unknown"}


def _start_of(profile: dict, schedule: dict) -> datetime:
    """When the schedule's periods count from: its startSchedule, else now (relative, or a
    profile without one)."""
    if profile.get("chargingProfileKind") == "Absolute" and schedule.get("startSchedule"):
        return parse_iso(schedule["startSchedule"])
    return utcnow()
