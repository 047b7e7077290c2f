"""evedge's hardware layer: Modbus buses, energy meters and RFID card readers.

A leaf: it imports nothing from `controller/` (tests/drivers/test_drivers_leaf.py keeps it so).
It hands out plain values and counters; formatting them for the API or for Prometheus is the
controller's job. Everything is Trio-native and built from three config lists (pydantic models in
`drivers.config`), which the site config embeds as::

    buses:   list[BusConfig]     # [[buses]]   kind = "rtu" | "tcp" | "rtu-over-tcp"
    meters:  list[MeterConfig]   # [[meters]]  model = "sdm630" | ... | "custom"
    readers: list[ReaderConfig]  # [[readers]] kind = "rdm6300" | "line" | "pn532" | "modbus"

`BusConfig` and `ReaderConfig` are discriminated unions: validate a list with
`pydantic.TypeAdapter(list[BusConfig])` or as fields of the site's config model. Then call
`validate_drivers(buses, meters, readers)` for the cross references (ValueError naming the key).
Meter models are data (`drivers/meters/maps/*.toml`); reader kinds map to their protocols in one
table, `drivers.rfid.protocols.PROTOCOLS`.

Running it::

    hardware = Hardware(buses, meters, readers)          # validates, builds, opens nothing yet
    async with trio.open_nursery() as nursery:
        await nursery.start(hardware.run, on_tap, on_reading)

    async def on_tap(tap: Tap) -> None: ...               # a card presented (repeats collapsed)
    async def on_reading(state: MeterState) -> None: ...  # a new meter snapshot (optional)

`run` never raises because of a device: a lost port or gateway, a silent meter or a garbled
frame only shows in the states, and the driver reconnects with backoff by itself. Callback
exceptions are logged and swallowed. Keep callbacks short (start work in your own nursery):
a meter's next poll and a reader's next frame wait for them.

State, at any time (also before `run`)::

    hardware.meters[id].state   -> MeterState, an immutable snapshot replaced after each poll
    hardware.readers[id].state  -> ReaderState, live counters
    hardware.buses[id]          -> ModbusBus (connected, last_error, stats)
    hardware.health_checks()    -> {"bus:<id>": fn, "reader:<id>": fn} for site.health_checks

Counters are plain ints on the drivers' own objects (`ModbusBus.stats`: requests, timeouts,
device_errors, io_errors; `ReaderState.taps`): the controller reads them when /metrics is scraped.

States are plain values (snake_case fields, timezone-aware UTC datetimes, tuples per phase);
the REST API renders them (`controller/api/hardware.py`). `Tap` carries `reader_id, id_tag, uid,
charger, connector, at`. Emulators for all of it live in `controller.simulators.meter` and
`controller.simulators.card_reader`. Hardware notes: `drivers/HARDWARE.md`.
"""

from .config import (
    BusConfig,
    LineReaderConfig,
    MeterConfig,
    ModbusReaderConfig,
    Pn532ReaderConfig,
    Rdm6300ReaderConfig,
    ReaderConfig,
    SerialBusConfig,
    TcpBusConfig,
    validate_drivers,
)
from .hardware import Hardware
from .meters.meter import Meter
from .meters.models import MODELS
from .meters.register_map import RegisterMap
from .meters.state import MeterState
from .modbus import BusUnavailable, ModbusBus, ModbusDeviceError, ModbusError, ModbusTimeout
from .rfid.id_tags import IdTagFormat, format_id_tag
from .rfid.reader import Reader
from .rfid.state import ReaderState, Tap

__all__ = [
    "MODELS",
    "BusConfig",
    "BusUnavailable",
    "Hardware",
    "IdTagFormat",
    "LineReaderConfig",
    "Meter",
    "MeterConfig",
    "MeterState",
    "ModbusBus",
    "ModbusDeviceError",
    "ModbusError",
    "ModbusReaderConfig",
    "ModbusTimeout",
    "Pn532ReaderConfig",
    "Rdm6300ReaderConfig",
    "Reader",
    "ReaderConfig",
    "ReaderState",
    "RegisterMap",
    "SerialBusConfig",
    "Tap",
    "TcpBusConfig",
    "format_id_tag",
    "validate_drivers",
]
