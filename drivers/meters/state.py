"""What the controller sees of one meter (the API renders it: controller/api/hardware.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

Phases = tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class MeterState:
    """An immutable snapshot; the meter replaces it after every poll, so a reference kept by a
    consumer never changes under it. Readings keep their last good values while offline;
    `updated_at` says when they were read."""

    id: str
    model: str
    bus: str
    role: str
    charger: str | None = None
    connector: int | None = None
    online: bool = False
    last_error: str | None = None
    energy_import_wh: float | None = None
    energy_export_wh: float | None = None
    power_w: float | None = None
    voltage_v: Phases | None = None  # (l1,) on single-phase meters, (l1, l2, l3) otherwise
    current_a: Phases | None = None
    phase_power_w: Phases | None = None
    updated_at: datetime | None = None  # UTC time of the poll that produced the readings
