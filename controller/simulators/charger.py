"""A simulated OCPP 1.6J charge point, driven by its parent over JSON lines.

Why it looks like this: evedge's central system is Trio code, so a charger built from
the same code could share its bugs. This one is deliberately independent: the `ocpp`
library's asyncio ChargePoint over the `websockets` client, in its own process.

Run: python -m controller.simulators.charger --url ws://127.0.0.1:PORT/ocpp/CHARGER-001
     [--id CHARGER-001] [--connectors 2] [--no-subprotocol] [--basic-auth USER:PASS]
     [--ca-file CA.pem] (wss:// URLs: trust this CA instead of the system's)
     [--log-frames] [--verbose] [--response-timeout 10]
     [--phases 3] [--max-current 32] [--ramp-s 1] [--meter-interval 0]

Reservations are held per connector: ReserveNow is answered Accepted (Occupied while a
transaction runs or another reservation holds it; Rejected for connector 0), reported with
StatusNotification Reserved (auto mode); a remote start for another tag there is Rejected, and
a start for the reserved tag on that connector carries the reservationId; CancelReservation
frees it (Available). Reservations do not expire here: the central system times them.

Charging profiles are obeyed (controller/simulators/ev.py): while a transaction runs, its car
draws the limit in force after a ramp of --ramp-s, up to the car's own maximum (`car`), and
the simulator emits `draw` events; with --meter-interval it sends MeterValues with the energy
register, power and Current.Import per phase that often (and only then integrates the energy).

stdin, one JSON object a line: {"id": <any>, "cmd": <name>, ...fields}. Every command is
answered by exactly one stdout line, {"id", "ok": true, "result": {...}} or
{"id", "ok": false, "error": "...", "code": <CallError code or null>, ...}. Commands run
concurrently, so a later `disconnect` can interrupt a `call` still waiting for its answer.
Every command that waits for the central system accepts "timeout" (seconds).

  boot {vendor?, model?, <other BootNotification fields>}  -> CS response payload
  status {connector, status, errorCode="NoError", info?, vendorErrorCode?, timestamp?}
  heartbeat {} | authorize {idTag}
  start {connector, idTag, meterStart?, timestamp?, reservationId?}   (meterStart: register)
  meter {connector, energyWh?, powerW?, transactionId?, timestamp?}   (sets the register)
  stop {connector | transactionId, meterStop?, reason?, idTag?, timestamp?}
  call {action, payload}        raw CALL, no validation; CALLERROR -> ok:false with code
  raw {frame, expect_reply=true} writes text; result {"frame": next non-CALL frame text}
  respond {action, payload?, delay_s?, no_answer?}   how to answer that CS->CP action;
                                with none of the three, back to the default answer
  auto {enabled}                RemoteStart/RemoteStop/TriggerMessage/ReserveNow follow-ups (default on); also
                                UpdateFirmware (FirmwareStatusNotifications, then a boot with the
                                file's name as firmwareVersion) and GetDiagnostics (its statuses)
  state {}                      connectors, auto flag, connection, electrics
  car {connector, maxA}         the car's own maximum current per phase
  obey {enabled}                false: accept profiles but ignore them (the car takes all it can)
  autometer {interval}          MeterValues every `interval` s while a transaction runs (0: off)
  locallist {supported?, maxLength?, version?, forget?}   how it keeps its local list (SendLocalList
                                and GetLocalListVersion answer from it; SendLocalListMaxLength is
                                in GetConfiguration); result: the list
  forget_profiles {}            it lost every charging profile (GetCompositeSchedule answers from
                                the profiles it holds)
  disconnect {abrupt=true} -> {code} | reconnect {url?, basic_auth?} (failure: "status") | quit {}

stdout events: connected {subprotocol, url}, connect_failed {status, error} (then exit 2),
call {action, payload, uniqueId} (before answering), sent {action, request, response |
error, code} (auto follow-ups), closed {code, reason, by: "client"|"server"},
note {text}, frame {dir: "in"|"out", text} (with --log-frames), draw {connector, amps: [L1, L2,
L3], limit} (what a connector draws changed; the charger's own phases).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Callable

from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as OcppChargePoint
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from controller.simulators.common import (
    CommandError,
    LocalList,
    SimConnection,
    SimulatorBase,
    base_parser,
    emit,
    now_iso,
    plain,
    register_value,
    run,
)
from controller.simulators.ev import Electrics

SUBPROTOCOL = "ocpp1.6"
VENDOR, MODEL = "evedge-sim", "SimCharger"


@dataclass
class Connector:
    energy_wh: float = 0
    transaction_id: int | None = None
    id_tag: str | None = None
    status: str = "Available"
    reservation: dict[str, Any] | None = None  # {reservationId, idTag, parentIdTag?, expiryDate} while reserved


class SimChargePoint(SimConnection, OcppChargePoint):
    """One websocket connection (common.SimConnection) with the 1.6 default answers."""

    sim: Simulator

    # --- default answers to CS-initiated calls (the library passes snake_case kwargs) --------

    @on(Action.reset)
    def on_reset(self, **_: Any) -> call_result.Reset:
        return call_result.Reset(status="Accepted")

    @on(Action.unlock_connector)
    def on_unlock_connector(self, **_: Any) -> call_result.UnlockConnector:
        return call_result.UnlockConnector(status="Unlocked")

    @on(Action.change_availability)
    def on_change_availability(self, **_: Any) -> call_result.ChangeAvailability:
        return call_result.ChangeAvailability(status="Accepted")

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> call_result.GetConfiguration:
        config = self.sim.config
        names = key or list(config)
        known = [{"key": k, "readonly": config[k][1], "value": config[k][0]} for k in names if k in config]
        unknown = [k for k in names if k not in config]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any) -> call_result.ChangeConfiguration:
        if key in self.sim.config and self.sim.config[key][1]:
            return call_result.ChangeConfiguration(status="Rejected")
        self.sim.config[key] = (value, False)
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger_message(self, **_: Any) -> call_result.TriggerMessage:
        return call_result.TriggerMessage(status="Accepted")

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        return call_result.ClearCache(status="Accepted")

    @on(Action.send_local_list)
    def on_send_local_list(self, list_version: int, update_type: str,
                           local_authorization_list: list[dict[str, Any]] | None = None,
                           **_: Any) -> call_result.SendLocalList:
        return call_result.SendLocalList(status=self.sim.install_local_list(
            list_version, update_type, plain(snake_to_camel_case(local_authorization_list or []))))

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        version = self.sim.local_list.version if self.sim.local_list_supported else -1
        return call_result.GetLocalListVersion(list_version=version)

    @on(Action.data_transfer)
    def on_data_transfer(self, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="Accepted")

    @on(Action.reserve_now)
    def on_reserve_now(self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int,
                       parent_id_tag: str | None = None, **_: Any) -> call_result.ReserveNow:
        return call_result.ReserveNow(status=self.sim.reserve(connector_id, reservation_id, id_tag, expiry_date,
                                                              parent_id_tag))

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> call_result.CancelReservation:
        return call_result.CancelReservation(status=self.sim.cancel_reservation(reservation_id))

    @on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        # Kept camelCase so GetCompositeSchedule can echo the latest schedule back.
        profile = plain(snake_to_camel_case(cs_charging_profiles))
        transaction_id = self.sim.connector(connector_id).transaction_id if connector_id else None
        status = self.sim.electrics.profiles.install(connector_id, profile, transaction_id)
        if status == "Accepted":
            self.sim.profiles[connector_id] = profile
            self.sim.tick()  # a new limit takes effect now
        return call_result.SetChargingProfile(status=status)

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self, id: int | None = None, connector_id: int | None = None, charging_profile_purpose: str | None = None,
        stack_level: int | None = None, **_: Any
    ) -> call_result.ClearChargingProfile:
        self.sim.electrics.profiles.clear(id, connector_id, charging_profile_purpose, stack_level)
        profiles = self.sim.profiles
        for cid, profile in list(profiles.items()):
            if (id is None or profile.get("chargingProfileId") == id) and (connector_id is None or cid == connector_id):
                del profiles[cid]
        return call_result.ClearChargingProfile(status="Accepted")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id: int, duration: int, **_: Any) -> call_result.GetCompositeSchedule:
        """The limit in force now from every profile the charger holds (one period: the
        simulator does not plan ahead); Rejected when no profile limits the connector."""
        electrics = self.sim.electrics
        transaction_id = self.sim.connector(connector_id).transaction_id if connector_id else None
        limit = electrics.profiles.limit(connector_id, transaction_id, electrics.phases,
                                         electrics.car(connector_id).started if connector_id else None)
        if limit is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        schedule = {"duration": duration, "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(limit, 1)}]}
        return call_result.GetCompositeSchedule(status="Accepted", connector_id=connector_id,
                                                schedule_start=now_iso(), charging_schedule=schedule)

    @on(Action.update_firmware)
    def on_update_firmware(self, **_: Any) -> call_result.UpdateFirmware:
        return call_result.UpdateFirmware()

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, **_: Any) -> call_result.GetDiagnostics:
        return call_result.GetDiagnostics(file_name="diagnostics.log")

    @after(Action.update_firmware)
    def after_update_firmware(self, location: str, **_: Any) -> None:
        self.sim.auto_firmware(location)

    @after(Action.get_diagnostics)
    def after_get_diagnostics(self, **_: Any) -> None:
        self.sim.auto_diagnostics()

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(self, id_tag: str, connector_id: int | None = None,
                                    **_: Any) -> call_result.RemoteStartTransaction:
        if self.sim.reserved_for_another(connector_id, id_tag):
            return call_result.RemoteStartTransaction(status="Rejected")
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(self, **_: Any) -> call_result.RemoteStopTransaction:
        return call_result.RemoteStopTransaction(status="Accepted")

    # The library runs @after hooks only after the default answer went out.

    @after(Action.remote_start_transaction)
    def after_remote_start_transaction(self, id_tag: str, connector_id: int | None = None, **_: Any) -> None:
        if not self.sim.reserved_for_another(connector_id, id_tag):  # else answered Rejected
            self.sim.auto_remote_start(connector_id, id_tag)

    @after(Action.remote_stop_transaction)
    def after_remote_stop_transaction(self, transaction_id: int, **_: Any) -> None:
        self.sim.auto_remote_stop(transaction_id)

    @after(Action.reserve_now)
    def after_reserve_now(self, connector_id: int, reservation_id: int, **_: Any) -> None:
        self.sim.auto_reservation_status(connector_id, reservation_id)

    @after(Action.cancel_reservation)
    def after_cancel_reservation(self, reservation_id: int, **_: Any) -> None:
        self.sim.auto_reservation_status(None, reservation_id)

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, connector_id: int | None = None, **_: Any) -> None:
        self.sim.auto_trigger(requested_message, connector_id)


class Simulator(SimulatorBase):
    """Charger state and the 1.6 command handlers (`cmd_<name>`; the rest in SimulatorBase)."""

    SUBPROTOCOL = SUBPROTOCOL
    CHARGE_POINT = SimChargePoint

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.connectors = {n: Connector() for n in range(1, args.connectors + 1)}
        self.config: dict[str, tuple[str, bool]] = {  # key -> (value, readonly)
            "HeartbeatInterval": ("300", False),
            "MeterValueSampleInterval": ("60", False),
            "MeterValuesSampledData": ("Energy.Active.Import.Register,Power.Active.Import", False),
            "AuthorizeRemoteTxRequests": ("false", False),
            "NumberOfConnectors": (str(args.connectors), True),
            "LocalAuthListEnabled": ("true", False),
            "LocalAuthListMaxLength": ("1000", True),
            "SendLocalListMaxLength": ("100", True),
        }
        self.local_list = LocalList()  # idTag -> idTagInfo
        self.local_list_supported = True
        self.firmware_version: str | None = None  # set by an UpdateFirmware; sent in the boot after it
        self.cancelled_reservation: int | None = None  # the connector the last CancelReservation freed
        self.profiles: dict[int, dict[str, Any]] = {}
        self.electrics = Electrics(phases=args.phases, max_a=args.max_current, ramp_s=args.ramp_s)
        self.meter_interval: float = args.meter_interval
        self._ticked = time.monotonic()
        self._emitted: dict[int, tuple[list[float], float | None]] = {}  # the last draw event per connector

    def connector(self, n: int) -> Connector:
        return self.connectors.setdefault(n, Connector())

    def install_local_list(self, version: int, update_type: str, entries: list[dict[str, Any]]) -> str:
        """SendLocalList as a charger keeps it: a full list replaces, a differential one adds,
        changes and (an entry without idTagInfo) removes, and needs a newer version."""
        if not self.local_list_supported:
            return "NotSupported"
        return self.local_list.install(version, update_type == "Full",
                                       [(e["idTag"], e.get("idTagInfo")) for e in entries],
                                       int(self.config["SendLocalListMaxLength"][0]))

    # --- shared by commands and auto follow-ups ------------------------------------------

    def status_request(self, connector: int, status: str, **extra: Any) -> call.StatusNotification:
        return call.StatusNotification(connector_id=connector, status=status, **{"error_code": "NoError", **extra})

    def status_sent(self, connector: int, status: str) -> Callable[[dict[str, Any]], None]:
        def record(_: dict[str, Any]) -> None:
            self.connector(connector).status = status
        return record

    def start_request(
        self, connector: int, id_tag: str, meter_start: float | None = None, **extra: Any
    ) -> call.StartTransaction:
        c = self.connector(connector)
        if meter_start is not None:
            c.energy_wh = meter_start
        if extra.get("reservation_id") is None and (reserved := self.reservation_for(connector, id_tag)) is not None:
            extra["reservation_id"] = reserved
        return call.StartTransaction(
            connector_id=connector, id_tag=id_tag, meter_start=int(round(c.energy_wh)),
            timestamp=extra.pop("timestamp", None) or now_iso(), **extra,
        )

    def started(self, connector: int, id_tag: str, response: dict[str, Any]) -> None:
        c = self.connector(connector)
        c.transaction_id, c.id_tag = response.get("transactionId"), id_tag
        if self.reservation_for(connector, id_tag) is not None:
            c.reservation = None  # used by this charge
        self.electrics.car(connector).started = time.time()

    # --- reservations -----------------------------------------------------------------------

    def reserve(self, connector: int, reservation_id: int, id_tag: str, expiry_date: str,
                parent_id_tag: str | None) -> str:
        """ReserveNow's answer; an accepted reservation is held on the connector."""
        if connector not in self.connectors:
            return "Rejected"  # connector 0 (the whole charger) is not supported, nor unknown ones
        c = self.connector(connector)
        if c.transaction_id is not None or (c.reservation and c.reservation["reservationId"] != reservation_id):
            return "Occupied"
        if c.status in ("Faulted", "Unavailable"):
            return c.status
        c.reservation = {"reservationId": reservation_id, "idTag": id_tag, "parentIdTag": parent_id_tag,
                         "expiryDate": expiry_date}
        return "Accepted"

    def reserved_connector(self, reservation_id: Any) -> int | None:
        return next((n for n, c in self.connectors.items()
                     if c.reservation and c.reservation["reservationId"] == reservation_id), None)

    def cancel_reservation(self, reservation_id: int) -> str:
        connector = self.cancelled_reservation = self.reserved_connector(reservation_id)
        if connector is None:
            return "Rejected"
        self.connector(connector).reservation = None
        return "Accepted"

    def reservation_for(self, connector: int, id_tag: str) -> int | None:
        """The reservation a start on `connector` for `id_tag` uses (the simulator knows no tag's
        parent: a card of the reservation's parent starts without naming it, as a charger that
        cannot tell would, and the central system matches it)."""
        held = self.connector(connector).reservation
        if held is None or id_tag.casefold() != held["idTag"].casefold():
            return None
        return held["reservationId"]

    def reserved_for_another(self, connector: int | None, id_tag: str) -> bool:
        return bool(connector) and self.connector(connector).reservation is not None \
            and self.reservation_for(connector, id_tag) is None

    def auto_reservation_status(self, connector: int | None, reservation_id: int) -> None:
        """Reserved after an accepted ReserveNow, Available after a CancelReservation."""
        if not self.auto:
            return
        if connector is None:
            connector, self.cancelled_reservation = self.cancelled_reservation, None
            status = "Available"
        else:
            status = "Reserved" if self.reserved_connector(reservation_id) == connector else None
        if connector is None or status is None:
            return
        self.tasks.spawn(self.followup(self.status_request(connector, status), self.status_sent(connector, status)))

    def find_transaction(self, transaction_id: int) -> int | None:
        return next((n for n, c in self.connectors.items() if c.transaction_id == transaction_id), None)

    def stop_request(
        self, connector: int | None, transaction_id: int, meter_stop: float | None = None, **extra: Any
    ) -> call.StopTransaction:
        if connector is not None and meter_stop is not None:
            self.connector(connector).energy_wh = meter_stop
        if meter_stop is None:
            meter_stop = self.connector(connector).energy_wh if connector is not None else 0
        return call.StopTransaction(
            transaction_id=transaction_id, meter_stop=int(round(meter_stop)),
            timestamp=extra.pop("timestamp", None) or now_iso(), **extra,
        )

    def stopped(self, connector: int | None) -> None:
        if connector is not None:
            c = self.connector(connector)
            c.transaction_id = c.id_tag = None
            self.electrics.profiles.transaction_ended(connector)
            self.tick()

    # --- the electrics: what the cars draw ----------------------------------------------------

    def tick(self) -> None:
        """Move each car toward the limit in force (and, metering, count the energy)."""
        now = time.monotonic()
        dt, self._ticked = now - self._ticked, now
        transactions = {n: c.transaction_id for n, c in self.connectors.items()}
        if self.meter_interval > 0:
            for n in transactions:
                self.connector(n).energy_wh += self.electrics.power_w(n) * dt / 3600
        self.electrics.tick(dt, transactions)
        for n, transaction_id in transactions.items():
            limit = self.electrics.profiles.limit(n, transaction_id, self.electrics.phases,
                                                  self.electrics.car(n).started)
            seen = (self.electrics.per_phase(n), limit)
            if self._emitted.get(n) != seen:
                self._emitted[n] = seen
                emit({"event": "draw", "connector": n, "amps": seen[0], "limit": limit})

    def background(self) -> list[Coroutine[Any, Any, Any]]:
        return [self.run_electrics(), self.run_meter_values()]

    async def run_electrics(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            self.tick()

    async def run_meter_values(self) -> None:
        """MeterValues every meter_interval s for each running transaction (while connected)."""
        while True:
            await asyncio.sleep(self.meter_interval if self.meter_interval > 0 else 0.5)
            if self.meter_interval <= 0 or self.cp is None:
                continue
            for n, c in sorted(self.connectors.items()):
                if c.transaction_id is None:
                    continue
                try:
                    await self.request(self.meter_request(n, None, None, None, None, currents=True), None)
                except CommandError:
                    pass

    def meter_request(self, connector: int, energy_wh: float | None, power_w: float | None,
                      transaction_id: int | None, timestamp: str | None, currents: bool = False) -> call.MeterValues:
        c = self.connector(connector)
        if energy_wh is not None:
            c.energy_wh = energy_wh
        sampled = [{"value": register_value(round(c.energy_wh, 3)), "context": "Sample.Periodic",
                    "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
        if currents and power_w is None:
            power_w = round(self.electrics.power_w(connector))
        if power_w is not None:
            sampled.append({"value": register_value(power_w), "context": "Sample.Periodic",
                            "measurand": "Power.Active.Import", "unit": "W"})
        if currents:
            amps = self.electrics.per_phase(connector)
            for phase, value in zip(("L1", "L2", "L3"), amps[: self.electrics.phases]):
                sampled.append({"value": register_value(value), "context": "Sample.Periodic",
                                "measurand": "Current.Import", "phase": phase, "unit": "A"})
        return call.MeterValues(
            connector_id=connector,
            transaction_id=transaction_id if transaction_id is not None else c.transaction_id,
            meter_value=[{"timestamp": timestamp or now_iso(), "sampled_value": sampled}],
        )

    # --- auto mode: what a real charger does after answering -----------------------------

    def after_answer(self, action: str, request: dict[str, Any], answer: dict[str, Any]) -> None:
        """Follow-ups for answers set with `respond {payload}` (the library path uses @after)."""
        if answer.get("status") != "Accepted":
            return
        if action == "RemoteStartTransaction":
            self.auto_remote_start(request.get("connectorId"), request.get("idTag", ""))
        elif action == "RemoteStopTransaction":
            self.auto_remote_stop(request.get("transactionId"))
        elif action == "TriggerMessage":
            self.auto_trigger(request.get("requestedMessage", ""), request.get("connectorId"))
        elif action == "UpdateFirmware":
            self.auto_firmware(request.get("location", ""))
        elif action == "GetDiagnostics":
            self.auto_diagnostics()


    def auto_remote_start(self, connector_id: int | None, id_tag: str) -> None:
        if not self.auto:
            return
        connector = connector_id or next((n for n, c in self.connectors.items() if n and c.transaction_id is None), 1)

        async def sequence() -> None:
            charging = self.status_request(connector, "Charging")
            if await self.followup(charging, self.status_sent(connector, "Charging")) is not None:
                await self.followup(self.start_request(connector, id_tag),
                                    lambda response: self.started(connector, id_tag, response))

        self.tasks.spawn(sequence())

    def auto_remote_stop(self, transaction_id: Any) -> None:
        if not self.auto:
            return
        connector = self.find_transaction(transaction_id)
        if connector is None:
            text = f"RemoteStopTransaction for unknown transaction {transaction_id}: nothing to stop"
            emit({"event": "note", "text": text})
            return

        async def sequence() -> None:
            stop = self.stop_request(connector, transaction_id, reason="Remote")
            if await self.followup(stop, lambda _: self.stopped(connector)) is not None:
                finishing = self.status_request(connector, "Finishing")
                await self.followup(finishing, self.status_sent(connector, "Finishing"))

        self.tasks.spawn(sequence())

    def auto_firmware(self, location: str) -> None:
        """Download, install, then boot again running the new firmware (named after the file)."""
        if not self.auto:
            return

        async def sequence() -> None:
            for status in ("Downloading", "Downloaded", "Installing", "Installed"):
                await self.followup(call.FirmwareStatusNotification(status=status))
            self.firmware_version = location.rstrip("/").rsplit("/", 1)[-1]
            await self.followup(call.BootNotification(charge_point_model=MODEL, charge_point_vendor=VENDOR,
                                                      firmware_version=self.firmware_version))

        self.tasks.spawn(sequence())

    def auto_diagnostics(self) -> None:
        if not self.auto:
            return

        async def sequence() -> None:
            for status in ("Uploading", "Uploaded"):
                await self.followup(call.DiagnosticsStatusNotification(status=status))

        self.tasks.spawn(sequence())

    def auto_trigger(self, message: str, connector_id: int | None) -> None:
        if not self.auto:
            return
        targets = [connector_id] if connector_id else sorted(self.connectors)
        payloads: list[Any] = {
            "BootNotification": lambda: [call.BootNotification(charge_point_model=MODEL, charge_point_vendor=VENDOR)],
            "Heartbeat": lambda: [call.Heartbeat()],
            "StatusNotification": lambda: [self.status_request(n, self.connector(n).status) for n in targets],
            "MeterValues": lambda: [self.meter_request(n, None, None, None, None) for n in targets],
            "DiagnosticsStatusNotification": lambda: [call.DiagnosticsStatusNotification(status="Idle")],
            "FirmwareStatusNotification": lambda: [call.FirmwareStatusNotification(status="Idle")],
        }.get(message, list)()

        async def sequence() -> None:
            for payload in payloads:
                await self.followup(payload)

        self.tasks.spawn(sequence())

    # --- commands ---------------------------------------------------------------------------

    async def cmd_boot(
        self, vendor: str = VENDOR, model: str = MODEL, timeout: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        kwargs = {"charge_point_vendor": vendor, "charge_point_model": model, **camel_to_snake_case(fields)}
        return await self.request(call.BootNotification(**kwargs), timeout)

    async def cmd_status(self, connector: int, status: str, errorCode: str = "NoError", info: str | None = None,
                         vendorErrorCode: str | None = None, timestamp: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        payload = self.status_request(connector, status, error_code=errorCode, info=info,
                                      vendor_error_code=vendorErrorCode, timestamp=timestamp)
        response = await self.request(payload, timeout)
        self.status_sent(connector, status)(response)
        return response

    async def cmd_heartbeat(self, timeout: float | None = None) -> dict[str, Any]:
        return await self.request(call.Heartbeat(), timeout)

    async def cmd_authorize(self, idTag: str, timeout: float | None = None) -> dict[str, Any]:
        return await self.request(call.Authorize(id_tag=idTag), timeout)

    async def cmd_start(self, connector: int, idTag: str, meterStart: float | None = None, timestamp: str | None = None,
                        reservationId: int | None = None, timeout: float | None = None) -> dict[str, Any]:
        payload = self.start_request(connector, idTag, meterStart, timestamp=timestamp, reservation_id=reservationId)
        response = await self.request(payload, timeout)
        self.started(connector, idTag, response)
        return response

    async def cmd_meter(self, connector: int, energyWh: float | None = None, powerW: float | None = None,
                        transactionId: int | None = None, timestamp: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        return await self.request(self.meter_request(connector, energyWh, powerW, transactionId, timestamp), timeout)

    async def cmd_stop(self, connector: int | None = None, transactionId: int | None = None, meterStop: float | None = None,
                       reason: str | None = None, idTag: str | None = None, timestamp: str | None = None,
                       timeout: float | None = None) -> dict[str, Any]:
        if transactionId is None:
            if connector is None or self.connector(connector).transaction_id is None:
                raise CommandError(f"no transaction on connector {connector}")
            transactionId = self.connector(connector).transaction_id
        elif connector is None:
            connector = self.find_transaction(transactionId)
        payload = self.stop_request(connector, transactionId, meterStop, reason=reason, id_tag=idTag, timestamp=timestamp)
        response = await self.request(payload, timeout)
        self.stopped(connector)
        return response

    async def cmd_locallist(self, supported: bool | None = None, maxLength: int | None = None,
                            version: int | None = None, forget: bool = False) -> dict[str, Any]:
        """Set how the charger keeps its local list; `forget`: it lost the list (version 0)."""
        if supported is not None:
            self.local_list_supported = bool(supported)
        if maxLength is not None:
            self.config["SendLocalListMaxLength"] = (str(int(maxLength)), True)
        if forget:
            self.local_list = LocalList()
        if version is not None:
            self.local_list.version = int(version)
        return {"version": self.local_list.version, "entries": self.local_list.entries,
                "supported": self.local_list_supported, "maxLength": int(self.config["SendLocalListMaxLength"][0])}

    async def cmd_forget_profiles(self) -> dict[str, Any]:
        """The charger lost every charging profile (a reboot that does not keep them)."""
        self.electrics.profiles.installed.clear()
        self.profiles.clear()
        self.tick()
        return {"installed": []}

    async def cmd_car(self, connector: int, maxA: float) -> dict[str, Any]:
        self.electrics.car(connector).max_a = float(maxA)
        self.tick()
        return {"connector": connector, "maxA": float(maxA)}

    async def cmd_obey(self, enabled: bool = True) -> dict[str, Any]:
        self.electrics.obey = bool(enabled)
        self.tick()
        return {"enabled": self.electrics.obey}

    async def cmd_autometer(self, interval: float = 0.0) -> dict[str, Any]:
        self.meter_interval = float(interval)
        return {"interval": self.meter_interval}

    async def cmd_state(self) -> dict[str, Any]:
        return {
            "connected": self.cp is not None,
            "auto": self.auto,
            "connectors": {str(n): {"energyWh": c.energy_wh, "transactionId": c.transaction_id,
                                    "idTag": c.id_tag, "status": c.status, "reservation": c.reservation}
                           for n, c in sorted(self.connectors.items())},
            "localListVersion": self.local_list.version,
            "localList": self.local_list.entries,
            "installedProfiles": {str(pid): {"connectorId": i.connector_id, "profile": i.profile}
                                  for pid, i in self.electrics.profiles.installed.items()},
            "firmwareVersion": self.firmware_version,
            "chargingProfiles": {str(n): p for n, p in self.profiles.items()},
            "electrics": {
                "phases": self.electrics.phases, "obey": self.electrics.obey,
                "connectors": {str(n): {"drawnA": self.electrics.per_phase(n),
                                        "carMaxA": self.electrics.car(n).max_a,
                                        "limitA": self.electrics.profiles.limit(
                                            n, c.transaction_id, self.electrics.phases, self.electrics.car(n).started)}
                               for n, c in sorted(self.connectors.items())},
            },
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = base_parser("python -m controller.simulators.charger", __doc__.splitlines()[0], SUBPROTOCOL)
    parser.add_argument("--phases", type=int, choices=(1, 3), default=3, help="phases the charger supplies")
    parser.add_argument("--max-current", type=float, default=32.0, help="the charger's own limit per phase, A")
    parser.add_argument("--ramp-s", type=float, default=1.0, help="seconds a car takes from 0 to 32 A")
    parser.add_argument("--meter-interval", type=float, default=0.0,
                        help="send MeterValues (energy, power, Current.Import per phase) this often; 0: never")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    run(lambda args: Simulator(parse_args(args)), argv)


if __name__ == "__main__":
    main()
