"""A simulated OCPP 2.0.1 charging station, driven by its parent over JSON lines.

The twin of charger.py (OCPP 1.6J): the same command vocabulary and events, so a test
written for the 1.6 simulator can drive this one unchanged; `SimulatedCharger.open(url,
version="2.0.1")` spawns it. Like charger.py it is deliberately independent of evedge:
the `ocpp` library's asyncio v201 ChargePoint over the `websockets` client, in its own
process, offering the "ocpp2.0.1" subprotocol and permessage-deflate compression.

Run: python -m controller.simulators.charger201 --url ws://127.0.0.1:PORT/ocpp/CHARGER-001
     [--id CHARGER-001] [--connectors 2 (EVSEs)] [--no-subprotocol] [--basic-auth USER:PASS]
     [--ca-file CA.pem] [--log-frames] [--verbose] [--response-timeout 10] [--no-compression]

stdin/stdout protocol: as charger.py ({"id", "cmd", ...} in, one {"id", "ok", ...} line out
per command, commands run concurrently, "timeout" on every command that waits).
A connector number in a command is an EVSE id; each EVSE has one connector (connectorId 1).
1.6 words are accepted and translated, 2.0.1 words pass through:

  boot {vendor?, model?, serialNumber?, firmwareVersion?, reason="PowerUp", iccid?, imsi?}
                -> BootNotification {chargingStation, reason}; result: the CSMS response
  status {connector, status, connectorId=1, timestamp?}  -> StatusNotification; 1.6 names map:
                Preparing/Charging/SuspendedEV/SuspendedEVSE/Finishing -> Occupied
                (errorCode, info, vendorErrorCode are accepted and ignored: no 2.0.1 field)
  heartbeat {} | authorize {idTag}       (result also has idTagInfo {status} from idTokenInfo)
  start {connector, idTag, meterStart?, timestamp?, reservationId?, triggerReason?}
                -> TransactionEvent Started with a new transactionId (a uuid) and seqNo;
                result: the response + transactionId + idTagInfo {status}
  meter {connector, energyWh?, powerW?, transactionId?, timestamp?}
                -> TransactionEvent Updated if a transaction runs there, else MeterValues
  stop {connector | transactionId, meterStop?, reason?, idTag?, timestamp?, triggerReason?}
                -> TransactionEvent Ended; stoppedReason: a 2.0.1 reason as given, else Other
                (default Local, or Remote after an accepted RequestStopTransaction)
  call | raw | respond | auto | disconnect | reconnect | quit   as in charger.py
  state {}      as charger.py's, plus connectorStatus and remoteStartId per EVSE, seqNo, variables

TransactionEvent: seqNo counts every TransactionEvent of the station from 0; triggerReason
Authorized (RemoteStart if an accepted RequestStartTransaction is pending for the EVSE; its
remoteStartId goes in transactionInfo), MeterValuePeriodic, StopAuthorized / RemoteStop /
EVCommunicationLost (for EVDisconnected). Meter values are Energy.Active.Import.Register (Wh)
in contexts Transaction.Begin / Sample.Periodic / Transaction.End, plus Power.Active.Import (W).

Default answers to the CSMS: RequestStartTransaction Accepted (auto: StatusNotification
Occupied, then TransactionEvent Started); RequestStopTransaction Accepted if the transaction
runs, else Rejected (auto: TransactionEvent Ended, then StatusNotification Occupied, the 2.0.1
word for 1.6's Finishing: the cable stays plugged in); TriggerMessage (auto: the message);
GetBaseReport (auto: NotifyReport); UpdateFirmware (auto: FirmwareStatusNotification
Downloading, Installed); GetLog (auto: LogStatusNotification Uploading, Uploaded);
GetVariables / SetVariables on a small device model; Set/Clear ChargingProfile,
GetCompositeSchedule, GetTransactionStatus, Reset,
ChangeAvailability, UnlockConnector, ClearCache, ReserveNow, CancelReservation: the
obvious yes; DataTransfer: UnknownVendorId. SendLocalList / GetLocalListVersion: a local list
kept with versions (Differential needs a newer one: VersionMismatch; more entries than
LocalAuthListCtrlr.ItemsPerMessage: Failed), shown by `state`.

stdout events: as charger.py (connected, connect_failed, call, sent, closed, note, frame).
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint as OcppChargePoint
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action, ReasonEnumType

from controller.simulators.common import (
    CommandError,
    LocalList,
    SimConnection,
    SimulatorBase,
    base_parser,
    emit,
    now_iso,
    plain,
    run,
)

SUBPROTOCOL = "ocpp2.0.1"
VENDOR, MODEL = "evedge-sim", "SimCharger"
ID_TOKEN_TYPE = "ISO14443"  # what a card reader reads; 1.6 idTags become tokens of this type
CONNECTOR_ID = 1  # each EVSE has one connector

# 1.6 connector statuses that 2.0.1 folds into Occupied; the others have the same name.
OCCUPIED_16 = {"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"}
REASONS_201 = {reason.value for reason in ReasonEnumType}
TRIGGERABLE = {"BootNotification", "Heartbeat", "StatusNotification", "MeterValues", "TransactionEvent",
               "FirmwareStatusNotification", "LogStatusNotification"}


def connector_status(status: str) -> str:
    """The 2.0.1 connectorStatus for a 1.6 or 2.0.1 status name."""
    return "Occupied" if status in OCCUPIED_16 else status


def stopped_reason(reason: str) -> str:
    """A 1.6 stop reason in 2.0.1 words (Local, Remote, EVDisconnected, ... keep their name)."""
    return reason if reason in REASONS_201 else "Other"


def id_token(tag: str | dict[str, Any]) -> dict[str, Any]:
    """An IdTokenType (snake_case, as the library takes it) from a 1.6 idTag or a token."""
    return tag if isinstance(tag, dict) else {"id_token": tag, "type": ID_TOKEN_TYPE}


def number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def meter_value(context: str, energy_wh: float, power_w: float | None = None,
                timestamp: str | None = None) -> list[dict[str, Any]]:
    """One MeterValueType: the energy register, and the power if given."""
    sampled = [{"value": number(energy_wh), "context": context, "measurand": "Energy.Active.Import.Register",
                "unit_of_measure": {"unit": "Wh"}}]
    if power_w is not None:
        sampled.append({"value": number(power_w), "context": context, "measurand": "Power.Active.Import",
                        "unit_of_measure": {"unit": "W"}})
    return [{"timestamp": timestamp or now_iso(), "sampled_value": sampled}]


def id_tag_info(response: dict[str, Any]) -> dict[str, Any]:
    """1.6's idTagInfo {status} from a 2.0.1 idTokenInfo (Accepted when there is none)."""
    return {"status": (response.get("idTokenInfo") or {}).get("status", "Accepted")}


