"""Load-management keys: each mistake the installer can make names the file and the dotted key,
through `load_config` and `evedge check-config`; what is allowed but unwise is a warning."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controller.cli import main
from controller.config import ConfigError, load_config
from tests.support import CHARGER, CHARGER_2, config_text

SITE = """
[[buses]]
id = "gw"
kind = "tcp"
host = "127.0.0.1"

[[meters]]
id = "grid"
bus = "gw"
model = "sdm630"

[[meters]]
id = "cp1"
bus = "gw"
model = "sdm630"
device_id = 2
role = "connector"
charger = "CHARGER-001"
connector = 1

[[circuits]]
id = "main"
max_current_a = 63
margin_a = 2
meter = "grid"
meter_timeout_s = 10
failsafe_current_a = 6

[[circuits]]
id = "garage"
max_current_a = 32
parent = "main"
"""


def _valid(tmp_path: Path) -> str:
    text = config_text(tmp_path / "data", extra=SITE)
    return text.replace(f'id = "{CHARGER}"\nconnectors = 2\n', f'id = "{CHARGER}"\nconnectors = 2\ncircuit = "main"\n')


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)
    return edit


def _second_charger(lines: str) -> Callable[[str], str]:
    return _replace(f'id = "{CHARGER_2}"\nconnectors = 1\n', f'id = "{CHARGER_2}"\nconnectors = 1\n{lines}\n')


MISTAKES = [
    ("meter-not-a-meter", _replace('meter = "grid"', 'meter = "gird"'), "circuits[0].meter", "not a [[meters]] id"),
    ("meter-is-a-connector-meter", _replace('meter = "grid"', 'meter = "cp1"'), "circuits[0].meter", "role"),
    ("meter-without-current", _replace('id = "grid"\nbus = "gw"\nmodel = "sdm630"',
                                       'id = "grid"\nbus = "gw"\nmodel = "custom"\n'
                                       'map = { registers = { power_w = { address = 52 } } }'),
     "circuits[0].meter", "current"),
    ("unknown-parent", _replace('parent = "main"', 'parent = "mains"'), "circuits[1].parent", "unknown circuit"),
    ("parent-cycle", _replace('max_current_a = 63\n', 'max_current_a = 63\nparent = "garage"\n'),
     "circuits[0].parent", "cycle"),
    ("own-parent", _replace('parent = "main"', 'parent = "garage"'), "circuits[1].parent", "cycle"),
    ("duplicate-circuit", _replace('id = "garage"', 'id = "main"'), "circuits[1].id", "duplicate"),
    ("min-above-max", _second_charger('circuit = "main"\nmin_current_a = 16\nmax_current_a = 10'),
     "chargers[1].min_current_a", "above max_current_a"),
    ("failsafe-above-charger-max", _second_charger('circuit = "garage"\nmax_current_a = 5\nmin_current_a = 0'),
     "circuits[1].failsafe_current_a", "above the max_current_a of charger 'CHARGER-002'"),
    ("unknown-circuit", _second_charger('circuit = "basement"'), "chargers[1].circuit", "unknown circuit"),
    ("phase-on-three-phase", _second_charger('circuit = "main"\nphase = "L2"'), "chargers[1].phase", "phases = 1"),
    ("bad-phase", _second_charger('circuit = "main"\nphases = 1\nphase = "L4"'), "chargers[1].phase", "L1"),
    ("two-phases", _second_charger('circuit = "main"\nphases = 2'), "chargers[1].phases", "1 or 3"),
    ("surplus-without-meter", _second_charger('circuit = "garage"\nmode = "surplus"'), "chargers[1].mode",
     "meter"),
    ("margin-eats-the-fuse", _replace("margin_a = 2", "margin_a = 63"), "circuits[0].margin_a", "nothing"),
    ("negative-fuse", _replace("max_current_a = 63", "max_current_a = -1"), "circuits[0].max_current_a",
     "greater than 0"),
    ("unknown-key", _replace("margin_a = 2", "margin_a = 2\nfuse = 63"), "circuits[0].fuse", "unknown key"),
    ("unknown-section-key", lambda t: t + "\n[load_management]\ninterval = 1\n", "load_management.interval",
     "unknown key"),
]


def _check_config(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, str]:
    code = main(["check-config", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_valid_site_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "site.toml"
    path.write_text(_valid(tmp_path), encoding="utf-8")
    config = load_config(path)
    assert [c.id for c in config.circuits] == ["main", "garage"]
    charger = config.charger(CHARGER)
    assert (charger.circuit, charger.max_current_a, charger.min_current_a, charger.phases, charger.priority,
            charger.mode) == ("main", 32, 6, 3, 0, "normal")
    assert config.charger(CHARGER_2).circuit is None  # not managed
    code, out, err = _check_config(capsys, path)
    assert code == 0 and "ok" in out and not err


@pytest.mark.parametrize(("edit", "key", "word"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_mistake_names_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    edit: Callable[[str], str], key: str, word: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(edit(_valid(tmp_path)), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert word in message.partition(f"{key}: ")[2], message
    code, out, err = _check_config(capsys, path)
    assert code == 2 and message in err and not out, err


def test_minimums_that_cannot_fit_are_allowed_with_a_warning(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    text = _second_charger('circuit = "garage"')(_valid(tmp_path))
    text = text.replace("connectors = 1\n", "connectors = 6\n", 1)  # 6 x 6 A > 32 A in the garage
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    load_config(path)
    code, out, err = _check_config(capsys, path)
    assert code == 0 and "ok" in out
    assert f"evedge: warning: {path}: chargers[1].min_current_a: " in err, err
    assert "'garage'" in err and "paused" in err
