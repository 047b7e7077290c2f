"""Configuration models for buses, meters and card readers (pydantic v2).

The site config embeds these as `buses: list[BusConfig]`, `meters: list[MeterConfig]` and
`readers: list[ReaderConfig]`; `validate_drivers` then checks what one entry cannot check alone
(references between lists, duplicate ids, two owners for one serial port).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Self, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from .meters.models import MODELS
from .meters.register_map import RegisterMap
from .rfid.id_tags import IdTagFormat


class _Strict(BaseModel):
    """Unknown keys and loose types are errors: "9600" is not a baud rate, 1 is not `true`."""

    model_config = ConfigDict(extra="forbid", strict=True)


class _BusBase(_Strict):
    id: str = Field(min_length=1, description="name that meters and Modbus readers use to refer to this bus")
    timeout_s: float = Field(0.5, gt=0, description="how long to wait for one response")
    retries: int = Field(2, ge=0, le=10, description="extra attempts after a timeout before a read fails")
    reconnect_min_s: float = Field(1.0, gt=0, description="first wait before reopening a lost port or gateway")
    reconnect_max_s: float = Field(30.0, gt=0, description="longest wait between reopen attempts")


class SerialBusConfig(_BusBase):
    """Modbus RTU on a local serial port or a pyserial URL (socket://, rfc2217://)."""

    kind: Literal["rtu"] = Field("rtu", description="Modbus RTU on a serial line (the default kind)")
    port: str = Field(min_length=1, description="device path (prefer /dev/serial/by-id/...) or pyserial URL")
    baudrate: int = Field(9600, gt=0, description="line speed, as set on the meters")
    parity: Literal["N", "E", "O"] = Field("N", description="N(one), E(ven) or O(dd), as set on the meters")
    bytesize: Literal[7, 8] = Field(8, description="data bits")
    stopbits: Literal[1, 2] = Field(1, description="stop bits")


class TcpBusConfig(_BusBase):
    """Modbus TCP ("tcp") or RTU frames over a raw TCP socket ("rtu-over-tcp") to a gateway."""

    kind: Literal["tcp", "rtu-over-tcp"] = Field(description="'tcp' (MBAP) or 'rtu-over-tcp' (raw RTU frames)")
    host: str = Field(min_length=1, description="gateway address")
    port: int = Field(502, ge=1, le=65535, description="gateway TCP port")


def _bus_kind(value: Any) -> str:
    kind = value.get("kind", "rtu") if isinstance(value, dict) else getattr(value, "kind", "rtu")
    return "serial" if kind == "rtu" else "tcp"


BusConfig = Annotated[
    Union[Annotated[SerialBusConfig, Tag("serial")], Annotated[TcpBusConfig, Tag("tcp")]],
    Discriminator(_bus_kind),
]


class _Placement(_Strict):
    """Where a device sits: the site as a whole, or one connector of one charger."""

    charger: str | None = Field(None, description="charge point id (OCPP) this device belongs to")
    connector: int | None = Field(None, ge=1, description="connector number on that charger")

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.charger is None) != (self.connector is None):
            raise ValueError("charger and connector go together: set both or neither")
        return self


class MeterConfig(_Placement):
    id: str = Field(min_length=1, description="meter name used in the API")
    bus: str = Field(min_length=1, description="id of the bus the meter is on")
    model: str = Field(description=f"one of {', '.join(MODELS)}, or 'custom' with a `map`")
    device_id: int = Field(1, ge=1, le=247, description="Modbus unit id set on the meter")
    poll_s: float = Field(1.0, gt=0, description="time between polls")
    role: Literal["site", "connector"] = Field("site", description="'site' (grid) or 'connector' (one outlet)")
    max_registers: int | None = Field(None, ge=1, le=125, description="override the model's largest read")
    map: RegisterMap | None = Field(None, description="register map for model = 'custom'")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.model == "custom":
            if self.map is None:
                raise ValueError("model 'custom' needs a `map` table")
        elif self.model not in MODELS:
            raise ValueError(f"model: unknown {self.model!r} (known: {', '.join(MODELS)}, custom)")
        elif self.map is not None:
            raise ValueError("map: only for model = 'custom'")
        if self.role == "connector" and self.charger is None:
            raise ValueError("role 'connector' needs charger and connector")
        if self.role == "site" and self.charger is not None:
            raise ValueError("role 'site' takes no charger/connector")
        return self


class _ReaderBase(_Placement):
    id: str = Field(min_length=1, description="reader name used in the API and in taps")
    id_tag_format: IdTagFormat = Field("hex", description="how the UID becomes an OCPP idTag (see HARDWARE.md)")
    id_tag_reversed: bool = Field(False, description="reverse the UID's byte order before formatting")
    repeat_window_s: float = Field(
        2.0, ge=0, description="the same card seen again within this many seconds is the same tap"
    )
    reconnect_min_s: float = Field(1.0, gt=0, description="first wait before reopening a lost reader")
    reconnect_max_s: float = Field(30.0, gt=0, description="longest wait between reopen attempts")


