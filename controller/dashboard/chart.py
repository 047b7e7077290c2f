"""A charge's energy and power curve, drawn as SVG from its stored meter values.

The samples are kept as the charger sent them (a JSON list of sampled values per timestamp);
the register reading and the total power are read out here in Wh and W, whatever the unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from controller.timefmt import parse_iso

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
FACTOR = {"Wh": 1.0, "kWh": 1000.0, "W": 1.0, "kW": 1000.0}
WIDTH, HEIGHT = 600, 200


def _value(sample: dict) -> float | None:
    """A total (not per phase) sampled value in Wh or W; None for anything else."""
    if sample.get("phase"):
        return None
    unit = sample.get("unit") or (sample.get("unitOfMeasure") or {}).get("unit")
    measurand = sample.get("measurand", ENERGY)
    unit = unit or ("Wh" if measurand == ENERGY else "W")
    multiplier = 10 ** int((sample.get("unitOfMeasure") or {}).get("multiplier", 0))
    try:
        value = float(sample["value"]) * FACTOR[unit] * multiplier
    except (KeyError, ValueError, TypeError):
        return None
    return value if value == value and abs(value) != float("inf") else None


@dataclass(frozen=True)
class Curve:
    """Polylines in a WIDTH x HEIGHT box (y grows downwards), with what their ends mean."""

    energy_points: str
    power_points: str
    start: str
    end: str
    max_kwh: float
    max_kw: float
    samples: int


def curve(rows: list, meter_start_wh: float | None) -> Curve | None:
    """The curve of a charge's samples (as stored: a backlog may arrive after later ones, so they
    are drawn by their timestamps); None when fewer than two carry a reading."""
    rows = sorted(rows, key=lambda row: row["timestamp"])
    energy: list[tuple[float, float]] = []
    power: list[tuple[float, float]] = []
    for row in rows:
        try:
            at = parse_iso(row["timestamp"]).timestamp()
            samples = orjson.loads(row["sampled_value"])
        except (ValueError, orjson.JSONDecodeError):
            continue
        for sample in samples if isinstance(samples, list) else []:
            if not isinstance(sample, dict):
                continue
            value = _value(sample)
            if value is None:
                continue
            if sample.get("measurand", ENERGY) == ENERGY:
                energy.append((at, value))
            elif sample.get("measurand") == POWER:
                power.append((at, value))
    times = [t for t, _ in energy + power]
    if len(times) < 2 or max(times) == min(times):
        return None
    t0, t1 = min(times), max(times)
    base = meter_start_wh if meter_start_wh is not None else min((v for _, v in energy), default=0.0)
    kwh = [(t, max(0.0, (v - base) / 1000)) for t, v in energy]
    kw = [(t, v / 1000) for t, v in power]
    top_kwh = max((v for _, v in kwh), default=0.0) or 1.0
    top_kw = max((v for _, v in kw), default=0.0) or 1.0

    def points(series: list[tuple[float, float]], top: float) -> str:
        return " ".join(f"{(t - t0) / (t1 - t0) * WIDTH:.1f},{HEIGHT - v / top * HEIGHT:.1f}" for t, v in series)

    return Curve(points(kwh, top_kwh), points(kw, top_kw), rows[0]["timestamp"], rows[-1]["timestamp"],
                 round(top_kwh, 3), round(top_kw, 2), len(rows))
