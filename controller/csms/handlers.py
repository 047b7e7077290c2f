"""Answers to the calls a charger makes, one method per OCPP 1.6 action."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson

from controller.csms.frames import CENTRAL_ACTIONS, OcppError
from controller.store import chargers as q
from controller.timefmt import now_iso

if TYPE_CHECKING:
    from controller.chargers import ChargerState
    from controller.site import Site

log = logging.getLogger("evedge.ocpp")

# What a charger that is not (yet) accepted may still do.
_BEFORE_ACCEPTANCE = {"BootNotification", "Heartbeat"}


class ChargerHandlers:
    """Dispatches one connected charger's calls."""

    def __init__(self, site: Site, state: ChargerState) -> None:
        self.site = site
        self.state = state
        self.charger_id = state.id
        self._table: dict[str, Callable[[dict], Awaitable[dict]]] = {
            "BootNotification": self.boot_notification,
            "Heartbeat": self.heartbeat,
            "StatusNotification": self.status_notification,
            "Authorize": self.authorize,
            "StartTransaction": self.start_transaction,
            "StopTransaction": self.stop_transaction,
            "MeterValues": self.meter_values,
            "DataTransfer": self.data_transfer,
            "FirmwareStatusNotification": self.firmware_status,
            "DiagnosticsStatusNotification": self.diagnostics_status,
        }

    async def __call__(self, action: str, payload: dict) -> dict:
        handler = self._table.get(action)
        if handler is None:
            if action in CENTRAL_ACTIONS:
                raise OcppError("NotSupported", f"{action} is sent by a central system, not to it")
            raise OcppError("NotImplemented", f"unknown action {action!r}")
        if self.state.registration != "accepted" and action not in _BEFORE_ACCEPTANCE:
            raise OcppError("SecurityError", f"charger {self.charger_id} is not accepted by this site")
        return await handler(payload)

    async def boot_notification(self, payload: dict) -> dict:
        now = now_iso()
        registration = self.state.registration
        await self.site.store.write(
            q.record_boot, self.charger_id, registration, payload, orjson.dumps(payload).decode(), now
        )
        s = self.state
        s.vendor, s.model = payload["chargePointVendor"], payload["chargePointModel"]
        s.serial_number = payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber")
        s.firmware_version, s.last_boot = payload.get("firmwareVersion"), now
        status = {"accepted": "Accepted", "pending": "Pending"}.get(registration, "Rejected")
        log.info("charger=%s boot vendor=%s model=%s registration=%s", self.charger_id, s.vendor, s.model, status)
        return {"status": status, "currentTime": now, "interval": self.site.config.ocpp.heartbeat_interval_s}

    async def heartbeat(self, payload: dict) -> dict:
        self.state.last_heartbeat = now = now_iso()
        return {"currentTime": now}

    async def status_notification(self, payload: dict) -> dict:
        connector_id = payload["connectorId"]
        at = now_iso()
        known = self.state.connectors.get(connector_id)
        previous = (known.status, known.error_code) if known is not None else None
        await self.site.store.write(
            q.record_status, self.charger_id, connector_id, payload["status"], payload["errorCode"],
            payload.get("info"), payload.get("vendorErrorCode"), at,
            events=self.site.events.status(self.charger_id, payload, previous),
        )
        c = self.state.connector(connector_id)
        c.status, c.error_code, c.info = payload["status"], payload["errorCode"], payload.get("info")
        c.vendor_error_code, c.status_at = payload.get("vendorErrorCode"), at
        return {}

    async def authorize(self, payload: dict) -> dict:
        return {"idTagInfo": await self.site.transactions.on_authorize(self.charger_id, payload["idTag"])}

    async def start_transaction(self, payload: dict) -> dict:
        return await self.site.transactions.on_start(self.charger_id, payload)

    async def stop_transaction(self, payload: dict) -> dict:
        return await self.site.transactions.on_stop(self.charger_id, payload)

    async def meter_values(self, payload: dict) -> dict:
        return await self.site.transactions.on_meter_values(self.charger_id, payload)

    async def data_transfer(self, payload: dict) -> dict:
        log.info("charger=%s DataTransfer vendor=%s ignored", self.charger_id, payload["vendorId"])
        return {"status": "UnknownVendorId"}

    async def firmware_status(self, payload: dict) -> dict:
        self.state.firmware_status = payload["status"]
        return {}

    async def diagnostics_status(self, payload: dict) -> dict:
        self.state.diagnostics_status = payload["status"]
        return {}
