"""Opening a serial port as a Trio stream.

pyserial opens and configures the port (baud rate, parity, URL handlers); Trio then reads a
duplicate of its file descriptor, so a read waits in the event loop and is cancelled instantly.
pyserial leaves VMIN=0, which makes an idle read return b"" and look like EOF; VMIN=1, VTIME=0
restores "block until at least one byte". `socket://host:port` is plain TCP and is opened by Trio
itself; other URLs without a file descriptor (rfc2217://, loop://) fall back to short blocking
reads in a worker thread.
"""

from __future__ import annotations

import io
import os
import termios
from urllib.parse import urlsplit

import serial
import trio

#: How long a worker-thread read blocks; bounds the cancellation delay of the thread fallback.
_THREAD_READ_S = 0.05


def _open(port: str, baudrate: int, bytesize: int, parity: str, stopbits: int) -> serial.SerialBase:
    return serial.serial_for_url(
        port, baudrate=baudrate, bytesize=bytesize, parity=parity, stopbits=stopbits, timeout=_THREAD_READ_S
    )


def open_problem(exc: BaseException) -> str:
    """Why a port or a gateway could not be opened, without the path the caller names anyway
    (pyserial repeats it twice: "[Errno 2] could not open port X: [Errno 2] No such file or
    directory: 'X'" becomes "No such file or directory")."""
    number = getattr(exc, "errno", None)
    if isinstance(number, int) and number > 0:
        return os.strerror(number)
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


async def open_serial(
    port: str, *, baudrate: int = 9600, bytesize: int = 8, parity: str = "N", stopbits: int = 1
) -> trio.abc.Stream:
    """Open `port` (a device path or a pyserial URL). Raises OSError/serial.SerialException if it
    cannot be opened; the stream raises trio.BrokenResourceError or returns b"" once it is gone."""
    if port.startswith("socket://"):
        url = urlsplit(port)
        if not url.hostname or not url.port:
            raise ValueError(f"{port!r}: expected socket://host:port")
        return await trio.open_tcp_stream(url.hostname, url.port)
    ser = await trio.to_thread.run_sync(_open, port, baudrate, bytesize, parity, stopbits)
    try:
        fd = ser.fileno()
    except (AttributeError, io.UnsupportedOperation, serial.SerialException):
        return _ThreadedSerialStream(ser)
    try:
        if os.isatty(fd):
            attrs = termios.tcgetattr(fd)
            attrs[6][termios.VMIN] = 1
            attrs[6][termios.VTIME] = 0
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        return trio.lowlevel.FdStream(os.dup(fd))
    finally:
        ser.close()  # the duplicate keeps the port open; pyserial's handle is no longer needed


class _ThreadedSerialStream(trio.abc.Stream):
    """A pyserial object without a file descriptor, read in short blocking slices in a thread."""

    def __init__(self, ser: serial.SerialBase) -> None:
        self._ser = ser

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while True:
            try:
                data = await trio.to_thread.run_sync(self._read, max_bytes or 4096)
            except (OSError, serial.SerialException) as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            if data:
                return data

    def _read(self, max_bytes: int) -> bytes:
        if not self._ser.is_open:
            raise serial.SerialException("port closed")
        return self._ser.read(max(1, min(max_bytes, self._ser.in_waiting)))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await trio.to_thread.run_sync(self._ser.write, bytes(data))
        except (OSError, serial.SerialException) as exc:
            raise trio.BrokenResourceError(str(exc)) from exc

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:  # pragma: no cover - serial lines have no half-close
        raise NotImplementedError

    async def aclose(self) -> None:
        self._ser.close()
        await trio.lowlevel.checkpoint()
