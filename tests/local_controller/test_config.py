"""`[upstream.ocpp]`, `[upstream] authorize_url` and the chargers' upstream keys: strict types, and
errors that name the file and the key."""

from __future__ import annotations

import pytest

from controller.config import ConfigError, load_config
from tests.local_controller.support import local_toml


def load(tmp_path, **options):
    path = tmp_path / "site.toml"
    path.write_text(local_toml(tmp_path / "data", 9999, **options), encoding="utf-8")
    return path, lambda: load_config(path)


def test_a_valid_local_controller_config(tmp_path):
    _, config = load(tmp_path, ocpp='password = "secret"\nrefused_actions = ["Reset"]',
                     chargers='upstream_id = "SITE7-CP-1"\n')
    loaded = config()
    assert loaded.upstream.ocpp.url == "ws://127.0.0.1:9999/ocpp"
    assert loaded.upstream_id("CHARGER-001") == "SITE7-CP-1"
    assert loaded.upstream_id("CHARGER-002") == "CHARGER-002"
    assert "AuthorizationKey" in loaded.upstream.ocpp.protected_keys
    assert "SecurityCtrlr.BasicAuthPassword" in loaded.upstream.ocpp.protected_variables
    assert loaded.upstream.ocpp.refused_actions == ["Reset"]  # a list given replaces the default


def test_a_2_0_1_station_keeps_its_network_profile_by_default(tmp_path):
    _, config = load(tmp_path)
    assert config().upstream.ocpp.refused_actions == ["SetNetworkProfile"]


@pytest.mark.parametrize("options, key", [
    ({"ocpp": 'ca_file = 7'}, "upstream.ocpp.ca_file"),
    ({"ocpp": 'refused_actions = "Reset"'}, "upstream.ocpp.refused_actions"),
    ({"ocpp": 'protected_variables = "SecurityCtrlr"'}, "upstream.ocpp.protected_variables"),
    ({"ocpp": "colour = 1"}, "upstream.ocpp.colour"),
    ({"ocpp": 'password = ""'}, "upstream.ocpp.password"),
    ({"chargers": 'upstream_id = "a/b"\n'}, "chargers[0].upstream_id"),
    ({"chargers": 'upstream_id = "CHARGER-002"\n'}, "chargers[1].upstream_id"),
    ({"chargers": "upstream_password = 12\n"}, "chargers[0].upstream_password"),
])
def test_mistakes_name_the_file_and_the_key(tmp_path, options, key):
    path, config = load(tmp_path, **options)
    with pytest.raises(ConfigError) as error:
        config()
    assert f"{path}: {key}:" in str(error.value)


def test_the_url_must_be_a_websocket_url(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(local_toml(tmp_path / "data", 9999).replace("ws://127.0.0.1", "https://127.0.0.1"))
    with pytest.raises(ConfigError, match=r"upstream\.ocpp\.url:"):
        load_config(path)


def test_authorize_timeout_is_a_number_of_seconds(tmp_path):
    path, config = load(tmp_path, extra='[upstream]\nauthorize_url = "http://x.example/a"\nauthorize_timeout_s = "2"\n')
    with pytest.raises(ConfigError, match=r"upstream\.authorize_timeout_s:"):
        config()
