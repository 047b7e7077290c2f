"""The runtime shared by every card reader: open, decode, collapse repeats, reconnect.

Each protocol module only turns bytes (or registers) into UIDs. This module owns the rest: the
port's lifecycle with backoff while the device is gone, the repeat window, the id-tag format,
and the reader's state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import serial
import trio

from ..backoff import Backoff
from ..config import LineReaderConfig, ModbusReaderConfig, Pn532ReaderConfig, Rdm6300ReaderConfig
from ..modbus import ModbusBus
from ..serial_port import open_serial
from .id_tags import format_id_tag
from .line import LineDecoder
from .modbus_reader import ModbusCardReader
from .pn532 import Pn532Error, Pn532Session
from .rdm6300 import Rdm6300Decoder
from .state import ReaderState, Tap

log = logging.getLogger(__name__)

OnTap = Callable[[Tap], Awaitable[None]]
OnUid = Callable[[bytes], Awaitable[None]]
AnyReaderConfig = Rdm6300ReaderConfig | LineReaderConfig | Pn532ReaderConfig | ModbusReaderConfig


class RepeatFilter:
    """Collapses sightings of one card into one tap.

    A card counts again only after it has been *absent* for `window_s` (measured from its last
    sighting, not its first), so a card held on an RDM6300 that repeats its frame for a minute
    is still one tap. A different card is a new tap at once.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._last_uid: bytes | None = None
        self._last_seen = float("-inf")

    def is_new(self, uid: bytes, now: float) -> bool:
        new = uid != self._last_uid or now - self._last_seen > self.window_s
        self._last_uid, self._last_seen = uid, now
        return new


class Reader:
    """One configured card reader. `state` is live; taps go to the `on_tap` given to `run`."""

    def __init__(self, config: AnyReaderConfig, bus: ModbusBus | None = None) -> None:
        if isinstance(config, ModbusReaderConfig) and bus is None:
            raise ValueError(f"reader {config.id}: a Modbus reader needs its bus")
        self.config = config
        self.bus = bus
        self.state = ReaderState(id=config.id, kind=config.kind, charger=config.charger, connector=config.connector)
        self.repeats = RepeatFilter(config.repeat_window_s)

    async def run(self, on_tap: OnTap) -> None:
        """Run forever; device failures only change `state`."""

        async def on_uid(uid: bytes) -> None:
            await self._uid_seen(uid, on_tap)

        if isinstance(self.config, ModbusReaderConfig):
            assert self.bus is not None
            await ModbusCardReader(self.config, self.bus).run(self.state, on_uid)
        else:
            await self._run_serial(on_uid)

    async def _uid_seen(self, uid: bytes, on_tap: OnTap) -> None:
        if not self.repeats.is_new(uid, trio.current_time()):
            return
        c = self.config
        tap = Tap(
            reader_id=c.id,
            id_tag=format_id_tag(uid, c.id_tag_format, c.id_tag_reversed),
            uid=uid.hex().upper(),
            charger=c.charger,
            connector=c.connector,
            at=datetime.now(timezone.utc),
        )
        self.state.taps += 1
        self.state.last_tap_at, self.state.last_id_tag = tap.at, tap.id_tag
        log.info("reader %s: tap %s", c.id, tap.id_tag)
        try:
            await on_tap(tap)
        except Exception:
            log.exception("on_tap callback failed for reader %s", c.id)

    async def _run_serial(self, on_uid: OnUid) -> None:
        c = self.config
        assert not isinstance(c, ModbusReaderConfig)
        backoff = Backoff(c.reconnect_min_s, c.reconnect_max_s)
        opened_before = False
        while True:
            try:
                stream = await open_serial(c.port, baudrate=c.baudrate)
            except (OSError, serial.SerialException, ValueError) as exc:
                self._down(f"cannot open {c.port}: {exc}")
                await backoff.sleep()
                continue
            if opened_before:
                self.state.reconnects += 1
            opened_before = True
            backoff.reset()
            self.state.connected, self.state.last_error = True, None
            log.info("reader %s: connected to %s", c.id, c.port)
            try:
                async with stream:
                    await self._session(stream, on_uid)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, Pn532Error) as exc:
                self._down(f"lost {c.port}: {str(exc) or type(exc).__name__}")
            await backoff.sleep()

    async def _session(self, stream: trio.abc.Stream, on_uid: OnUid) -> None:
        """Decode one open port until it fails; raises BrokenResourceError at end of stream."""
        c = self.config
        if isinstance(c, Pn532ReaderConfig):
            session = Pn532Session(stream, self.state, timeout_s=c.response_timeout_s)
            await session.run(on_uid, c.poll_s)
            return
        decoder = Rdm6300Decoder(self.state) if isinstance(c, Rdm6300ReaderConfig) else LineDecoder(c.encoding, self.state)  # type: ignore[union-attr]
        while data := await stream.receive_some(256):
            for uid in decoder.feed(data):
                await on_uid(uid)
        raise trio.BrokenResourceError("end of stream (device gone)")

    def _down(self, error: str) -> None:
        if self.state.connected or self.state.last_error != error:
            log.warning("reader %s: %s", self.config.id, error)
        self.state.connected, self.state.last_error = False, error
