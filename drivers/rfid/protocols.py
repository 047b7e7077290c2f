"""Reader kind -> protocol: the one table that says how each `kind` of `[[readers]]` gets its UIDs.

Nothing else dispatches on the kind. The reader runtime (`reader.py`) asks `PROTOCOLS` for the
kind's `CardSource` and runs it; a new kind is a config model in `drivers/config.py` (with its
`kind` literal) plus one entry here, built from the two transports below: a serial port of its
own (`SerialCardReader`, which owns the port's lifecycle) or registers on a Modbus bus
(`ModbusCardReader`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from ..config import LineReaderConfig, ModbusReaderConfig, Pn532ReaderConfig, Rdm6300ReaderConfig
from ..modbus import ModbusBus
from .line import LineDecoder
from .modbus_reader import ModbusCardReader
from .pn532 import Pn532Session
from .rdm6300 import Rdm6300Decoder
from .serial_reader import OnUid, SerialCardReader, decode_stream
from .state import FrameCounters, ReaderState


class CardSource(Protocol):
    """Where one reader's UIDs come from."""

    async def run(self, state: ReaderState, on_uid: OnUid) -> None:
        """Report every UID read to `on_uid` until cancelled. A device failure never ends it:
        it shows in `state` (connected, last_error, reconnects, bad_frames, noise_bytes)."""
        ...


#: Builds a kind's CardSource from the reader's config and, for readers on a Modbus bus, that bus.
SourceFactory = Callable[[Any, ModbusBus | None], CardSource]


async def _rdm6300(config: Rdm6300ReaderConfig, stream: trio.abc.Stream, counters: FrameCounters, on_uid: OnUid) -> None:
    await decode_stream(stream, Rdm6300Decoder(counters), on_uid)


async def _line(config: LineReaderConfig, stream: trio.abc.Stream, counters: FrameCounters, on_uid: OnUid) -> None:
    await decode_stream(stream, LineDecoder(config.encoding, counters), on_uid)


async def _pn532(config: Pn532ReaderConfig, stream: trio.abc.Stream, counters: FrameCounters, on_uid: OnUid) -> None:
    await Pn532Session(stream, counters, timeout_s=config.response_timeout_s).run(on_uid, config.poll_s)


def _on_serial_port(session: Callable[[Any, trio.abc.Stream, FrameCounters, OnUid], Awaitable[None]]) -> SourceFactory:
    """A kind with a serial port of its own that speaks `session(config, stream, counters, on_uid)` on it."""

    def build(config: Any, bus: ModbusBus | None) -> CardSource:
        return SerialCardReader(config, functools.partial(session, config))

    return build


def _on_modbus_bus(config: ModbusReaderConfig, bus: ModbusBus | None) -> CardSource:
    if bus is None:
        raise ValueError(f"reader {config.id}: a Modbus reader needs its bus")
    return ModbusCardReader(config, bus)


PROTOCOLS: dict[str, SourceFactory] = {
    "rdm6300": _on_serial_port(_rdm6300),
    "line": _on_serial_port(_line),
    "pn532": _on_serial_port(_pn532),
    "modbus": _on_modbus_bus,
}
