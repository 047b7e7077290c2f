"""A Trio-native OCPP-J RPC session over one charger's WebSocket.

The reader task sorts frames: answers to our calls wake the waiting caller; a call from the
charger is answered by the reader itself when nothing is ahead of it and none of our calls awaits
an answer (the common case, one task switch less per message), else it goes, in order, to a
second task that validates and dispatches it (started for the calls queued, gone once they are
answered). So a handler that waits for the disk never stops us from reading the answer to a call
of ours already sent (one sent meanwhile is read once that handler is done), and each direction
has at most one CALL outstanding, as OCPP-J requires. Handlers must not call the charger
themselves: they may run in the reader. The session ends when the charger falls silent
(csms/liveness.py: no frame, no answer to a ping; one watch for every connection).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from controller import metrics
from controller.csms import frames
from controller.csms.frames import Call, CallError, FrameError, OcppError
from controller.csms.liveness import Liveness

log = logging.getLogger("evedge.ocpp")

Dispatch = Callable[[str, Any], Awaitable[dict]]


@dataclass(frozen=True)
class Dialect:
    """What the session needs of an OCPP version: its actions and its payload schemas."""

    charger_actions: frozenset[str]  # calls a charger may send (validated before dispatch)
    known_actions: frozenset[str]  # every action of the version (others count as "other" in metrics)
    validate: Callable[[int, str, Any], None]  # raises OcppError, with the version's code
    frame_error_code: Callable[[str], str]  # the version's code for a frame `frames.decode` refused


INBOX_SIZE = 16  # calls queued from one charger before we stop reading its socket
DRAIN_S = 10.0  # after a disconnect, how long the calls already read may take to be handled


class CallTimeout(Exception):
    """The charger did not answer our call in time."""


class ConnectionLost(Exception):
    """The charger's connection closed before it answered our call."""


class NotConnected(ConnectionLost):
    """The connection was closed already: the call was never sent."""


