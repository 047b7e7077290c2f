"""Meters end to end: pymodbus servers emulate every model over TCP, RTU over TCP and RTU over
a pty; the driver polls them through its own bus, as it would real hardware."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta

import pytest
import trio
from tests.drivers.support import wait_until

from controller.simulators.meter import MeterServer, SimulatedMeter
from drivers.config import MeterConfig, SerialBusConfig, TcpBusConfig
from drivers.meters.meter import Meter
from drivers.meters.models import MODELS, load_model
from drivers.meters.register_map import RegisterMap
from drivers.meters.state import MeterState
from drivers.modbus import ModbusBus

READINGS = {
    "energy_import_wh": 1_234_567.8,
    "energy_export_wh": 4_321.0,
    "power_w": 7_245.5,
    "voltage_v": [230.1, 231.2, 229.3],
    "current_a": [10.5, 10.25, 9.75],
    "phase_power_w": [2_415.5, 2_410.0, 2_420.0],
}
TRANSPORTS = ["tcp", "rtu-over-tcp", "rtu"]


def readings_for(model: str) -> dict[str, object]:
    """Single-phase meters read total and phase power from one register: keep them equal."""
    if model == "sdm120":
        return {**READINGS, "phase_power_w": [READINGS["power_w"]]}
    return READINGS
FAST = {"timeout_s": 0.3, "retries": 1, "reconnect_min_s": 0.02, "reconnect_max_s": 0.1}


def bus_config(server: MeterServer, bus_id: str = "line", **overrides: object) -> SerialBusConfig | TcpBusConfig:
    options = {**FAST, **overrides}
    if server.transport == "rtu":
        return SerialBusConfig(id=bus_id, port=server.serial_path, baudrate=server.baudrate, **options)
    return TcpBusConfig(id=bus_id, kind=server.transport, host=server.host, port=server.port, **options)


def expected(model: str, name: str, value: object) -> object:
    """What the driver should report: the reading if the model has it, at the map's resolution."""
    register_map = load_model(model)
    keys = [k for k in register_map.registers if k == name or k.startswith(name + "_l")]
    if not keys:
        return None
    if isinstance(value, list):
        return [pytest.approx(v, abs=register_map.registers[k].scale) for k, v in zip(keys, value)]
    return pytest.approx(value, abs=register_map.registers[keys[0]].scale, rel=1e-6)


@pytest.fixture(scope="module", params=TRANSPORTS)
def line(request: pytest.FixtureRequest) -> Iterator[tuple[MeterServer, dict[str, SimulatedMeter]]]:
    """One line (or gateway) with one meter of every model, at device ids 1..n."""
    meters = {model: SimulatedMeter(model, device_id=i, **readings_for(model)) for i, model in enumerate(MODELS, start=1)}
    with MeterServer(list(meters.values()), request.param, baudrate=115200) as server:
        yield server, meters


async def test_every_model_reads_over_every_transport(line: tuple[MeterServer, dict[str, SimulatedMeter]]) -> None:
    server, sims = line
    bus = ModbusBus(bus_config(server))
    try:
        for model, sim in sims.items():
            meter = Meter(MeterConfig(id=model, bus="line", model=model, device_id=sim.device_id), bus)
            state = await meter.poll()
            assert state.online, state.last_error
            for name, value in readings_for(model).items():
                got = getattr(state, name)
                want = expected(model, name, value)
                assert (list(got) if isinstance(got, tuple) else got) == want, (model, name)
            assert len(state.voltage_v or (None,)) == (1 if model == "sdm120" else 3) or state.voltage_v is None
            assert bus.stats.timeouts == 0
    finally:
        await bus.aclose()


async def test_exception_responses_take_a_meter_offline_and_back(line: tuple[MeterServer, dict[str, SimulatedMeter]]) -> None:
    server, sims = line
    bus = ModbusBus(bus_config(server))
    sim = sims["abb-b23"]
    meter = Meter(MeterConfig(id="m", bus="line", model="abb-b23", device_id=sim.device_id), bus)
    try:
        assert (await meter.poll()).online
        sim.exception_code = 2
        state = await meter.poll()
        assert not state.online and "exception 2 (illegal data address)" in (state.last_error or "")
        assert state.energy_import_wh == pytest.approx(1_234_567.8, abs=10)  # last good values kept
        assert bus.connected and bus.stats.device_errors == 1
        sim.exception_code = None
        sim.set(energy_import_wh=1_300_000)
        state = await meter.poll()
        assert state.online and state.last_error is None and state.energy_import_wh == 1_300_000
    finally:
        sim.exception_code = None
        await bus.aclose()


