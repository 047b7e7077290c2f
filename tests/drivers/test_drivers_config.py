"""Configuration models: defaults, per-kind validation, and cross references."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import TypeAdapter, ValidationError

from drivers.config import (
    BusConfig,
    MeterConfig,
    ModbusReaderConfig,
    Rdm6300ReaderConfig,
    ReaderConfig,
    SerialBusConfig,
    TcpBusConfig,
    validate_drivers,
)

SITE = """
[[buses]]
id = "rs485"
kind = "rtu"
port = "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0"
baudrate = 9600

[[buses]]
id = "gw"
kind = "tcp"
host = "192.0.2.50"

[[meters]]
id = "grid"
bus = "rs485"
model = "sdm630"

[[meters]]
id = "cp1"
bus = "gw"
model = "custom"
device_id = 3
role = "connector"
charger = "CHARGER-001"
connector = 1
[meters.map]
max_registers = 60
defaults = { function_code = 3, type = "int32", word_order = "little" }
registers.energy_import_wh = { address = 0x3E, scale = 100 }
registers.power_w = { address = 0x28, scale = 0.1 }

[[readers]]
id = "bay-1"
kind = "rdm6300"
port = "/dev/ttyAMA0"
charger = "CHARGER-001"
connector = 1

[[readers]]
id = "door"
kind = "modbus"
bus = "rs485"
device_id = 9
"""


def load(text: str = SITE) -> tuple[list, list, list]:
    data = tomllib.loads(text)
    buses = TypeAdapter(list[BusConfig]).validate_python(data.get("buses", []))
    meters = TypeAdapter(list[MeterConfig]).validate_python(data.get("meters", []))
    readers = TypeAdapter(list[ReaderConfig]).validate_python(data.get("readers", []))
    return buses, meters, readers


def test_example_site_parses_with_defaults() -> None:
    buses, meters, readers = load()
    validate_drivers(buses, meters, readers)
    rtu, tcp = buses
    assert isinstance(rtu, SerialBusConfig) and (rtu.parity, rtu.timeout_s, rtu.retries) == ("N", 0.5, 2)
    assert isinstance(tcp, TcpBusConfig) and tcp.port == 502
    assert meters[0].poll_s == 1.0 and meters[0].device_id == 1 and meters[0].role == "site"
    custom = meters[1].map
    assert custom is not None and custom.registers["power_w"].type == "int32"
    assert custom.registers["power_w"].word_order == "little"
    assert isinstance(readers[0], Rdm6300ReaderConfig) and readers[0].id_tag_format == "hex"
    assert isinstance(readers[1], ModbusReaderConfig) and readers[1].clear_flag


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"model": "sdm999"}, "unknown 'sdm999'"),
        ({"model": "custom"}, "needs a `map`"),
        ({"role": "connector"}, "needs charger and connector"),
        ({"charger": "X"}, "set both or neither"),
        ({"device_id": 0}, "device_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_meter_validation_names_the_problem(patch: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MeterConfig.model_validate({"id": "m", "bus": "b", "model": "sdm630", **patch})


def test_custom_map_rejects_unknown_readings_and_half_phases() -> None:
    base = {"id": "m", "bus": "b", "model": "custom"}
    with pytest.raises(ValidationError, match="frequency_hz"):
        MeterConfig.model_validate({**base, "map": {"registers": {"frequency_hz": {"address": 1}}}})
    with pytest.raises(ValidationError, match="l1 only"):
        MeterConfig.model_validate(
            {**base, "map": {"registers": {"voltage_v_l1": {"address": 0}, "voltage_v_l2": {"address": 2}}}}
        )


def test_bus_kind_defaults_to_rtu() -> None:
    bus = TypeAdapter(BusConfig).validate_python({"id": "b", "port": "/dev/ttyUSB0"})
    assert isinstance(bus, SerialBusConfig) and bus.kind == "rtu" and bus.baudrate == 9600


def test_bus_kinds_take_their_own_fields() -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(BusConfig).validate_python({"id": "b", "kind": "tcp", "port": 502})  # no host
    with pytest.raises(ValidationError):
        TypeAdapter(BusConfig).validate_python({"id": "b", "kind": "rtu", "host": "x", "port": "/dev/x"})
    with pytest.raises(ValidationError):
        TypeAdapter(ReaderConfig).validate_python({"id": "r", "kind": "wiegand", "port": "/dev/x"})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda b, m, r: m[0].__dict__.update(bus="nope"), r"meters\[0\]\.bus: unknown bus 'nope'"),
        (lambda b, m, r: r[1].__dict__.update(bus="nope"), r"readers\[1\]\.bus: unknown bus 'nope'"),
        (lambda b, m, r: m[1].__dict__.update(id="grid"), "meters: duplicate id 'grid'"),
        (lambda b, m, r: r[1].__dict__.update(device_id=1), "share device_id 1 on bus 'rs485'"),
        (lambda b, m, r: r[0].__dict__.update(port=b[0].port), "is already used by buses.rs485"),
    ],
)
def test_cross_references(edit, message: str) -> None:  # noqa: ANN001
    buses, meters, readers = load()
    edit(buses, meters, readers)
    with pytest.raises(ValueError, match=message):
        validate_drivers(buses, meters, readers)
