"""A simulated OCPP 1.6J charge point, driven by its parent over JSON lines.

Why it looks like this: evedge's central system is Trio code, so a charger built from
the same code could share its bugs. This one is deliberately independent: the `ocpp`
library's asyncio ChargePoint over the `websockets` client, in its own process.

Run: python -m controller.simulators.charger --url ws://127.0.0.1:PORT/ocpp/CHARGER-001
     [--id CHARGER-001] [--connectors 2] [--no-subprotocol] [--basic-auth USER:PASS]
     [--ca-file CA.pem] (wss:// URLs: trust this CA instead of the system's)
     [--log-frames] [--verbose] [--response-timeout 10]
     [--phases 3] [--max-current 32] [--ramp-s 1] [--meter-interval 0]

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
  auto {enabled}                RemoteStart/RemoteStop/TriggerMessage follow-ups (default on)
  state {}                      connectors, auto flag, connection, electrics
  car {connector, maxA}         the car's own maximum current per phase
  obey {enabled}                false: accept profiles but ignore them (the car takes all it can)
  autometer {interval}          MeterValues every `interval` s while a transaction runs (0: off)
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
import base64
import decimal
import inspect
import json
import logging
import ssl
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Coroutine, TypeVar

import websockets
from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as OcppChargePoint
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from controller.simulators.ev import Electrics

log = logging.getLogger("evedge.simulator")
T = TypeVar("T")
SUBPROTOCOL = "ocpp1.6"
VENDOR, MODEL = "evedge-sim", "SimCharger"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    # The ocpp library re-parses some payloads with Decimal floats.
    return float(value) if isinstance(value, decimal.Decimal) else str(value)


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=_json_default)


def emit(obj: dict[str, Any]) -> None:
    """One line to the parent, flushed at once: the parent waits on these lines."""
    sys.stdout.write(dumps(obj) + "\n")
    sys.stdout.flush()


def plain(value: Any) -> Any:
    """Decimal-free JSON data (the library hands Decimals to handlers of some actions)."""
    return json.loads(dumps(value))


def wire(payload: Any) -> dict[str, Any]:
    """The camelCase payload the library puts on the wire for a call dataclass."""
    return plain(remove_nones(snake_to_camel_case(serialize_as_dict(payload))))


def register_value(wh: float) -> str:
    return str(int(wh)) if float(wh).is_integer() else str(wh)


class CommandError(Exception):
    """A command failed; `extra` fields go into the error line (status, details, ...)."""

    def __init__(self, error: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.code, self.extra = error, code, extra


def describe(exc: Exception) -> str:
    """Short text for library errors, whose str() embeds the whole schema and message."""
    if isinstance(exc, OCPPError):
        cause = exc.details.get("cause") if isinstance(exc.details, dict) else None
        return f"{exc.code}: {str(cause).splitlines()[0] if cause else exc.description}"
    return f"{type(exc).__name__}: {exc}"


def call_error(frame: list[Any]) -> CommandError:
    """CommandError from a CALLERROR frame [4, uid, code, description, details]."""
    code = frame[2] if len(frame) > 2 else None
    description = frame[3] if len(frame) > 3 else ""
    return CommandError(description or str(code), code, details=frame[4] if len(frame) > 4 else None)


class Tasks:
    """Background tasks with strong references, logged failures and one-shot cancel."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())
            emit({"event": "note", "text": f"simulator task failed: {task.exception()!r}"})

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()


@dataclass
class Connector:
    energy_wh: float = 0
    transaction_id: int | None = None
    id_tag: str | None = None
    status: str = "Available"


@dataclass
class Rule:
    """How to answer one CS->CP action, set by `respond`."""

    payload: dict[str, Any] | None = None
    delay_s: float = 0.0
    no_answer: bool = False


