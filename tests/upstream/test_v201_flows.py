"""Upstream notifications for an OCPP 2.0.1 station: the independent 2.0.1 simulator drives the
site, the real receiver gets the events, in the same shapes as for 1.6 (docs/upstream.md;
tests/upstream/test_flows.py is the 1.6 twin). The upstream never sees the station's own
transaction ids: `transaction_id` is ours, as for 1.6."""

from __future__ import annotations

import pytest

from controller.simulators.charger_process import SimulatedCharger
from tests.stations import V201, booked_id, next_start, next_stop
from tests.support import CHARGER, eventually, ocpp_url
from tests.upstream import test_flows
from tests.upstream.receiver import Reply
from tests.upstream.test_flows import T0, T1, wait_delivered
from tests.upstream.test_payloads import assert_valid_start

START_KEYS = {"type", "accepted", "chargebox", "id", "connector", "transaction_id", "mode"}
STOP_KEYS = {"type", "accepted", "unlocked", "chargebox", "idTag", "connector", "transaction_id", "kwh", "time"}
STATUS_KEYS = {"type", "chargebox", "connector", "status", "error_code", "timestamp"}
CONNECTION_KEYS = {"type", "chargebox", "online", "timestamp"}

site = test_flows.site  # the fixture: a site with [upstream] URLs on the receiver


@pytest.fixture
async def sim(site, nursery):
    station = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2, version=V201)
    assert (await station.boot())["status"] == "Accepted"
    yield station
    await station.aclose()


def assert_status_shape(event: dict) -> None:
    assert set(event) == STATUS_KEYS, event
    assert isinstance(event["connector"], int) and isinstance(event["status"], str)
    assert isinstance(event["error_code"], str) and isinstance(event["timestamp"], str), event


async def test_local_charge_start_stop_status_and_connection(site, api, sim, receiver):
    assert (await api.put("/api/v1/id-tags/TAG1", json={"status": "Accepted"})).status_code == 200
    await sim.status(1, "Occupied")
    await sim.status(1, "Occupied")  # a repeat is not a change: no second event
    started = await sim.start(connector=1, idTag="TAG1", meterStart=1000, timestamp=T0)
    tx = (await site.transactions.resolve(CHARGER, started["transactionId"]))[0]
    await sim.meter(1, energyWh=4000, powerW=7200)  # Updated: nothing for the upstream
    await sim.stop(connector=1, meterStop=8500, timestamp=T1, reason="Local")
    await sim.status(1, "Available")  # unplugged
    await sim.status(2, "Faulted")
    await sim.aclose()  # the station goes away: offline
    events = await wait_delivered(receiver, lambda e: any(x.get("online") is False for x in e))
    assert [e["type"] for e in events] == ["connection", "status", "start", "stop_transaction", "status",
                                           "status", "connection"]
    assert events[0]["online"] is True and events[-1]["online"] is False
    for connection in (events[0], events[-1]):
        assert set(connection) == CONNECTION_KEYS and connection["chargebox"] == CHARGER
    statuses = [e for e in events if e["type"] == "status"]
    for status in statuses:
        assert_status_shape(status)
    # the station's own words for its connectors; an error code as for 1.6 (2.0.1 reports none)
    assert [(e["chargebox"], e["connector"], e["status"], e["error_code"]) for e in statuses] == [
        (CHARGER, 1, "Occupied", "NoError"), (CHARGER, 1, "Available", "NoError"),
        (CHARGER, 2, "Faulted", "OtherError")]
    start = events[2]
    assert_valid_start(start)
    assert start == {"type": "start", "accepted": True, "chargebox": CHARGER, "id": "TAG1", "connector": 1,
                     "transaction_id": tx, "mode": "local"}
    assert events[3] == {"type": "stop_transaction", "accepted": True, "unlocked": False, "chargebox": CHARGER,
                         "idTag": "TAG1", "connector": 1, "transaction_id": tx, "kwh": 7.5, "time": 2730}
    by_path = {r.json["type"]: r.path for r in receiver.requests}
    assert by_path == {"connection": "/connection", "status": "/status", "start": "/start",
                       "stop_transaction": "/stop"}
    assert all(r.headers["x-api-key"] == "up-key" for r in receiver.requests)
    assert len({r.event_id for r in receiver.requests}) == len(receiver.requests)


