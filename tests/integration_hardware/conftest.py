"""Fixtures for the hardware integration tests live in the test modules (tests/support.py for helpers)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "charger_meter: book the charger's own meter (no connector-meter flag)")