class SimChargePoint(OcppChargePoint):
    """One websocket connection. Simulator state lives in `sim` so it survives reconnects."""

    def __init__(self, sim: Simulator, ws: Any) -> None:
        # Timeouts are enforced by guard(), which also notices a dropped connection.
        super().__init__(sim.charger_id, ws, response_timeout=10**6)
        self.sim = sim
        self.ws = ws
        self.closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.closing_by_client = False
        self.tasks = Tasks()
        self._replies: dict[str, list[Any] | None] = {}  # library calls in flight -> raw reply
        self._raw_calls: dict[str, asyncio.Future[list[Any]]] = {}
        self._raw_waiter: asyncio.Future[str] | None = None

    # --- frames in and out --------------------------------------------------------------

    async def _send(self, message: str) -> None:
        if self.sim.log_frames:
            emit({"event": "frame", "dir": "out", "text": message})
        await super()._send(message)

    async def route_message(self, raw: str | bytes) -> None:
        """Sort incoming frames before the library sees them.

        CALLs are reported and answered in their own task (so a `delay_s` answer does
        not stall the receive loop); replies to `call`/`raw` commands are taken out;
        replies to library calls are recorded raw so results stay camelCase as received.
        """
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if self.sim.log_frames:
            emit({"event": "frame", "dir": "in", "text": text})
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        kind = msg[0] if isinstance(msg, list) and msg else None
        if kind == 2:
            if len(msg) == 4 and isinstance(msg[1], str) and isinstance(msg[2], str) and isinstance(msg[3], dict):
                emit({"event": "call", "action": msg[2], "payload": msg[3], "uniqueId": msg[1]})
                self.tasks.spawn(self._answer(raw, msg[1], msg[2], msg[3]))
                return
        else:
            if self._raw_waiter is not None and not self._raw_waiter.done():
                self._raw_waiter.set_result(text)
                return
            uid = msg[1] if kind in (3, 4) and len(msg) > 1 and isinstance(msg[1], str) else None
            if uid in self._raw_calls:
                future = self._raw_calls.pop(uid)
                if not future.done():
                    future.set_result(msg)
                return
            if uid in self._replies:
                self._replies[uid] = msg
        await super().route_message(raw)

    async def _answer(self, raw: str | bytes, uid: str, action: str, payload: dict[str, Any]) -> None:
        rule = self.sim.rules.get(action)
        if rule is not None and rule.no_answer:
            return
        if rule is not None and rule.delay_s:
            await asyncio.sleep(rule.delay_s)
        if rule is not None and rule.payload is not None:
            # Sent as is, unvalidated, so tests can also answer with invalid payloads.
            await self._send(dumps([3, uid, rule.payload]))
            self.sim.after_answer(action, payload, rule.payload)
        else:
            # The library validates, calls the @on handler, answers, then runs @after.
            await super().route_message(raw)

    async def guard(self, aw: Awaitable[T], timeout: float) -> T:
        """Await `aw`, failing fast if the connection drops or `timeout` passes."""
        task = asyncio.ensure_future(aw)
        try:
            done, _ = await asyncio.wait({task, self.closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
        if task in done:
            return task.result()
        if self.closed.done():
            raise CommandError("connection closed while waiting for the answer")
        raise CommandError(f"no answer within {timeout} s")

    # --- charger-initiated calls -----------------------------------------------------------

    async def request(self, payload: Any, timeout: float) -> dict[str, Any]:
        """Send a typed call through the library; return the reply payload as received."""
        action = type(payload).__name__
        uid = str(uuid.uuid4())
        self._replies[uid] = None
        try:
            try:
                await self.guard(self.call(payload, suppress=False, unique_id=uid), timeout)
            except CommandError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes an error line
                reply = self._replies.get(uid)
                if reply is None:
                    raise CommandError(f"{action} not sent: {describe(exc)}") from exc
                if reply[0] == 4:
                    raise call_error(reply) from exc
                raise CommandError(f"invalid {action} response: {describe(exc)}", response=reply[2]) from exc
            reply = self._replies[uid]
            assert reply is not None
            return reply[2]
        finally:
            self._replies.pop(uid, None)

    async def raw_call(self, action: str, payload: Any, timeout: float) -> dict[str, Any]:
        async def exchange() -> list[Any]:
            async with self._call_lock:  # still one outstanding CALL at a time
                uid = str(uuid.uuid4())
                future = self._raw_calls[uid] = asyncio.get_running_loop().create_future()
                try:
                    await self._send(dumps([2, uid, action, payload]))
                    return await future
                finally:
                    self._raw_calls.pop(uid, None)

        reply = await self.guard(exchange(), timeout)
        if reply[0] == 4:
            raise call_error(reply)
        return reply[2] if len(reply) > 2 else {}

    async def raw_frame(self, frame: str, expect_reply: bool, timeout: float) -> dict[str, Any]:
        async def exchange() -> dict[str, Any]:
            async with self._call_lock:
                if not expect_reply:
                    await self._send(frame)
                    return {}
                self._raw_waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._send(frame)
                    return {"frame": await self._raw_waiter}
                finally:
                    self._raw_waiter = None

        return await self.guard(exchange(), timeout)

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
    def on_send_local_list(self, list_version: int, **_: Any) -> call_result.SendLocalList:
        self.sim.local_list_version = list_version
        return call_result.SendLocalList(status="Accepted")

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=self.sim.local_list_version)

    @on(Action.data_transfer)
    def on_data_transfer(self, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="Accepted")

    @on(Action.reserve_now)
    def on_reserve_now(self, **_: Any) -> call_result.ReserveNow:
        return call_result.ReserveNow(status="Accepted")

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, **_: Any) -> call_result.CancelReservation:
        return call_result.CancelReservation(status="Accepted")

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
    def on_get_composite_schedule(self, connector_id: int, **_: Any) -> call_result.GetCompositeSchedule:
        profile = self.sim.profiles.get(connector_id) or self.sim.profiles.get(0) or {}
        return call_result.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=now_iso(),
            charging_schedule=profile.get("chargingSchedule"),
        )

    @on(Action.update_firmware)
    def on_update_firmware(self, **_: Any) -> call_result.UpdateFirmware:
        return call_result.UpdateFirmware()

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, **_: Any) -> call_result.GetDiagnostics:
        return call_result.GetDiagnostics(file_name="diagnostics.log")

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(self, **_: Any) -> call_result.RemoteStartTransaction:
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(self, **_: Any) -> call_result.RemoteStopTransaction:
        return call_result.RemoteStopTransaction(status="Accepted")

    # The library runs @after hooks only after the default answer went out.

    @after(Action.remote_start_transaction)
    def after_remote_start_transaction(self, id_tag: str, connector_id: int | None = None, **_: Any) -> None:
        self.sim.auto_remote_start(connector_id, id_tag)

    @after(Action.remote_stop_transaction)
    def after_remote_stop_transaction(self, transaction_id: int, **_: Any) -> None:
        self.sim.auto_remote_stop(transaction_id)

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, connector_id: int | None = None, **_: Any) -> None:
        self.sim.auto_trigger(requested_message, connector_id)


