"""Answers to the calls an OCPP 2.0.1 charging station makes: each payload read into the domain's
plain values, the domain's answer rendered back in 2.0.1's words.

A transaction is the station's: it names it (a string) and reports it in TransactionEvents
numbered by `seqNo`. The books keep our integer id and the station's beside it. The first event
we hear of a transaction opens it, whatever its type (a Started lost or replayed late, an Updated
or Ended from an offline queue), so no charge is lost; a repeated event changes nothing, as the
domain recognises repeated starts, samples and stops.
"""

from __future__ import annotations

import logging


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
from controller.csms.v201.link import GROUP_TOKEN_TYPE
from controller.csms.v201.meter_values import energy_and_power, samples, timestamp
from controller.csms.v201.schemas import DIALECT
from controller.live_config import LiveConfig
from controller.transactions import MeterReport, StartReport, StopReport, Transactions

log = logging.getLogger("evedge.ocpp")

AVAILABILITY = {
    "Available": Availability.FREE,
    "Occupied": Availability.PLUGGED,  # busy while a charge runs on it, or ended with the cable in
    "Reserved": Availability.RESERVED,
    "Unavailable": Availability.UNAVAILABLE,
    "Faulted": Availability.FAULTED,
}
MAX_RUNNING = 1000  # charges remembered per connection (a station has a handful; more are read from the books)  # a parent id tag is ours, not a card's


def availability(status: str | None) -> Availability | None:
    return AVAILABILITY.get(status) if status else None


def error_code(status: str) -> str:
    """A connector's error code in the domain's (1.6's) words: 2.0.1's StatusNotification has none
    (a fault's details come in NotifyEvent), so a Faulted connector reads as 1.6's OtherError."""
    return "OtherError" if status == "Faulted" else "NoError"


def id_token_info(verdict: Verdict) -> dict:
    """A verdict as 2.0.1's IdTokenInfo."""
    info: dict = {"status": verdict.status}
    if verdict.expiry_date:
        info["cacheExpiryDateTime"] = verdict.expiry_date
    if verdict.parent_id_tag:
        info["groupIdToken"] = {"idToken": verdict.parent_id_tag, "type": GROUP_TOKEN_TYPE}
    return info


def _energy(meter_value: list[dict], context: str) -> int | None:
    """The register reading of `context` (Transaction.Begin/End), else the event's last one, in
    whole Wh as the books keep a charge's start and stop."""
    wh, _ = energy_and_power(meter_value, context)
    wh = wh if wh is not None else energy_and_power(meter_value)[0]
    return round(wh) if wh is not None else None


