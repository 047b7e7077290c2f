"""Card readers end to end: emulators write real frames into ptys, the driver opens the path."""

from __future__ import annotations

import os
import typing
from collections.abc import AsyncIterator, Iterator

import pytest
import trio
import trio.testing
from tests.drivers.support import TapSink, spin_until, wait_until

from controller.simulators.card_reader import LineReaderEmulator, Pn532Emulator, Rdm6300Emulator, noise
from controller.simulators.meter import MeterServer, SimulatedDevice
from drivers.config import (
    LineReaderConfig,
    ModbusReaderConfig,
    Pn532ReaderConfig,
    Rdm6300ReaderConfig,
    ReaderConfig,
    TcpBusConfig,
)
from drivers.modbus import ModbusBus
from drivers.rfid.modbus_reader import ModbusCardReader
from drivers.rfid.protocols import PROTOCOLS
from drivers.rfid.reader import Reader
from drivers.rfid.serial_reader import SerialCardReader

EM4100 = bytes.fromhex("62E3086CED")
OTHER = bytes.fromhex("0A00B1C2D3")
FAST = {"reconnect_min_s": 0.02, "reconnect_max_s": 0.1}


@pytest.fixture
def rdm() -> Iterator[Rdm6300Emulator]:
    with Rdm6300Emulator() as emulator:
        yield emulator


@pytest.fixture
def pn() -> Iterator[Pn532Emulator]:
    with Pn532Emulator() as emulator:
        yield emulator


async def start_reader(nursery: trio.Nursery, config, sink: TapSink, bus: ModbusBus | None = None) -> Reader:  # noqa: ANN001
    reader = Reader(config, bus)
    nursery.start_soon(reader.run, sink)
    await wait_until(lambda: reader.state.connected)
    return reader


@pytest.fixture
async def nursery() -> AsyncIterator[trio.Nursery]:
    async with trio.open_nursery() as n:
        yield n
        n.cancel_scope.cancel()


def test_every_reader_kind_has_exactly_one_protocol() -> None:
    """The table is the only dispatch on the kind: every kind the config accepts is in it."""
    models = typing.get_args(typing.get_args(ReaderConfig)[0])
    kinds = {typing.get_args(m.model_fields["kind"].annotation)[0] for m in models}
    assert set(PROTOCOLS) == kinds == {"rdm6300", "line", "pn532", "modbus"}
    serial = Reader(Pn532ReaderConfig(kind="pn532", id="p", port="/nonexistent/tty"))
    assert isinstance(serial.source, SerialCardReader)
    bus = ModbusBus(TcpBusConfig(id="gw", kind="tcp", host="127.0.0.1", port=1))
    on_bus = ModbusReaderConfig(kind="modbus", id="door", bus="gw")
    assert isinstance(Reader(on_bus, bus).source, ModbusCardReader)
    with pytest.raises(ValueError, match="needs its bus"):
        Reader(on_bus)


async def test_rdm6300_repeats_collapse_and_tap_fields(rdm: Rdm6300Emulator, tap_sink: TapSink, nursery: trio.Nursery) -> None:
    config = Rdm6300ReaderConfig(kind="rdm6300", id="bay-1", port=rdm.path, charger="CP-1", connector=2)
    reader = await start_reader(nursery, config, tap_sink)
    rdm.present(EM4100, repeats=5)
    rdm.present(OTHER, repeats=3)
    first, second = await tap_sink.next(), await tap_sink.next()
    assert (first.id_tag, second.id_tag) == ("62E3086CED", "0A00B1C2D3")
    assert (first.reader_id, first.charger, first.connector, first.uid) == ("bay-1", "CP-1", 2, "62E3086CED")
    assert first.at.tzinfo is not None
    state = reader.state
    assert state.taps == 2 and state.last_id_tag == "0A00B1C2D3" and state.connected is True
    assert state.last_tap_at == second.at and state.bad_frames == 0 and state.noise_bytes == 0


