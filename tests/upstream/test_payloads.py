"""Event payloads and the [upstream] config: formats, the seed's schema, switching types on."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.config import ConfigError, load_config
from controller.upstream.config import UpstreamSection
from controller.upstream.events import Events

HERE = Path(__file__).resolve().parent
SEED = HERE.parents[1].parent / "shared" / "seeds" / "000-start-charge-notification.txt"
START_SCHEMA = json.loads((HERE / "seed_start_schema.json").read_text())
START_VALIDATOR = jsonschema.Draft7Validator(START_SCHEMA)
ALL = Events(frozenset({"start", "stop_transaction", "status", "connection"}))


def assert_valid_start(payload: dict) -> None:
    """Every `start` payload we produce must satisfy the seed's JSON schema."""
    errors = list(START_VALIDATOR.iter_errors(payload))
    assert not errors, [e.message for e in errors]
    assert set(payload) <= {"type", "accepted", "chargebox", "id", "connector", "transaction_id", "mode", "payment"}


def test_the_schema_copy_is_the_seeds():
    if not SEED.exists():
        pytest.skip("shared/seeds is not beside the repository")
    text = SEED.read_text()
    schema = json.loads(text[text.index("Request schema:") + len("Request schema:"):text.index("Expected response")])
    assert schema == START_SCHEMA


def txn(**fields) -> dict:
    row = {"id": 52, "charger_id": "EaJ7cU9NJ3YkTNgy", "connector_id": 2, "id_tag": "0012847382", "mode": "local",
           "meter_start": 1000, "meter_stop": 8500, "meter_last": 4000, "start_time": "2026-02-06T12:00:00.000Z",
           "stop_time": "2026-02-06T13:30:00.000Z", "stop_id_tag": None}
    return {**row, **fields}


def test_start_is_the_seeds_format():
    (accepted,) = ALL.start(txn(), accepted=True)
    assert accepted.type == "start" and accepted.transaction_id == 52 and accepted.charger_id == "EaJ7cU9NJ3YkTNgy"
    assert accepted.payload == {"type": "start", "accepted": True, "chargebox": "EaJ7cU9NJ3YkTNgy",
                                "id": "0012847382", "connector": 2, "transaction_id": 52, "mode": "local"}
    (rejected,) = ALL.start(txn(mode="api"), accepted=False)
    assert rejected.payload["accepted"] is False and rejected.payload["transaction_id"] == 0
    (paid,) = ALL.start(txn(mode="remote"), accepted=True, payment={"method": "card"})
    assert paid.payload["payment"] == {"method": "card"}
    for e in (accepted, rejected, paid):
        assert_valid_start(e.payload)
    assert accepted.event_id != rejected.event_id


@given(
    accepted=st.booleans(), mode=st.sampled_from(["local", "api", "remote"]),
    charger=st.text(min_size=1, max_size=64), connector=st.integers(0, 100), tag=st.text(max_size=20),
    transaction_id=st.integers(1, 2**31 - 1),
    payment=st.none() | st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
def test_every_start_payload_is_valid_against_the_seed_schema(accepted, mode, charger, connector, tag,
                                                                transaction_id, payment):
    (e,) = ALL.start(txn(id=transaction_id, charger_id=charger, connector_id=connector, id_tag=tag, mode=mode),
                     accepted=accepted, payment=payment)
    assert_valid_start(e.payload)
    assert e.payload["transaction_id"] == (transaction_id if accepted else 0)


def test_stop_transaction_formats():
    (stop,) = ALL.stop(txn())
    assert stop.payload == {"type": "stop_transaction", "accepted": True, "unlocked": False,
                            "chargebox": "EaJ7cU9NJ3YkTNgy", "idTag": "0012847382", "connector": 2,
                            "transaction_id": 52, "kwh": 7.5, "time": 5400}
    (unknown,) = ALL.stop(txn(meter_start=None, start_time=None, id_tag="", stop_id_tag="X1"))
    assert (unknown.payload["kwh"], unknown.payload["time"], unknown.payload["idTag"]) == (0, 0, "X1")
    (refused,) = ALL.stop_rejected(txn())
    assert refused.payload["accepted"] is False and refused.payload["unlocked"] is False
    assert refused.payload["transaction_id"] == 0 and refused.payload["msg"] == "stop"
    assert refused.payload["energy"] == refused.payload["kwh"] == 3.0
    (unlock,) = ALL.unlocked("CB", 1)
    assert unlock.payload == {"type": "stop_transaction", "accepted": True, "unlocked": True, "chargebox": "CB",
                              "idTag": "", "connector": 1, "transaction_id": 0, "kwh": 0, "time": 0,
                              "msg": "stop", "energy": 0}


def test_status_and_connection_formats():
    notification = dict(connector_id=1, status="Faulted", error_code="GroundFailure", info="RCD",
                        vendor_error_code="E12", timestamp="2026-02-06T12:00:00.000Z")
    (status,) = ALL.status("CB", **notification)
    assert status.payload == {"type": "status", "chargebox": "CB", "connector": 1, "status": "Faulted",
                              "error_code": "GroundFailure", "timestamp": "2026-02-06T12:00:00.000Z",
                              "info": "RCD", "vendor_error_code": "E12"}
    assert ALL.status("CB", **notification, previous=("Faulted", "GroundFailure")) == []
    assert len(ALL.status("CB", **notification, previous=("Faulted", "NoError"))) == 1
    (online,) = ALL.connection("CB", True)
    assert online.payload["type"] == "connection" and online.payload["online"] is True
    assert set(online.payload) == {"type", "chargebox", "online", "timestamp"}


def test_only_types_with_a_url_are_produced():
    config = UpstreamSection(start_url="https://up.example/start")
    events = Events(config.enabled)
    assert config.enabled == {"start"}
    assert len(events.start(txn(), True)) == 1
    assert events.stop(txn()) == [] and events.status("CB", 1, "A", "N") == []
    assert events.connection("CB", False) == [] and Events().start(txn(), True) == []


def test_config_keys(tmp_path: Path):
    path = tmp_path / "site.toml"
    path.write_text('[upstream]\nstart_url = "https://upstream.example/hooks/start"\n'
                    'stop_url = "https://upstream.example/hooks/stop"\nheaders = { "X-Api-Key" = "abc" }\n'
                    'timeout_s = 10\nsigning_secret = "s"\n')
    upstream = load_config(path).upstream
    assert upstream.enabled == {"start", "stop_transaction"}
    assert upstream.url("start") == "https://upstream.example/hooks/start"
    assert upstream.headers == {"X-Api-Key": "abc"} and upstream.signing_secret == "s"
    path.write_text('[upstream]\nstart_ur = "https://x"\n')
    with pytest.raises(ConfigError, match=r"upstream\.start_ur: unknown key"):
        load_config(path)
    path.write_text('[upstream]\nstart_url = "ftp://x"\n')
    with pytest.raises(ConfigError, match=r"upstream\.start_url"):
        load_config(path)
    path.write_text('[upstream]\nheaders = { "Bad Header" = "x" }\n')
    with pytest.raises(ConfigError, match=r"upstream\.headers"):
        load_config(path)


def test_the_example_config_documents_every_key():
    example = (HERE.parents[1] / "config" / "example.toml").read_text()
    section = example[example.index("[upstream]"):]
    for key in UpstreamSection.model_fields:
        assert key in section, f"config/example.toml does not document upstream.{key}"
    load_config(HERE.parents[1] / "config" / "example.toml")
