"""RDM6300-style 125 kHz (EM4100) readers: a frame per read, repeated while the card is held.

Frame: STX 0x02, 10 ASCII-hex characters (5 data bytes: version/customer byte + 4-byte card
number), 2 ASCII-hex characters of the XOR of the 5 data bytes, ETX 0x03. 14 bytes at 9600 8N1.
"""

from __future__ import annotations

from .state import FrameCounters

STX, ETX = 0x02, 0x03
FRAME_LEN = 14
_HEX = frozenset(b"0123456789ABCDEFabcdef")


def checksum(data: bytes) -> int:
    result = 0
    for b in data:
        result ^= b
    return result


def encode_frame(uid: bytes) -> bytes:
    """The frame a module sends for a 5-byte tag id."""
    if len(uid) != 5:
        raise ValueError("RDM6300 ids are 5 bytes")
    return bytes([STX]) + (uid.hex() + f"{checksum(uid):02x}").upper().encode() + bytes([ETX])


class Rdm6300Decoder:
    """Incremental decoder: feed it whatever the port delivered, get back the ids of good frames."""

    def __init__(self, counters: FrameCounters) -> None:
        self.counters = counters
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        buf = self._buffer
        uids: list[bytes] = []
        while buf:
            start = buf.find(STX)
            if start < 0:
                self.counters.noise_bytes += len(buf)
                buf.clear()
                break
            if start:
                self.counters.noise_bytes += start
                del buf[:start]
            if len(buf) < FRAME_LEN:
                # A second STX inside an incomplete frame means this one was cut short.
                restart = buf.find(STX, 1)
                if restart < 0:
                    break
                self.counters.bad_frames += 1
                del buf[:restart]
                continue
            frame = bytes(buf[:FRAME_LEN])
            uid = self._parse(frame)
            if uid is None:
                self.counters.bad_frames += 1
                restart = buf.find(STX, 1, FRAME_LEN)
                del buf[: restart if restart > 0 else FRAME_LEN]
                continue
            del buf[:FRAME_LEN]
            uids.append(uid)
        return uids

    @staticmethod
    def _parse(frame: bytes) -> bytes | None:
        body = frame[1:13]
        if frame[13] != ETX or not set(body) <= _HEX:
            return None
        uid = bytes.fromhex(body[:10].decode())
        return uid if checksum(uid) == int(body[10:12], 16) else None
