"""UTC timestamps as the API shows them: ISO 8601 with milliseconds and a Z."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(at: datetime | None) -> str | None:
    """`2026-02-06T12:00:00.000Z` for an aware datetime; None stays None."""
    if at is None:
        return None
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
