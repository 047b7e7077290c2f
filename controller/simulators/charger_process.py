"""Trio-side handle on a simulated charger process (controller.simulators.charger).

The simulator runs asyncio in its own process; this class speaks its JSON-lines
protocol over the process's stdin/stdout. `version="2.0.1"` runs the OCPP 2.0.1
twin (controller.simulators.charger201) instead: same commands, same events. Usage:

    async with trio.open_nursery() as nursery:
        sim = await SimulatedCharger.start(nursery, "ws://127.0.0.1:9000/ocpp/CP1")
        await sim.boot()
        await sim.status(1, "Available")
        tx = await sim.start(connector=1, idTag="TAG")      # StartTransaction
        ...
        await sim.aclose()

or `async with SimulatedCharger.open(url) as sim: ...`. Timeouts use the real clock.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import trio

Predicate = Callable[[dict[str, Any]], bool]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SIMULATORS = {"1.6": "controller.simulators.charger", "2.0.1": "controller.simulators.charger201"}


class SimulatorError(Exception):
    """A command answered ok:false (`code` is the OCPP CallError code, if any) or the process died."""

    def __init__(self, error: str, code: str | None = None, reply: dict[str, Any] | None = None) -> None:
        super().__init__(f"{error} [{code}]" if code else error)
        self.error, self.code, self.reply = error, code, reply or {}

    @property
    def status(self) -> int | None:
        """HTTP status of a rejected handshake (connect_failed / reconnect)."""
        return self.reply.get("status")

    @property
    def details(self) -> Any:
        return self.reply.get("details")


class _StartMethod:
    """`SimulatedCharger.start(nursery, url)` spawns; `sim.start(connector, idTag)` sends StartTransaction.

    Both spellings come from the same brief, so the name serves both: on the class it
    is the spawning classmethod, on an instance it is `start_transaction`.
    """

    def __get__(self, obj: SimulatedCharger | None, owner: type[SimulatedCharger]) -> Callable[..., Any]:
        if obj is None:
            return owner._spawn
        return obj.start_transaction


class SimulatedCharger:
    def __init__(self, process: trio.Process, url: str, charger_id: str, response_timeout: float) -> None:
        self.process = process
        self.url = url
        self.charger_id = charger_id
        self.response_timeout = response_timeout
        self.events: list[dict[str, Any]] = []  # every event, in arrival order
        self._unread: list[dict[str, Any]] = []  # events next_event has not returned yet
        self._replies: dict[int, dict[str, Any]] = {}
        self._changed = trio.Event()
        self._ids = itertools.count(1)
        self._send_lock = trio.Lock()
        self.exited = False  # stdout reached EOF
        self.draw: dict[int, list[float]] = {}  # connector -> what it draws on the charger's L1, L2, L3
        self.limits: dict[int, float | None] = {}  # connector -> the limit its car follows (None: none)
        self.draw_listeners: list[Callable[[SimulatedCharger], None]] = []  # e.g. a simulated site meter

    start = _StartMethod()

    @classmethod
    async def _spawn(
        cls,
        nursery: trio.Nursery,
        url: str,
        charger_id: str | None = None,
        *,
        connectors: int = 2,
        subprotocol: bool = True,
        basic_auth: str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        log_frames: bool = False,
        verbose: bool = False,
        response_timeout: float = 10.0,
        wait_connected: bool = True,
        timeout: float = 15.0,
        version: str = "1.6",
        compression: bool = True,
        phases: int = 3,
        max_current: float = 32.0,
        ramp_s: float = 1.0,
        meter_interval: float = 0.0,
    ) -> SimulatedCharger:
        """Spawn the simulator; with wait_connected, return once its websocket is open.

        A rejected handshake raises SimulatorError with `.status` (the HTTP status).
        `basic_auth` ("id:password") and `ca_file` (for a wss:// url) dial like a charger
        configured for OCPP security profile 1 / 2. `version` is the OCPP version, "1.6"
        or "2.0.1"; compression=False (2.0.1 only) does not offer permessage-deflate.
        """
        if version not in SIMULATORS:
            raise ValueError(f"no simulator for OCPP {version!r} (known: {', '.join(SIMULATORS)})")
        if not compression and version == "1.6":
            raise ValueError("compression=False needs version='2.0.1'")
        charger_id = charger_id or url.rstrip("/").rsplit("/", 1)[-1]
        argv = [sys.executable, "-m", SIMULATORS[version], "--url", url, "--id", charger_id,
                "--connectors", str(connectors), "--response-timeout", str(response_timeout)]
        if not compression:
            argv.append("--no-compression")
        if not subprotocol:
            argv.append("--no-subprotocol")
        if basic_auth:
            argv += ["--basic-auth", basic_auth]
        if ca_file:
            argv += ["--ca-file", os.fspath(ca_file)]
        if log_frames:
            argv.append("--log-frames")
        if verbose:
            argv.append("--verbose")
        if version == "1.6":  # the 1.6 charger's car obeys charging profiles (load management)
            argv += ["--phases", str(phases), "--max-current", str(max_current), "--ramp-s", str(ramp_s),
                     "--meter-interval", str(meter_interval)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        process = await nursery.start(functools.partial(
            trio.run_process, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, check=False, env=env))
        sim = cls(process, url, charger_id, response_timeout)
        nursery.start_soon(sim._read_stdout)
        if wait_connected:
            event = await sim.next_event(lambda e: e["event"] in ("connected", "connect_failed"), timeout=timeout)
            if event["event"] == "connect_failed":
                await sim.aclose()
                raise SimulatorError(event.get("error") or "connect failed", None, event)
        return sim

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, charger_id: str | None = None, **options: Any) -> AsyncIterator[SimulatedCharger]:
        """A simulator with its own nursery, closed on exit."""
        async with trio.open_nursery() as nursery:
            sim = await cls._spawn(nursery, url, charger_id, **options)
            try:
                yield sim
            finally:
                await sim.aclose()

    # --- the pipe ------------------------------------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _read_stdout(self) -> None:
        buffer = b""
        try:
            async for chunk in self.process.stdout:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._dispatch(line)
        finally:
            self.exited = True
            self._wake()

    def _dispatch(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            message = {"event": "bad_output", "text": line.decode("utf-8", "replace")}
        if message.get("event") == "draw":  # frequent: kept as state, not as events to wait for
            self.draw[message["connector"]] = message["amps"]
            self.limits[message["connector"]] = message.get("limit")
            for listener in self.draw_listeners:
                listener(self)
        elif "event" in message:
            self.events.append(message)
            self._unread.append(message)
        elif "id" in message:
            self._replies[message["id"]] = message
        self._wake()

    async def cmd(self, name: str, /, *, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Run one command; return its result or raise SimulatorError(error, code).

        `timeout` is passed on as the command's own wait for the central system; this
        side waits a few seconds longer (trio.TooSlowError if the simulator hangs).
        """
        rid = next(self._ids)
        if timeout is not None:
            fields["timeout"] = timeout
        line = json.dumps({"id": rid, "cmd": name, **fields}).encode() + b"\n"
        try:
            async with self._send_lock:
                await self.process.stdin.send_all(line)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise SimulatorError(f"simulator is not running ({name})") from exc
        with trio.fail_after((timeout if timeout is not None else self.response_timeout) + 5):
            while rid not in self._replies:
                if self.exited:
                    raise SimulatorError(f"simulator exited before answering {name}")
                await self._changed.wait()
        reply = self._replies.pop(rid)
        if reply.get("ok"):
            return reply.get("result") or {}
        raise SimulatorError(reply.get("error") or "failed", reply.get("code"), reply)

    async def next_event(
        self, predicate: Predicate | str | None = None, timeout: float = 10, **match: Any
    ) -> dict[str, Any]:
        """The oldest not yet returned event that matches, waiting up to `timeout` s.

        `predicate` may be a callable or an event name; keyword arguments must equal
        the event's fields: next_event("sent", action="StartTransaction"). Events that
        do not match stay available for later calls, so none are missed.
        """
        if isinstance(predicate, str):
            match["event"], predicate = predicate, None

        def matches(event: dict[str, Any]) -> bool:
            return all(event.get(k) == v for k, v in match.items()) and (predicate is None or predicate(event))

        with trio.move_on_after(timeout):
            while True:
                for i, event in enumerate(self._unread):
                    if matches(event):
                        del self._unread[i]
                        return event
                if self.exited:
                    raise SimulatorError(f"simulator exited; no event matching {match or predicate}")
                await self._changed.wait()
        wanted = match or predicate
        raise trio.TooSlowError(f"no event matching {wanted} within {timeout} s; last events: {self.events[-5:]}")

    async def aclose(self, timeout: float = 5) -> None:
        """Ask the simulator to quit (it closes its websocket cleanly); kill it if it will not."""
        if not self.exited:
            with trio.move_on_after(timeout):
                try:
                    await self.cmd("quit")
                except SimulatorError:
                    pass
        with trio.move_on_after(timeout):
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await self.process.stdin.aclose()

    async def __aenter__(self) -> SimulatedCharger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- conveniences (fields are the protocol's camelCase names) ---------------------------

    async def boot(self, **fields: Any) -> dict[str, Any]:
        return await self.cmd("boot", **fields)

    async def status(self, connector: int, status: str, **fields: Any) -> dict[str, Any]:
        return await self.cmd("status", connector=connector, status=status, **fields)

    async def heartbeat(self, **fields: Any) -> dict[str, Any]:
        return await self.cmd("heartbeat", **fields)

    async def authorize(self, idTag: str, **fields: Any) -> dict[str, Any]:
        return await self.cmd("authorize", idTag=idTag, **fields)

    async def start_transaction(self, connector: int, idTag: str, **fields: Any) -> dict[str, Any]:
        return await self.cmd("start", connector=connector, idTag=idTag, **fields)

    async def meter(self, connector: int, energyWh: float | None = None, **fields: Any) -> dict[str, Any]:
        if energyWh is not None:
            fields["energyWh"] = energyWh
        return await self.cmd("meter", connector=connector, **fields)

    async def stop(self, connector: int | None = None, **fields: Any) -> dict[str, Any]:
        if connector is not None:
            fields["connector"] = connector
        return await self.cmd("stop", **fields)

    async def respond(self, action: str, **fields: Any) -> dict[str, Any]:
        return await self.cmd("respond", action=action, **fields)

    async def state(self) -> dict[str, Any]:
        return await self.cmd("state")

    async def car(self, connector: int, maxA: float) -> dict[str, Any]:
        """The car on `connector` takes at most `maxA` per phase."""
        return await self.cmd("car", connector=connector, maxA=maxA)

    async def obey(self, enabled: bool) -> dict[str, Any]:
        """False: accept charging profiles but ignore them."""
        return await self.cmd("obey", enabled=enabled)

    async def autometer(self, interval: float) -> dict[str, Any]:
        """MeterValues with Current.Import per phase every `interval` s while charging (0: off)."""
        return await self.cmd("autometer", interval=interval)

    def drawn(self, connector: int) -> float:
        """What the connector draws now (the highest phase), as far as the last event says."""
        return max(self.draw.get(connector, [0.0]))
