"""A card reader on a serial port of its own: open the port, let the reader's protocol run on it
until the port fails, reopen it with backoff.

Protocols differ only in what they do with an open port (see `protocols.py`); what happens around
that (waiting out a device that is away, `connected`, `last_error` and `reconnects` in the state)
is the same for every serial kind, so it lives here once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import serial
import trio

from ..backoff import Backoff
from ..config import LineReaderConfig, Pn532ReaderConfig, Rdm6300ReaderConfig
from ..serial_port import open_problem, open_serial
from .state import FrameCounters, ReaderState

# These messages have always been logged as the reader's: keep the name operators filter on.
log = logging.getLogger("drivers.rfid.reader")

OnUid = Callable[[bytes], Awaitable[None]]
#: What a protocol does with an open port: report the UIDs it reads, count what it rejects in the
#: counters, and raise when the port or the device is gone (it never returns normally).
StreamSession = Callable[[trio.abc.Stream, FrameCounters, OnUid], Awaitable[None]]
SerialReaderConfig = Rdm6300ReaderConfig | LineReaderConfig | Pn532ReaderConfig


class ReaderLost(Exception):
    """The device on an open port stopped answering (a chip that no longer acknowledges): the
    port is closed and reopened, as if it had gone away."""


class Decoder(Protocol):
    def feed(self, data: bytes) -> list[bytes]:
        """The UIDs of the complete, valid frames so far; keeps a partial frame for the next call."""
        ...


async def decode_stream(stream: trio.abc.Stream, decoder: Decoder, on_uid: OnUid) -> None:
    """The session of a passive reader, one that sends frames without being asked: everything the
    port delivers goes through `decoder` until the port ends."""
    while data := await stream.receive_some(256):
        for uid in decoder.feed(data):
            await on_uid(uid)
    raise trio.BrokenResourceError("end of stream (device gone)")


class SerialCardReader:
    """Runs one protocol session after another on the reader's port, with backoff between them."""

    def __init__(self, config: SerialReaderConfig, session: StreamSession) -> None:
        self.config = config
        self.session = session

    async def run(self, state: ReaderState, on_uid: OnUid) -> None:
        """Run forever; device failures only change `state`."""
        c = self.config
        backoff = Backoff(c.reconnect_min_s, c.reconnect_max_s)
        opened_before = False
        while True:
            try:
                stream = await open_serial(c.port, baudrate=c.baudrate)
            except (OSError, serial.SerialException, ValueError) as exc:
                self._down(state, f"cannot open {c.port}: {open_problem(exc)}")
                await backoff.sleep()
                continue
            if opened_before:
                state.reconnects += 1
            opened_before = True
            backoff.reset()
            state.connected, state.last_error = True, None
            log.info("reader %s: connected to %s", c.id, c.port)
            try:
                async with stream:
                    await self.session(stream, state, on_uid)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ReaderLost) as exc:
                self._down(state, f"lost {c.port}: {str(exc) or type(exc).__name__}")
            await backoff.sleep()

    def _down(self, state: ReaderState, error: str) -> None:
        if state.connected or state.last_error != error:
            log.warning("reader %s: %s", self.config.id, error)
        state.connected, state.last_error = False, error
