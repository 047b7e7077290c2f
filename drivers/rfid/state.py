"""What the controller sees of one card reader, and the tap it reports (the API renders them:
controller/api/hardware.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class FrameCounters:
    """Rejected input, counted by the protocol decoders: never silently turned into a tap."""

    bad_frames: int = 0  # framed but wrong: checksum, length, ETX, non-hex payload
    noise_bytes: int = 0  # bytes outside any frame


@dataclass(kw_only=True)
class ReaderState(FrameCounters):
    """Live state of one reader (mutated in place by the reader task)."""

    id: str
    kind: str
    charger: str | None = None
    connector: int | None = None
    connected: bool = False
    last_error: str | None = None
    last_tap_at: datetime | None = None
    last_id_tag: str | None = None
    taps: int = 0  # only ever incremented: GET /metrics counts taps from it
    reconnects: int = 0  # successful reopens after the first open


@dataclass(frozen=True, slots=True)
class Tap:
    """A card presented to a reader (repeats within the reader's window already collapsed)."""

    reader_id: str
    id_tag: str  # formatted per the reader's id_tag_format
    uid: str  # the raw UID as upper-case hex, whatever the format
    charger: str | None
    connector: int | None
    at: datetime  # UTC
