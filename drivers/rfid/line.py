"""Readers that print each card id as a line of text (hex or decimal, ended by CR and/or LF).

Wiegand-to-serial converters and many USB CDC readers work this way. A line is accepted only if
it is entirely hex digits (or decimal digits) of a plausible length; anything else is a bad frame.
"""

from __future__ import annotations

from typing import Literal

from .state import FrameCounters

MAX_LINE = 32  # longer without an end of line: noise, or the wrong baud rate


def parse_id(text: str, encoding: Literal["hex", "decimal"]) -> bytes | None:
    """UID bytes from one line, or None if it is not a valid id in that encoding."""
    if encoding == "hex":
        if not 2 <= len(text) <= 20 or any(c not in "0123456789abcdefABCDEF" for c in text):
            return None
        return bytes.fromhex(text.zfill(len(text) + len(text) % 2))
    if not 1 <= len(text) <= 20 or not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    # At least 4 bytes, so that a decimal card number round-trips through the "dec10" format.
    return number.to_bytes(max(4, (number.bit_length() + 7) // 8), "big")


class LineDecoder:
    def __init__(self, encoding: Literal["hex", "decimal"], counters: FrameCounters) -> None:
        self.encoding = encoding
        self.counters = counters
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        uids: list[bytes] = []
        for byte in data:
            if byte in b"\r\n":
                if self._buffer:
                    uid = self._finish()
                    if uid is not None:
                        uids.append(uid)
                continue
            self._buffer.append(byte)
            if len(self._buffer) > MAX_LINE:
                self.counters.noise_bytes += len(self._buffer)
                self._buffer.clear()
        return uids

    def _finish(self) -> bytes | None:
        raw = bytes(self._buffer)
        self._buffer.clear()
        try:
            text = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            text = ""
        uid = parse_id(text, self.encoding) if text else None
        if uid is None:
            if text:
                self.counters.bad_frames += 1
            else:
                self.counters.noise_bytes += len(raw)
        return uid