async def test_a_refused_id_token_is_a_rejected_start(site, sim, receiver):
    started = await sim.start(connector=1, idTag="NOBODY", meterStart=0)
    assert started["idTokenInfo"]["status"] != "Accepted"
    events = await wait_delivered(receiver, lambda e: any(x["type"] == "start" for x in e))
    (start,) = [e for e in events if e["type"] == "start"]
    assert_valid_start(start)
    assert (start["accepted"], start["transaction_id"], start["mode"], start["id"]) == (False, 0, "local", "NOBODY")


async def test_api_start_and_stop_rejected_start_rejected_stop_unlock_and_payment(site, api, sim, receiver):
    receiver.default = lambda r: Reply(200, body=b'{"amount": "2.50"}') if r.json["type"] == "start" else Reply(200)
    await sim.status(1, "Occupied")
    await sim.meter(1, energyWh=2000)
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "APP1"})
    assert response.status_code == 202, response.text
    tx = response.json()["transactionId"]
    assert await booked_id(site, CHARGER, await next_start(sim, connector=1)) == tx
    await wait_delivered(receiver, lambda e: any(x["type"] == "start" for x in e))

    async def paid():
        body = (await api.get(f"/api/v1/transactions/{tx}")).json()
        return body if body["paymentAmount"] else None

    assert (await eventually(paid, what="paymentAmount"))["paymentAmount"] == "2.50"

    await sim.meter(1, energyWh=3500)
    await sim.respond("RequestStopTransaction", payload={"status": "Rejected"})
    assert (await api.post(f"/api/v1/transactions/{tx}/stop")).status_code == 409

    await sim.status(2, "Occupied")
    await sim.respond("RequestStartTransaction", payload={"status": "Rejected"})
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 2, "idTag": "APP2"})
    assert response.status_code == 409

    response = await api.post(f"/api/v1/chargers/{CHARGER}/operations/UnlockConnector",
                              json={"evseId": 2, "connectorId": 1})
    assert response.json() == {"status": "Unlocked"}

    await sim.respond("RequestStopTransaction")  # answered as the station would again
    assert (await api.post(f"/api/v1/transactions/{tx}/stop")).status_code == 202
    await next_stop(sim)

    events = await wait_delivered(receiver, lambda e: sum(x["type"] in ("start", "stop_transaction") for x in e) == 5)
    starts = [e for e in events if e["type"] == "start"]
    stops = [e for e in events if e["type"] == "stop_transaction"]
    for start in starts:
        assert_valid_start(start)
        assert set(start) == START_KEYS
    assert starts[0] == {"type": "start", "accepted": True, "chargebox": CHARGER, "id": "APP1", "connector": 1,
                         "transaction_id": tx, "mode": "api"}
    assert (starts[1]["accepted"], starts[1]["transaction_id"], starts[1]["mode"], starts[1]["connector"],
            starts[1]["id"]) == (False, 0, "api", 2, "APP2")
    refused, unlocked, stopped = stops
    assert set(refused) == STOP_KEYS | {"msg", "energy"}
    assert (refused["accepted"], refused["unlocked"], refused["transaction_id"], refused["msg"]) == \
        (False, False, 0, "stop")
    assert (refused["idTag"], refused["connector"], refused["kwh"], refused["energy"]) == ("APP1", 1, 1.5, 1.5)
    assert set(unlocked) == STOP_KEYS | {"msg", "energy"}
    assert (unlocked["accepted"], unlocked["unlocked"], unlocked["idTag"], unlocked["transaction_id"],
            unlocked["connector"], unlocked["chargebox"]) == (True, True, "", 0, 2, CHARGER)
    assert set(stopped) == STOP_KEYS
    assert (stopped["accepted"], stopped["unlocked"], stopped["transaction_id"], stopped["idTag"],
            stopped["connector"], stopped["kwh"]) == (True, False, tx, "APP1", 1, 1.5)


@pytest.mark.site(remote_start_timeout_s=0.4)
async def test_a_remote_start_that_never_begins_is_a_rejected_start(site, api, sim, receiver):
    await sim.cmd("auto", enabled=False)  # accepts RequestStartTransaction, never starts
    await sim.status(1, "Occupied")
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "LATE"})
    assert response.status_code == 202
    events = await wait_delivered(receiver, lambda e: any(x["type"] == "start" for x in e))
    (start,) = [e for e in events if e["type"] == "start"]
    assert_valid_start(start)
    assert (start["accepted"], start["transaction_id"], start["mode"], start["id"]) == (False, 0, "api", "LATE")
    assert (await api.get(f"/api/v1/transactions/{response.json()['transactionId']}")).json()["status"] == "failed"
