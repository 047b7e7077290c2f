"""Turning a card's UID bytes into the OCPP idTag string.

The same card prints differently on different systems: a MIFARE UID is usually shown as hex,
the number printed on an EM4100 key fob is the decimal of its last four bytes, and some readers
deliver the bytes in reverse order. The default, "hex" of the whole UID in upper case, is lossless,
fits OCPP's 20-character idTag for UIDs up to 10 bytes, and is what most chargers report for a
card tapped on their own reader, so the same card authorizes the same way either way.
"""

from __future__ import annotations

from typing import Literal

IdTagFormat = Literal["hex", "hex-last4", "dec10"]


def format_id_tag(uid: bytes, fmt: IdTagFormat = "hex", reverse: bool = False) -> str:
    """Format `uid` as an idTag.

    hex        all bytes as upper-case hex            04A2B3C4D5E680 -> "04A2B3C4D5E680"
    hex-last4  the last 4 bytes as upper-case hex     -> "C4D5E680"
    dec10      the last 4 bytes as a 10-digit decimal -> "3302352512"

    `reverse` reverses the bytes that the format uses (after picking the last 4).
    """
    if not uid:
        raise ValueError("empty UID")
    data = uid if fmt == "hex" else uid[-4:].rjust(4, b"\x00")
    if reverse:
        data = data[::-1]
    if fmt == "dec10":
        return f"{int.from_bytes(data, 'big'):010d}"
    return data.hex().upper()
