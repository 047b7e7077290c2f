"""Everything on the site's wires, built from config and run in one nursery."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from .config import (
    LineReaderConfig,
    MeterConfig,
    ModbusReaderConfig,
    Pn532ReaderConfig,
    Rdm6300ReaderConfig,
    SerialBusConfig,
    TcpBusConfig,
    validate_drivers,
)
from .meters.meter import Meter, OnReading
from .modbus import ModbusBus
from .rfid.reader import OnTap, Reader

log = logging.getLogger(__name__)

#: Pause before restarting a device task that crashed on a bug (not on a device failure,
#: which the task handles itself).
CRASH_RESTART_S = 5.0


class Hardware:
    """Buses, meters and card readers of one site.

    `buses`, `meters` and `readers` are dicts by config id, available right after construction
    (their states read offline/disconnected until `run` has been running for a moment).
    """

    def __init__(
        self,
        buses: Sequence[SerialBusConfig | TcpBusConfig] = (),
        meters: Sequence[MeterConfig] = (),
        readers: Sequence[Rdm6300ReaderConfig | LineReaderConfig | Pn532ReaderConfig | ModbusReaderConfig] = (),
    ) -> None:
        validate_drivers(buses, meters, readers)
        self.buses: dict[str, ModbusBus] = {b.id: ModbusBus(b) for b in buses}
        self.meters: dict[str, Meter] = {m.id: Meter(m, self.buses[m.bus]) for m in meters}
        # A reader that names a bus sits on it; the others have a port of their own.
        self.readers: dict[str, Reader] = {r.id: Reader(r, self._bus_of(r)) for r in readers}

    def _bus_of(self, reader: object) -> ModbusBus | None:
        bus_id = getattr(reader, "bus", None)
        return None if bus_id is None else self.buses[bus_id]

    async def run(
        self,
        on_tap: OnTap,
        on_reading: OnReading | None = None,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Poll every meter and listen to every reader until cancelled. Never raises because of
        a device: failures show in the states; a crashing task is logged and restarted."""
        try:
            async with trio.open_nursery() as nursery:
                for meter in self.meters.values():
                    nursery.start_soon(_guarded, f"meter {meter.config.id}", meter.run, on_reading)
                for reader in self.readers.values():
                    nursery.start_soon(_guarded, f"reader {reader.config.id}", reader.run, on_tap)
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                for bus in self.buses.values():
                    await bus.aclose()

    def health_checks(self) -> dict[str, Callable[[], dict[str, Any]]]:
        """Checks for GET /healthz (`site.health_checks.update(...)`): one per bus and reader.
        Hardware trouble is "degraded", never "failing": charging goes on without a meter or
        with a card reader down (the app and the API can still start sessions)."""
        checks: dict[str, Callable[[], dict[str, Any]]] = {}
        for bus in self.buses.values():
            checks[f"bus:{bus.id}"] = functools.partial(self._bus_health, bus)
        for reader in self.readers.values():
            checks[f"reader:{reader.config.id}"] = functools.partial(_reader_health, reader)
        return checks

    def _bus_health(self, bus: ModbusBus) -> dict[str, Any]:
        meters = [m.state for m in self.meters.values() if m.config.bus == bus.id]
        offline = [m.id for m in meters if not m.online]
        ok = bus.connected and not offline
        return {
            "status": "ok" if ok else "degraded",
            "connected": bus.connected,
            "lastError": bus.last_error,
            "meters": len(meters),
            "metersOffline": offline,
        }


def _reader_health(reader: Reader) -> dict[str, Any]:
    state = reader.state
    return {"status": "ok" if state.connected else "degraded", "connected": state.connected, "lastError": state.last_error}


async def _guarded(name: str, fn: Callable[..., Awaitable[None]], *args: object) -> None:
    while True:
        try:
            await fn(*args)
        except Exception:
            log.exception("%s crashed; restarting in %.0f s", name, CRASH_RESTART_S)
        await trio.sleep(CRASH_RESTART_S)
