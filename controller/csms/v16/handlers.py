"""Answers to the calls an OCPP 1.6 charger makes: each payload read into the domain's plain
values, the domain's answer rendered back in 1.6's words."""

from __future__ import annotations

import logging

import orjson

from controller.authorization import Verdict
from controller.chargers import (
    Availability,
    BootInfo,
    ChargerRegistry,
    ChargerState,
    StatusReport,
)
from controller.csms import adapter
from controller.csms.connectors import checked_connector
from controller.csms.v16.meter_values import (
    latest_currents,
    latest_energy_and_power,
    timestamp,
    transaction_begin,
)
from controller.csms.v16.schemas import DIALECT
from controller.live_config import LiveConfig
from controller.transactions import MeterReport, StartReport, StopReport, Transactions

log = logging.getLogger("evedge.ocpp")

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


class ChargerHandlers(adapter.Handlers):
    """Dispatches one connected charger's calls."""

    def __init__(self, state: ChargerState, chargers: ChargerRegistry, transactions: Transactions,
                 config: LiveConfig) -> None:
        super().__init__(state, chargers, transactions, config, DIALECT)
        self.table = {
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

    async def boot_notification(self, payload: dict) -> dict:
        boot = BootInfo(
            vendor=payload["chargePointVendor"], model=payload["chargePointModel"],
            serial_number=payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber"),
            firmware_version=payload.get("firmwareVersion"), raw=payload,
        )
        return await self.booted(boot)

    async def status_notification(self, payload: dict) -> dict:
        await self.chargers.status_changed(self.state, StatusReport(
            connector_id=checked_connector(self.state, payload["connectorId"]), status=payload["status"],
            availability=availability(payload["status"]), error_code=payload["errorCode"],
            info=payload.get("info"), vendor_error_code=payload.get("vendorErrorCode"),
            timestamp=payload.get("timestamp"),
        ))
        return {}

    async def authorize(self, payload: dict) -> dict:
        return {"idTagInfo": id_tag_info(await self.transactions.on_authorize(self.charger_id, payload["idTag"]))}

    async def start_transaction(self, payload: dict) -> dict:
        transaction_id, verdict = await self.transactions.on_start(self.charger_id, StartReport(
            connector_id=checked_connector(self.state, payload["connectorId"], charging=True), id_tag=payload["idTag"],
            meter_start_wh=payload["meterStart"],
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
        connector_id = checked_connector(self.state, payload["connectorId"])
        samples = [(timestamp(mv["timestamp"], "meterValue.timestamp"), mv["sampledValue"])
                   for mv in payload["meterValue"]]
        energy, power = latest_energy_and_power(payload["meterValue"])
        await self.transactions.on_meter_values(self.charger_id, MeterReport(
            connector_id=connector_id, transaction_id=payload.get("transactionId"),
            samples=samples, energy_wh=energy, power_w=power,
        ))
        if (currents := latest_currents(payload["meterValue"])) is not None:
            self.chargers.currents_drawn(self.state, payload["connectorId"], currents[0],
                                         timestamp(currents[1], "meterValue.timestamp"))
        return {}

    async def diagnostics_status(self, payload: dict) -> dict:
        await self.chargers.reported(self.state, "diagnostics", payload["status"])
        return {}