class StationHandlers(adapter.Handlers):
    """Dispatches one connected station's calls."""

    def __init__(self, state: ChargerState, chargers: ChargerRegistry, transactions: Transactions,
                 config: LiveConfig) -> None:
        super().__init__(state, chargers, transactions, config, DIALECT)
        self.last_seq_no: dict[str, int] = {}  # transaction -> the highest seqNo seen (for the log)
        # The station's id of each charge running on this connection -> (ours, connector): an Updated
        # needs no read of the books (a thread hop costing more than the rest of the message).
        self.running: dict[str, tuple[int, int]] = {}
        self.table = {
            "BootNotification": self.boot_notification,
            "Heartbeat": self.heartbeat,
            "StatusNotification": self.status_notification,
            "Authorize": self.authorize,
            "TransactionEvent": self.transaction_event,
            "MeterValues": self.meter_values,
            "DataTransfer": self.data_transfer,
            "FirmwareStatusNotification": self.firmware_status,
            "LogStatusNotification": self.log_status,
            "NotifyReport": self.notify_report,
            "NotifyEvent": self.acknowledge,
            "SecurityEventNotification": self.security_event,
            "ReservationStatusUpdate": self.acknowledge,
            "NotifyChargingLimit": self.acknowledge,
            "ClearedChargingLimit": self.acknowledge,
            "ReportChargingProfiles": self.acknowledge,
            "NotifyEVChargingNeeds": self.charging_needs,
        }

    async def boot_notification(self, payload: dict) -> dict:
        station = payload["chargingStation"]
        boot = BootInfo(vendor=station["vendorName"], model=station["model"],
                        serial_number=station.get("serialNumber"), firmware_version=station.get("firmwareVersion"),
                        raw=payload)
        return await self.booted(boot)

    async def status_notification(self, payload: dict) -> dict:
        status, evse_id = payload["connectorStatus"], checked_connector(self.state, payload["evseId"])
        reads_as = availability(status)
        if reads_as is Availability.PLUGGED and self.state.connector(evse_id).availability is Availability.BUSY:
            # Occupied says a car is plugged in, not whether it is charging: the car of a charge that
            # runs, or that ended with its cable still in (1.6's Finishing), keeps the connector busy
            # until it is unplugged (Available), so no start goes on top of it or charges it again.
            reads_as = Availability.BUSY
        await self.chargers.status_changed(self.state, StatusReport(
            connector_id=evse_id, status=status, availability=reads_as, error_code=error_code(status),
            timestamp=timestamp(payload["timestamp"], "timestamp"),
        ))
        return {}

    async def authorize(self, payload: dict) -> dict:
        verdict = await self.transactions.on_authorize(self.charger_id, payload["idToken"]["idToken"])
        return {"idTokenInfo": id_token_info(verdict)}

    async def transaction_event(self, payload: dict) -> dict:
        event, info = payload["eventType"], payload["transactionInfo"]
        charger_txid = info["transactionId"]
        at = timestamp(payload["timestamp"], "timestamp")
        token = payload.get("idToken")
        id_tag = token["idToken"] if token else None
        meter_value = payload.get("meterValue", [])
        self._note_seq_no(charger_txid, payload["seqNo"], event)
        answer: dict = {}
        known = self.running.get(charger_txid) or await self.transactions.resolve(self.charger_id, charger_txid)
        if known is None:  # the first we hear of it opens it, whatever the event's type
            evse = payload.get("evse") or {}
            connector_id = checked_connector(self.state, evse.get("id", 0), charging=True)
            transaction_id, verdict = await self.transactions.on_start(self.charger_id, StartReport(
                connector_id=connector_id, id_tag=id_tag or "", meter_start_wh=_energy(meter_value, "Transaction.Begin"),
                timestamp=at, reservation_id=payload.get("reservationId"), charger_transaction_id=charger_txid,
                remote_start_id=info.get("remoteStartId"),
            ))
            if token:
                answer["idTokenInfo"] = id_token_info(verdict)
            if event != "Ended":
                self.chargers.set_availability(self.state, connector_id, Availability.BUSY)
        else:
            transaction_id, connector_id = known
            if token and event != "Ended":  # (a token in an Ended is who stopped it)
                # a station that starts at plug-in names the driver's token in a later event
                answer["idTokenInfo"] = id_token_info(
                    await self.transactions.identified(self.charger_id, transaction_id, id_tag))
        if event != "Ended" and len(self.running) < MAX_RUNNING:
            self.running[charger_txid] = (transaction_id, connector_id)
        if meter_value:
            await self._meter(connector_id, transaction_id, meter_value)
        if event == "Ended":
            self.running.pop(charger_txid, None)
            verdict = await self.transactions.on_stop(self.charger_id, StopReport(
                transaction_id=transaction_id, meter_stop_wh=_energy(meter_value, "Transaction.End"), timestamp=at,
                reason=info.get("stoppedReason", "Local"), id_tag=id_tag,
            ))
            if verdict is not None and token:
                answer["idTokenInfo"] = id_token_info(verdict)
            # The connector stays busy: the car that charged is still plugged in (1.6's Finishing)
            # until the station reports it Available.
        return answer

    def _note_seq_no(self, charger_txid: str, seq_no: int, event: str) -> None:
        last = self.last_seq_no.get(charger_txid)
        if last is not None and seq_no <= last:
            log.info("charger=%s transaction %s: event seqNo %d after %d (a repeat or a late one)",
                     self.charger_id, charger_txid, seq_no, last)
        else:
            self.last_seq_no[charger_txid] = seq_no
        if event == "Ended":
            self.last_seq_no.pop(charger_txid, None)

    async def _meter(self, connector_id: int, transaction_id: int | None, meter_value: list[dict]) -> None:
        energy, power = energy_and_power(meter_value)
        await self.transactions.on_meter_values(self.charger_id, MeterReport(
            connector_id=connector_id, transaction_id=transaction_id,
            samples=samples(meter_value),
            energy_wh=energy, power_w=power,
        ))

    async def meter_values(self, payload: dict) -> dict:
        await self._meter(checked_connector(self.state, payload["evseId"]), None, payload["meterValue"])
        return {}

    async def log_status(self, payload: dict) -> dict:
        detail = {"requestId": payload["requestId"]} if "requestId" in payload else None
        await self.chargers.reported(self.state, "log", payload["status"], detail)
        return {}

    async def notify_report(self, payload: dict) -> dict:
        """A part of the station's device model (after GetBaseReport): kept as its settings."""
        for item in payload.get("reportData", []):
            name = f"{item['component']['name']}.{item['variable']['name']}"
            for attribute in item.get("variableAttribute", []):
                if "value" in attribute and attribute.get("type", "Actual") == "Actual":
                    self.state.settings[name] = attribute["value"]
        return {}

    async def security_event(self, payload: dict) -> dict:
        log.warning("charger=%s security event %s: %s", self.charger_id, payload["type"], payload.get("techInfo", ""))
        return {}

    async def charging_needs(self, payload: dict) -> dict:
        return {"status": "Rejected"}  # ISO 15118 charging schedules are not offered

    async def acknowledge(self, payload: dict) -> dict:
        return {}
