"""The Hardware facade: everything from config in one nursery; no device can take it down."""

from __future__ import annotations

import dataclasses

import trio
from tests.drivers.support import TapSink, wait_until

from controller.simulators.card_reader import LineReaderEmulator, Rdm6300Emulator
from controller.simulators.meter import MeterServer, SimulatedMeter
from drivers import Hardware, MeterConfig, MeterState, SerialBusConfig, Tap, TcpBusConfig
from drivers.config import LineReaderConfig, Rdm6300ReaderConfig

FAST = {"timeout_s": 0.2, "retries": 0, "reconnect_min_s": 0.02, "reconnect_max_s": 0.1}


async def test_run_reports_taps_and_readings_and_isolates_failures(tap_sink: TapSink) -> None:
    grid = SimulatedMeter("sdm630", device_id=1, energy_import_wh=10_000, power_w=11_000)
    with MeterServer(grid, "tcp") as server, Rdm6300Emulator() as rdm, LineReaderEmulator() as line:
        hardware = Hardware(
            buses=[
                TcpBusConfig(id="gw", kind="tcp", host="127.0.0.1", port=server.port, **FAST),
                SerialBusConfig(id="gone", port="/nonexistent/ttyUSB7", **FAST),
            ],
            meters=[
                MeterConfig(id="grid", bus="gw", model="sdm630", poll_s=0.02),
                MeterConfig(id="cp2", bus="gone", model="abb-b23", role="connector", charger="CP-2", connector=1),
            ],
            readers=[
                Rdm6300ReaderConfig(kind="rdm6300", id="bay-1", port=rdm.path, charger="CP-1", connector=1),
                LineReaderConfig(kind="line", id="bay-2", port=line.path, charger="CP-2", connector=1),
                Rdm6300ReaderConfig(kind="rdm6300", id="bay-3", port="/nonexistent/ttyAMA9", reconnect_min_s=0.02),
            ],
        )
        readings: list[MeterState] = []
        taps_seen = 0

        async def on_tap(tap: Tap) -> None:
            nonlocal taps_seen
            taps_seen += 1
            if tap.reader_id == "bay-2":
                raise RuntimeError("a bug in the tap handler")  # must not kill the reader
            await tap_sink(tap)

        async def on_reading(state: MeterState) -> None:
            readings.append(state)

        async with trio.open_nursery() as nursery:
            await nursery.start(hardware.run, on_tap, on_reading)
            await wait_until(lambda: hardware.meters["grid"].state.online)
            await wait_until(lambda: hardware.readers["bay-1"].state.connected and hardware.readers["bay-2"].state.connected)
            line.present("AABBCCDD")  # the handler raises: logged, the reader goes on
            await wait_until(lambda: taps_seen == 1)
            rdm.present(bytes.fromhex("62E3086CED"))
            tap = await tap_sink.next()
            assert (tap.reader_id, tap.charger, tap.connector, tap.id_tag) == ("bay-1", "CP-1", 1, "62E3086CED")
            line.present("11223344")
            await wait_until(lambda: taps_seen == 3)
            meters = {i: m.state for i, m in hardware.meters.items()}  # immutable snapshots
            readers = {i: dataclasses.replace(r.state) for i, r in hardware.readers.items()}  # copies
            buses = {i: b.connected for i, b in hardware.buses.items()}
            health = {name: check() for name, check in hardware.health_checks().items()}
            nursery.cancel_scope.cancel()

    assert meters["grid"].online and meters["grid"].energy_import_wh == 10_000
    assert not meters["cp2"].online and "cannot open" in (meters["cp2"].last_error or "")
    assert readers["bay-2"].taps == 2 and not readers["bay-3"].connected
    assert buses == {"gw": True, "gone": False}
    assert health["bus:gw"] == {"status": "ok", "connected": True, "lastError": None, "meters": 1, "metersOffline": []}
    assert health["bus:gone"]["status"] == "degraded" and health["bus:gone"]["metersOffline"] == ["cp2"]
    assert health["reader:bay-1"]["status"] == "ok" and health["reader:bay-3"]["status"] == "degraded"
    assert any(s.id == "grid" and s.online for s in readings)
    assert any(s.id == "cp2" and not s.online for s in readings)