@dataclass
class Evse:
    energy_wh: float = 0
    transaction_id: str | None = None
    id_token: dict[str, Any] | None = None
    status: str = "Available"  # the name last reported, 1.6 or 2.0.1, as the command gave it
    connector_status: str = "Available"  # the 2.0.1 status sent for it
    remote_start_id: int | None = None  # an accepted RequestStartTransaction, for the next start


class SimChargePoint(SimConnection, OcppChargePoint):
    """One websocket connection (common.SimConnection) with the 2.0.1 default answers."""

    sim: Simulator

    # --- default answers to CSMS-initiated calls (the library passes snake_case kwargs) ------

    @on(Action.request_start_transaction)
    def on_request_start_transaction(self, **_: Any) -> call_result.RequestStartTransaction:
        return call_result.RequestStartTransaction(status="Accepted")

    @on(Action.request_stop_transaction)
    def on_request_stop_transaction(self, transaction_id: str, **_: Any) -> call_result.RequestStopTransaction:
        known = self.sim.find_transaction(transaction_id) is not None
        return call_result.RequestStopTransaction(status="Accepted" if known else "Rejected")

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, **_: Any) -> call_result.TriggerMessage:
        return call_result.TriggerMessage(status="Accepted" if requested_message in TRIGGERABLE else "NotImplemented")

    @on(Action.reset)
    def on_reset(self, **_: Any) -> call_result.Reset:
        return call_result.Reset(status="Accepted")

    @on(Action.change_availability)
    def on_change_availability(self, **_: Any) -> call_result.ChangeAvailability:
        return call_result.ChangeAvailability(status="Accepted")

    @on(Action.unlock_connector)
    def on_unlock_connector(self, **_: Any) -> call_result.UnlockConnector:
        return call_result.UnlockConnector(status="Unlocked")

    @on(Action.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> call_result.GetVariables:
        return call_result.GetVariables(get_variable_result=[self.sim.get_variable(item) for item in get_variable_data])

    @on(Action.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> call_result.SetVariables:
        return call_result.SetVariables(set_variable_result=[self.sim.set_variable(item) for item in set_variable_data])

    @on(Action.get_base_report)
    def on_get_base_report(self, **_: Any) -> call_result.GetBaseReport:
        return call_result.GetBaseReport(status="Accepted")

    @on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        # Kept camelCase so GetCompositeSchedule and `state` show it as it came.
        self.sim.profiles[evse_id] = plain(snake_to_camel_case(charging_profile))
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self, charging_profile_id: int | None = None, charging_profile_criteria: dict[str, Any] | None = None, **_: Any
    ) -> call_result.ClearChargingProfile:
        criteria = charging_profile_criteria or {}
        wanted = {"id": charging_profile_id, "chargingProfilePurpose": criteria.get("charging_profile_purpose"),
                  "stackLevel": criteria.get("stack_level")}
        cleared = False
        for evse, profile in list(self.sim.profiles.items()):
            if criteria.get("evse_id") not in (None, evse):
                continue
            if all(value is None or profile.get(key) == value for key, value in wanted.items()):
                del self.sim.profiles[evse]
                cleared = True
        return call_result.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        profile = self.sim.profiles.get(evse_id) or self.sim.profiles.get(0)
        if profile is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        schedule = profile["chargingSchedule"][0]
        return call_result.GetCompositeSchedule(status="Accepted", schedule={
            "evse_id": evse_id, "duration": duration, "schedule_start": now_iso(),
            "charging_rate_unit": charging_rate_unit or schedule["chargingRateUnit"],
            "charging_schedule_period": camel_to_snake_case(schedule["chargingSchedulePeriod"]),
        })

    @on(Action.update_firmware)
    def on_update_firmware(self, **_: Any) -> call_result.UpdateFirmware:
        return call_result.UpdateFirmware(status="Accepted")

    @on(Action.get_log)
    def on_get_log(self, **_: Any) -> call_result.GetLog:
        return call_result.GetLog(status="Accepted", filename="evedge-sim.log")

    @on(Action.get_transaction_status)
    def on_get_transaction_status(
        self, transaction_id: str | None = None, **_: Any
    ) -> call_result.GetTransactionStatus:
        ongoing = None if transaction_id is None else self.sim.find_transaction(transaction_id) is not None
        return call_result.GetTransactionStatus(messages_in_queue=False, ongoing_indicator=ongoing)

    @on(Action.send_local_list)
    def on_send_local_list(self, version_number: int, update_type: str,
                           local_authorization_list: list[dict[str, Any]] | None = None,
                           **_: Any) -> call_result.SendLocalList:
        return call_result.SendLocalList(status=self.sim.install_local_list(
            version_number, update_type, plain(snake_to_camel_case(local_authorization_list or []))))

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(version_number=self.sim.local_list.version)

    @on(Action.data_transfer)
    def on_data_transfer(self, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        return call_result.ClearCache(status="Accepted")

    @on(Action.reserve_now)
    def on_reserve_now(self, **_: Any) -> call_result.ReserveNow:
        return call_result.ReserveNow(status="Accepted")

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, **_: Any) -> call_result.CancelReservation:
        return call_result.CancelReservation(status="Accepted")

    # The library runs @after hooks only after the default answer went out.

    @after(Action.request_start_transaction)
    def after_request_start_transaction(
        self, id_token: dict[str, Any], remote_start_id: int, evse_id: int | None = None, **_: Any
    ) -> None:
        self.sim.remote_start_accepted(evse_id, id_token, remote_start_id)

    @after(Action.request_stop_transaction)
    def after_request_stop_transaction(self, transaction_id: str, **_: Any) -> None:
        if self.sim.find_transaction(transaction_id) is not None:  # else it was Rejected
            self.sim.remote_stop_accepted(transaction_id)

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any) -> None:
        self.sim.auto_trigger(requested_message, (evse or {}).get("id"))

    @after(Action.get_base_report)
    def after_get_base_report(self, request_id: int, **_: Any) -> None:
        self.sim.auto_report(request_id)

    @after(Action.update_firmware)
    def after_update_firmware(self, request_id: int, **_: Any) -> None:
        self.sim.auto_statuses(call.FirmwareStatusNotification, ["Downloading", "Installed"], request_id)

    @after(Action.get_log)
    def after_get_log(self, request_id: int, **_: Any) -> None:
        self.sim.auto_statuses(call.LogStatusNotification, ["Uploading", "Uploaded"], request_id)


