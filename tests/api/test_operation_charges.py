"""Charges started and stopped through the generic operations endpoint are booked like the
controller's own remote start and stop (the independent simulated 1.6 charger answers)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.simulators.charger_process import SimulatedCharger
from controller.timefmt import iso, utcnow
from tests.support import CHARGER, ocpp_url, transaction_status

OPERATIONS = f"/api/v1/chargers/{CHARGER}/operations"


@pytest.fixture
async def sim(site, nursery):
    charger = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
    assert (await charger.boot())["status"] == "Accepted"
    for connector in (1, 2):
        await charger.status(connector, "Available")
    yield charger
    await charger.aclose()


async def transactions(api) -> list[dict]:
    return (await api.get("/api/v1/transactions")).json()["transactions"]


async def test_remote_start_and_stop_through_operations_are_booked_as_remote(site, api, sim):
    response = await api.post(f"{OPERATIONS}/RemoteStartTransaction", json={"connectorId": 1, "idTag": "OP1"})
    assert response.status_code == 200 and response.json() == {"status": "Accepted"}, response.text
    sent = await sim.next_event("sent", action="StartTransaction")
    tx = sent["response"]["transactionId"]
    assert sent["response"]["idTagInfo"]["status"] == "Accepted"  # we asked for it, though OP1 is not listed
    assert [t["transactionId"] for t in await transactions(api)] == [tx]  # the pending row became the charge
    detail = (await api.get(f"/api/v1/transactions/{tx}")).json()
    assert (detail["status"], detail["remoteStarted"], detail["mode"]) == ("active", True, "remote")

    await sim.cmd("auto", enabled=False)  # so the stop below can be seen in `stopping`
    stop = await api.post(f"{OPERATIONS}/RemoteStopTransaction", json={"transactionId": tx})
    assert stop.status_code == 200 and stop.json() == {"status": "Accepted"}, stop.text
    assert await transaction_status(api, tx) == "stopping"
    await sim.stop(1, reason="Remote")
    assert await transaction_status(api, tx) == "completed"


async def test_without_a_connector_the_charger_picks_one(site, api, sim):
    response = await api.post(f"{OPERATIONS}/RemoteStartTransaction", json={"idTag": "OP2"})
    assert response.status_code == 200, response.text
    sent = await sim.next_event("sent", action="StartTransaction")
    detail = (await api.get(f"/api/v1/transactions/{sent['response']['transactionId']}")).json()
    assert (detail["connectorId"], detail["mode"], detail["remoteStarted"]) == (sent["request"]["connectorId"],
                                                                               "remote", True)
    assert len(await transactions(api)) == 1


async def test_a_refused_operator_start_is_failed_and_its_answer_passed_on(site, api, sim):
    await sim.respond("RemoteStartTransaction", payload={"status": "Rejected"})
    response = await api.post(f"{OPERATIONS}/RemoteStartTransaction", json={"connectorId": 2, "idTag": "OP3"})
    assert response.status_code == 200 and response.json() == {"status": "Rejected"}
    [failed] = await transactions(api)
    assert failed["status"] == "failed"
    assert (await api.get(f"/api/v1/transactions/{failed['transactionId']}")).json()["stopReason"] == "Rejected"


async def test_operator_starts_respect_reservations_and_connectors(site, api, sim):
    reserved = await api.post(f"/api/v1/chargers/{CHARGER}/reservations",
                              json={"connectorId": 1, "idTag": "RES1", "expiresAt": iso(utcnow() + timedelta(hours=1))})
    assert reserved.status_code == 201, reserved.text
    other = await api.post(f"{OPERATIONS}/RemoteStartTransaction", json={"connectorId": 1, "idTag": "OTHER"})
    assert other.status_code == 409 and other.json()["error"] == "ConnectorReserved"
    unknown = await api.post(f"{OPERATIONS}/RemoteStartTransaction", json={"connectorId": 3, "idTag": "OTHER"})
    assert unknown.status_code == 422 and "connectorId" in unknown.json()["message"]
    bad = await api.post(f"{OPERATIONS}/RemoteStartTransaction", json={"connectorId": 1})
    assert bad.status_code == 422 and "idTag" in bad.json()["message"]
    assert await transactions(api) == []  # nothing refused before sending is booked


async def test_a_2_0_1_request_start_and_stop_through_operations_are_booked_as_remote(site, api, nursery):
    station = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2, version="2.0.1")
    await station.boot()
    await station.status(1, "Occupied")
    response = await api.post(f"{OPERATIONS}/RequestStartTransaction", json={
        "idToken": {"idToken": "OP201", "type": "ISO14443"}, "remoteStartId": 777, "evseId": 1})
    assert response.status_code == 200 and response.json()["status"] == "Accepted", response.text
    started = await station.next_event("sent", action="TransactionEvent")
    assert started["request"]["transactionInfo"]["remoteStartId"] == 777  # sent as given
    [booked] = await transactions(api)  # the pending row became the charge
    detail = (await api.get(f"/api/v1/transactions/{booked['transactionId']}")).json()
    assert (detail["status"], detail["remoteStarted"], detail["mode"]) == ("active", True, "remote")
    station_id = detail["ocppTransactionId"]
    await station.cmd("auto", enabled=False)
    stop = await api.post(f"{OPERATIONS}/RequestStopTransaction", json={"transactionId": station_id})
    assert stop.status_code == 200 and stop.json()["status"] == "Accepted", stop.text
    assert await transaction_status(api, booked["transactionId"]) == "stopping"
    await station.aclose()