async def test_a_silent_meter_times_out_without_stalling_the_others(
    line: tuple[MeterServer, dict[str, SimulatedMeter]],
) -> None:
    server, sims = line
    bus = ModbusBus(bus_config(server, timeout_s=0.2, retries=1))
    silent = Meter(MeterConfig(id="s", bus="line", model="sdm630", device_id=sims["sdm630"].device_id), bus)
    healthy = Meter(MeterConfig(id="h", bus="line", model="sdm120", device_id=sims["sdm120"].device_id), bus)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0.01)

    sims["sdm630"].silent = True
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(heartbeat)
            state = await silent.poll()
            assert not state.online and "no response" in (state.last_error or "")
            assert bus.stats.timeouts == 2  # the first attempt and one retry (/metrics reads this count)
            assert bus.stats.requests == 2 and bus.stats.io_errors == 0
            assert ticks > 5  # the event loop kept running while the bus waited
            assert (await healthy.poll()).online  # the next device on the line still answers
            sims["sdm630"].silent = False
            assert (await silent.poll()).online
            nursery.cancel_scope.cancel()
    finally:
        sims["sdm630"].silent = False
        await bus.aclose()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_gateway_or_adapter_goes_away_and_comes_back(transport: str) -> None:
    sim = SimulatedMeter("em340", device_id=1, **READINGS)
    with MeterServer(sim, transport) as server:
        bus = ModbusBus(bus_config(server))
        meter = Meter(MeterConfig(id="m", bus="line", model="em340", poll_s=0.02), bus)
        states: list[MeterState] = []

        async def on_reading(state: MeterState) -> None:
            states.append(state)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(meter.run, on_reading)
            await wait_until(lambda: meter.state.online)
            server.stop()
            await wait_until(lambda: not meter.state.online)
            assert not bus.connected or bus.stats.timeouts > 0
            offline_at = len(states)
            sim.set(energy_import_wh=2_000_000)
            server.start()
            await wait_until(lambda: meter.state.online and meter.state.energy_import_wh == 2_000_000)
            assert bus.stats.reconnects >= 1 and bus.connected
            nursery.cancel_scope.cancel()
        offline = [s for s in states if not s.online]
        assert offline and len(offline) <= offline_at  # offline reported, not once per failed poll
        assert all(s.updated_at is not None for s in states)
        await bus.aclose()


async def test_unreachable_bus_fails_fast_during_backoff() -> None:
    bus = ModbusBus(SerialBusConfig(id="usb", port="/nonexistent/ttyUSB9", reconnect_min_s=60, reconnect_max_s=60))
    meter = Meter(MeterConfig(id="m", bus="usb", model="sdm630"), bus)
    first = await meter.poll()
    assert not first.online and "cannot open /nonexistent/ttyUSB9" in (first.last_error or "")
    assert first.last_error.count("/nonexistent/ttyUSB9") == 1, first.last_error  # the path once, then why
    assert first.last_error.endswith("No such file or directory"), first.last_error
    with trio.fail_after(1):  # within the 60 s backoff: answered at once, no retry of the open
        second = await meter.poll()
    assert "retry in" in (second.last_error or "") and bus.stats.requests == 0


async def test_custom_map_reads_into_the_state() -> None:
    custom = RegisterMap.model_validate(
        {
            "max_registers": 8,
            "defaults": {"function_code": 3, "type": "int32", "word_order": "little"},
            "registers": {
                "energy_import_wh": {"address": 0x100, "type": "uint64", "word_order": "big", "scale": 10},
                "power_w": {"address": 0x10, "scale": 0.1},
                "voltage_v_l1": {"address": 0x00, "type": "uint16", "scale": 0.1},
            },
        }
    )
    sim = SimulatedMeter(custom, device_id=7, energy_import_wh=5_000, power_w=-1_500.5, voltage_v=[229.9])
    with MeterServer(sim, "tcp") as server:
        bus = ModbusBus(bus_config(server, bus_id="gw"))
        config = MeterConfig(
            id="cp1", bus="gw", model="custom", map=custom, device_id=7, role="connector", charger="CP-1", connector=1
        )
        meter = Meter(config, bus)
        assert [(b.address, b.count) for b in meter.blocks] == [(0x00, 1), (0x10, 2), (0x100, 4)]
        state = await meter.poll()
        await bus.aclose()
    assert state == MeterState(
        id="cp1",
        model="custom",
        bus="gw",
        role="connector",
        charger="CP-1",
        connector=1,
        online=True,
        last_error=None,
        energy_import_wh=5000.0,
        energy_export_wh=None,
        power_w=-1500.5,
        voltage_v=(229.9,),
        current_a=None,
        phase_power_w=None,
        updated_at=state.updated_at,
    )
    assert state.updated_at is not None and state.updated_at.utcoffset() == timedelta(0)


async def test_rtu_over_a_pyserial_socket_url() -> None:
    """A serial-over-IP gateway configured as a pyserial URL on an "rtu" bus."""
    sim = SimulatedMeter("sdm120", device_id=3, power_w=3_680)
    with MeterServer(sim, "rtu-over-tcp") as server:
        bus = ModbusBus(SerialBusConfig(id="url", port=f"socket://127.0.0.1:{server.port}", **FAST))
        state = await Meter(MeterConfig(id="m", bus="url", model="sdm120", device_id=3), bus).poll()
        await bus.aclose()
    assert state.online and state.power_w == 3_680


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll not installed (apt-get install mbpoll)")
async def test_emulator_speaks_modbus_to_an_independent_client() -> None:
    """mbpoll, a C implementation (libmodbus), reads the emulated SDM630's import energy."""
    sim = SimulatedMeter("sdm630", energy_import_wh=1_234_500)
    with MeterServer(sim, "tcp") as server:
        args = ["mbpoll", "-1", "-0", "-B", "-t", "3:float", "-r", str(0x48), "-p", str(server.port), "-q", "127.0.0.1"]
        result = await trio.to_thread.run_sync(lambda: subprocess.run(args, capture_output=True, text=True, timeout=10))
    assert re.search(r"\[72\]:\s+1234\.5\b", result.stdout), result.stdout + result.stderr
