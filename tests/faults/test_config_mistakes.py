"""Config files with every kind of mistake: the error names the file and the dotted key.

The one table of config mistakes (tests/test_cli.py keeps a few CLI smoke cases; the drivers'
and public charging's own model checks stay in their directories). Each row is run through
`load_config` and through `evedge check-config` (exit status 2, the message on stderr); two rows
also through the installed `evedge` executable in a subprocess.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from controller.cli import main
from controller.config import ConfigError, load_config
from controller.passwords import hash_password
from tests.support import CHARGER, CHARGER_2, PROJECT_ROOT, config_text

PRICING = 'pricing = { currency = "EUR", price_per_kwh = 39, amount_authorized = 5000 }'
HASH = hash_password("0123456789abcdef")
BUS = '\n[[buses]]\nid = "gw"\nkind = "tcp"\nhost = "127.0.0.1"\n'


def _in_section(section: str, line: str) -> Callable[[str], str]:
    """Add `line` right after the `[section]` header."""
    return lambda text: text.replace(f"[{section}]\n", f"[{section}]\n{line}\n", 1)


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)
    return edit


def _append(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


def _first_charger(line: str) -> Callable[[str], str]:
    return _replace(f'id = "{CHARGER}"\nconnectors = 2\n', f'id = "{CHARGER}"\nconnectors = 2\n{line}\n')


# (id, edit of the valid test config, the dotted key the message must name, a word it must contain)
MISTAKES: list[tuple[str, Callable[[str], str], str, str]] = [
    # wrong types
    ("string-for-int", _replace("heartbeat_interval_s = 300", 'heartbeat_interval_s = "fast"'),
     "ocpp.heartbeat_interval_s", "integer"),
    ("string-for-list", _replace('api_keys = ["test-key"]', 'api_keys = "test-key"'), "api.api_keys", "list"),
    ("string-for-bool", _in_section("ocpp", 'require_password = "maybe"'), "ocpp.require_password", "boolean"),
    ("list-item-type", _in_section("logging", "frame_log = [1]"), "logging.frame_log[0]", "string"),
    # strict types: what TOML writes as a string or a number is not taken for something else
    ("quoted-integer", _replace("heartbeat_interval_s = 300", 'heartbeat_interval_s = "300"'),
     "ocpp.heartbeat_interval_s", "integer"),
    ("quoted-decimal", _replace("call_timeout_s = 5.0", 'call_timeout_s = "30"'), "ocpp.call_timeout_s", "number"),
    ("decimal-for-integer", _replace("heartbeat_interval_s = 300", "heartbeat_interval_s = 300.5"),
     "ocpp.heartbeat_interval_s", "integer"),
    ("yes-for-bool", _replace("accept_unknown_id_tags = false", 'accept_unknown_id_tags = "yes"'),
     "ocpp.accept_unknown_id_tags", "boolean"),
    ("one-for-bool", _replace("accept_unknown_id_tags = false", "accept_unknown_id_tags = 1"),
     "ocpp.accept_unknown_id_tags", "boolean"),
    ("quoted-retention", _in_section("site", 'meter_values_retention_days = "30"'),
     "site.meter_values_retention_days", "integer"),
    ("negative-retention", _in_section("site", "meter_values_retention_days = -1"),
     "site.meter_values_retention_days", "greater"),
    ("quoted-upstream-number", _append('\n[upstream]\ntimeout_s = "10"\n'), "upstream.timeout_s", "number"),
    ("quoted-bus-number", _append(BUS.replace('kind = "tcp"', 'kind = "tcp"\nport = "502"')), "buses[0].port",
     "integer"),
    ("reader-bool-as-int", _append(BUS + '\n[[readers]]\nid = "r"\nkind = "modbus"\nbus = "gw"\nclear_flag = 0\n'),
     "readers[0].clear_flag", "boolean"),
    ("section-not-a-table", lambda t: "logging = 5\n" + t.replace("[logging]\nlevel", "[logging_]\nlevel"),
     "logging", "dictionary"),
    ("enum", _replace('level = "info"', 'level = "verbose"'), "logging.level", "debug"),
    ("bad-url", _append('\n[upstream]\nstart_url = "not a url"\n'), "upstream.start_url", "URL"),
    # unknown keys, at every depth
    ("unknown-top-level", lambda t: "colour = 1\n" + t, "colour", "unknown key"),
    ("unknown-in-section", _in_section("api", "cors_origins = []"), "api.cors_origins", "unknown key"),
    ("unknown-in-inline-table", _first_charger(f'public_code = "AB1"\n{PRICING[:-2]}, colour = "red" }}'),
     "chargers[0].pricing.colour", "unknown key"),
    ("unknown-in-second-charger", _replace(f'id = "{CHARGER_2}"\n', f'id = "{CHARGER_2}"\nmax_kw = 11\n'),
     "chargers[1].max_kw", "unknown key"),
    # numbers out of range
    ("below-minimum", _replace("heartbeat_interval_s = 300", "heartbeat_interval_s = 5"),
     "ocpp.heartbeat_interval_s", "greater than or equal to 10"),
    ("above-maximum", _replace("call_timeout_s = 5.0", "call_timeout_s = 601"), "ocpp.call_timeout_s", "600"),
    ("not-a-number", _replace("remote_start_timeout_s = 60.0", "remote_start_timeout_s = nan"),
     "ocpp.remote_start_timeout_s", "less than or equal"),
    ("zero-connectors", _replace("connectors = 1", "connectors = 0"), "chargers[1].connectors", "greater"),
    ("frame-size", _in_section("ocpp", "max_frame_bytes = 100"), "ocpp.max_frame_bytes", "4096"),
    # listen addresses
    ("listen-no-port", _replace('listen = "127.0.0.1:0"\napi_keys', 'listen = "[::1]"\napi_keys'),
     "api.listen", "HOST:PORT"),
    ("listen-port-name", _replace('listen = "127.0.0.1:0"\nunknown', 'listen = "0.0.0.0:ocpp"\nunknown'),
     "ocpp.listen", "HOST:PORT"),
    ("two-listeners-one-port", lambda t: t.replace('listen = "127.0.0.1:0"', 'listen = "0.0.0.0:9000"', 1).replace(
        'listen = "127.0.0.1:0"', 'listen = "127.0.0.1:9000"', 1), "api.listen", "also ocpp.listen's"),
    # chargers and public charging
    ("duplicate-charger-id", _append(f'\n[[chargers]]\nid = "{CHARGER}"\n'), "chargers[2].id", "duplicate"),
    ("duplicate-public-code", lambda t: _first_charger(f'public_code = "ab12"\n{PRICING}')(t).replace(
        "connectors = 1\n", f'connectors = 1\npublic_code = "AB12"\n{PRICING}\n'),
     "chargers[1].public_code", "duplicate"),
    ("public-code-without-pricing", _first_charger('public_code = "AB12"'), "chargers[0].pricing", "required"),
    ("bad-public-code", _first_charger(f'public_code = "AB-12"\n{PRICING}'), "chargers[0].public_code", "pattern"),
    ("tax-rate-not-decimal", _first_charger(f'public_code = "AB12"\n{PRICING[:-2]}, tax_rate = "21%" }}'),
     "chargers[0].pricing.tax_rate", "decimal"),
    ("tax-rate-out-of-range", _first_charger(f'public_code = "AB12"\n{PRICING[:-2]}, tax_rate = "12" }}'),
     "chargers[0].pricing.tax_rate", "between"),
    ("currency", _first_charger(f'public_code = "AB12"\n{PRICING.replace("EUR", "euro")}'),
     "chargers[0].pricing.currency", "pattern"),
    ("stripe-without-secret", _append('\n[public_charging]\nenabled = true\npayment_provider = "stripe"\n'),
     "public_charging.stripe_secret_key", "required"),
    # OCPP security
    ("tls-cert-without-key", _in_section("ocpp", 'tls_cert = "site.pem"'), "ocpp.tls_key", "required"),
    ("tls-key-without-cert", _in_section("ocpp", 'tls_key = "site.key"'), "ocpp.tls_cert", "required"),
    ("password-too-short", _first_charger('password = "short"'), "chargers[0].password", "16"),
    ("password-and-hash", _first_charger(f'password = "0123456789abcdef"\npassword_hash = "{HASH}"'),
     "chargers[0].password_hash", "either"),
    # REST API keys and CORS
    ("empty-api-key", _replace('api_keys = ["test-key"]', 'api_keys = ["test-key", ""]'), "api.api_keys[1]", "empty"),
    ("key-in-both-lists", _in_section("api", 'read_only_api_keys = ["ro", "test-key"]'),
     "api.read_only_api_keys[1]", "also in api_keys"),
    ("cors-wildcard", _in_section("api", 'cors_allow_origins = ["*"]'), "api.cors_allow_origins[0]", "origin"),
    ("cors-with-path", _in_section("api", 'cors_allow_origins = ["https://ops.example.com/app"]'),
     "api.cors_allow_origins[0]", "no path"),
    # hardware references
    ("meter-unknown-bus", _append(BUS + '\n[[meters]]\nid = "m"\nbus = "nope"\nmodel = "sdm630"\n'),
     "meters[0].bus", "unknown bus 'nope'"),
    ("reader-unknown-charger", _append(BUS + '\n[[readers]]\nid = "r"\nkind = "modbus"\nbus = "gw"\ndevice_id = 3\n'
                                             'charger = "NOPE"\nconnector = 1\n'),
     "readers[0].charger", "unknown charger 'NOPE'"),
    ("reader-connector-out-of-range", _append(BUS + '\n[[readers]]\nid = "r"\nkind = "modbus"\nbus = "gw"\n'
                                                    f'device_id = 3\ncharger = "{CHARGER_2}"\nconnector = 2\n'),
     "readers[0].connector", "1 connector"),
    ("meter-model", _append(BUS + '\n[[meters]]\nid = "m"\nbus = "gw"\nmodel = "sdm999"\n'), "meters[0].model",
     "sdm999"),
    ("connector-meter-missing", _first_charger('meter = "connector-meter"'), "chargers[0].meter", "[[meters]]"),
    ("local-list-word", _replace('local_list = "off"', 'local_list = "sometimes"'), "ocpp.local_list", "push"),
    ("local-list-bool", _replace('local_list = "off"', "local_list = true"), "ocpp.local_list", "push"),
]


def _check_config(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str]:
    code = main(["check-config", str(path)])
    out, err = capsys.readouterr()
    assert not out, out
    return code, err


@pytest.mark.parametrize(("edit", "key", "word"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_mistake_names_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    edit: Callable[[str], str], key: str, word: str) -> None:
    valid = config_text(tmp_path / "data")
    path = tmp_path / "site.toml"
    path.write_text(valid, encoding="utf-8")
    load_config(path)  # the starting point is fine: the edit is the only mistake
    path.write_text(edit(valid), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert word in message.partition(f"{key}: ")[2], message
    code, err = _check_config(capsys, path)
    assert code == 2 and message in err, err


def test_natural_toml_types_are_accepted(tmp_path: Path) -> None:
    """Strict, not pedantic: an integer where a decimal number is expected, a path as a string."""
    text = _replace("call_timeout_s = 5.0", "call_timeout_s = 30")(config_text(tmp_path / "data"))
    text = _append('\n[upstream]\ntimeout_s = 10\nretry_initial_s = 1\n')(text)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.ocpp.call_timeout_s == 30.0 and config.upstream.timeout_s == 10.0
    assert config.data_dir == tmp_path / "data"


def test_listeners_on_different_addresses_may_share_a_port(tmp_path: Path) -> None:
    text = config_text(tmp_path / "data").replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:9000"', 1)
    path = tmp_path / "site.toml"
    path.write_text(text.replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.2:9000"', 1), encoding="utf-8")
    assert load_config(path).api.listen == "127.0.0.2:9000"


@pytest.mark.parametrize(("content", "expected"), [
    (b"[ocpp]\nlisten = \"127.0.0.1:0\"\n[api\n", "line 3"),  # invalid TOML: the line is named
    (b"[api]\nlisten = \"1.2.3.4:1\"\nlisten = \"1.2.3.4:2\"\n", "line 3"),  # a key given twice
    (b"[site]\nname = \"caf\xe9\"\n", "UTF-8"),  # saved as Latin-1
], ids=["invalid-toml", "duplicate-key", "not-utf8"])
def test_unreadable_text_names_file_and_place(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              content: bytes, expected: str) -> None:
    path = tmp_path / "site.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and expected in message, message
    code, err = _check_config(capsys, path)
    assert code == 2 and message in err


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_missing_file_or_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    path = tmp_path / "site.toml"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: cannot read: "), message
    assert ("directory" if kind == "directory" else "No such file") in message
    code, err = _check_config(capsys, path)
    assert code == 2 and message in err


def test_every_mistake_in_one_file_is_reported(tmp_path: Path) -> None:
    """Several mistakes: all of them, one line each, so one edit round fixes the file."""
    text = config_text(tmp_path / "data")
    chosen = ("string-for-int", "unknown-in-section", "above-maximum")
    for _, edit, _, _ in (m for m in MISTAKES if m[0] in chosen):
        text = edit(text)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    lines = str(raised.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["ocpp.heartbeat_interval_s", "ocpp.call_timeout_s",
                                                       "api.cors_origins"], lines
    assert all(line.startswith(f"{path}: ") for line in lines)


async def test_the_evedge_executable_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    evedge = Path(sys.executable).parent / "evedge"
    assert evedge.exists(), "the evedge console script is installed in the venv"
    bad = tmp_path / "bad.toml"
    bad.write_text(_first_charger('password = "short"')(config_text(tmp_path / "data")), encoding="utf-8")
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    for path, expected in ((bad, "chargers[0].password:"), (folder, "cannot read")):
        result = await trio.run_process([str(evedge), "check-config", str(path)], capture_stdout=True,
                                        capture_stderr=True, check=False, cwd=str(PROJECT_ROOT))
        err = result.stderr.decode()
        assert result.returncode == 2, err
        assert f"{path}: {expected}" in err and result.stdout == b"", err
        assert "Traceback" not in err
