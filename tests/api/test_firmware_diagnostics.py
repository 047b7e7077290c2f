"""Firmware updates, diagnostics and triggered messages as first-class operations, with the history
they leave, against the simulated chargers (1.6 and 2.0.1) over real sockets."""

from __future__ import annotations

import pytest

from controller.simulators.charger_process import SimulatedCharger
from controller.timefmt import now_iso
from tests.support import CHARGER, CHARGER_2, api_client, eventually, make_config, ocpp_url, running_site

FIRMWARE = f"/api/v1/chargers/{CHARGER}/firmware"
DIAGNOSTICS = f"/api/v1/chargers/{CHARGER}/diagnostics"


@pytest.fixture
def sim(booted_charger):
    return booted_charger


async def _history(api, path: str) -> list[tuple[str, str]]:
    return [(r["kind"], r["status"]) for r in (await api.get(path)).json()["history"]]


async def test_a_firmware_update_is_seen_taking_effect(site, api, sim):
    retrieve = now_iso()
    response = await api.post(FIRMWARE, json={"location": "https://fw.example/cp-2.0.bin", "retrieveDate": retrieve,
                                              "retries": 3, "retryInterval": 60})
    assert response.status_code == 202, response.text
    request = response.json()
    assert (request["kind"], request["status"]) == ("firmware-request", "Accepted")
    call = await sim.next_event("call", action="UpdateFirmware")
    assert call["payload"] == {"location": "https://fw.example/cp-2.0.bin", "retrieveDate": retrieve,
                               "retries": 3, "retryInterval": 60}

    # the charger downloads, installs and boots again with the new firmware
    expected = [("boot", "cp-2.0.bin"), ("firmware", "Installed"), ("firmware", "Installing"),
                ("firmware", "Downloaded"), ("firmware", "Downloading"), ("firmware-request", "Accepted"),
                ("boot", "unknown")]

    async def done():
        return await _history(api, FIRMWARE) == expected
    await eventually(done, what="firmware history")
    body = (await api.get(FIRMWARE)).json()
    assert (body["firmwareVersion"], body["firmwareStatus"]) == ("cp-2.0.bin", "Installed")
    assert body["pagination"] == {"total": 7, "limit": 50, "offset": 0}
    assert all(r["at"] for r in body["history"])
    assert (await api.get(f"/api/v1/chargers/{CHARGER}")).json()["firmwareVersion"] == "cp-2.0.bin"
    page = (await api.get(FIRMWARE, params={"limit": 2, "offset": 1})).json()
    assert [(r["kind"], r["status"]) for r in page["history"]] == expected[1:3]


async def test_diagnostics_are_requested_and_their_progress_kept(site, api, sim):
    response = await api.post(DIAGNOSTICS, json={"location": "ftp://logs.example/upload/"})
    assert response.status_code == 202, response.text
    assert response.json()["detail"]["answer"] == {"fileName": "diagnostics.log"}
    assert (await sim.next_event("call", action="GetDiagnostics"))["payload"] == {
        "location": "ftp://logs.example/upload/"}

    async def uploaded():
        return await _history(api, DIAGNOSTICS) == [
            ("diagnostics", "Uploaded"), ("diagnostics", "Uploading"), ("diagnostics-request", "Accepted")]
    await eventually(uploaded, what="diagnostics history")
    assert (await api.get(DIAGNOSTICS)).json()["diagnosticsStatus"] == "Uploaded"


@pytest.mark.parametrize(("body", "field"), [
    ({"retrieveDate": "2030-01-01T00:00:00Z"}, "location"),
    ({"location": "https://x/fw.bin", "retrieveDate": "soon"}, "retrieveDate"),
    ({"location": "https://x/fw.bin", "retrieveDate": "2030-01-01T00:00:00Z", "retries": -1}, "retries"),
    ({"location": "", "retrieveDate": "2030-01-01T00:00:00Z"}, "location"),
])
async def test_bad_firmware_requests_name_the_field(site, api, sim, body, field):
    response = await api.post(FIRMWARE, json=body)
    assert response.status_code == 422 and field in response.json()["message"], response.text
    assert await _history(api, FIRMWARE) == [("boot", "unknown")]


