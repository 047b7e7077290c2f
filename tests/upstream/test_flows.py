"""Whole flows: the independent simulated charger drives the site, the real receiver gets the events."""

from __future__ import annotations

import pytest
import trio

from controller.simulators.charger_process import SimulatedCharger
from tests.support import CHARGER, eventually, make_config, ocpp_url, running_site
from tests.upstream.receiver import HANG, Reply
from tests.upstream.test_payloads import assert_valid_start

T0 = "2026-02-06T12:00:00.000Z"
T1 = "2026-02-06T12:45:30.000Z"


def upstream_toml(receiver, **options) -> str:
    lines = ["[upstream]"]
    for key, path in (("start_url", "/start"), ("stop_url", "/stop"), ("status_url", "/status"),
                      ("connection_url", "/connection")):
        lines.append(f'{key} = "{receiver.url(path)}"')
    lines.append('headers = { "X-Api-Key" = "up-key" }')
    options = {"retry_initial_s": 0.05, "retry_max_s": 0.5, "timeout_s": 5, **options}
    lines += [f"{k} = {v}" for k, v in options.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
async def site(tmp_path, receiver, request):
    marker = request.node.get_closest_marker("upstream")
    site_marker = request.node.get_closest_marker("site")
    config = make_config(tmp_path, **(site_marker.kwargs if site_marker else {}),
                         extra=upstream_toml(receiver, **(marker.kwargs if marker else {})))
    async with running_site(config) as running:
        yield running


@pytest.fixture
async def sim(site, nursery):
    charger = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
    assert (await charger.boot())["status"] == "Accepted"
    yield charger
    await charger.aclose()


def of_type(receiver, kind: str) -> list[dict]:
    return [r.json for r in receiver.delivered() if r.json["type"] == kind]


async def wait_delivered(receiver, predicate, timeout=15):
    await receiver.wait_for(lambda _: predicate([r.json for r in receiver.delivered()]), timeout)
    return [r.json for r in receiver.delivered()]


async def test_local_charge_start_stop_status_and_connection(site, api, sim, receiver):
    assert (await api.put("/api/v1/id-tags/TAG1", json={"status": "Accepted"})).status_code == 200
    await sim.status(1, "Preparing")
    await sim.status(1, "Preparing")  # a repeat is not a change: no second event
    started = await sim.start(connector=1, idTag="TAG1", meterStart=1000, timestamp=T0)
    tx = started["transactionId"]
    await sim.status(1, "Charging")
    await sim.stop(connector=1, meterStop=8500, timestamp=T1, reason="Local")
    await sim.aclose()  # the charger goes away: offline
    events = await wait_delivered(receiver, lambda e: any(x.get("online") is False for x in e))
    assert [e["type"] for e in events] == ["connection", "status", "start", "status", "stop_transaction",
                                           "connection"]
    assert events[0]["online"] is True and events[-1]["online"] is False
    assert [(e["connector"], e["status"]) for e in events if e["type"] == "status"] == [(1, "Preparing"), (1, "Charging")]
    start = events[2]
    assert_valid_start(start)
    assert start == {"type": "start", "accepted": True, "chargebox": CHARGER, "id": "TAG1", "connector": 1,
                     "transaction_id": tx, "mode": "local"}
    assert events[4] == {"type": "stop_transaction", "accepted": True, "unlocked": False, "chargebox": CHARGER,
                         "idTag": "TAG1", "connector": 1, "transaction_id": tx, "kwh": 7.5, "time": 2730}
    by_path = {r.json["type"]: r.path for r in receiver.requests}
    assert by_path == {"connection": "/connection", "status": "/status", "start": "/start",
                       "stop_transaction": "/stop"}
    assert all(r.headers["x-api-key"] == "up-key" for r in receiver.requests)
    assert len({r.event_id for r in receiver.requests}) == len(receiver.requests)


async def test_a_refused_id_tag_is_a_rejected_start(site, sim, receiver):
    started = await sim.start(connector=1, idTag="NOBODY", meterStart=0)
    assert started["idTagInfo"]["status"] != "Accepted"
    events = await wait_delivered(receiver, lambda e: any(x["type"] == "start" for x in e))
    (start,) = [e for e in events if e["type"] == "start"]
    assert_valid_start(start)
    assert (start["accepted"], start["transaction_id"], start["mode"], start["id"]) == (False, 0, "local", "NOBODY")


async def test_api_start_rejected_start_rejected_stop_unlock_and_payment(site, api, sim, receiver):
    receiver.default = lambda r: Reply(200, body=b'{"amount": "2.50"}') if r.json["type"] == "start" else Reply(200)
    await sim.status(1, "Preparing")
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "APP1"})
    assert response.status_code == 202, response.text
    tx = response.json()["transactionId"]
    await sim.next_event("sent", action="StartTransaction")
    await wait_delivered(receiver, lambda e: any(x["type"] == "start" for x in e))
    # the upstream's API-payment answer is on the transaction
    body = await eventually(lambda: _payment(api, tx), what="paymentAmount")
    assert body["paymentAmount"] == "2.50"

    await sim.respond("RemoteStopTransaction", payload={"status": "Rejected"})
    assert (await api.post(f"/api/v1/transactions/{tx}/stop")).status_code == 409

    await sim.status(2, "Preparing")
    await sim.respond("RemoteStartTransaction", payload={"status": "Rejected"})
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 2, "idTag": "APP2"})
    assert response.status_code == 409

    response = await api.post(f"/api/v1/chargers/{CHARGER}/operations/UnlockConnector", json={"connectorId": 2})
    assert response.json() == {"status": "Unlocked"}

    events = await wait_delivered(receiver, lambda e: sum(x["type"] in ("start", "stop_transaction") for x in e) == 4)
    starts = [e for e in events if e["type"] == "start"]
    stops = [e for e in events if e["type"] == "stop_transaction"]
    for start in starts:
        assert_valid_start(start)
    assert starts[0] == {"type": "start", "accepted": True, "chargebox": CHARGER, "id": "APP1", "connector": 1,
                         "transaction_id": tx, "mode": "api"}
    assert (starts[1]["accepted"], starts[1]["transaction_id"], starts[1]["mode"], starts[1]["connector"]) == \
        (False, 0, "api", 2)
    refused, unlocked = stops
    assert (refused["accepted"], refused["unlocked"], refused["transaction_id"], refused["msg"]) == \
        (False, False, 0, "stop")
    assert refused["idTag"] == "APP1" and refused["connector"] == 1
    assert (unlocked["accepted"], unlocked["unlocked"], unlocked["idTag"], unlocked["transaction_id"],
            unlocked["connector"]) == (True, True, "", 0, 2)