class Simulator:
    """Charger state, the current connection and the command handlers (`cmd_<name>`)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.url: str = args.url
        self.charger_id: str = args.id or args.url.rstrip("/").rsplit("/", 1)[-1]
        self.subprotocol = not args.no_subprotocol
        self.basic_auth: str | None = args.basic_auth
        self.ssl = ssl.create_default_context(cafile=args.ca_file) if args.ca_file else None
        self.log_frames: bool = args.log_frames
        self.response_timeout: float = args.response_timeout
        self.connectors = {n: Connector() for n in range(1, args.connectors + 1)}
        self.rules: dict[str, Rule] = {}
        self.auto = True
        self.config: dict[str, tuple[str, bool]] = {  # key -> (value, readonly)
            "HeartbeatInterval": ("300", False),
            "MeterValueSampleInterval": ("60", False),
            "MeterValuesSampledData": ("Energy.Active.Import.Register,Power.Active.Import", False),
            "AuthorizeRemoteTxRequests": ("false", False),
            "NumberOfConnectors": (str(args.connectors), True),
        }
        self.local_list_version = 0
        self.profiles: dict[int, dict[str, Any]] = {}
        self.electrics = Electrics(phases=args.phases, max_a=args.max_current, ramp_s=args.ramp_s)
        self.meter_interval: float = args.meter_interval
        self._ticked = time.monotonic()
        self._emitted: dict[int, tuple[list[float], float | None]] = {}  # the last draw event per connector
        self.cp: SimChargePoint | None = None
        self.tasks = Tasks()
        self._serve_task: asyncio.Task[None] | None = None

    # --- connection -----------------------------------------------------------------------

    async def connect(self) -> dict[str, Any]:
        headers = {}
        if self.basic_auth:
            headers["Authorization"] = "Basic " + base64.b64encode(self.basic_auth.encode()).decode()
        # a wss:// URL without --ca-file verifies against the system's CAs (websockets' default)
        tls = {"ssl": self.ssl} if self.ssl is not None and self.url.startswith("wss://") else {}
        try:
            ws = await websockets.connect(
                self.url,
                subprotocols=[SUBPROTOCOL] if self.subprotocol else None,
                additional_headers=headers or None,
                open_timeout=self.response_timeout,
                **tls,
            )
        except InvalidStatus as exc:
            raise CommandError(str(exc), status=exc.response.status_code) from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}", status=None) from exc
        self.cp = SimChargePoint(self, ws)
        self._serve_task = asyncio.create_task(self._serve(self.cp))
        info = {"subprotocol": ws.subprotocol, "url": self.url}
        emit({"event": "connected", **info})
        return info

    async def _serve(self, cp: SimChargePoint) -> None:
        code, reason = 1006, ""
        try:
            await cp.start()
        except ConnectionClosed as exc:
            if exc.rcvd is not None:
                code, reason = exc.rcvd.code, exc.rcvd.reason
        except Exception:
            log.exception("receive loop failed; dropping the connection")
            cp.ws.transport.abort()
        finally:
            cp.tasks.cancel_all()
            if self.cp is cp:
                self.cp = None
            by = "client" if cp.closing_by_client else "server"
            emit({"event": "closed", "code": code, "reason": reason, "by": by})
            cp.closed.set_result(code)

    def require_cp(self) -> SimChargePoint:
        if self.cp is None:
            raise CommandError("not connected")
        return self.cp

    async def close(self, abrupt: bool) -> int:
        cp = self.require_cp()
        cp.closing_by_client = True
        if abrupt:
            cp.ws.transport.abort()  # TCP gone, no close frame: what a power cut looks like
        else:
            try:
                await asyncio.wait_for(cp.ws.close(), 5)
            except TimeoutError:
                cp.ws.transport.abort()
        return await asyncio.shield(cp.closed)

    async def request(self, payload: Any, timeout: float | None) -> dict[str, Any]:
        return await self.require_cp().request(payload, timeout or self.response_timeout)

    def connector(self, n: int) -> Connector:
        return self.connectors.setdefault(n, Connector())

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
        return call.StartTransaction(
            connector_id=connector, id_tag=id_tag, meter_start=int(round(c.energy_wh)),
            timestamp=extra.pop("timestamp", None) or now_iso(), **extra,
        )

    def started(self, connector: int, id_tag: str, response: dict[str, Any]) -> None:
        c = self.connector(connector)
        c.transaction_id, c.id_tag = response.get("transactionId"), id_tag
        self.electrics.car(connector).started = time.time()

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

    async def followup(
        self, payload: Any, on_ok: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any] | None:
        request = wire(payload)
        event: dict[str, Any] = {"event": "sent", "action": type(payload).__name__, "request": request}
        try:
            response = await self.request(payload, None)
        except CommandError as exc:
            emit({**event, "error": exc.error, "code": exc.code})
            return None
        if on_ok is not None:
            on_ok(response)
        emit({**event, "response": response})
        return response

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

    async def cmd_call(self, action: str, payload: Any = None, timeout: float | None = None) -> dict[str, Any]:
        payload = {} if payload is None else payload
        return await self.require_cp().raw_call(action, payload, timeout or self.response_timeout)

    async def cmd_raw(self, frame: str, expect_reply: bool = True, timeout: float | None = None) -> dict[str, Any]:
        return await self.require_cp().raw_frame(frame, expect_reply, timeout or self.response_timeout)

    async def cmd_respond(self, action: str, payload: dict[str, Any] | None = None, delay_s: float = 0.0,
                          no_answer: bool = False) -> dict[str, Any]:
        rule = Rule(payload, float(delay_s), bool(no_answer))
        if rule == Rule():
            self.rules.pop(action, None)
        else:
            self.rules[action] = rule
        return {"action": action, "payload": payload, "delay_s": rule.delay_s, "no_answer": rule.no_answer}

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

    async def cmd_auto(self, enabled: bool = True) -> dict[str, Any]:
        self.auto = bool(enabled)
        return {"enabled": self.auto}

    async def cmd_state(self) -> dict[str, Any]:
        return {
            "connected": self.cp is not None,
            "auto": self.auto,
            "connectors": {str(n): {"energyWh": c.energy_wh, "transactionId": c.transaction_id,
                                    "idTag": c.id_tag, "status": c.status} for n, c in sorted(self.connectors.items())},
            "localListVersion": self.local_list_version,
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

    async def cmd_disconnect(self, abrupt: bool = True) -> dict[str, Any]:
        return {"code": await self.close(abrupt)}

    async def cmd_reconnect(self, url: str | None = None, basic_auth: str | None = None) -> dict[str, Any]:
        if self.cp is not None:
            await self.close(abrupt=False)
        if url is not None:
            self.url = url
        if basic_auth is not None:
            self.basic_auth = basic_auth or None
        return await self.connect()

    # --- the stdin loop -----------------------------------------------------------------

    async def run_command(self, request: dict[str, Any]) -> None:
        rid, name = request.get("id"), request.get("cmd")
        fields = {k: v for k, v in request.items() if k not in ("id", "cmd")}
        try:
            handler = getattr(self, f"cmd_{name}", None) if isinstance(name, str) else None
            if handler is None:
                raise CommandError(f"unknown command {name!r}")
            try:
                inspect.signature(handler).bind(**fields)
            except TypeError as exc:
                raise CommandError(f"bad fields for {name}: {exc}") from exc
            result = await handler(**fields)
        except CommandError as exc:
            emit({"id": rid, "ok": False, "error": exc.error, "code": exc.code, **exc.extra})
        except Exception as exc:  # noqa: BLE001 - the parent must get exactly one answer
            log.exception("command %s failed", name)
            emit({"id": rid, "ok": False, "error": f"{type(exc).__name__}: {exc}", "code": None})
        else:
            emit({"id": rid, "ok": True, "result": result if result is not None else {}})

    async def serve_stdin(self) -> int:
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        quit_id: Any = None
        quitting = False
        while line := await reader.readline():  # EOF (parent gone) also ends the simulator
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a command must be a JSON object")
            except ValueError as exc:
                emit({"id": None, "ok": False, "error": f"bad command line: {exc}", "code": None})
                continue
            if request.get("cmd") == "quit":
                quit_id, quitting = request.get("id"), True
                break
            self.tasks.spawn(self.run_command(request))
        self.tasks.cancel_all()
        if self.cp is not None:
            await self.close(abrupt=False)
        if quitting:
            emit({"id": quit_id, "ok": True, "result": {}})
        return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m controller.simulators.charger",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="ws://host:port/ocpp/<charger id>")
    parser.add_argument("--id", help="charge point identity (default: last URL path segment)")
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--no-subprotocol", action="store_true", help="do not offer ocpp1.6 in the handshake")
    parser.add_argument("--basic-auth", metavar="USER:PASS", help="HTTP Basic credentials (OCPP security profile 1)")
    parser.add_argument("--ca-file", metavar="PEM", help="CA certificate(s) to verify a wss:// central system with")
    parser.add_argument("--log-frames", action="store_true", help="emit every websocket frame as an event")
    parser.add_argument("--verbose", action="store_true", help="log the ocpp library's messages to stderr")
    parser.add_argument("--response-timeout", type=float, default=10.0, help="seconds to wait for the central system")
    parser.add_argument("--phases", type=int, choices=(1, 3), default=3, help="phases the charger supplies")
    parser.add_argument("--max-current", type=float, default=32.0, help="the charger's own limit per phase, A")
    parser.add_argument("--ramp-s", type=float, default=1.0, help="seconds a car takes from 0 to 32 A")
    parser.add_argument("--meter-interval", type=float, default=0.0,
                        help="send MeterValues (energy, power, Current.Import per phase) this often; 0: never")
    return parser.parse_args(argv)


async def amain(argv: list[str] | None = None) -> int:
    sim = Simulator(parse_args(argv))
    try:
        await sim.connect()
    except CommandError as exc:
        emit({"event": "connect_failed", "status": exc.extra.get("status"), "error": exc.error})
        return 2
    sim.tasks.spawn(sim.run_electrics())
    sim.tasks.spawn(sim.run_meter_values())
    return await sim.serve_stdin()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="charger-sim %(levelname)s %(name)s: %(message)s")
    # The library logs every protocol error it answers with a traceback; those are
    # already visible on the wire and as events, so only --verbose shows its log.
    logging.getLogger("ocpp").setLevel(logging.INFO if "--verbose" in (argv or sys.argv) else logging.CRITICAL)
    raise SystemExit(asyncio.run(amain(argv)))


if __name__ == "__main__":
    main()
