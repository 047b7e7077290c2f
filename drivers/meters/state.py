"""What the controller and the API see of one meter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.timefmt import iso

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

    def to_api(self) -> dict[str, Any]:
        def phases(values: Phases | None) -> list[float | None] | None:
            return None if values is None else list(values)

        return {
            "id": self.id,
            "model": self.model,
            "bus": self.bus,
            "role": self.role,
            "charger": self.charger,
            "connector": self.connector,
            "online": self.online,
            "lastError": self.last_error,
            "energyImportWh": self.energy_import_wh,
            "energyExportWh": self.energy_export_wh,
            "powerW": self.power_w,
            "voltageV": phases(self.voltage_v),
            "currentA": phases(self.current_a),
            "phasePowerW": phases(self.phase_power_w),
            "updatedAt": iso(self.updated_at) if self.updated_at else None,
        }