@pytest.mark.site(remote_start_timeout_s=0.4)
async def test_a_remote_start_that_never_begins_is_a_rejected_start(site, api, sim, receiver):
    await sim.cmd("auto", enabled=False)  # accepts RemoteStartTransaction, never sends StartTransaction
    await sim.status(1, "Preparing")
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "LATE"})
    assert response.status_code == 202
    events = await wait_delivered(receiver, lambda e: any(x["type"] == "start" for x in e))
    (start,) = [e for e in events if e["type"] == "start"]
    assert_valid_start(start)
    assert (start["accepted"], start["transaction_id"], start["mode"], start["id"]) == (False, 0, "api", "LATE")
    assert (await api.get(f"/api/v1/transactions/{response.json()['transactionId']}")).json()["status"] == "failed"


async def _payment(api, tx):
    body = (await api.get(f"/api/v1/transactions/{tx}")).json()
    return body if body["paymentAmount"] else None


@pytest.mark.upstream(client_error_attempts=1)
async def test_notifications_api_lists_pages_and_replays(site, api, sim, receiver):
    async def online_delivered():
        return (await api.get("/api/v1/notifications", params={"status": "delivered"})).json()["notifications"]
    await eventually(online_delivered, what="the online event delivered")
    receiver.down()
    for status in ("Preparing", "Charging", "Finishing"):
        await sim.status(1, status)
    listing = (await api.get("/api/v1/notifications", params={"status": "pending"})).json()
    assert listing["pagination"]["total"] == 3
    assert [n["payload"]["status"] for n in listing["notifications"]] == ["Preparing", "Charging", "Finishing"]
    assert listing["queue"]["pending"] == 3 and listing["queue"]["oldestPendingAgeSeconds"] >= 0
    page = (await api.get("/api/v1/notifications", params={"status": "pending", "limit": 1, "offset": 1})).json()
    assert [n["payload"]["status"] for n in page["notifications"]] == ["Charging"]
    first = listing["notifications"][0]
    assert first["status"] == "pending" and first["eventId"] and first["chargeBoxId"] == CHARGER

    # the upstream is back but refuses one event: it is parked, the rest goes through
    receiver.default = lambda r: Reply(400) if r.json.get("status") == "Charging" else Reply(200)
    await receiver.up()

    async def settled():
        queue = (await api.get("/api/v1/notifications/queue")).json()
        return queue if queue["pending"] == 0 else None
    queue = await eventually(settled, timeout=15, what="empty queue")
    assert (queue["delivered"], queue["failed"], queue["oldestPendingAgeSeconds"]) == (3, 1, None)  # + online
    (failed,) = (await api.get("/api/v1/notifications", params={"status": "failed"})).json()["notifications"]
    assert failed["payload"]["status"] == "Charging" and failed["lastStatus"] == 400

    receiver.default = Reply(200)
    response = await api.post(f"/api/v1/notifications/{failed['id']}/retry")
    assert response.status_code == 200 and response.json()["status"] == "pending"

    async def redelivered():
        row = (await api.get(f"/api/v1/notifications/{failed['id']}")).json()
        return row if row["status"] == "delivered" else None
    await eventually(redelivered, timeout=15, what="replayed notification delivered")
    assert receiver.requests[-1].event_id == failed["eventId"]

    assert (await api.get("/api/v1/notifications/999999")).status_code == 404
    assert (await api.post("/api/v1/notifications/999999/retry")).status_code == 404
    assert (await api.get("/api/v1/notifications", params={"status": "lost"})).status_code == 422
    assert (await api.get("/api/v1/notifications/x")).status_code == 422


async def test_a_dead_upstream_never_blocks_charging(site, api, sim, receiver):
    receiver.default = HANG
    assert (await api.put("/api/v1/id-tags/TAG2", json={"status": "Accepted"})).status_code == 200
    with trio.fail_after(10):
        for n in range(3):
            await sim.status(1, "Preparing")
            started = await sim.start(connector=1, idTag="TAG2", meterStart=n * 1000)
            await sim.stop(connector=1, meterStop=n * 1000 + 500)
            assert started["idTagInfo"]["status"] == "Accepted"
            await sim.status(1, "Available")
    queue = (await api.get("/api/v1/notifications/queue")).json()
    assert queue["pending"] >= 10