async def test_rdm6300_garbage_never_becomes_a_tap(rdm: Rdm6300Emulator, tap_sink: TapSink, nursery: trio.Nursery) -> None:
    reader = await start_reader(nursery, Rdm6300ReaderConfig(kind="rdm6300", id="r", port=rdm.path), tap_sink)
    rdm.write(noise(25, seed=1))
    rdm.write(rdm.bad_checksum_frame(OTHER))
    rdm.write(rdm.frame(OTHER)[:7])  # cut off mid-frame ...
    rdm.write(rdm.frame(EM4100))  # ... by the next card's frame
    assert (await tap_sink.next()).uid == "62E3086CED"
    assert (reader.state.bad_frames, reader.state.noise_bytes) == (2, 25)
    assert len(tap_sink.taps) == 1


async def test_repeat_window_on_the_trio_clock(
    rdm: Rdm6300Emulator, tap_sink: TapSink, nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    """The window is measured on Trio's clock: jumping it past the window makes a held card a
    new tap, without the test sleeping. (I/O still flows; only time is virtual.)"""
    config = Rdm6300ReaderConfig(kind="rdm6300", id="r", port=rdm.path, repeat_window_s=2.0)
    reader = Reader(config)
    nursery.start_soon(reader.run, tap_sink)
    await spin_until(lambda: reader.state.connected)
    rdm.present(EM4100, repeats=2)
    assert (await tap_sink.next_spinning()).uid == "62E3086CED"
    mock_clock.jump(1.5)
    rdm.present(EM4100, repeats=2)  # within the window: the same tap ...
    rdm.present(OTHER, repeats=1)  # ... proven by the next tap being the other card
    assert (await tap_sink.next_spinning()).uid == "0A00B1C2D3"
    rdm.present(EM4100)
    assert (await tap_sink.next_spinning()).uid == "62E3086CED"  # another card came between
    mock_clock.jump(2.5)
    rdm.present(EM4100)
    assert (await tap_sink.next_spinning()).uid == "62E3086CED"  # absent longer than the window
    assert reader.state.taps == 4


@pytest.mark.parametrize(
    ("fmt", "reverse", "tag"),
    [("hex", False, "62E3086CED"), ("hex-last4", False, "E3086CED"), ("dec10", False, "3808980205"), ("hex", True, "ED6C08E362")],
)
async def test_id_tag_format_per_reader(
    rdm: Rdm6300Emulator, tap_sink: TapSink, nursery: trio.Nursery, fmt: str, reverse: bool, tag: str
) -> None:
    config = Rdm6300ReaderConfig(kind="rdm6300", id="r", port=rdm.path, id_tag_format=fmt, id_tag_reversed=reverse)
    await start_reader(nursery, config, tap_sink)
    rdm.present(EM4100)
    assert (await tap_sink.next()).id_tag == tag


async def test_reader_survives_unplug_and_replug(rdm: Rdm6300Emulator, tap_sink: TapSink, nursery: trio.Nursery) -> None:
    reader = await start_reader(nursery, Rdm6300ReaderConfig(kind="rdm6300", id="r", port=rdm.path, **FAST), tap_sink)
    rdm.unplug()
    await wait_until(lambda: not reader.state.connected)
    assert not os.path.exists(rdm.path) and "lost" in (reader.state.last_error or "")
    await trio.sleep(0.2)  # a few failed reopen attempts while the device is away
    assert not reader.state.connected and "cannot open" in (reader.state.last_error or "")
    rdm.plug()
    await wait_until(lambda: reader.state.connected)
    assert reader.state.reconnects == 1 and reader.state.last_error is None
    rdm.present(EM4100)
    assert (await tap_sink.next()).uid == "62E3086CED"


async def test_line_reader_hex_and_decimal(tap_sink: TapSink, nursery: trio.Nursery) -> None:
    with LineReaderEmulator() as hex_port, LineReaderEmulator() as dec_port:
        hex_reader = await start_reader(nursery, LineReaderConfig(kind="line", id="h", port=hex_port.path), tap_sink)
        config = LineReaderConfig(kind="line", id="d", port=dec_port.path, encoding="decimal", id_tag_format="dec10")
        await start_reader(nursery, config, tap_sink)
        hex_port.write(b"not a card\r\n")
        hex_port.present("04a2b3c4d5e680")
        tap = await tap_sink.next()
        assert (tap.reader_id, tap.id_tag) == ("h", "04A2B3C4D5E680")
        assert hex_reader.state.bad_frames == 1
        dec_port.present("12345678", ending="\n")
        tap = await tap_sink.next()
        assert (tap.reader_id, tap.id_tag, tap.uid) == ("d", "0012345678", "00BC614E")


async def test_pn532_wakes_configures_and_polls(pn: Pn532Emulator, tap_sink: TapSink, nursery: trio.Nursery) -> None:
    config = Pn532ReaderConfig(kind="pn532", id="p", port=pn.path, poll_s=0.02)
    reader = await start_reader(nursery, config, tap_sink)
    await wait_until(lambda: pn.commands.count(0x4A) >= 2)  # polling, no card yet
    assert pn.commands[:3] == [0x14, 0x32, 0x4A]  # SAMConfiguration, RFConfiguration, InListPassiveTarget
    assert not tap_sink.taps
    pn.card = bytes.fromhex("04A2B3C4D5E680")
    tap = await tap_sink.next()
    assert tap.id_tag == "04A2B3C4D5E680"
    await wait_until(lambda: pn.commands.count(0x4A) >= 10)  # still held: no second tap
    assert len(tap_sink.taps) == 1 and reader.state.bad_frames == 0


async def test_pn532_retries_past_corrupted_responses(pn: Pn532Emulator, tap_sink: TapSink, nursery: trio.Nursery) -> None:
    config = Pn532ReaderConfig(kind="pn532", id="p", port=pn.path, poll_s=0.02, response_timeout_s=0.2)
    reader = await start_reader(nursery, config, tap_sink)
    await wait_until(lambda: pn.commands.count(0x4A) >= 1)
    pn.corrupt_responses = 2
    pn.card = bytes.fromhex("DEADBEEF")
    assert (await tap_sink.next()).uid == "DEADBEEF"
    assert reader.state.bad_frames == 2 and reader.state.reconnects == 0


async def test_pn532_silent_chip_is_reopened(pn: Pn532Emulator, tap_sink: TapSink, nursery: trio.Nursery) -> None:
    config = Pn532ReaderConfig(kind="pn532", id="p", port=pn.path, poll_s=0.02, response_timeout_s=0.05, **FAST)
    reader = await start_reader(nursery, config, tap_sink)
    pn.silent = True
    await wait_until(lambda: not reader.state.connected)
    assert "no answer" in (reader.state.last_error or "")
    pn.silent = False
    await wait_until(lambda: reader.state.connected and reader.state.reconnects >= 1)
    pn.card = bytes.fromhex("11223344")
    assert (await tap_sink.next()).uid == "11223344"


async def test_pn532_unplug_and_replug_needs_a_new_wakeup(pn: Pn532Emulator, tap_sink: TapSink, nursery: trio.Nursery) -> None:
    reader = await start_reader(nursery, Pn532ReaderConfig(kind="pn532", id="p", port=pn.path, poll_s=0.02, **FAST), tap_sink)
    pn.unplug()
    await wait_until(lambda: not reader.state.connected)
    pn.commands.clear()
    pn.plug()  # the emulated chip is asleep again: only a driver that wakes it gets answers
    pn.card = bytes.fromhex("CAFEBABE")
    assert (await tap_sink.next()).uid == "CAFEBABE"
    assert pn.commands[:2] == [0x14, 0x32] and reader.state.reconnects == 1


async def test_modbus_reader_reads_uid_and_clears_flag(tap_sink: TapSink, nursery: trio.Nursery) -> None:
    device = SimulatedDevice(5, spans={3: (0, 8)})
    with MeterServer(device, "tcp") as server:
        bus = ModbusBus(TcpBusConfig(id="gw", kind="tcp", host="127.0.0.1", port=server.port, **FAST))
        config = ModbusReaderConfig(
            kind="modbus", id="door", bus="gw", device_id=5, poll_s=0.02, uid_bytes=7, uid_length_address=6
        )
        reader = await start_reader(nursery, config, tap_sink, bus)
        device.set_registers(3, 1, [0x04A2, 0xB3C4, 0xD5E6, 0x8000, 0, 7])  # UID, then its length
        device.set_registers(3, 0, [1])  # the "new card" flag
        assert (await tap_sink.next()).id_tag == "04A2B3C4D5E680"
        await wait_until(lambda: device.get_registers(3, 0, 1) == [0])
        server.stop()
        await wait_until(lambda: not reader.state.connected)
        server.start()
        await wait_until(lambda: reader.state.connected)
        assert reader.state.reconnects == 1
        await bus.aclose()
