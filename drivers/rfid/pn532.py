"""NXP PN532 over HSU (UART): framing, and a polling session for ISO 14443A cards.

Normal information frame: 00 00 FF LEN LCS TFI PD0..PDn DCS 00, where LEN counts TFI + data,
LCS = -LEN and DCS = -(TFI + sum(data)) (both mod 256). TFI is D4 host->PN532, D5 back. Every
command is first acknowledged with the ACK frame 00 00 FF 00 FF 00, then answered. On HSU the
chip sleeps until woken by a long preamble (0x55 0x55 then zeros) followed by SAMConfiguration.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from .serial_reader import ReaderLost
from .state import FrameCounters

log = logging.getLogger(__name__)

HOST_TO_PN532, PN532_TO_HOST = 0xD4, 0xD5
ACK = bytes.fromhex("0000ff00ff00")
NACK = bytes.fromhex("0000ffff0000")
WAKEUP = b"\x55\x55" + bytes(14)
SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_LIST_PASSIVE_TARGET = 0x4A
#: SAMConfiguration: normal mode, virtual-card timeout 1 s, use IRQ.
SAM_NORMAL = bytes([0x01, 0x14, 0x01])
#: RFConfiguration item 5 (MaxRetries): ATR 0xFF, PSL 1, passive activation 2 tries, so that
#: InListPassiveTarget answers "no card" quickly instead of waiting for a card forever.
RF_MAX_RETRIES = bytes([0x05, 0xFF, 0x01, 0x02])
#: InListPassiveTarget: one target, 106 kbps type A (MIFARE, NTAG, DESFire ...).
LIST_ONE_TYPE_A = bytes([0x01, 0x00])


def encode_frame(tfi: int, data: bytes) -> bytes:
    """A normal information frame carrying TFI + data."""
    length = len(data) + 1
    if length > 254:
        raise ValueError("extended frames are not used")
    body = bytes([tfi]) + data
    return bytes([0x00, 0x00, 0xFF, length, (-length) & 0xFF]) + body + bytes([(-sum(body)) & 0xFF, 0x00])


def command(code: int, params: bytes = b"") -> bytes:
    return encode_frame(HOST_TO_PN532, bytes([code]) + params)


@dataclass(frozen=True, slots=True)
class Frame:
    kind: str  # "ack", "nack" or "data"
    tfi: int = 0
    data: bytes = b""  # after the TFI: command/response code, then parameters


class FrameDecoder:
    """Incremental HSU frame decoder; bad length/data checksums are counted and skipped."""

    def __init__(self, counters: FrameCounters) -> None:
        self.counters = counters
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        buf = self._buffer
        frames: list[Frame] = []
        while True:
            start = buf.find(b"\x00\xff")
            if start < 0:
                # Keep a trailing 0x00: it may be the first half of a start code.
                keep = 1 if buf.endswith(b"\x00") else 0
                self._noise(buf, len(buf) - keep)
                break
            self._noise(buf, start)
            if len(buf) < 4:
                break
            length, lcs = buf[2], buf[3]
            if (length, lcs) == (0x00, 0xFF):
                frames.append(Frame("ack"))
                del buf[:4]
            elif (length, lcs) == (0xFF, 0x00):
                frames.append(Frame("nack"))
                del buf[:4]
            elif (length + lcs) & 0xFF:
                self.counters.bad_frames += 1
                del buf[:2]
            else:
                if len(buf) < 4 + length + 1:
                    break
                body = bytes(buf[4 : 4 + length])
                if (sum(body) + buf[4 + length]) & 0xFF:
                    self.counters.bad_frames += 1
                else:
                    frames.append(Frame("data", body[0], body[1:]))
                del buf[: 4 + length + 1]
            if len(buf) >= 2 and buf[0] == 0x00 and buf[1] != 0xFF:
                del buf[:1]  # postamble
        return frames

    def _noise(self, buf: bytearray, count: int) -> None:
        """Drop `count` leading bytes; preamble/postamble zeros are framing, anything else noise."""
        self.counters.noise_bytes += sum(1 for b in buf[:count] if b != 0x00)
        del buf[:count]


def target_uid(response: bytes) -> bytes | None:
    """The NFCID1 from an InListPassiveTarget (type A) response body, None when no card."""
    # 4B NbTg [Tg SENS_RES(2) SEL_RES NFCIDLength NFCID1... (ATS)]
    if len(response) < 2 or response[0] != IN_LIST_PASSIVE_TARGET + 1:
        raise ValueError("not an InListPassiveTarget response")
    if response[1] == 0:
        return None
    if len(response) < 7 or len(response) < 7 + response[6]:
        raise ValueError("truncated target data")
    return bytes(response[7 : 7 + response[6]])


class Pn532Error(ReaderLost):
    """The PN532 did not acknowledge or answer a command; the session should be restarted."""


class Pn532Session:
    """Wakes a PN532, configures it, and polls for type A cards on an open stream."""

    def __init__(
        self, stream: trio.abc.Stream, counters: FrameCounters, *, timeout_s: float = 0.5, attempts: int = 3
    ) -> None:
        self.stream = stream
        self.decoder = FrameDecoder(counters)
        self.timeout_s = timeout_s
        self.attempts = attempts
        self._frames: deque[Frame] = deque()

    async def run(self, on_uid: Callable[[bytes], Awaitable[None]], poll_s: float) -> None:
        await self.stream.send_all(WAKEUP)
        await self.call(SAM_CONFIGURATION, SAM_NORMAL)
        await self.call(RF_CONFIGURATION, RF_MAX_RETRIES)
        while True:
            try:
                uid = target_uid(await self.call(IN_LIST_PASSIVE_TARGET, LIST_ONE_TYPE_A))
            except ValueError as exc:
                log.debug("pn532: ignoring malformed target data: %s", exc)
                uid = None
            if uid:
                await on_uid(uid)
            await trio.sleep(poll_s)

    async def call(self, code: int, params: bytes = b"") -> bytes:
        """Send a command, wait for its ACK and response; returns the response body (code + data).
        A lost or corrupted ACK/response is retried; Pn532Error after `attempts` tries."""
        for _ in range(self.attempts):
            self._frames.clear()
            await self.stream.send_all(command(code, params))
            with trio.move_on_after(self.timeout_s):
                if (await self._next_frame()).kind != "ack":
                    continue
                while True:
                    frame = await self._next_frame()
                    if frame.kind == "data" and frame.tfi == PN532_TO_HOST and frame.data[:1] == bytes([code + 1]):
                        return frame.data
        raise Pn532Error(f"no answer to command {code:#04x} after {self.attempts} attempts")

    async def _next_frame(self) -> Frame:
        while not self._frames:
            data = await self.stream.receive_some(256)
            if not data:
                raise trio.BrokenResourceError("end of stream")
            self._frames.extend(self.decoder.feed(data))
        return self._frames.popleft()
