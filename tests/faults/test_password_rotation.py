"""Changing a charger's password (security profile 1) without locking it out: the new key is
stored before it is sent, the old one works until the charger has connected with the new one.
The simulated 1.6 charger dials with Basic auth over real sockets; the books are a real SQLite file."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from controller.config import load_config
from controller.simulators.charger_process import SimulatedCharger, SimulatorError
from tests.support import CHARGER, api_client, config_text, ocpp_url, running_site

OLD = "old-key-0123456789abcd"
NEW = "new-key-abcdef0123456789"


@asynccontextmanager
async def protected_site(tmp_path):
    text = config_text(tmp_path / "data").replace("connectors = 2\n", f'connectors = 2\npassword = "{OLD}"\n', 1)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    async with running_site(load_config(path)) as site, api_client(site) as api:
        yield site, api


async def _booted(site, nursery) -> SimulatedCharger:
    sim = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), basic_auth=f"{CHARGER}:{OLD}")
    assert (await sim.boot())["status"] == "Accepted"
    return sim


async def _reconnect(sim: SimulatedCharger, key: str) -> int | None:
    """Dial again with `key`: None when admitted, else the HTTP status of the refusal."""
    try:
        await sim.cmd("reconnect", basic_auth=f"{CHARGER}:{key}")
    except SimulatorError as exc:
        return exc.status
    return None


async def test_change_configuration_of_the_key_keeps_the_charger_in(tmp_path, nursery):
    async with protected_site(tmp_path) as (site, api):
        sim = await _booted(site, nursery)
        response = await api.post(f"/api/v1/chargers/{CHARGER}/operations/ChangeConfiguration",
                                  json={"key": "AuthorizationKey", "value": NEW})
        assert response.status_code == 200 and response.json() == {"status": "Accepted"}, response.text
        assert await _reconnect(sim, OLD) is None  # not yet connected with the new one: the old still works
        assert await _reconnect(sim, NEW) is None
        assert await _reconnect(sim, OLD) == 401  # connected with the new one: the old is gone
        assert await _reconnect(sim, NEW) is None
        await sim.aclose()
    async with protected_site(tmp_path) as (site, api):  # the new key is in the books
        sim = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), basic_auth=f"{CHARGER}:{NEW}")
        assert (await sim.boot())["status"] == "Accepted"
        assert await _reconnect(sim, OLD) == 401
        await sim.aclose()


async def test_a_generated_key_is_returned_once_and_works(tmp_path, nursery):
    async with protected_site(tmp_path) as (site, api):
        sim = await _booted(site, nursery)
        response = await api.post(f"/api/v1/chargers/{CHARGER}/password", json={})
        assert response.status_code == 200, response.text
        key = response.json()["password"]
        assert len(key) == 40 and response.json()["status"] == "Accepted"
        call = await sim.next_event("call", action="ChangeConfiguration")
        assert call["payload"] == {"key": "AuthorizationKey", "value": key}
        assert await _reconnect(sim, key) is None
        assert await _reconnect(sim, OLD) == 401
        await sim.aclose()


async def test_a_refused_key_leaves_the_old_one(tmp_path, nursery):
    async with protected_site(tmp_path) as (site, api):
        sim = await _booted(site, nursery)
        await sim.respond("ChangeConfiguration", payload={"status": "Rejected"})
        response = await api.post(f"/api/v1/chargers/{CHARGER}/password", json={"password": NEW})
        assert response.status_code == 409 and response.json()["error"] == "ChargerRejected", response.text
        raw = await api.post(f"/api/v1/chargers/{CHARGER}/operations/ChangeConfiguration",
                             json={"key": "AuthorizationKey", "value": NEW})
        assert raw.status_code == 200 and raw.json() == {"status": "Rejected"}
        assert await _reconnect(sim, NEW) == 401
        assert await _reconnect(sim, OLD) is None
        await sim.aclose()


@pytest.mark.parametrize("password", ["short", "x" * 41, 1234567890123456])
async def test_a_bad_password_is_422(tmp_path, nursery, password):
    async with protected_site(tmp_path) as (site, api):
        sim = await _booted(site, nursery)
        response = await api.post(f"/api/v1/chargers/{CHARGER}/password", json={"password": password})
        assert response.status_code == 422 and "password" in response.json()["message"], response.text
        assert not [e for e in sim.events if e["event"] == "call"]
        await sim.aclose()


async def test_a_201_station_gets_its_new_password_through_set_variables(tmp_path, nursery):
    async with protected_site(tmp_path) as (site, api):
        station = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), basic_auth=f"{CHARGER}:{OLD}",
                                               version="2.0.1")
        await station.boot()
        raw = await api.post(f"/api/v1/chargers/{CHARGER}/operations/SetVariables", json={"setVariableData": [
            {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
             "attributeValue": NEW}]})
        assert raw.status_code == 200, raw.text
        assert raw.json()["setVariableResult"][0]["attributeStatus"] == "Accepted"
        assert await _reconnect(station, NEW) is None
        assert await _reconnect(station, OLD) == 401
        assert await _reconnect(station, NEW) is None
        response = await api.post(f"/api/v1/chargers/{CHARGER}/password", json={})
        assert response.status_code == 200, response.text
        assert await _reconnect(station, response.json()["password"]) is None
        await station.aclose()