class _SerialReader(_ReaderBase):
    port: str = Field(min_length=1, description="device path (prefer /dev/serial/by-id/...) or pyserial URL")


class Rdm6300ReaderConfig(_SerialReader):
    """RDM6300-style 125 kHz module: STX, 10 hex, 2 hex XOR checksum, ETX."""

    kind: Literal["rdm6300"] = Field(description="RDM6300-style 125 kHz module")
    baudrate: int = Field(9600, gt=0, description="line speed (RDM6300: 9600)")


class LineReaderConfig(_SerialReader):
    """A reader that prints one card id per line (Wiegand-to-serial converters, USB CDC readers)."""

    kind: Literal["line"] = Field(description="one id per text line")
    baudrate: int = Field(9600, gt=0, description="line speed (ignored by USB CDC devices)")
    encoding: Literal["hex", "decimal"] = Field("hex", description="how the reader prints the id")


class Pn532ReaderConfig(_SerialReader):
    """NXP PN532 on its HSU (UART) interface, polled with InListPassiveTarget (ISO 14443A)."""

    kind: Literal["pn532"] = Field(description="PN532 over HSU")
    baudrate: int = Field(115200, gt=0, description="HSU speed (PN532 default: 115200)")
    poll_s: float = Field(0.25, gt=0, description="time between card polls")
    response_timeout_s: float = Field(0.5, gt=0, description="how long to wait for the ACK or a response")


class ModbusReaderConfig(_ReaderBase):
    """A reader exposing the last card in Modbus registers with a 'new card' flag."""

    kind: Literal["modbus"] = Field(description="registers on a Modbus bus")
    bus: str = Field(min_length=1, description="id of the bus the reader is on")
    device_id: int = Field(1, ge=1, le=247, description="Modbus unit id of the reader")
    poll_s: float = Field(0.25, gt=0, description="time between polls of the flag")
    function_code: Literal[3, 4] = Field(3, description="3 = holding, 4 = input registers")
    flag_address: int = Field(0, ge=0, le=0xFFFF, description="register that is non-zero while a new card waits")
    uid_address: int = Field(1, ge=0, le=0xFFFF, description="first register of the UID, 2 bytes per register")
    uid_bytes: int = Field(4, ge=1, le=10, description="UID length when there is no length register")
    uid_length_address: int | None = Field(None, ge=0, le=0xFFFF, description="register holding the UID length")
    clear_flag: bool = Field(True, description="write 0 to the flag after reading (FC6, holding registers)")


ReaderConfig = Annotated[
    Union[Rdm6300ReaderConfig, LineReaderConfig, Pn532ReaderConfig, ModbusReaderConfig],
    Field(discriminator="kind"),
]


def validate_drivers(
    buses: Sequence[SerialBusConfig | TcpBusConfig],
    meters: Sequence[MeterConfig],
    readers: Sequence[Rdm6300ReaderConfig | LineReaderConfig | Pn532ReaderConfig | ModbusReaderConfig],
) -> None:
    """Check references across the three lists; ValueError names the offending key."""
    for section, items in (("buses", buses), ("meters", meters), ("readers", readers)):
        dup = [i for i, n in Counter(x.id for x in items).items() if n > 1]
        if dup:
            raise ValueError(f"{section}: duplicate id {dup[0]!r}")
    bus_ids = {b.id for b in buses}
    for section, items in (("meters", meters), ("readers", readers)):
        for i, item in enumerate(items):
            bus = getattr(item, "bus", None)
            if bus is not None and bus not in bus_ids:
                raise ValueError(f"{section}[{i}].bus: unknown bus {bus!r} (known: {', '.join(sorted(bus_ids)) or 'none'})")
    units: dict[tuple[str, int], str] = {}
    # What a device is attached to, not its kind: a reader with a `bus` is a unit on it, one with
    # a `port` owns that port (so a new reader kind is checked without a change here).
    for i, item in enumerate([*meters, *(r for r in readers if getattr(r, "bus", None) is not None)]):
        key = (item.bus, item.device_id)  # type: ignore[union-attr]
        if key in units:
            section = "meters" if i < len(meters) else "readers"
            raise ValueError(f"{section}: {item.id!r} and {units[key]!r} share device_id {key[1]} on bus {key[0]!r}")
        units[key] = item.id
    ports: dict[str, str] = {}
    serial_users = [(f"buses.{b.id}", b.port) for b in buses if isinstance(b, SerialBusConfig)]
    serial_users += [(f"readers.{r.id}", r.port) for r in readers if isinstance(r, _SerialReader)]
    for who, port in serial_users:
        if port in ports:
            raise ValueError(f"{who}.port: {port!r} is already used by {ports[port]}")
        ports[port] = who
