"""config/example.toml says it shows every key with its default unless marked "(not the default)":
each value it sets in a section is checked against the code's default (what a site gets when the
key is left out), so the file cannot drift from the code."""

from __future__ import annotations

import re
import tomllib

from controller.config import Config
from tests.support import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "config" / "example.toml"
MARK = "(not the default"


def _set_keys() -> list[tuple[str, str, bool]]:
    """(section, key, marked) for every key the file sets in a [section] table."""
    found, section, comments = [], None, []
    for line in EXAMPLE.read_text().splitlines():
        if header := re.fullmatch(r"\[(\w+)\]", line.strip()):
            section, comments = header[1], []
        elif line.startswith("[["):
            section = None  # [[chargers]] and the hardware lists are examples, not defaults
        elif line.startswith("#"):
            comments.append(line)
        elif not line.strip():
            comments = []
        elif section is not None and (key := re.match(r"(\w+)\s*=", line)):
            found.append((section, key[1], MARK in line or any(MARK in c for c in comments)))
            comments = []
    return found


def test_every_unmarked_value_is_the_code_default() -> None:
    raw = tomllib.loads(EXAMPLE.read_text())
    keys = _set_keys()
    assert len(keys) > 30, keys  # the parser sees the file
    differ = []
    for section, key, marked in keys:
        default = Config.model_fields[section].default
        shown = getattr(type(default).model_validate({key: raw[section][key]}), key)
        if shown != getattr(default, key) and not marked:
            differ.append(f"[{section}] {key} = {raw[section][key]!r}, the default is {getattr(default, key)!r}")
        if shown == getattr(default, key) and marked:
            differ.append(f"[{section}] {key} is marked {MARK!r} but is the default")
    assert not differ, "\n".join(differ)


def test_the_two_values_that_used_to_differ_are_the_defaults() -> None:
    raw = tomllib.loads(EXAMPLE.read_text())
    assert raw["site"]["data_dir"] == str(Config().site.data_dir)
    assert raw["ocpp"]["unknown_chargers"] == Config().ocpp.unknown_chargers == "reject"
