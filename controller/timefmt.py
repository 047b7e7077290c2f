"""Timestamps: the one place that formats and parses them.

Everything we store or send is UTC in ISO 8601 with milliseconds and a `Z`
(`2026-02-06T12:00:00.000Z`): the API's format, and it sorts as text in SQLite.
"""

from __future__ import annotations

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


def parse_iso(text: str) -> datetime:
    """Parse an OCPP/ISO 8601 timestamp; one without a zone is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def normalize(text: str) -> str:
    """Re-format a charger's timestamp in our canonical form (raises ValueError if invalid)."""
    try:
        return iso(parse_iso(text))
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is before year 1 in UTC
        raise ValueError(f"timestamp out of range: {text!r}") from None