class Simulator(SimulatorBase):
    """Station state and the 2.0.1 command handlers (`cmd_<name>`; the rest in SimulatorBase)."""

    SUBPROTOCOL = SUBPROTOCOL
    CHARGE_POINT = SimChargePoint

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.evses = {n: Evse() for n in range(1, args.connectors + 1)}
        self.seq_no = 0  # of the next TransactionEvent
        self.remote_stops: set[str] = set()  # transactions an accepted RequestStopTransaction named
        self.variables: dict[tuple[str, str], tuple[str, bool]] = {  # (component, variable) -> (value, readonly)
            ("OCPPCommCtrlr", "HeartbeatInterval"): ("300", False),
            ("SampledDataCtrlr", "TxUpdatedInterval"): ("60", False),
            ("SampledDataCtrlr", "TxUpdatedMeasurands"): ("Energy.Active.Import.Register,Power.Active.Import", False),
            ("AuthCtrlr", "AuthorizeRemoteStart"): ("false", False),
            ("TxCtrlr", "TxStartPoint"): ("Authorized", False),
            ("TxCtrlr", "TxStopPoint"): ("Authorized", False),
            ("LocalAuthListCtrlr", "Enabled"): ("true", False),
            ("LocalAuthListCtrlr", "ItemsPerMessage"): ("100", True),
            ("SmartChargingCtrlr", "Enabled"): ("true", False),
            ("SecurityCtrlr", "Identity"): (self.charger_id, True),
        }
        self.local_list = LocalList()  # idToken -> {"type", "idTokenInfo"}
        self.profiles: dict[int, dict[str, Any]] = {}

    def evse(self, n: int) -> Evse:
        return self.evses.setdefault(n, Evse())

    def install_local_list(self, version: int, update_type: str, entries: list[dict[str, Any]]) -> str:
        """SendLocalList as a station keeps it: Full replaces, Differential needs a newer version
        and sets or (an entry without idTokenInfo) removes each token; more than ItemsPerMessage fail."""
        listed = [(e["idToken"]["idToken"], None if e.get("idTokenInfo") is None else
                   {"type": e["idToken"]["type"], "idTokenInfo": e["idTokenInfo"]}) for e in entries]
        return self.local_list.install(version, update_type == "Full", listed,
                                       int(self.variables[("LocalAuthListCtrlr", "ItemsPerMessage")][0]))

    def find_transaction(self, transaction_id: Any) -> int | None:
        return next((n for n, e in self.evses.items() if e.transaction_id == str(transaction_id)), None)

    # --- the device model ---------------------------------------------------------------------

    def get_variable(self, item: dict[str, Any]) -> dict[str, Any]:
        """One GetVariableResultType for a GetVariableDataType (both snake_case)."""
        component, variable = item["component"], item["variable"]
        result = {"component": component, "variable": variable, "attribute_type": item.get("attribute_type")}
        key = (component["name"], variable["name"])
        if item.get("attribute_type", "Actual") != "Actual":
            return {**result, "attribute_status": "NotSupportedAttributeType"}
        if key in self.variables:
            return {**result, "attribute_status": "Accepted", "attribute_value": self.variables[key][0]}
        known_component = any(name == key[0] for name, _ in self.variables)
        return {**result, "attribute_status": "UnknownVariable" if known_component else "UnknownComponent"}

    def set_variable(self, item: dict[str, Any]) -> dict[str, Any]:
        """One SetVariableResultType: stored unless read-only (unknown variables are stored too)."""
        key = (item["component"]["name"], item["variable"]["name"])
        readonly = key in self.variables and self.variables[key][1]
        if not readonly:
            self.variables[key] = (item["attribute_value"], False)
        status = "Rejected" if readonly else "Accepted"
        return {"component": item["component"], "variable": item["variable"],
                "attribute_type": item.get("attribute_type"), "attribute_status": status}

    # --- shared by commands and auto follow-ups ------------------------------------------

    def status_request(self, evse: int, status: str, timestamp: str | None = None,
                       connector_id: int = CONNECTOR_ID) -> call.StatusNotification:
        return call.StatusNotification(timestamp=timestamp or now_iso(), connector_status=connector_status(status),
                                       evse_id=evse, connector_id=connector_id)

    def status_sent(self, evse: int, status: str) -> Callable[[dict[str, Any]], None]:
        def record(_: dict[str, Any]) -> None:
            e = self.evse(evse)
            e.status, e.connector_status = status, connector_status(status)
        return record

    def transaction_event(
        self, event_type: str, trigger_reason: str, transaction_info: dict[str, Any], evse: int | None,
        meter: list[dict[str, Any]], timestamp: str | None = None, **extra: Any,
    ) -> call.TransactionEvent:
        """A TransactionEvent with the station's next seqNo."""
        seq_no, self.seq_no = self.seq_no, self.seq_no + 1
        return call.TransactionEvent(
            event_type=event_type, timestamp=timestamp or now_iso(), trigger_reason=trigger_reason, seq_no=seq_no,
            transaction_info=transaction_info, meter_value=meter,
            evse=None if evse is None else {"id": evse, "connector_id": CONNECTOR_ID}, **extra,
        )

    def start_request(self, evse: int, token: dict[str, Any], meter_start: float | None = None,
                      timestamp: str | None = None, reservation_id: int | None = None,
                      trigger_reason: str | None = None) -> call.TransactionEvent:
        e = self.evse(evse)
        if meter_start is not None:
            e.energy_wh = meter_start
        info = {"transaction_id": str(uuid.uuid4()), "charging_state": "Charging", "remote_start_id": e.remote_start_id}
        reason = trigger_reason or ("RemoteStart" if e.remote_start_id is not None else "Authorized")
        return self.transaction_event("Started", reason, info, evse, meter_value("Transaction.Begin", e.energy_wh),
                                      timestamp, id_token=token, reservation_id=reservation_id)

    def started(self, evse: int, payload: call.TransactionEvent) -> None:
        e = self.evse(evse)
        e.transaction_id, e.id_token = payload.transaction_info["transaction_id"], payload.id_token
        e.remote_start_id = None

    def stop_request(self, evse: int | None, transaction_id: str, meter_stop: float | None = None,
                     reason: str | None = None, token: dict[str, Any] | None = None, timestamp: str | None = None,
                     trigger_reason: str | None = None) -> call.TransactionEvent:
        if evse is not None and meter_stop is not None:
            self.evse(evse).energy_wh = meter_stop
        if meter_stop is None:
            meter_stop = self.evse(evse).energy_wh if evse is not None else 0
        if reason is None:
            reason = "Remote" if transaction_id in self.remote_stops else "Local"
        stopped = stopped_reason(reason)
        trigger_reason = trigger_reason or {"Remote": "RemoteStop", "EVDisconnected": "EVCommunicationLost"}.get(
            stopped, "StopAuthorized")
        info = {"transaction_id": transaction_id, "stopped_reason": stopped}
        return self.transaction_event("Ended", trigger_reason, info, evse, meter_value("Transaction.End", meter_stop),
                                      timestamp, id_token=token)

    def stopped(self, evse: int | None, transaction_id: str) -> None:
        self.remote_stops.discard(transaction_id)
        if evse is not None:
            e = self.evse(evse)
            e.transaction_id = e.id_token = None

    def meter_request(self, evse: int, energy_wh: float | None, power_w: float | None, transaction_id: str | None,
                      timestamp: str | None, context: str = "Sample.Periodic") -> Any:
        """TransactionEvent Updated while a transaction runs (or one is named), else MeterValues."""
        e = self.evse(evse)
        if energy_wh is not None:
            e.energy_wh = energy_wh
        meter = meter_value(context, e.energy_wh, power_w, timestamp)
        transaction_id = e.transaction_id if transaction_id is None else str(transaction_id)
        if transaction_id is None:
            return call.MeterValues(evse_id=evse, meter_value=meter)
        reason = "Trigger" if context == "Trigger" else "MeterValuePeriodic"
        return self.transaction_event("Updated", reason, {"transaction_id": transaction_id}, evse, meter, timestamp)

    # --- auto mode: what a real station does after answering -----------------------------

    def after_answer(self, action: str, request: dict[str, Any], answer: dict[str, Any]) -> None:
        """Follow-ups for answers set with `respond {payload}` (the library path uses @after)."""
        if answer.get("status") != "Accepted":
            return
        if action == "RequestStartTransaction":
            token = camel_to_snake_case(request.get("idToken")) or id_token("")
            self.remote_start_accepted(request.get("evseId"), token, request.get("remoteStartId"))
        elif action == "RequestStopTransaction":
            self.remote_stop_accepted(str(request.get("transactionId")))
        elif action == "TriggerMessage":
            self.auto_trigger(request.get("requestedMessage", ""), (request.get("evse") or {}).get("id"))
        elif action == "GetBaseReport":
            self.auto_report(request.get("requestId", 0))
        elif action == "UpdateFirmware":
            self.auto_statuses(call.FirmwareStatusNotification, ["Downloading", "Installed"], request.get("requestId"))
        elif action == "GetLog":
            self.auto_statuses(call.LogStatusNotification, ["Uploading", "Uploaded"], request.get("requestId"))

    def remote_start_accepted(self, evse_id: int | None, token: dict[str, Any], remote_start_id: int | None) -> None:
        """Remember the remoteStartId for the EVSE's next start; in auto mode, start now."""
        evse = evse_id or next((n for n, e in self.evses.items() if e.transaction_id is None), 1)
        self.evse(evse).remote_start_id = remote_start_id
        if not self.auto:
            return

        async def sequence() -> None:
            occupied = self.status_request(evse, "Charging")
            if await self.followup(occupied, self.status_sent(evse, "Charging")) is not None:
                start = self.start_request(evse, token)
                await self.followup(start, lambda _: self.started(evse, start))

        self.tasks.spawn(sequence())

    def remote_stop_accepted(self, transaction_id: str) -> None:
        """Remember that the stop is remote; in auto mode, end the transaction now."""
        self.remote_stops.add(transaction_id)
        if not self.auto:
            return
        evse = self.find_transaction(transaction_id)
        if evse is None:
            text = f"RequestStopTransaction for unknown transaction {transaction_id}: nothing to stop"
            emit({"event": "note", "text": text})
            return

        async def sequence() -> None:
            stop = self.stop_request(evse, transaction_id, reason="Remote")
            if await self.followup(stop, lambda _: self.stopped(evse, transaction_id)) is not None:
                finishing = self.status_request(evse, "Finishing")  # Occupied: still plugged in
                await self.followup(finishing, self.status_sent(evse, "Finishing"))

        self.tasks.spawn(sequence())

    def auto_trigger(self, message: str, evse_id: int | None) -> None:
        if not self.auto:
            return
        targets = [evse_id] if evse_id else sorted(self.evses)
        running = [n for n in targets if self.evse(n).transaction_id is not None]
        boot = {"vendor_name": VENDOR, "model": MODEL}

        def meter_values(n: int) -> call.MeterValues:
            return call.MeterValues(evse_id=n, meter_value=meter_value("Trigger", self.evse(n).energy_wh))

        payloads: list[Any] = {
            "BootNotification": lambda: [call.BootNotification(charging_station=boot, reason="Triggered")],
            "Heartbeat": lambda: [call.Heartbeat()],
            "StatusNotification": lambda: [self.status_request(n, self.evse(n).status) for n in targets],
            "MeterValues": lambda: [meter_values(n) for n in targets],
            "TransactionEvent": lambda: [self.meter_request(n, None, None, None, None, "Trigger") for n in running],
            "FirmwareStatusNotification": lambda: [call.FirmwareStatusNotification(status="Idle")],
            "LogStatusNotification": lambda: [call.LogStatusNotification(status="Idle")],
        }.get(message, list)()

        async def sequence() -> None:
            for payload in payloads:
                await self.followup(payload)

        self.tasks.spawn(sequence())

    def auto_report(self, request_id: int) -> None:
        """NotifyReport with every variable of the device model, in one message."""
        if not self.auto:
            return
        report = [{"component": {"name": component}, "variable": {"name": variable},
                   "variable_attribute": [{"type": "Actual", "value": value,
                                           "mutability": "ReadOnly" if readonly else "ReadWrite"}]}
                  for (component, variable), (value, readonly) in self.variables.items()]
        payload = call.NotifyReport(request_id=request_id, generated_at=now_iso(), seq_no=0, tbc=False,
                                    report_data=report)
        self.tasks.spawn(self.followup(payload))

    def auto_statuses(self, kind: Callable[..., Any], statuses: list[str], request_id: int | None) -> None:
        """Firmware or log status notifications, one after the other."""
        if not self.auto:
            return

        async def sequence() -> None:
            for status in statuses:
                if await self.followup(kind(status=status, request_id=request_id)) is None:
                    return

        self.tasks.spawn(sequence())

    # --- commands ---------------------------------------------------------------------------

    async def cmd_boot(
        self, vendor: str = VENDOR, model: str = MODEL, serialNumber: str | None = None,
        firmwareVersion: str | None = None, reason: str = "PowerUp", iccid: str | None = None,
        imsi: str | None = None, timeout: float | None = None, **fields: Any,
    ) -> dict[str, Any]:
        # 1.6 names for the same things; meterType/meterSerialNumber have no 2.0.1 field.
        vendor = fields.pop("chargePointVendor", vendor)
        model = fields.pop("chargePointModel", model)
        serialNumber = fields.pop("chargePointSerialNumber", fields.pop("chargeBoxSerialNumber", serialNumber))
        fields.pop("meterType", None)
        fields.pop("meterSerialNumber", None)
        if fields:
            raise CommandError(f"boot: no BootNotification field for {sorted(fields)}")
        modem = {"iccid": iccid, "imsi": imsi} if iccid or imsi else None
        station = {"vendor_name": vendor, "model": model, "serial_number": serialNumber,
                   "firmware_version": firmwareVersion, "modem": modem}
        return await self.request(call.BootNotification(charging_station=station, reason=reason), timeout)

    async def cmd_status(self, connector: int, status: str, errorCode: str = "NoError", info: str | None = None,
                         vendorErrorCode: str | None = None, timestamp: str | None = None,
                         connectorId: int = CONNECTOR_ID, timeout: float | None = None) -> dict[str, Any]:
        payload = self.status_request(connector, status, timestamp, connectorId)
        response = await self.request(payload, timeout)
        self.status_sent(connector, status)(response)
        return response

    async def cmd_heartbeat(self, timeout: float | None = None) -> dict[str, Any]:
        return await self.request(call.Heartbeat(), timeout)

    async def cmd_authorize(self, idTag: str, timeout: float | None = None) -> dict[str, Any]:
        response = await self.request(call.Authorize(id_token=id_token(idTag)), timeout)
        return {**response, "idTagInfo": id_tag_info(response)}

    async def cmd_start(self, connector: int, idTag: str, meterStart: float | None = None, timestamp: str | None = None,
                        reservationId: int | None = None, triggerReason: str | None = None,
                        timeout: float | None = None) -> dict[str, Any]:
        payload = self.start_request(connector, id_token(idTag), meterStart, timestamp, reservationId, triggerReason)
        response = await self.request(payload, timeout)
        self.started(connector, payload)
        return {**response, "transactionId": payload.transaction_info["transaction_id"],
                "idTagInfo": id_tag_info(response)}

    async def cmd_meter(self, connector: int, energyWh: float | None = None, powerW: float | None = None,
                        transactionId: str | None = None, timestamp: str | None = None,
                        timeout: float | None = None) -> dict[str, Any]:
        return await self.request(self.meter_request(connector, energyWh, powerW, transactionId, timestamp), timeout)

    async def cmd_stop(self, connector: int | None = None, transactionId: str | None = None,
                       meterStop: float | None = None, reason: str | None = None, idTag: str | None = None,
                       timestamp: str | None = None, triggerReason: str | None = None,
                       timeout: float | None = None) -> dict[str, Any]:
        if transactionId is None:
            if connector is None or self.evse(connector).transaction_id is None:
                raise CommandError(f"no transaction on connector {connector}")
            transactionId = self.evse(connector).transaction_id
        else:
            transactionId = str(transactionId)
            if connector is None:
                connector = self.find_transaction(transactionId)
        token = id_token(idTag) if idTag is not None else None
        payload = self.stop_request(connector, transactionId, meterStop, reason, token, timestamp, triggerReason)
        response = await self.request(payload, timeout)
        self.stopped(connector, transactionId)
        return response

    async def cmd_state(self) -> dict[str, Any]:
        return {
            "connected": self.cp is not None,
            "auto": self.auto,
            "connectors": {str(n): {"energyWh": e.energy_wh, "transactionId": e.transaction_id,
                                    "idTag": (e.id_token or {}).get("id_token"), "status": e.status,
                                    "connectorStatus": e.connector_status, "remoteStartId": e.remote_start_id}
                           for n, e in sorted(self.evses.items())},
            "seqNo": self.seq_no,
            "localListVersion": self.local_list.version,
            "localList": self.local_list.entries,
            "chargingProfiles": {str(n): p for n, p in self.profiles.items()},
            "variables": {f"{component}.{name}": value for (component, name), (value, _) in self.variables.items()},
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = base_parser("python -m controller.simulators.charger201", __doc__.splitlines()[0], SUBPROTOCOL)
    parser.add_argument("--no-compression", action="store_true", help="do not offer permessage-deflate")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    run(lambda args: Simulator(parse_args(args)), argv)


if __name__ == "__main__":
    main()
