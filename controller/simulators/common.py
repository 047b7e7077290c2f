"""What the simulated chargers share: charger.py (OCPP 1.6J) and charger201.py (OCPP 2.0.1).

Both are the `ocpp` library's asyncio ChargePoint over the `websockets` client, run as a
subprocess and driven by JSON lines on stdin/stdout (see charger.py for the protocol).
This module holds everything that does not depend on the OCPP version:

- helpers for the JSON-lines pipe (`emit`, `dumps`, `plain`, `wire`, `CommandError`);
- `SimConnection`, a mixin put in front of the library's ChargePoint class: frame
  logging, `respond` rules, raw calls and frames, timeouts that notice a dropped link;
- `SimulatorBase`: the connection, the version-neutral commands (call, raw, respond,
  auto, disconnect, reconnect, quit) and the stdin loop;
- `base_parser` and `run` for the command line.
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
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Coroutine, TypeVar

import websockets
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

log = logging.getLogger("evedge.simulator")
T = TypeVar("T")


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
class LocalList:
    """A charger's local authorization list and its version, kept alike in both OCPP versions: a
    full update replaces the list; a differential one needs a newer version (else VersionMismatch)
    and sets each id's info or, without info, removes the id; more entries than the charger takes
    in one update: Failed."""

    version: int = 0
    entries: dict[str, Any] = field(default_factory=dict)

    def install(self, version: int, full: bool, entries: list[tuple[str, Any]], max_length: int) -> str:
        if len(entries) > max_length:
            return "Failed"
        if full:
            self.entries = {}
        elif version <= self.version:
            return "VersionMismatch"
        for key, info in entries:
            if info is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = info
        self.version = version
        return "Accepted"


@dataclass
class Rule:
    """How to answer one CS->CP action, set by `respond`."""

    payload: dict[str, Any] | None = None
    delay_s: float = 0.0
    no_answer: bool = False


class SimConnection:
    """One websocket connection; list it before the library's ChargePoint class:

        class SimChargePoint(SimConnection, ocpp.v16.ChargePoint): ...  # @on handlers

    Simulator state lives in `sim` so it survives reconnects.
    """

    def __init__(self, sim: SimulatorBase, ws: Any) -> None:
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


class SimulatorBase:
    """The connection, the version-neutral commands (`cmd_<name>`) and the stdin loop.

    A subclass sets SUBPROTOCOL and CHARGE_POINT (its SimConnection + ChargePoint class)
    and adds its state, its protocol commands and `after_answer`.
    """

    SUBPROTOCOL: str
    CHARGE_POINT: Callable[[SimulatorBase, Any], SimConnection]

    def __init__(self, args: argparse.Namespace) -> None:
        self.url: str = args.url
        self.charger_id: str = args.id or args.url.rstrip("/").rsplit("/", 1)[-1]
        self.subprotocol = not args.no_subprotocol
        self.basic_auth: str | None = args.basic_auth
        self.ssl = ssl.create_default_context(cafile=args.ca_file) if args.ca_file else None
        self.log_frames: bool = args.log_frames
        self.response_timeout: float = args.response_timeout
        # permessage-deflate is offered unless turned off (websockets' default is "deflate").
        self.compression: str | None = None if getattr(args, "no_compression", False) else "deflate"
        self.rules: dict[str, Rule] = {}
        self.auto = True
        self.cp: SimConnection | None = None
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
                subprotocols=[self.SUBPROTOCOL] if self.subprotocol else None,
                additional_headers=headers or None,
                open_timeout=self.response_timeout,
                compression=self.compression,
                **tls,
            )
        except InvalidStatus as exc:
            raise CommandError(str(exc), status=exc.response.status_code) from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}", status=None) from exc
        self.cp = self.CHARGE_POINT(self, ws)
        self._serve_task = asyncio.create_task(self._serve(self.cp))
        info = {"subprotocol": ws.subprotocol, "url": self.url}
        emit({"event": "connected", **info})
        return info

    async def _serve(self, cp: SimConnection) -> None:
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

    def background(self) -> list[Coroutine[Any, Any, Any]]:
        """Jobs that run while the simulator runs (a version's own clockwork); none by default."""
        return []

    def require_cp(self) -> SimConnection:
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

    # --- auto mode ----------------------------------------------------------------------------

    def after_answer(self, action: str, request: dict[str, Any], answer: dict[str, Any]) -> None:
        """Follow-ups for answers set with `respond {payload}` (the library path uses @after)."""

    async def followup(
        self, payload: Any, on_ok: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any] | None:
        """Send one auto follow-up; report it as a `sent` event; None if it failed."""
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

    # --- version-neutral commands -----------------------------------------------------------

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

    async def cmd_auto(self, enabled: bool = True) -> dict[str, Any]:
        self.auto = bool(enabled)
        return {"enabled": self.auto}

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


# --- the command line -----------------------------------------------------------------------


def base_parser(prog: str, description: str, subprotocol: str) -> argparse.ArgumentParser:
    """The options every simulated charger takes."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--url", required=True, help="ws://host:port/ocpp/<charger id>")
    parser.add_argument("--id", help="charge point identity (default: last URL path segment)")
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--no-subprotocol", action="store_true", help=f"do not offer {subprotocol} in the handshake")
    parser.add_argument("--basic-auth", metavar="USER:PASS", help="HTTP Basic credentials (OCPP security profile 1)")
    parser.add_argument("--ca-file", metavar="PEM", help="CA certificate(s) to verify a wss:// central system with")
    parser.add_argument("--log-frames", action="store_true", help="emit every websocket frame as an event")
    parser.add_argument("--verbose", action="store_true", help="log the ocpp library's messages to stderr")
    parser.add_argument("--response-timeout", type=float, default=10.0, help="seconds to wait for the central system")
    return parser


async def serve(sim: SimulatorBase) -> int:
    """Connect (exit status 2 if that fails), then run commands until quit or EOF."""
    try:
        await sim.connect()
    except CommandError as exc:
        emit({"event": "connect_failed", "status": exc.extra.get("status"), "error": exc.error})
        return 2
    for job in sim.background():
        sim.tasks.spawn(job)
    return await sim.serve_stdin()


def run(make_simulator: Callable[[list[str] | None], SimulatorBase], argv: list[str] | None = None) -> None:
    """The process entry point: logging set up, then `serve` the simulator built from argv."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="charger-sim %(levelname)s %(name)s: %(message)s")
    # The library logs every protocol error it answers with a traceback; those are
    # already visible on the wire and as events, so only --verbose shows its log.
    logging.getLogger("ocpp").setLevel(logging.INFO if "--verbose" in (argv or sys.argv) else logging.CRITICAL)

    async def amain() -> int:
        return await serve(make_simulator(argv))

    raise SystemExit(asyncio.run(amain()))
