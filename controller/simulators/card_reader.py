"""Card reader emulators that write real frames into a pseudo-terminal.

`VirtualSerialPort` is a pty whose slave side is reachable under a fixed symlink, as a USB
adapter is under /dev/serial/by-id/...; `unplug()` closes it (the driver reads end-of-stream and
the path disappears) and `plug()` brings a fresh pty back behind the same path. The emulators on
top speak each reader protocol: RDM6300 frames (with repeats), line readers, and a PN532 that
answers the driver's HSU commands. Fault helpers produce what a flaky line does: corrupted
checksums, cut-off frames, noise. Frame encoding comes from the driver modules; the driver tests
pin those encoders against literal frames from the datasheets.

Everything here is synchronous and thread-based so that tests (Trio) and a demo command can
use it alike.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import shutil
import tempfile
import threading
import tty
from collections.abc import Callable
from pathlib import Path

from drivers.rfid import pn532, rdm6300
from drivers.rfid.state import FrameCounters

__all__ = [
    "LineReaderEmulator",
    "Pn532Emulator",
    "Rdm6300Emulator",
    "VirtualSerialPort",
    "noise",
]


def noise(count: int, *, avoid: bytes = b"\x02\x03\r\n\x00\xff", seed: int | None = None) -> bytes:
    """Random line noise that contains none of `avoid` (by default no framing bytes of any of
    the protocols, so that a test knows exactly how many noise bytes to expect)."""
    rng = random.Random(seed)
    allowed = [b for b in range(256) if b not in avoid]
    return bytes(rng.choice(allowed) for _ in range(count))


class VirtualSerialPort:
    """A pty pair with the slave reachable at `path` (a symlink), and an optional input thread
    that hands whatever the driver writes to `on_input`."""

    def __init__(self, path: str | os.PathLike[str] | None = None, on_input: Callable[[bytes], None] | None = None) -> None:
        self._tmpdir = None if path is not None else tempfile.mkdtemp(prefix="evedge-tty-")
        self.path = str(path if path is not None else Path(self._tmpdir or "") / "ttyVIRT0")
        self.on_input = on_input
        self.master: int | None = None
        self._slave: int | None = None
        self._stop_r: int | None = None
        self._stop_w: int | None = None
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self.plug()

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def plug(self) -> None:
        """Create a fresh pty behind `path` (the device appears)."""
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo or line editing before the driver configures the port
        self.master, self._slave = master, slave
        tmp = f"{self.path}.new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.path)
        if self.on_input is not None:
            self._stop_r, self._stop_w = os.pipe()
            self._thread = threading.Thread(target=self._pump, args=(master, self._stop_r), daemon=True)
            self._thread.start()

    def unplug(self) -> None:
        """Close the pty and remove `path` (the device disappears; the driver sees EOF)."""
        if not self.plugged:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        if self._thread is not None:
            os.write(self._stop_w, b"x")  # type: ignore[arg-type]
            self._thread.join()
            os.close(self._stop_r)  # type: ignore[arg-type]
            os.close(self._stop_w)  # type: ignore[arg-type]
            self._thread = self._stop_r = self._stop_w = None
        with self._write_lock:
            os.close(self.master)  # type: ignore[arg-type]
            os.close(self._slave)  # type: ignore[arg-type]
            self.master = self._slave = None

    def write(self, data: bytes) -> None:
        """Send bytes to the driver; silently dropped while unplugged."""
        with self._write_lock:
            if self.master is None:
                return
            view = memoryview(data)
            while view:
                view = view[os.write(self.master, view) :]

    def close(self) -> None:
        self.unplug()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> VirtualSerialPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pump(self, master: int, stop: int) -> None:
        while True:
            ready, _, _ = select.select([master, stop], [], [])
            if stop in ready:
                return
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: nobody has the slave open any more
                data = b""
            if data and self.on_input is not None:
                self.on_input(data)
            elif not data:
                # Wait for the stop signal instead of spinning on a hung-up master.
                select.select([stop], [], [], 0.05)


class Rdm6300Emulator(VirtualSerialPort):
    """An RDM6300 module: each read of a card is a 14-byte frame, repeated while it is held."""

    def present(self, uid: bytes, repeats: int = 3) -> None:
        """Hold a card (5-byte EM4100 id) on the antenna long enough for `repeats` frames."""
        self.write(rdm6300.encode_frame(uid) * repeats)

    @staticmethod
    def frame(uid: bytes) -> bytes:
        return rdm6300.encode_frame(uid)

    @staticmethod
    def bad_checksum_frame(uid: bytes) -> bytes:
        """A well-formed frame whose checksum is wrong."""
        good = rdm6300.encode_frame(uid)
        wrong = f"{rdm6300.checksum(uid) ^ 0x5A:02X}".encode()
        return good[:11] + wrong + good[13:]


class LineReaderEmulator(VirtualSerialPort):
    """A reader printing each card as a line: "04A2B3C4\\r\\n" (hex) or "0012345678\\r\\n" (decimal)."""

    def present(self, text: str, ending: str = "\r\n") -> None:
        self.write((text + ending).encode("ascii"))


class Pn532Emulator(VirtualSerialPort):
    """A PN532 on HSU answering SAMConfiguration, RFConfiguration and InListPassiveTarget.

    Like the chip, it ignores commands until woken by the 0x55 0x55 preamble. Put a card in the
    field with `card = b"\\x04..."` (4 or 7 byte NFCID1) and remove it with `card = None`.
    `corrupt_responses = n` spoils the data checksum of the next n responses; `silent = True`
    leaves commands unanswered. `commands` records the command codes received, in order.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.card: bytes | None = None
        self.corrupt_responses = 0
        self.silent = False
        self.commands: list[int] = []
        self._awake = False
        self._decoder = pn532.FrameDecoder(FrameCounters())
        super().__init__(path, on_input=self._on_input)

    def plug(self) -> None:
        self._awake = False  # a re-plugged chip has to be woken again
        self._decoder = pn532.FrameDecoder(FrameCounters())
        super().plug()

    def _on_input(self, data: bytes) -> None:
        if b"\x55\x55" in data:
            self._awake = True
        for frame in self._decoder.feed(data):
            if frame.kind != "data" or frame.tfi != pn532.HOST_TO_PN532 or not frame.data:
                continue
            code = frame.data[0]
            self.commands.append(code)
            if self.silent or not self._awake:
                continue
            self.write(pn532.ACK)
            self._respond(code, self._answer(code))

    def _answer(self, code: int) -> bytes:
        if code != pn532.IN_LIST_PASSIVE_TARGET:
            return b""
        uid = self.card
        if uid is None:
            return b"\x00"
        sens_res, sel_res = (b"\x00\x44", 0x00) if len(uid) == 7 else (b"\x00\x04", 0x08)
        return bytes([1, 1]) + sens_res + bytes([sel_res, len(uid)]) + uid

    def _respond(self, code: int, params: bytes) -> None:
        frame = bytearray(pn532.encode_frame(pn532.PN532_TO_HOST, bytes([code + 1]) + params))
        if self.corrupt_responses > 0:
            self.corrupt_responses -= 1
            frame[-2] ^= 0xFF  # the DCS byte
        self.write(bytes(frame))
