"""Money arithmetic: integers in minor units, half-up rounding, the cap, the tax inside the price."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.public_charging import money

prices = st.builds(
    money.Price,
    currency=st.just("EUR"),
    price_per_kwh=st.integers(0, 100_000),
    start_fee=st.integers(0, 10_000),
    tax_rate=st.decimals(min_value=0, max_value=Decimal("0.5"), places=4).map(str),
    amount_authorized=st.integers(1, 1_000_000),
)
energies = st.integers(0, 10_000_000)  # Wh


@given(energies, prices)
def test_cost_is_an_integer_capped_at_the_hold(energy, price):
    cost = money.running_cost(energy, price)
    assert isinstance(cost, int)
    assert 0 <= cost <= price.amount_authorized
    exact = price.start_fee + Fraction(energy * price.price_per_kwh, 1000)
    assert cost == min(price.amount_authorized, cost) and abs(min(exact, price.amount_authorized) - cost) <= Fraction(1, 2)


@given(energies, energies, prices)
def test_cost_never_decreases_with_energy(a, b, price):
    low, high = sorted((a, b))
    assert money.running_cost(low, price) <= money.running_cost(high, price)


@given(energies, prices)
def test_final_amount_is_zero_only_without_energy(energy, price):
    amount = money.final_amount(energy, price)
    if energy == 0:
        assert amount == 0
    else:
        assert amount == money.running_cost(energy, price)


@given(st.integers(0, 100_000_000), st.decimals(min_value=0, max_value=Decimal("2"), places=4).map(str))
def test_tax_is_inside_the_amount(amount, rate):
    tax = money.tax_included(amount, rate)
    assert isinstance(tax, int) and 0 <= tax <= amount
    net = amount - tax
    exact_net = Fraction(amount) / (1 + Fraction(Decimal(rate)))
    assert abs(exact_net - net) <= Fraction(1, 2)


@given(st.integers(0, 10**9))
def test_kwh_text_round_trips(energy):
    text = money.kwh_text(energy)
    assert Decimal(text) * 1000 == energy and len(text.split(".")[1]) == 3


@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_delivered_from_readings(start, last):
    assert money.delivered_wh(start, float(last)) == max(0, last - start)


def test_examples():
    price = money.Price("EUR", 39, 50, "0.21", 5000)
    assert money.running_cost(0, price) == 50
    assert money.running_cost(1500, price) == 50 + 59  # 58.5 rounds half up
    assert money.running_cost(1499, price) == 50 + 58  # 58.461
    assert money.running_cost(10**9, price) == 5000
    assert money.tax_included(440, "0.21") == 76  # 440 / 1.21 = 363.6 -> 364
    assert money.tax_included(121, "0.21") == 21
    assert money.tax_included(0, "0.21") == 0
    assert money.wh("1234.5") == 1235 and money.wh(1234.4999) == 1234 and money.wh(None) is None
    assert money.kwh_text(5) == "0.005"
    with pytest.raises(ValueError):
        money.kwh_text(-1)
