"""What the controller knows about each charger: registration, connection and connectors.

The registry is the live picture (who is connected, which session to call through); the store
keeps the durable part (boot info, last status and meter reading per connector) so the API shows
the same picture after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from controller.config import Config
from controller.store import Store
from controller.store import chargers as q

if TYPE_CHECKING:
    from controller.csms.rpc import RpcSession


@dataclass
class ConnectorState:
    connector_id: int
    status: str | None = None
    error_code: str | None = None
    info: str | None = None
    vendor_error_code: str | None = None
    status_at: str | None = None
    energy_wh: float | None = None
    power_w: float | None = None
    meter_at: str | None = None

    @property
    def ready_to_start(self) -> bool:
        """A cable is plugged in and nothing charges yet (OCPP 1.6 `Preparing`): a remote start
        now begins charging at once instead of waiting for the driver."""
        return self.status == "Preparing"

    @property
    def can_start(self) -> bool:
        """Free or plugged in (`Available` / `Preparing`): a new charge may be set up here; one that
        is charging, finishing, reserved, faulted or unknown cannot take one."""
        return self.status in ("Available", "Preparing")

    def to_api(self) -> dict:
        return {
            "connectorId": self.connector_id,
            "status": self.status,
            "errorCode": self.error_code,
            "info": self.info,
            "vendorErrorCode": self.vendor_error_code,
            "statusUpdatedAt": self.status_at,
            "energyWh": self.energy_wh,
            "powerW": self.power_w,
            "meterUpdatedAt": self.meter_at,
        }


@dataclass
class ChargerState:
    id: str
    registration: str  # accepted | pending | rejected
    configured: bool
    connector_count: int | None = None
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    firmware_version: str | None = None
    last_boot: str | None = None
    last_heartbeat: str | None = None
    connected_at: str | None = None
    firmware_status: str | None = None
    diagnostics_status: str | None = None
    connectors: dict[int, ConnectorState] = field(default_factory=dict)
    session: RpcSession | None = None

    @property
    def online(self) -> bool:
        return self.session is not None

    def connector(self, connector_id: int) -> ConnectorState:
        if connector_id not in self.connectors:
            self.connectors[connector_id] = ConnectorState(connector_id)
        return self.connectors[connector_id]

    def to_api(self) -> dict:
        return {
            "chargeBoxId": self.id,
            "registration": self.registration,
            "online": self.online,
            "connectedAt": self.connected_at,
            "vendor": self.vendor,
            "model": self.model,
            "serialNumber": self.serial_number,
            "firmwareVersion": self.firmware_version,
            "lastBoot": self.last_boot,
            "lastHeartbeat": self.last_heartbeat,
            "firmwareStatus": self.firmware_status,
            "diagnosticsStatus": self.diagnostics_status,
            "connectors": [c.to_api() for _, c in sorted(self.connectors.items())],
        }


class ChargerRegistry:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.chargers: dict[str, ChargerState] = {}

    async def load(self) -> None:
        """Configured chargers first, then what the books remember (approved, pending, statuses)."""
        for cfg in self.config.chargers:
            state = ChargerState(cfg.id, "accepted", configured=True, connector_count=cfg.connectors)
            for n in range(0, cfg.connectors + 1):
                state.connector(n)
            self.chargers[cfg.id] = state
        for row in await self.store.read(q.all_chargers):
            state = self.chargers.get(row["id"]) or ChargerState(row["id"], row["registration"], configured=False)
            if not state.configured:
                state.registration = row["registration"]
            state.vendor, state.model = row["vendor"], row["model"]
            state.serial_number, state.firmware_version = row["serial_number"], row["firmware_version"]
            state.last_boot, state.last_heartbeat = row["last_boot"], row["last_heartbeat"]
            self.chargers[row["id"]] = state
        for row in await self.store.read(q.all_connectors):
            state = self.chargers.get(row["charger_id"])
            if state is None:
                continue
            c = state.connector(row["connector_id"])
            c.status, c.error_code, c.info = row["status"], row["error_code"], row["info"]
            c.vendor_error_code, c.status_at = row["vendor_error_code"], row["status_at"]
            c.energy_wh, c.power_w, c.meter_at = row["energy_wh"], row["power_w"], row["meter_at"]

    def get(self, charger_id: str) -> ChargerState | None:
        return self.chargers.get(charger_id)

    def admission(self, charger_id: str) -> str | None:
        """The registration a connecting charger gets, or None to refuse the handshake."""
        state = self.chargers.get(charger_id)
        if state is not None and state.registration in ("accepted", "pending"):
            return state.registration
        policy = self.config.ocpp.unknown_chargers
        if policy == "reject" or (state is not None and state.registration == "rejected"):
            return None
        return "accepted" if policy == "accept" else "pending"

    def ensure(self, charger_id: str, registration: str) -> ChargerState:
        state = self.chargers.get(charger_id)
        if state is None:
            state = self.chargers[charger_id] = ChargerState(charger_id, registration, configured=False)
        return state

    async def set_registration(self, charger_id: str, registration: str) -> ChargerState:
        await self.store.write(q.upsert_charger, charger_id, registration)
        state = self.ensure(charger_id, registration)
        state.registration = registration
        return state

    def online_count(self) -> int:
        return sum(1 for s in self.chargers.values() if s.online)