class RpcSession:
    def __init__(
        self,
        ws: WebSocketConnection,
        charger_id: str,
        dispatch: Dispatch,
        call_timeout: float,
        dialect: Dialect,
        frame_log: Callable[[str, str], None] | None = None,
        offline_after: Callable[[], float] | None = None,
    ) -> None:
        """`offline_after`: the seconds of silence (no frame, no answer to a ping) after which the
        charger is gone and the session ends (csms/liveness.py); None: never."""
        self.ws = ws
        self.charger_id = charger_id
        self._dispatch = dispatch
        self.dialect = dialect
        self.call_timeout = call_timeout
        self._frame_log = frame_log
        self._call_lock = trio.Lock()
        self._pending: dict[str, tuple[str, trio.MemorySendChannel]] = {}
        self.closed = trio.Event()
        self._serving = False
        self.address: str | None = None  # the charger's IP, read once at the handshake (server.py)
        self._liveness = Liveness(ws, offline_after) if offline_after is not None else None
        self._inbox: trio.MemorySendChannel[Call] | None = None  # calls queued for _serve_calls while it runs
        self._nursery: trio.Nursery  # run()'s: _serve_calls runs there

    def _label(self, action: str) -> str:
        """The action as a metrics label: a charger cannot mint new label values."""
        return action if action in self.dialect.known_actions else "other"

    async def run(self, beside: Callable[[], Awaitable[None]] | None = None) -> None:
        """Serve the connection until it closes; pending calls then fail with ConnectionLost.
        `beside` runs alongside while the connection is open.

        Calls the charger sent before it went away are still handled (within DRAIN_S): a charger
        that sends StartTransaction and drops has its charge on the books even if it never resends.
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    async with trio.open_nursery() as connection:
                        if self._liveness is not None:
                            self._liveness.start(connection, partial(self._silent, connection.cancel_scope))
                        if beside is not None:
                            connection.start_soon(beside)
                        await self._read()
                        connection.cancel_scope.cancel()
                finally:
                    if self._liveness is not None:
                        self._liveness.stop()
                    self._lost()
                    if self._inbox is not None:
                        self._inbox.close()  # the calls queued are still answered, then _serve_calls ends
                nursery.cancel_scope.deadline = trio.current_time() + DRAIN_S
        finally:
            self._lost()

    def _silent(self, reading: trio.CancelScope, quiet: float) -> None:
        """The charger fell silent: the session ends, and calls to it fail at once from now on."""
        log.warning("charger=%s silent for %.1f s (no frame, no answer to a WebSocket ping): offline",
                    self.charger_id, quiet)
        self._lost()
        reading.cancel()

    def _lost(self) -> None:
        """The connection is gone: no new calls to the charger, and the waiting ones fail now."""
        self.closed.set()
        pending, self._pending = self._pending, {}
        for _, waiter in pending.values():
            waiter.send_nowait(ConnectionLost(f"{self.charger_id} disconnected"))

    async def _read(self) -> None:
        while True:
            try:
                text = await self.ws.get_message()
            except ConnectionClosed:
                return
            if self._liveness is not None:
                self._liveness.heard()
            if self._frame_log:
                self._frame_log("in", text if isinstance(text, str) else repr(text))
            if not isinstance(text, str):
                await self._refuse_binary(text)
                continue
            try:
                frame = frames.decode(text)
            except FrameError as err:
                log.warning("charger=%s bad frame: %s", self.charger_id, err)
                code = self.dialect.frame_error_code(err.code)
                metrics.ocpp_call_error("out", code)
                await self._send(frames.encode_error(err.unique_id or "-1", code, err.description))
                continue
            if isinstance(frame, Call):
                metrics.ocpp_message("in", self._label(frame.action), "call")
                if self._serving or self._pending or self._inbox is not None:
                    await self._queue(frame)  # behind the calls ahead of it, or while we wait for answers
                else:
                    await self._answer(frame)  # nothing ahead of it: answered here, one task switch less
            elif frame.unique_id in self._pending:
                action, waiter = self._pending.pop(frame.unique_id)
                if isinstance(frame, CallError):
                    metrics.ocpp_message("in", self._label(action), "error")
                    metrics.ocpp_call_error("in", frame.code)
                else:
                    metrics.ocpp_message("in", self._label(action), "result")
                waiter.send_nowait(frame)
            else:
                log.warning("charger=%s answer to unknown call %s ignored", self.charger_id, frame.unique_id)

    async def _refuse_binary(self, data: bytes) -> None:
        """OCPP-J messages are text frames: a binary frame is no message, whatever it holds. Never
        processed; one that reads as a CALL (or cannot be read) is answered with a CALLERROR, as a
        frame that cannot be decoded is, and an answer in one is dropped (never answered)."""
        try:
            unique_id = None if not isinstance(frame := frames.decode(data), Call) else frame.unique_id
            answer = unique_id is not None
        except FrameError as err:
            unique_id, answer = err.unique_id, True
        log.warning("charger=%s sent a binary WebSocket frame (%d bytes): OCPP-J messages are text frames;"
                    " refused%s", self.charger_id, len(data), ", not processed" if answer else " (an answer: dropped)")
        if answer:
            code = self.dialect.frame_error_code("FormationViolation")
            metrics.ocpp_call_error("out", code)
            await self._send(frames.encode_error(unique_id or "-1", code,
                                                 "binary frame: OCPP-J messages are text frames"))

    async def _queue(self, call: Call) -> None:
        """Queue a call for the second task, started for the calls queued and ended once they are
        answered (an idle charger, most of them, holds no task and no queue for it)."""
        if self._inbox is None:
            self._inbox, inbox = trio.open_memory_channel[Call](INBOX_SIZE)
            self._nursery.start_soon(self._serve_calls, inbox)
        await self._inbox.send(call)

    async def _serve_calls(self, inbox: trio.MemoryReceiveChannel) -> None:
        try:
            while True:
                try:
                    call = inbox.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    return
                self._serving = True
                try:
                    await self._answer(call)
                finally:
                    self._serving = False
        finally:
            self._inbox = None  # no await since the inbox was found empty: the reader queues no call meanwhile

    async def _answer(self, call: Call) -> None:
        """Validate, dispatch and answer one call from the charger."""
        started, kind = trio.current_time(), "result"
        try:
            if call.action in self.dialect.charger_actions:
                self.dialect.validate(frames.CALL, call.action, call.payload)
            payload = await self._dispatch(call.action, call.payload)
            reply = frames.encode_result(call.unique_id, payload)
        except OcppError as err:
            log.info("charger=%s %s -> CALLERROR %s", self.charger_id, call.action, err)
            reply = frames.encode_error(call.unique_id, err.code, err.description, err.details)
            kind = "error"
            metrics.ocpp_call_error("out", err.code)
        except OverflowError as err:  # an integer the schema allows but SQLite's 64 bits cannot hold
            log.warning("charger=%s %s -> CALLERROR PropertyConstraintViolation: %s", self.charger_id, call.action, err)
            reply = frames.encode_error(call.unique_id, "PropertyConstraintViolation", "a number is out of range")
            kind = "error"
            metrics.ocpp_call_error("out", "PropertyConstraintViolation")
        except Exception:
            log.exception("charger=%s %s handler failed", self.charger_id, call.action)
            reply = frames.encode_error(call.unique_id, "InternalError", "the controller could not process this call")
            kind = "error"
            metrics.ocpp_call_error("out", "InternalError")
        await self._send(reply)
        label = self._label(call.action)
        metrics.ocpp_message("out", label, kind)
        metrics.ocpp_call_duration("in", label, trio.current_time() - started)

    async def _send(self, text: str) -> None:
        if self._frame_log:
            self._frame_log("out", text)
        try:
            await self.ws.send_message(text)
        except ConnectionClosed:
            pass  # the reader sees the close and ends the session

    async def call(self, action: str, payload: Any, timeout: float | None = None) -> dict:
        """Send a CALL and return the charger's CALLRESULT payload.

        Raises OcppError for a CALLERROR, CallTimeout, or ConnectionLost. Must not be awaited by
        the task that dispatches this charger's own calls (it would wait on itself).
        """
        async with self._call_lock:
            if self.closed.is_set():
                raise NotConnected(f"{self.charger_id} is not connected")
            unique_id = str(uuid.uuid4())
            waiter, answer = trio.open_memory_channel[Any](1)
            self._pending[unique_id] = (action, waiter)
            try:
                started = trio.current_time()
                await self._send(frames.encode_call(unique_id, action, payload))
                metrics.ocpp_message("out", self._label(action), "call")
                with trio.fail_after(timeout or self.call_timeout):
                    frame = await answer.receive()
                metrics.ocpp_call_duration("out", self._label(action), trio.current_time() - started)
            except trio.TooSlowError:
                metrics.ocpp_call_timeout(self._label(action))
                raise CallTimeout(f"{self.charger_id} did not answer {action} in time") from None
            finally:
                self._pending.pop(unique_id, None)
        if isinstance(frame, Exception):
            raise frame
        if isinstance(frame, CallError):
            raise OcppError(frame.code, frame.description, frame.details if isinstance(frame.details, dict) else {})
        try:
            self.dialect.validate(frames.CALLRESULT, action, frame.payload)
        except OcppError as err:
            log.warning("charger=%s answered %s with an invalid payload: %s", self.charger_id, action, err)
        return frame.payload

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        with trio.move_on_after(2):
            await self.ws.aclose(code, reason)
