"""OCPP 2.0.1 meter values read into plain numbers: register readings in Wh, power in W.

Unlike 1.6, a 2.0.1 sampled value is a number, and its unit sits in `unitOfMeasure` with a
power-of-ten `multiplier`.
"""

from __future__ import annotations

import math

from controller.csms import frames

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
_TO_WH = {"Wh": 1.0, "kWh": 1000.0}
_TO_W = {"W": 1.0, "kW": 1000.0}


def timestamp(text: str, field: str) -> str:
    """A charger's date-time as our canonical UTC text; FormatViolation naming `field` if it is none."""
    return frames.timestamp(text, field, "FormatViolation")


def _reading(sv: dict, units: dict[str, float], default_unit: str) -> float | None:
    unit = sv.get("unitOfMeasure") or {}
    factor = units.get(unit.get("unit", default_unit))
    value = sv.get("value")
    if factor is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        reading = float(value) * factor * 10.0 ** int(unit.get("multiplier", 0))
    except OverflowError:
        return None
    return reading if math.isfinite(reading) else None  # 1e308 kWh: no reading, and no Infinity in the API


def energy_and_power(meter_value: list[dict], context: str | None = None) -> tuple[float | None, float | None]:
    """The last register reading (Wh) and power (W), totals only; of one `context` if given."""
    energy = power = None
    for mv in meter_value:
        for sv in mv.get("sampledValue", []):
            if sv.get("phase") or (context is not None and sv.get("context", "Sample.Periodic") != context):
                continue
            measurand = sv.get("measurand", ENERGY)
            if measurand == ENERGY and (wh := _reading(sv, _TO_WH, "Wh")) is not None:
                energy = wh
            elif measurand == POWER and (w := _reading(sv, _TO_W, "W")) is not None:
                power = w
    return energy, power


def samples(meter_value: list[dict], field: str = "meterValue") -> list[tuple[str, list]]:
    """(timestamp, sampled values) of each meter value, the timestamp normalised."""
    return [(timestamp(mv["timestamp"], f"{field}.timestamp"), mv["sampledValue"]) for mv in meter_value]