async def test_an_offline_charger_is_409_and_nothing_is_stored(site, api):
    response = await api.post(f"/api/v1/chargers/{CHARGER_2}/diagnostics", json={"location": "ftp://x/"})
    assert response.status_code == 409 and response.json()["error"] == "ChargerOffline"
    assert (await api.get(f"/api/v1/chargers/{CHARGER_2}/diagnostics")).json()["history"] == []
    assert (await api.get("/api/v1/chargers/NOPE/firmware")).status_code == 404


async def test_trigger_message(site, api, sim):
    response = await api.post(f"/api/v1/chargers/{CHARGER}/trigger",
                              json={"requestedMessage": "StatusNotification", "connectorId": 1})
    assert response.status_code == 200, response.text
    assert response.json() == {"requestedMessage": "StatusNotification", "status": "Accepted"}
    assert (await sim.next_event("call", action="TriggerMessage"))["payload"] == {
        "requestedMessage": "StatusNotification", "connectorId": 1}
    await sim.next_event("sent", action="StatusNotification")

    bad = await api.post(f"/api/v1/chargers/{CHARGER}/trigger", json={"requestedMessage": "Coffee"})
    assert bad.status_code == 422 and "requestedMessage" in bad.json()["message"], bad.text
    bad = await api.post(f"/api/v1/chargers/{CHARGER}/trigger", json={"requestedMessage": "Heartbeat",
                                                                        "connectorId": 7})
    assert bad.status_code == 422 and "connectorId" in bad.json()["message"], bad.text


async def test_a_reconnected_charger_is_asked_for_its_statuses(site, api, sim):
    await sim.cmd("disconnect")
    await eventually(lambda: not site.chargers.get(CHARGER).online, what="offline")
    await sim.cmd("reconnect")  # back without booting: what changed meanwhile is asked for
    call = await sim.next_event("call", action="TriggerMessage")
    assert call["payload"] == {"requestedMessage": "StatusNotification"}
    await sim.next_event("sent", action="StatusNotification")


async def test_a_201_station_names_the_request_its_statuses_belong_to(site, api, nursery):
    station = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2, version="2.0.1")
    await station.boot()
    response = await api.post(FIRMWARE, json={"location": "https://fw.example/st-3.bin",
                                              "retrieveDate": "2030-01-01T00:00:00Z"})
    assert response.status_code == 202, response.text
    request_id = response.json()["id"]
    call = await station.next_event("call", action="UpdateFirmware")
    assert call["payload"]["requestId"] == request_id
    assert call["payload"]["firmware"] == {"location": "https://fw.example/st-3.bin",
                                           "retrieveDateTime": "2030-01-01T00:00:00.000Z"}  # normalized

    async def installed():
        history = (await api.get(FIRMWARE)).json()["history"]
        return history if history[0]["status"] == "Installed" else None
    history = await eventually(installed, what="station installed")
    assert history[0]["detail"] == {"requestId": request_id}
    logs = await api.post(DIAGNOSTICS, json={"location": "https://logs.example/"})
    assert logs.status_code == 202 and logs.json()["status"] == "Accepted", logs.text
    assert (await station.next_event("call", action="GetLog"))["payload"]["logType"] == "DiagnosticsLog"

    async def uploaded():
        return (await api.get(DIAGNOSTICS)).json()["logStatus"] == "Uploaded"
    await eventually(uploaded, what="log uploaded")


async def test_the_history_and_latest_statuses_survive_a_restart(tmp_path, nursery):
    config = make_config(tmp_path)
    async with running_site(config) as site, api_client(site) as api:
        sim = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
        await sim.boot()
        assert (await api.post(DIAGNOSTICS, json={"location": "ftp://logs.example/"})).status_code == 202

        async def uploaded():
            return (await api.get(DIAGNOSTICS)).json()["diagnosticsStatus"] == "Uploaded"
        await eventually(uploaded, what="uploaded")
        await sim.aclose()
    async with running_site(config) as site, api_client(site) as api:
        body = (await api.get(DIAGNOSTICS)).json()
        assert body["diagnosticsStatus"] == "Uploaded"
        assert [r["status"] for r in body["history"]] == ["Uploaded", "Uploading", "Accepted"]
