"""Opening ports as Trio streams: ttys through a file descriptor, other URLs through a thread."""

from __future__ import annotations

import pytest
import trio

from controller.simulators.card_reader import VirtualSerialPort
from drivers.serial_port import open_serial


async def test_tty_idle_read_blocks_instead_of_looking_like_eof() -> None:
    """pyserial leaves VMIN=0; without VMIN=1 an idle read would return b"" at once."""
    with VirtualSerialPort() as port:
        stream = await open_serial(port.path)
        async with stream:
            with trio.move_on_after(0.05) as scope:  # idle: must wait, not return b""
                await stream.receive_some(16)
            assert scope.cancelled_caught
            port.write(b"\x02hi")
            assert await stream.receive_some(16) == b"\x02hi"
            port.unplug()
            assert await stream.receive_some(16) == b""  # device gone: end of stream


async def test_urls_without_a_descriptor_go_through_a_thread() -> None:
    stream = await open_serial("loop://", baudrate=115200)  # pyserial's loopback URL
    async with stream:
        await stream.send_all(b"ping")
        data = b""
        while len(data) < 4:
            data += await stream.receive_some(16)
        assert data == b"ping"
        with trio.move_on_after(0.05) as scope:  # cancellable while the thread polls
            await stream.receive_some(16)
        assert scope.cancelled_caught


async def test_bad_ports_raise_at_open() -> None:
    with pytest.raises(OSError):
        await open_serial("/nonexistent/ttyUSB0")
    with pytest.raises(ValueError):
        await open_serial("socket://no-port-given")
