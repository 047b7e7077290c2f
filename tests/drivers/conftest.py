"""Fixtures for the driver tests (helpers are in tests/drivers/support.py)."""

from __future__ import annotations

import pytest

from tests.drivers.support import TapSink


@pytest.fixture
def tap_sink() -> TapSink:
    """Collects the taps a reader reports; `await tap_sink.next()` waits for the next one."""
    return TapSink()
