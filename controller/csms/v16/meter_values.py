"""OCPP 1.6 meter values read into plain numbers: register readings in Wh, power in W."""

from __future__ import annotations

import math

from controller.csms import frames
from controller.timefmt import normalize

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
_PHASE = {"L1": 0, "L2": 1, "L3": 2, "L1-N": 0, "L2-N": 1, "L3-N": 2}
_TO_WH = {"Wh": 1.0, "kWh": 1000.0}
_TO_W = {"W": 1.0, "kW": 1000.0}


def timestamp(text: str, field: str) -> str:
    """A charger's date-time as our UTC text; TypeConstraintViolation naming `field` if it is none."""
    return frames.timestamp(text, field, "TypeConstraintViolation")


def _reading(sv: dict, factor: float, otherwise: float | None) -> float | None:
    """A sampled value's number times `factor`; `otherwise` for one that is none, or not finite
    ("NaN", "1e400", 1e308 kWh in Wh): no reading, and never an Infinity in the API."""
    try:
        value = float(sv["value"]) * factor
    except (KeyError, ValueError):
        return otherwise
    return value if math.isfinite(value) else otherwise


def latest_energy_and_power(meter_value: list[dict]) -> tuple[float | None, float | None]:
    """The last register reading (Wh) and power (W) among sampled values of any context."""
    energy = power = None
    for mv in meter_value:
        for sv in mv.get("sampledValue", []):
            measurand = sv.get("measurand", ENERGY)
            if sv.get("phase"):
                continue  # totals only
            if measurand == ENERGY and sv.get("unit", "Wh") in _TO_WH:
                energy = _reading(sv, _TO_WH[sv.get("unit", "Wh")], energy)
            elif measurand == POWER and sv.get("unit", "W") in _TO_W:
                power = _reading(sv, _TO_W[sv.get("unit", "W")], power)
    return energy, power


def transaction_begin(data: list[dict] | None) -> tuple[str | None, float | None]:
    """(timestamp, Wh) of the `Transaction.Begin` register reading in StopTransaction's transactionData.

    Books a stop whose StartTransaction we never got with its real start; (None, None) without one.
    """
    for mv in data or []:
        begin = [sv for sv in mv.get("sampledValue", []) if sv.get("context") == "Transaction.Begin"]
        wh, _ = latest_energy_and_power([{"sampledValue": begin}])
        if wh is not None:
            try:
                return normalize(mv["timestamp"]), wh
            except (ValueError, OverflowError):
                return None, None
    return None, None


def latest_currents(meter_value: list[dict]) -> tuple[tuple[float | None, float | None, float | None], str] | None:
    """(per-phase Current.Import in A, the sample's timestamp) of the latest sample that has one;
    a value without a phase counts as L1 (single-phase chargers often send it so). None if none."""
    for mv in reversed(meter_value):
        phases: list[float | None] = [None, None, None]
        found = False
        for sv in mv.get("sampledValue", []):
            if sv.get("measurand") != CURRENT or sv.get("unit", "A") != "A":
                continue
            index = _PHASE.get(sv.get("phase") or "L1")
            if index is None:
                continue
            if (amps := _reading(sv, 1.0, None)) is None:
                continue
            phases[index] = amps
            found = True
        if found:
            return (phases[0], phases[1], phases[2]), mv["timestamp"]
    return None
