"""Answers to the calls an OCPP 1.6 charger makes: each payload read into the domain's plain
values, the domain's answer rendered back in 1.6's words."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson

from controller.authorization import Verdict
from controller.chargers import Availability, BootInfo, ChargerRegistry, ChargerState, StatusReport
from controller.csms.frames import CENTRAL_ACTIONS, OcppError
from controller.csms.v16.meter_values import latest_currents, latest_energy_and_power, timestamp, transaction_begin
from controller.live_config import LiveConfig
from controller.transactions import MeterReport, StartReport, StopReport, Transactions

log = logging.getLogger("evedge.ocpp")

# What a charger that is not (yet) accepted may still do.
_BEFORE_ACCEPTANCE = {"BootNotification", "Heartbeat"}
_REGISTRATION = {"accepted": "Accepted", "pending": "Pending"}
AVAILABILITY = {
    "Available": Availability.FREE,
    "Preparing": Availability.PLUGGED,
    "Charging": Availability.BUSY,
    "SuspendedEV": Availability.BUSY,
    "SuspendedEVSE": Availability.BUSY,
    "Finishing": Availability.BUSY,
    "Reserved": Availability.RESERVED,
    "Unavailable": Availability.UNAVAILABLE,
    "Faulted": Availability.FAULTED,
}


def availability(status: str | None) -> Availability | None:
    return AVAILABILITY.get(status) if status else None


def id_tag_info(verdict: Verdict) -> dict:
    """A verdict as 1.6's IdTagInfo."""
    info: dict = {"status": verdict.status}
    if verdict.expiry_date:
        info["expiryDate"] = verdict.expiry_date
    if verdict.parent_id_tag:
        info["parentIdTag"] = verdict.parent_id_tag
    return info


class ChargerHandlers:
    """Dispatches one connected charger's calls."""

    def __init__(self, state: ChargerState, chargers: ChargerRegistry, transactions: Transactions,
                 config: LiveConfig) -> None:
        self.state = state
        self.charger_id = state.id
        self.chargers = chargers
        self.transactions = transactions
        self.config = config
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
        boot = BootInfo(
            vendor=payload["chargePointVendor"], model=payload["chargePointModel"],
            serial_number=payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber"),
            firmware_version=payload.get("firmwareVersion"), raw=payload,
        )
        registration = await self.chargers.booted(self.state, boot)
        return {"status": _REGISTRATION.get(registration, "Rejected"), "currentTime": self.state.last_boot,
                "interval": self.config.current.ocpp.heartbeat_interval_s}

    async def heartbeat(self, payload: dict) -> dict:
        return {"currentTime": self.chargers.heartbeat(self.state)}

    async def status_notification(self, payload: dict) -> dict:
        await self.chargers.status_changed(self.state, StatusReport(
            connector_id=payload["connectorId"], status=payload["status"],
            availability=availability(payload["status"]), error_code=payload["errorCode"],
            info=payload.get("info"), vendor_error_code=payload.get("vendorErrorCode"),
            timestamp=payload.get("timestamp"),
        ))
        return {}

    async def authorize(self, payload: dict) -> dict:
        return {"idTagInfo": id_tag_info(await self.transactions.on_authorize(self.charger_id, payload["idTag"]))}

    async def start_transaction(self, payload: dict) -> dict:
        transaction_id, verdict = await self.transactions.on_start(self.charger_id, StartReport(
            connector_id=payload["connectorId"], id_tag=payload["idTag"], meter_start_wh=payload["meterStart"],
            timestamp=timestamp(payload["timestamp"], "timestamp"), reservation_id=payload.get("reservationId"),
        ))
        return {"transactionId": transaction_id, "idTagInfo": id_tag_info(verdict)}

    async def stop_transaction(self, payload: dict) -> dict:
        stop_time = timestamp(payload["timestamp"], "timestamp")
        data = payload.get("transactionData")
        begin_at, begin_wh = transaction_begin(data)
        verdict = await self.transactions.on_stop(self.charger_id, StopReport(
            transaction_id=payload["transactionId"], meter_stop_wh=payload["meterStop"], timestamp=stop_time,
            reason=payload.get("reason", "Local"), id_tag=payload.get("idTag"), begin_at=begin_at,
            begin_wh=begin_wh, data_json=orjson.dumps(data).decode() if data else None,
        ))
        return {"idTagInfo": id_tag_info(verdict)} if verdict is not None else {}

    async def meter_values(self, payload: dict) -> dict:
        samples = [(timestamp(mv["timestamp"], "meterValue.timestamp"), orjson.dumps(mv["sampledValue"]).decode())
                   for mv in payload["meterValue"]]
        energy, power = latest_energy_and_power(payload["meterValue"])
        await self.transactions.on_meter_values(self.charger_id, MeterReport(
            connector_id=payload["connectorId"], transaction_id=payload.get("transactionId"),
            samples=samples, energy_wh=energy, power_w=power,
        ))
        if (currents := latest_currents(payload["meterValue"])) is not None:
            self.chargers.currents_drawn(self.state, payload["connectorId"], currents[0],
                                         timestamp(currents[1], "meterValue.timestamp"))
        return {}

    async def data_transfer(self, payload: dict) -> dict:
        log.info("charger=%s DataTransfer vendor=%s ignored", self.charger_id, payload["vendorId"])
        return {"status": "UnknownVendorId"}

    async def firmware_status(self, payload: dict) -> dict:
        self.state.firmware_status = payload["status"]
        return {}

    async def diagnostics_status(self, payload: dict) -> dict:
        self.state.diagnostics_status = payload["status"]
        return {}
