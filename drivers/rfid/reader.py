"""The runtime shared by every card reader: collapse repeats, format the id tag, report taps.

Where the UIDs come from is the kind's protocol (`protocols.PROTOCOLS`: a decoder or session on a
serial port of the reader's own, with the port's lifecycle in `serial_reader.py`, or registers on
a Modbus bus). This module owns what is the same for all of them: the repeat window, the id-tag
format, and the reader's state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import trio

from ..config import LineReaderConfig, ModbusReaderConfig, Pn532ReaderConfig, Rdm6300ReaderConfig
from ..modbus import ModbusBus
from .id_tags import format_id_tag
from .protocols import PROTOCOLS, CardSource
from .state import ReaderState, Tap

log = logging.getLogger(__name__)

OnTap = Callable[[Tap], Awaitable[None]]
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
        self.config = config
        self.bus = bus
        self.state = ReaderState(id=config.id, kind=config.kind, charger=config.charger, connector=config.connector)
        self.repeats = RepeatFilter(config.repeat_window_s)
        # Built now, so that a reader that cannot work (a Modbus reader without its bus) fails here.
        self.source: CardSource = PROTOCOLS[config.kind](config, bus)

    async def run(self, on_tap: OnTap) -> None:
        """Run forever; device failures only change `state`."""

        async def on_uid(uid: bytes) -> None:
            await self._uid_seen(uid, on_tap)

        await self.source.run(self.state, on_uid)

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
