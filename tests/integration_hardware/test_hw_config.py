"""The hardware keys of the site config: cross references name the file and the key."""

from __future__ import annotations

import pytest

from controller import cli
from controller.config import ConfigError, load_config
from tests.support import PROJECT_ROOT, config_text

READER = """
[[readers]]
id = "bay-1"
kind = "rdm6300"
port = "/dev/ttyREADER1"
charger = "{charger}"
connector = {connector}
"""
METER = """
[[buses]]
id = "gw"
kind = "tcp"
host = "192.0.2.1"

[[meters]]
id = "m1"
bus = "{bus}"
model = "sdm630"
role = "connector"
charger = "CHARGER-001"
connector = 1
"""


def _write(tmp_path, extra: str, connector_meter: bool = False):
    text = config_text(tmp_path / "data", extra=extra)
    if connector_meter:
        text = text.replace("connectors = 2\n", 'connectors = 2\nmeter = "connector-meter"\n', 1)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("extra", "connector_meter", "expected"), [
    (READER.format(charger="X", connector=1), False, "readers[0].charger: unknown charger 'X'"),
    (READER.format(charger="CHARGER-002", connector=2), False,
     "readers[0].connector: charger 'CHARGER-002' has 1 connector(s), not 2"),
    (METER.format(bus="nope"), False, "meters[0].bus: unknown bus 'nope'"),
    ("", True, 'chargers[0].meter: "connector-meter" needs a [[meters]] entry'),
])
def test_cross_references_name_the_key(tmp_path, extra, connector_meter, expected):
    path = _write(tmp_path, extra, connector_meter)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}: {expected}" in str(info.value)


def test_check_config_names_file_and_key(tmp_path, capsys):
    path = _write(tmp_path, READER.format(charger="X", connector=1))
    assert cli.main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: readers[0].charger: unknown charger 'X'" in err


def test_defaults_and_a_valid_hardware_config(tmp_path):
    plain = load_config(_write(tmp_path, ""))
    assert (plain.buses, plain.meters, plain.readers) == ([], [], [])
    assert plain.charger("CHARGER-001").meter == "charger"
    config = load_config(_write(tmp_path, METER.format(bus="gw") + READER.format(charger="CHARGER-001", connector=2),
                                connector_meter=True))
    assert config.charger("CHARGER-001").meter == "connector-meter"
    assert [m.id for m in config.meters] == ["m1"] and config.readers[0].connector == 2


@pytest.mark.parametrize("name", ["example.toml", "example-hardware.toml"])
def test_examples_pass_check_config(name, capsys):
    assert cli.main(["check-config", str(PROJECT_ROOT / "config" / name)]) == 0
    assert ": ok (" in capsys.readouterr().out


def test_example_starts_without_hardware():
    config = load_config(PROJECT_ROOT / "config" / "example.toml")
    assert (config.buses, config.meters, config.readers) == ([], [], [])
    hardware = load_config(PROJECT_ROOT / "config" / "example-hardware.toml")
    assert {m.model for m in hardware.meters} == {"sdm630", "sdm120"}
    assert [r.kind for r in hardware.readers] == ["rdm6300", "rdm6300"]
