"""Timestamps: the quick forms of `normalize` and `iso_from_now` give exactly what the full
parse and format give, for what chargers send and for what is almost that but wrong."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from controller import timefmt
from controller.timefmt import iso, normalize, parse_iso

SHAPES = ["2026-02-06T12:34:56.789Z", "2026-02-06T12:34:56Z", "2024-02-29T23:59:59.999Z",
          "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59Z"]


def parsed_and_formatted(text: str) -> str | None:
    """What `normalize` always meant: the full parse, then our format (None: refused)."""
    try:
        return iso(parse_iso(text))
    except (ValueError, OverflowError):
        return None


def normalized(text: str) -> str | None:
    try:
        return normalize(text)
    except ValueError:
        return None


@pytest.mark.parametrize("text, expected", [
    ("2026-02-06T12:34:56.789Z", "2026-02-06T12:34:56.789Z"),
    ("2026-02-06T12:34:56Z", "2026-02-06T12:34:56.000Z"),
    ("2026-02-06T12:34:56.789+01:00", "2026-02-06T11:34:56.789Z"),
    ("2026-02-06T12:34:56.789123Z", "2026-02-06T12:34:56.789Z"),
    ("2026-02-06T12:34:56", "2026-02-06T12:34:56.000Z"),
    ("2026-13-06T12:34:56.789Z", None), ("2026-02-30T12:34:56Z", None), ("2026-02-06T24:00:00.000Z", None),
    ("2026-W06-5T12:34:56.789Z", "2026-02-06T12:34:56.789Z"), ("٢٠٢٦-02-06T12:34:56.789Z", None),
])
def test_what_chargers_send_is_read_as_before(text, expected):
    assert normalized(text) == expected == parsed_and_formatted(text)


def test_the_quick_path_agrees_with_the_full_parse_on_near_misses():
    """Random edits of well-formed timestamps (digits, separators, letters, other scripts' digits):
    the quick path may take only what the full parse gives back unchanged."""
    rng = random.Random(20)
    alphabet = "0123456789" * 3 + "-:TZ.W, +z٢"
    for _ in range(20_000):
        text = list(rng.choice(SHAPES))
        for _ in range(rng.randint(0, 3)):
            text[rng.randrange(len(text))] = rng.choice(alphabet)
        candidate = "".join(text)
        assert normalized(candidate) == parsed_and_formatted(candidate), candidate


@pytest.mark.parametrize("now", [1_770_379_200.0, 1_770_379_259.5, 951_782_399.25])  # the last: 2000-02-29
@pytest.mark.parametrize("offset", [0, 300, -120, 86_400])
def test_a_bound_from_now_is_our_clock_plus_the_offset(monkeypatch, now, offset):
    monkeypatch.setattr(timefmt.time, "time", lambda: now)
    expected = iso(datetime.fromtimestamp(now + offset, timezone.utc))
    assert timefmt.iso_from_now(offset) == expected
    assert timefmt.iso_from_now(offset) == expected  # the second time from the cached second
