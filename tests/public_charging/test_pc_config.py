"""The [public_charging] section and per-charger public_code / pricing."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_offline():
    config = load_config(ROOT / "config" / "example.toml")
    assert config.public_charging.payment_provider == "none"


def test_pricing_is_required_with_a_code(tmp_path):
    path = write(tmp_path, '[[chargers]]\nid = "C1"\npublic_code = "AB12"\n')
    with pytest.raises(ConfigError, match=r"chargers\[0\].*pricing"):
        load_config(path)


@pytest.mark.parametrize("bad, key", [
    ('pricing = { currency = "eur", price_per_kwh = 1, amount_authorized = 10 }', "currency"),
    ('pricing = { currency = "EUR", price_per_kwh = 1.5, amount_authorized = 10 }', "price_per_kwh"),
    ('pricing = { currency = "EUR", price_per_kwh = 1, amount_authorized = 10, tax_rate = "x" }', "tax_rate"),
    ('pricing = { currency = "EUR", price_per_kwh = 1, amount_authorized = 0 }', "amount_authorized"),
])
def test_bad_pricing_names_the_key(tmp_path, bad, key):
    path = write(tmp_path, f'[[chargers]]\nid = "C1"\npublic_code = "AB12"\n{bad}\n')
    with pytest.raises(ConfigError, match=key):
        load_config(path)


def test_duplicate_codes_and_stripe_keys(tmp_path):
    pricing = 'pricing = { currency = "EUR", price_per_kwh = 1, amount_authorized = 10 }'
    path = write(tmp_path, f'[[chargers]]\nid = "C1"\npublic_code = "ab12"\n{pricing}\n'
                           f'[[chargers]]\nid = "C2"\npublic_code = "AB12"\n{pricing}\n')
    with pytest.raises(ConfigError, match="duplicate code"):
        load_config(path)
    path = write(tmp_path, '[public_charging]\nenabled = true\npayment_provider = "stripe"\n')
    with pytest.raises(ConfigError, match="stripe_secret_key"):
        load_config(path)
