"""Money for public charging: integers in the currency's minor units, never floats.

Rounding rules (documented in docs/public-charging.md):
- Energy is counted in whole Wh: a meter reading (the charger may send a decimal string) is
  rounded half-up to the Wh; delivered energy is `max(0, last - start)`.
- Energy cost = `energy_wh * price_per_kwh / 1000`, rounded half-up to the minor unit.
- Running cost = `start_fee + energy cost`, capped at `amount_authorized` (the hold).
- Nothing delivered (0 Wh) at the end costs nothing: the session ends `no_charge`.
- Prices include tax. `tax_amount = captured - round_half_up(captured / (1 + tax_rate))`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3


@dataclass(frozen=True)
class Price:
    currency: str
    price_per_kwh: int
    start_fee: int
    tax_rate: str  # a decimal string, "0.21"
    amount_authorized: int

    @classmethod
    def of_session(cls, row: sqlite3.Row) -> Price:
        """The price a session was started at (copied into it then, so a later tariff change
        does not change a running charge)."""
        return cls(row["currency"], row["price_per_kwh"], row["start_fee"], row["tax_rate"], row["amount_authorized"])


def _round_half_up(value: Fraction) -> int:
    """Nearest integer, halves away from zero (values here are never negative)."""
    if value < 0:
        raise ValueError("negative amount")
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


def wh(reading: float | int | str | Decimal | None) -> int | None:
    """A meter reading in Wh as a whole number of Wh (half-up), via its decimal text."""
    if reading is None:
        return None
    value = Decimal(str(reading))
    if not value.is_finite():
        return None
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def delivered_wh(start: int | None, last: float | int | str | None) -> int:
    start_wh, last_wh = wh(start), wh(last)
    if start_wh is None or last_wh is None:
        return 0
    return max(0, last_wh - start_wh)


def kwh_text(energy_wh: int) -> str:
    """Whole Wh as a kWh decimal string with three decimals: 1234 -> "1.234"."""
    if energy_wh < 0:
        raise ValueError("negative energy")
    return f"{energy_wh // 1000}.{energy_wh % 1000:03d}"


def energy_cost(energy_wh: int, price_per_kwh: int) -> int:
    return _round_half_up(Fraction(energy_wh * price_per_kwh, 1000))


def running_cost(energy_wh: int, price: Price) -> int:
    """Start fee plus energy, capped at the authorized amount."""
    return min(price.amount_authorized, price.start_fee + energy_cost(energy_wh, price.price_per_kwh))


def final_amount(energy_wh: int, price: Price) -> int:
    """What to capture at the end: nothing when nothing was delivered, else the running cost."""
    return 0 if energy_wh <= 0 else running_cost(energy_wh, price)


def tax_included(amount: int, tax_rate: str) -> int:
    """The tax contained in a tax-inclusive `amount`: amount - round_half_up(amount / (1 + rate))."""
    rate = Fraction(Decimal(tax_rate))
    if rate < 0:
        raise ValueError("negative tax rate")
    net = _round_half_up(Fraction(amount) / (1 + rate))
    return amount - net
