"""Timestamps: the one place that formats and parses them.

Everything we store or send is UTC in ISO 8601 with milliseconds and a `Z`
(`2026-02-06T12:00:00.000Z`): the API's format, and it sorts as text in SQLite.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """Format as `YYYY-MM-DDTHH:MM:SS.mmmZ` (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    # Not strftime("%Y"): it does not zero-pad years before 1000 ("122-11-23T..." is no ISO 8601).
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
            f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z")


def now_iso() -> str:
    return iso(utcnow())


_SECONDS: dict[int, str] = {}  # whole Unix seconds -> `YYYY-MM-DDTHH:MM:SS`, the last few only


def iso_from_now(offset_s: float) -> str:
    """Our clock's time `offset_s` seconds from now (negative: ago), in our form; what
    `iso(utcnow() + timedelta(seconds=offset_s))` gives, for a fraction of its cost: a bound
    that every message is compared with (too far ahead? a replayed backlog?)."""
    moment = time.time() + offset_s
    whole = math.floor(moment)
    prefix = _SECONDS.get(whole)
    if prefix is None:
        if len(_SECONDS) > 8:
            _SECONDS.clear()
        prefix = _SECONDS[whole] = iso(datetime.fromtimestamp(whole, timezone.utc))[:19]
    return f"{prefix}.{min(999, int((moment - whole) * 1000)):03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse an OCPP/ISO 8601 timestamp; one without a zone is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def normalize(text: str) -> str:
    """Re-format a charger's timestamp in our canonical form (raises ValueError if invalid)."""
    if len(text) in (20, 24) and _shaped(text):  # already ours, or ours without milliseconds
        try:
            datetime.fromisoformat(text[:19])  # a real moment (no month 13, no hour 24)
        except ValueError:
            pass  # the full parse below says what is wrong
        else:
            return text if len(text) == 24 else f"{text[:19]}.000Z"
    try:
        return iso(parse_iso(text))
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is before year 1 in UTC
        raise ValueError(f"timestamp out of range: {text!r}") from None


def _shaped(text: str) -> bool:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ` or `YYYY-MM-DDTHH:MM:SSZ` in ASCII digits: what most chargers
    send, and what `normalize` gives back unchanged (or with `.000`) once the moment is real."""
    return (text[-1] == "Z" and text[4] == "-" and text[7] == "-" and text[10] == "T" and text[13] == ":"
            and text[16] == ":" and (len(text) == 20 or (text[19] == "." and text[20:23].isdigit()))
            and text.isascii())
