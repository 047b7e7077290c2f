"""Energy meter emulators: pymodbus servers answering with a meter model's register map.

`SimulatedDevice` holds one Modbus unit's registers; `SimulatedMeter` fills them from readings
(`energy_import_wh=...`) through the model's own map and data types, so each built-in model, and
any custom map, is emulated by the same code the driver decodes with. `MeterServer` serves one or
more devices (one RS-485 line) over Modbus TCP, RTU over TCP, or RTU over a virtual serial port,
in a thread with its own asyncio loop (pymodbus servers are asyncio), and can be stopped and
started again at the same address: a gateway or USB adapter that goes away and comes back.

Faults: `device.exception_code = 2` answers every request with that Modbus exception;
`device.silent = True` (one unit) or `server.silent = True` (the whole line) sends no answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType

from drivers.meters.models import load_model
from drivers.meters.register_map import PHASE_READINGS, PHASES, RegisterMap
from drivers.registers import encode

__all__ = ["MeterServer", "SimulatedDevice", "SimulatedMeter"]

logging.getLogger("pymodbus").setLevel(logging.ERROR)  # its deprecation notices are not ours

Transport = Literal["tcp", "rtu-over-tcp", "rtu"]
_WRITE_TO_READ_FC = {6: 3, 16: 3, 3: 3, 4: 4}


class SimulatedDevice:
    """One Modbus unit: holding (FC3) and input (FC4) registers over the given address spans."""

    def __init__(self, device_id: int = 1, spans: dict[int, tuple[int, int]] | None = None) -> None:
        self.device_id = device_id
        self.spans = spans or {3: (0, 16)}  # function code -> (first address, count)
        self.exception_code: int | None = None
        self.silent = False
        self._registers: dict[int, dict[int, int]] = {3: {}, 4: {}}
        self._lock = threading.Lock()

    def set_registers(self, function_code: int, address: int, values: Iterable[int]) -> None:
        with self._lock:
            for offset, value in enumerate(values):
                self._registers[function_code][address + offset] = value & 0xFFFF

    def get_registers(self, function_code: int, address: int, count: int) -> list[int]:
        with self._lock:
            return [self._registers[function_code].get(address + i, 0) for i in range(count)]

    def sim_device(self) -> SimDevice:
        def block(fc: int) -> list[SimData]:
            first, count = self.spans.get(fc, (0, 1))
            return [SimData(first, count=count, values=0, datatype=DataType.REGISTERS)]

        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        return SimDevice(self.device_id, simdata=(bits, list(bits), block(3), block(4)), action=self._action)

    async def _action(
        self, function_code: int, start: int, address: int, count: int, registers: list[int], set_values: object
    ) -> ExcCodes | None:
        """pymodbus calls this before every access: answer from our registers, or fail."""
        if self.exception_code:
            return ExcCodes(self.exception_code)
        fc = _WRITE_TO_READ_FC.get(function_code, function_code)
        if set_values is not None:
            self.set_registers(fc, address, list(set_values))  # type: ignore[call-overload]
        else:
            registers[address - start : address - start + count] = self.get_registers(fc, address, count)
        return None


class SimulatedMeter(SimulatedDevice):
    """A meter of a built-in model (or a custom map) with settable readings.

    >>> m = SimulatedMeter("sdm630", energy_import_wh=1_234_500, power_w=7200, voltage_v=[230, 231, 229])
    """

    def __init__(self, model: str | RegisterMap, device_id: int = 1, **readings: float | Sequence[float]) -> None:
        self.register_map = load_model(model) if isinstance(model, str) else model
        spans: dict[int, tuple[int, int]] = {}
        for f in self.register_map.fields():
            first, count = spans.get(f.function_code, (f.address, 0))
            first2 = min(first, f.address)
            spans[f.function_code] = (first2, max(first + count, f.end) - first2)
        super().__init__(device_id, spans)
        self.set(**readings)

    def set(self, **readings: float | Sequence[float]) -> None:
        """Set readings in their units: scalars (energy_import_wh, power_w, voltage_v_l2 ...) or
        per-phase sequences (voltage_v=[230, 231, 229]). Readings the model lacks are ignored."""
        flat: dict[str, float] = {}
        for name, value in readings.items():
            if name in PHASE_READINGS and isinstance(value, Sequence):
                flat.update({f"{name}_{p}": v for p, v in zip(PHASES, value)})
            else:
                flat[name] = value  # type: ignore[assignment]
        for name, value in flat.items():
            spec = self.register_map.registers.get(name)  # type: ignore[call-overload]
            if spec is not None:
                raw = value / spec.scale
                raw = raw if spec.type.startswith("float") else round(raw)
                self.set_registers(spec.function_code, spec.address, encode(raw, spec.type, spec.word_order))


class MeterServer:
    """A Modbus line with simulated devices, served from a background thread.

    tcp / rtu-over-tcp: listens on `host`:`port` (port 0 picks a free port, kept on restart).
    rtu: serves RTU on one pty and exposes the other end at `serial_path` (a symlink, in a
    temporary directory unless given), joined by a null-modem thread as socat would.
    Use as a context manager, or call start()/stop() and finally close().
    """

    def __init__(
        self,
        devices: SimulatedDevice | Sequence[SimulatedDevice],
        transport: Transport = "tcp",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        serial_path: str | None = None,
        baudrate: int = 9600,
    ) -> None:
        self.devices = {d.device_id: d for d in ([devices] if isinstance(devices, SimulatedDevice) else devices)}
        self.transport = transport
        self.host, self.port = host, port
        self.baudrate = baudrate
        self.silent = False
        self._tmpdir = tempfile.mkdtemp(prefix="evedge-modbus-") if transport == "rtu" and not serial_path else None
        self.serial_path = serial_path or str(Path(self._tmpdir or ".") / "ttyMODBUS0")
        """Where the driver opens the line (transport "rtu"); the same across stop/start."""
        self._null_modem: _NullModem | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> MeterServer:
        if self._thread is not None:
            return self
        if self.transport == "rtu":
            self._null_modem = _NullModem(self.serial_path)
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._thread_main, args=(ready, failure), daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            self.stop()
            raise RuntimeError(f"meter server did not start: {failure[0] if failure else 'timeout'}")
        return self

    def stop(self) -> None:
        """Stop answering and drop connections; a TCP client sees the connection close, an
        RTU client sees its serial device disappear."""
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)
        self._thread = self._loop = self._stopping = None
        if self._null_modem is not None:
            self._null_modem.close()
            self._null_modem = None

    def close(self) -> None:
        self.stop()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> MeterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- server thread ---------------------------------------------------------------------

    def _thread_main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        try:
            asyncio.run(self._serve(ready))
        except BaseException as exc:  # reported to start(); a thread cannot raise to its owner
            failure.append(exc)
            ready.set()

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        context = [d.sim_device() for d in self.devices.values()]
        server: ModbusTcpServer | ModbusSerialServer
        if self.transport == "rtu":
            assert self._null_modem is not None
            server = ModbusSerialServer(
                context,
                framer=FramerType.RTU,
                port=self._null_modem.server_side.path,
                baudrate=self.baudrate,
                trace_packet=self._trace,
            )
        else:
            framer = FramerType.SOCKET if self.transport == "tcp" else FramerType.RTU
            server = ModbusTcpServer(context, framer=framer, address=(self.host, self.port), trace_packet=self._trace)
        await server.serve_forever(background=True)
        if self.transport != "rtu":
            self.port = server.transport.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            await server.shutdown()

    def _trace(self, sending: bool, packet: bytes) -> bytes:
        """Drop the answers of silent devices (or of the whole line) on their way out."""
        if not sending or not packet:
            return packet
        unit = packet[6] if self.transport == "tcp" else packet[0]
        device = self.devices.get(unit)
        return b"" if self.silent or (device is not None and device.silent) else packet


class _NullModem:
    """Two ptys cross-connected by threads: the server opens one, the driver the other."""

    def __init__(self, driver_path: str) -> None:
        from .card_reader import (
            VirtualSerialPort,  # the pty helper lives with the card readers
        )

        self.server_side = VirtualSerialPort(on_input=lambda data: self.driver_side.write(data))
        self.driver_side = VirtualSerialPort(driver_path, on_input=self.server_side.write)

    def close(self) -> None:
        self.driver_side.close()
        self.server_side.close()
