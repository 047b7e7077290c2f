"""One owner per Modbus bus: serialized requests with timeouts, retries and reconnection.

RS-485 is half-duplex and a TCP gateway usually forwards to such a line, so every request on a
bus goes through one `trio.Lock`. Frames are built and parsed by pymodbus' framers (FramerRTU,
FramerSocket) over a Trio stream: no threads, and a cancelled or timed-out request stops at once
(the sync client in a worker thread cannot be cancelled and holds the bus until its own timeout).

A lost port or gateway is reopened lazily by the next request, but not before an exponential
backoff has passed; until then requests fail fast with `BusUnavailable`, so pollers keep their
rhythm and nothing waits on a dead bus.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import serial
import trio
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerBase, FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
    WriteSingleRegisterRequest,
)

from .backoff import Backoff
from .config import SerialBusConfig, TcpBusConfig
from .serial_port import open_problem, open_serial

log = logging.getLogger(__name__)

PYMODBUS_MINORS = ("3.13", "3.14", "3.15", "3.16")
"""The pymodbus minor versions the drivers' tests passed on (pyproject.toml bounds it to them).

This module drives pymodbus' framers directly (`FramerRTU`/`FramerSocket` with `DecodePDU`,
`buildFrame`, `handleFrame(data, dev_id, tid)`; PDU classes built with `dev_id=`), and the meter
emulator (controller/simulators/meter.py) uses its `SimDevice` simulator: internals, not the
client API, and they change between minor versions (3.8 and 3.9 have no `handleFrame`; before 3.13
the simulator refuses our device actions). A new minor is added here, and to the bound, after
`tests/drivers` passes on it; tests/drivers/test_pymodbus_version.py fails on any other.
"""

_EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class ModbusError(Exception):
    """A request that produced no usable answer."""


class ModbusTimeout(ModbusError):
    """No valid response within the timeout, after all retries."""


class ModbusDeviceError(ModbusError):
    """The device answered with a Modbus exception response."""

    def __init__(self, code: int, what: str) -> None:
        self.code = code
        super().__init__(f"{what}: exception {code} ({_EXCEPTION_NAMES.get(code, 'unknown')})")


class BusUnavailable(ModbusError):
    """The port or gateway is not open (lost, or waiting out the reconnect backoff)."""


class _Eof(Exception):
    """The peer closed the stream (pty master gone, TCP FIN)."""


@dataclass
class BusStats:
    """Counters since the bus was built, only ever incremented. Plain ints, so that the drivers
    need no metrics library: `controller.metrics` reads them when scraped. `requests` counts every
    attempt sent (a retry is another request); `reconnects` counts opens after the first."""

    requests: int = 0
    timeouts: int = 0  # attempts without a valid answer in time
    device_errors: int = 0  # Modbus exception responses
    io_errors: int = 0  # transport failures: a failed open, a connection lost mid-request
    reconnects: int = 0


class ModbusBus:
    """The single owner of one Modbus line or gateway connection."""

    def __init__(self, config: SerialBusConfig | TcpBusConfig) -> None:
        self.config = config
        self.id = config.id
        self.connected = False
        self.last_error: str | None = None
        self.stats = BusStats()
        self._lock = trio.Lock()
        self._stream: trio.abc.Stream | None = None
        self._opened_before = False
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s)
        self._framer: FramerBase = (FramerSocket if config.kind == "tcp" else FramerRTU)(DecodePDU(False))
        self._tid = 0
        self._last_rx = 0.0
        # Modbus RTU wants >= 3.5 character times of silence between frames (11 bits/char).
        self._frame_gap = 3.5 * 11 / config.baudrate if isinstance(config, SerialBusConfig) else 0.0

    async def read_registers(self, device_id: int, function_code: int, address: int, count: int) -> list[int]:
        """Read `count` holding (FC3) or input (FC4) registers."""
        cls = {3: ReadHoldingRegistersRequest, 4: ReadInputRegistersRequest}[function_code]
        response = await self._execute(cls(address=address, count=count, dev_id=device_id))
        registers = list(response.registers)
        if len(registers) != count:
            raise ModbusError(f"{self.id}: asked for {count} registers at {address:#06x}, got {len(registers)}")
        return registers

    async def write_register(self, device_id: int, address: int, value: int) -> None:
        """Write one holding register (FC6)."""
        await self._execute(WriteSingleRegisterRequest(address=address, registers=[value], dev_id=device_id))

    async def aclose(self) -> None:
        async with self._lock:
            await self._drop(None)

    # -- internals -------------------------------------------------------------------------

    async def _execute(self, request: ModbusPDU) -> Any:
        what = f"{self.id} unit {request.dev_id} fc{request.function_code}"
        async with self._lock:
            for attempt in range(self.config.retries + 1):
                stream = await self._connected_stream()
                self.stats.requests += 1
                try:
                    with trio.fail_after(self.config.timeout_s):
                        response = await self._exchange(stream, request)
                except trio.TooSlowError:
                    self.stats.timeouts += 1
                    await self._drain(stream)
                    continue
                except (_Eof, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    self.stats.io_errors += 1
                    await self._drop(f"connection lost: {str(exc) or type(exc).__name__}")
                    raise BusUnavailable(f"{self.id}: {self.last_error}") from exc
                self._backoff.reset()
                if isinstance(response, ExceptionResponse):
                    self.stats.device_errors += 1
                    raise ModbusDeviceError(response.exception_code, what)
                return response
            if self.config.kind != "rtu":
                # A gateway that stops answering is often wedged on its side of the TCP connection.
                await self._drop(None)
            raise ModbusTimeout(f"{what}: no response within {self.config.timeout_s} s ({attempt + 1} attempts)")

    async def _connected_stream(self) -> trio.abc.Stream:
        if self._stream is not None:
            return self._stream
        now = trio.current_time()
        if now < self._backoff.not_before:
            raise BusUnavailable(f"{self.id}: {self.last_error}; retry in {self._backoff.not_before - now:.1f} s")
        try:
            with trio.fail_after(max(self.config.timeout_s, 3.0)):
                self._stream = await self._open()
        except (OSError, serial.SerialException, ValueError, trio.TooSlowError) as exc:
            self.stats.io_errors += 1
            self._backoff.failed()
            self._set_down(f"cannot open {self._where()}: {open_problem(exc)}")
            raise BusUnavailable(f"{self.id}: {self.last_error}") from exc
        if self._opened_before:
            self.stats.reconnects += 1
        self._opened_before = True
        self.connected = True
        self.last_error = None
        log.info("bus %s: connected to %s", self.id, self._where())
        return self._stream

    async def _open(self) -> trio.abc.Stream:
        c = self.config
        if isinstance(c, SerialBusConfig):
            return await open_serial(c.port, baudrate=c.baudrate, bytesize=c.bytesize, parity=c.parity, stopbits=c.stopbits)
        return await trio.open_tcp_stream(c.host, c.port)

    def _where(self) -> str:
        c = self.config
        return c.port if isinstance(c, SerialBusConfig) else f"{c.host}:{c.port}"

    async def _exchange(self, stream: trio.abc.Stream, request: ModbusPDU) -> Any:
        if isinstance(self._framer, FramerSocket):  # RTU has no transaction id: 0
            self._tid = self._tid % 0xFFFF + 1
        request.transaction_id = self._tid
        await trio.sleep_until(self._last_rx + self._frame_gap)
        await stream.send_all(self._framer.buildFrame(request))
        buffer = b""
        while True:
            data = await stream.receive_some(512)
            if not data:
                raise _Eof("end of stream")
            self._last_rx = trio.current_time()
            buffer += data
            try:
                used, pdu = self._framer.handleFrame(buffer, request.dev_id, request.transaction_id)
            except ModbusIOException:  # undecodable PDU: line noise; wait for a good frame
                used, pdu = len(buffer), None
            buffer = buffer[used:]
            if pdu is not None and pdu.function_code & 0x7F == request.function_code:
                return pdu

    async def _drain(self, stream: trio.abc.Stream) -> None:
        """After a timeout on a serial line, swallow a late answer so that it cannot be taken
        for the answer to the next request (RTU frames carry no transaction id)."""
        if isinstance(self._framer, FramerSocket):
            return
        with trio.move_on_after(0.05 + self._frame_gap):
            try:
                while await stream.receive_some(512):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return  # the next request will notice and reconnect

    async def _drop(self, error: str | None) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with trio.CancelScope(shield=True):
                try:
                    await stream.aclose()
                except (trio.BrokenResourceError, OSError):
                    pass
        if error is not None:
            self._backoff.failed()
            self._set_down(error)
        else:
            self.connected = False

    def _set_down(self, error: str) -> None:
        if self.connected or self.last_error != error:
            log.warning("bus %s: %s", self.id, error)
        self.connected = False
        self.last_error = error
