"""What the central system above the site may ask of one charger, and the site's answer.

The version's table (`UpstreamVersion.booked`, in ocpp16.py / ocpp201.py) says which calls the
site answers itself; this class holds what they share, in the site's words:

- Remote starts and stops are booked like the operator's own (mode "remote").
- A charging profile for a charger under load management becomes an upper bound the allocation
  never exceeds (the site keeps its fuse; the central system keeps its say), kept on disk
  (caps.py); for other chargers it goes to the charger.
- Calls the site must keep (`refused_actions`, and what the version's `kept` names: a setting
  that leads the charger to the site) are refused with a CALLERROR that says why.
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
from controller.local_controller.caps import UpstreamCaps
from controller.local_controller.transaction_ids import TransactionIds
from controller.local_controller.versions import UpstreamVersion
from controller.timefmt import parse_iso, utcnow
from controller.transactions import Transactions
from controller.upstream.config import UpstreamOcppSection

log = logging.getLogger("evedge.local_controller")

VOLTS = 230.0  # a limit in W read as amps per phase (the allocation is in amps)


class UpstreamCommands:
    def __init__(self, charger_id: str, config: LiveConfig, section: Callable[[], UpstreamOcppSection],
                 chargers: ChargerRegistry, transactions: Transactions, ids: TransactionIds, caps: UpstreamCaps,
                 version: Callable[[], UpstreamVersion]) -> None:
        """`section`: [upstream.ocpp] in force; `version`: what the central system's calls come in."""
        self.charger_id = charger_id
        self.config = config
        self.section = section
        self.chargers = chargers
        self.transactions = transactions
        self.ids = ids
        self.caps = caps
        self.version = version

    async def __call__(self, action: str, payload: dict) -> dict:
        ocpp, version = self.section(), self.version()
        if action in ocpp.refused_actions:
            raise OcppError("SecurityError", f"{action} is kept by the site's local controller"
                                             " ([upstream.ocpp] refused_actions)")
        if reason := version.kept(action, payload, ocpp):
            raise OcppError("SecurityError", reason)
        log.info("charger=%s: the central system calls %s", self.charger_id, action)
        booked = version.booked.get(action)
        return await booked(self, payload) if booked else await self.to_charger(action, payload)

    async def to_charger(self, action: str, payload: dict) -> dict:
        try:
            return await self.chargers.operation(self.charger_id, action, payload)
        except ChargerCallError as exc:
            raise OcppError(exc.error_code, exc.description, exc.details) from None
        except DomainError as exc:  # offline, no answer in time, ...
            raise OcppError("GenericError", exc.message) from None

    # -- charges -----------------------------------------------------------------------------

    async def remote_start(self, connector_id: int | None, id_tag: str) -> bool:
        """A start booked as ours, on the connector named, else the plugged-in one, else a free one."""
        connector_id = connector_id or self._free_connector()
        if connector_id is None:
            return False
        try:
            await self.transactions.remote_start(self.charger_id, connector_id, id_tag, mode="remote",
                                                 require_preparing=False)
        except DomainError as exc:
            log.info("charger=%s: remote start from the central system rejected: %s", self.charger_id, exc.message)
            return False
        return True

    def _free_connector(self) -> int | None:
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

    async def remote_stop(self, ours: int | None) -> bool:
        """A stop of our transaction `ours` (None: not a charge of this charger)."""
        if ours is None:
            return False
        try:
            await self.transactions.remote_stop(ours)
        except DomainError as exc:
            log.info("charger=%s: remote stop from the central system rejected: %s", self.charger_id, exc.message)
            return False
        return True

    async def as_operator(self, action: str, payload: dict) -> dict:
        """A start or stop sent as it came and booked like the operator's own raw operation
        (transactions.operation); the charger's answer as it came. What the site refuses before
        sending (a connector reserved for another card, the charger offline) is a Rejected that
        says why."""
        try:
            return await self.transactions.operation(self.charger_id, action, payload)
        except ChargerCallError as exc:
            raise OcppError(exc.error_code, exc.description, exc.details) from None
        except DomainError as exc:
            log.info("charger=%s: %s from the central system rejected: %s", self.charger_id, action, exc.message)
            return {"status": "Rejected", "statusInfo": {"reasonCode": exc.code[:20],
                                                         "additionalInfo": exc.message[:512]}}

    # -- charging limits ---------------------------------------------------------------------

    def managed(self) -> Any:
        """The charger's config when load management sets its limits, else None."""
        charger = self.config.current.charger(self.charger_id)
        return charger if charger is not None and charger.circuit is not None else None

    async def bound(self, connector_id: int, profile_id: int, *, unit: str, periods: list[tuple[float, float]],
                    start: datetime, valid_to: str | None, duration: float | None) -> None:
        """A schedule of (seconds from `start`, limit in `unit` A or W) kept as an upper bound in amps
        per phase, until `valid_to` or the schedule's end, whichever comes first."""
        per_phase = VOLTS * self.managed().phases
        amps = [(float(offset), float(limit) / (per_phase if unit == "W" else 1)) for offset, limit in periods]
        until = [parse_iso(valid_to)] if valid_to else []
        if duration:
            until.append(start + timedelta(seconds=duration))
        await self.caps.set(self.charger_id, connector_id, profile_id, start, amps, min(until) if until else None)

    async def unbound(self, connector_id: int | None, profile_id: int | None) -> bool:
        """Clear the bounds named (None: any connector, any profile); whether there were any."""
        return await self.caps.clear(self.charger_id, connector_id, profile_id)


def start_of(absolute: bool, start_schedule: str | None) -> datetime:
    """When a schedule's periods count from: its start for an absolute one that has it, else now
    (relative, or a profile without one)."""
    return parse_iso(start_schedule) if absolute and start_schedule else utcnow()
