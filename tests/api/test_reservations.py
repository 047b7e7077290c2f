"""Reservations over real sockets: the API, the independent simulated 1.6 charger, the books."""

from __future__ import annotations

from datetime import timedelta

import pytest
from trio.testing import MockClock

from controller.simulators.charger_process import SimulatedCharger
from controller.timefmt import iso, utcnow
from drivers import Tap
from tests.support import CHARGER, CHARGER_2, api_client, eventually, make_config, ocpp_url, running_site


def in_an_hour() -> str:
    return iso(utcnow() + timedelta(hours=1))


@pytest.fixture
async def sim(site, nursery):
    """CHARGER-001 (2 connectors), booted, both connectors Available."""
    charger = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
    assert (await charger.boot())["status"] == "Accepted"
    for connector in (0, 1, 2):
        await charger.status(connector, "Available")
    yield charger
    await charger.aclose()


async def reserve(api, connector: int = 1, id_tag: str = "RES1", **extra) -> dict:
    response = await api.post(f"/api/v1/chargers/{CHARGER}/reservations",
                              json={"connectorId": connector, "idTag": id_tag, "expiresAt": in_an_hour(), **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def connector(api, n: int) -> dict:
    return (await api.get(f"/api/v1/chargers/{CHARGER}")).json()["connectors"][n]


async def reservations(api, **params) -> list[dict]:
    response = await api.get("/api/v1/reservations", params=params)
    assert response.status_code == 200, response.text
    return response.json()["reservations"]


async def test_a_reservation_holds_the_connector_until_its_tag_starts(site, api, sim):
    body = await reserve(api)
    rid = body["reservationId"]
    assert body["status"] == "accepted" and body["transactionId"] is None
    call = await sim.next_event("call", action="ReserveNow")
    assert call["payload"] == {"connectorId": 1, "expiryDate": body["expiresAt"], "idTag": "RES1", "reservationId": rid}
    # the charger reports the connector Reserved; the API shows the reservation on it
    await eventually(lambda: _status_is(api, 1, "Reserved"), what="connector 1 Reserved")
    assert (await connector(api, 1))["reservationId"] == rid
    # another tag is refused, by the API and by a card tap, with a clear outcome
    other = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "OTHER"})
    assert other.status_code == 409 and other.json()["error"] == "ConnectorReserved", other.text
    assert f"reservation {rid}" in other.json()["message"]
    await api.put("/api/v1/id-tags/OTHER", json={"status": "Accepted"})
    tap = await site.tap_to_charge.handle(Tap(reader_id="r1", id_tag="OTHER", uid="0A0B0C0D", charger=CHARGER, connector=1,
                                              at=utcnow()))
    assert tap["result"] == "Reserved", tap
    assert "reserved for another id tag" in tap["message"]
    # a second reservation of the same connector is refused before it reaches the charger
    again = await api.post(f"/api/v1/chargers/{CHARGER}/reservations",
                           json={"connectorId": 1, "idTag": "RES2", "expiresAt": in_an_hour()})
    assert again.status_code == 409 and again.json()["error"] == "ConnectorReserved"
    # the reserved tag (not on the local list) starts on the Reserved connector: the start uses the reservation
    start = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "RES1"})
    assert start.status_code == 202, start.text
    tx = start.json()["transactionId"]
    sent = await sim.next_event("sent", action="StartTransaction")
    assert sent["request"]["reservationId"] == rid
    assert sent["response"] == {"transactionId": tx, "idTagInfo": {"status": "Accepted"}}
    [used] = await reservations(api, chargeBoxId=CHARGER)
    assert (used["status"], used["transactionId"]) == ("used", tx)
    assert (await api.get(f"/api/v1/transactions/{tx}")).json()["reservationId"] == rid
    assert (await connector(api, 1))["reservationId"] is None


async def _status_is(api, n: int, status: str) -> bool:
    return (await connector(api, n))["status"] == status


async def test_a_card_of_the_reserved_parent_uses_it_at_the_charger(site, api, sim):
    for tag in ("CHILD1", "CHILD2"):
        await api.put(f"/api/v1/id-tags/{tag}", json={"status": "Accepted", "parentIdTag": "FLEET"})
    body = await reserve(api, connector=2, id_tag="CHILD1")
    assert body["parentIdTag"] == "FLEET"  # the tag's parent on the local list
    assert (await sim.authorize("CHILD2"))["idTagInfo"]["status"] == "Accepted"
    started = await sim.start(connector=2, idTag="CHILD2")  # names no reservation
    [used] = await reservations(api, status="used")
    assert (used["reservationId"], used["transactionId"]) == (body["reservationId"], started["transactionId"])


async def test_a_tap_of_the_reserved_card_starts_on_its_connector(site, api, sim):
    rid = (await reserve(api, connector=2, id_tag="GUEST"))["reservationId"]  # not on the local list
    await eventually(lambda: _status_is(api, 2, "Reserved"), what="connector 2 Reserved")
    tap = await site.tap_to_charge.handle(Tap(reader_id="r2", id_tag="GUEST", uid="0A0B0C0E", charger=CHARGER,
                                              connector=2, at=utcnow()))
    assert tap["result"] == "Started", tap
    sent = await sim.next_event("sent", action="StartTransaction")
    assert sent["request"]["reservationId"] == rid and sent["response"]["transactionId"] == tap["transactionId"]
    [used] = await reservations(api)
    assert (used["status"], used["transactionId"]) == ("used", tap["transactionId"])


async def test_an_unknown_tag_holding_a_reservation_is_authorized_on_that_charger_only(site, api, sim):
    await reserve(api, id_tag="GUEST")
    assert (await sim.authorize("GUEST"))["idTagInfo"]["status"] == "Accepted"
    assert (await sim.authorize("STRANGER"))["idTagInfo"]["status"] == "Invalid"


async def test_a_refused_reservation_is_kept_with_the_answer(site, api, sim):
    await sim.respond("ReserveNow", payload={"status": "Occupied"})
    response = await api.post(f"/api/v1/chargers/{CHARGER}/reservations",
                              json={"connectorId": 2, "idTag": "RES1", "expiresAt": in_an_hour()})
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "ReservationRefused" and "Occupied" in response.json()["message"]
    [refused] = await reservations(api)
    assert refused["status"] == "occupied"
    assert (await connector(api, 2))["reservationId"] is None
    # not in force: another tag may start there
    await sim.status(2, "Preparing")
    start = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 2, "idTag": "OTHER"})
    assert start.status_code == 202, start.text


async def test_cancel_frees_the_connector(site, api, sim):
    rid = (await reserve(api))["reservationId"]
    await eventually(lambda: _status_is(api, 1, "Reserved"), what="connector 1 Reserved")
    response = await api.delete(f"/api/v1/chargers/{CHARGER}/reservations/{rid}")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    call = await sim.next_event("call", action="CancelReservation")
    assert call["payload"] == {"reservationId": rid}
    await eventually(lambda: _status_is(api, 1, "Available"), what="connector 1 Available")
    again = await api.delete(f"/api/v1/chargers/{CHARGER}/reservations/{rid}")
    assert again.status_code == 409 and again.json()["error"] == "ReservationNotActive"
    elsewhere = await api.delete(f"/api/v1/chargers/{CHARGER_2}/reservations/{rid}")
    assert elsewhere.status_code == 404
    await sim.status(1, "Preparing")
    start = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "OTHER"})
    assert start.status_code == 202, start.text


async def test_bad_requests_name_the_field(site, api, sim):
    url = f"/api/v1/chargers/{CHARGER}/reservations"
    good = {"connectorId": 1, "idTag": "RES1", "expiresAt": in_an_hour()}
    past = iso(utcnow() - timedelta(minutes=1))
    for body, field, status in (
        ({**good, "connectorId": 3}, "connectorId", 422),  # CHARGER-001 has two
        ({**good, "connectorId": 0}, "connectorId", 422),
        ({**good, "expiresAt": past}, "expiresAt", 422),
        ({**good, "expiresAt": "tomorrow"}, "expiresAt", 422),
        ({k: v for k, v in good.items() if k != "idTag"}, "idTag", 422),
        ({k: v for k, v in good.items() if k != "expiresAt"}, "expiresAt", 422),
        ({**good, "idTag": "X" * 21}, "idTag", 422),
        ({**good, "colour": "red"}, "colour", 422),
    ):
        response = await api.post(url, json=body)
        assert response.status_code == status, (body, response.text)
        assert field in response.json()["message"], (body, response.text)
    assert (await api.post("/api/v1/chargers/NOPE/reservations", json=good)).status_code == 404
    offline = await api.post(f"/api/v1/chargers/{CHARGER_2}/reservations", json={**good, "connectorId": 1})
    assert offline.status_code == 409 and offline.json()["error"] == "ChargerOffline"
    for params in ({"status": "weird"}, {"limit": 0}):
        response = await api.get("/api/v1/reservations", params=params)
        assert response.status_code == 422 and next(iter(params)) in response.json()["message"]
    assert await reservations(api) == []  # nothing refused before sending is stored


@pytest.fixture
def clock() -> MockClock:
    """Time flows normally; the test jumps it past an expiry."""
    return MockClock(rate=1.0)


async def test_a_reservation_survives_a_restart_and_expires_on_time(tmp_path, nursery, clock):
    config = make_config(tmp_path)
    async with running_site(config) as site, api_client(site) as api:
        sim = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
        await sim.boot()
        rid = (await reserve(api))["reservationId"]
        await sim.aclose()
    async with running_site(config) as site:
        async with api_client(site) as api:
            [held] = await reservations(api)
            assert (held["reservationId"], held["status"]) == (rid, "accepted")
            assert (await connector(api, 1))["reservationId"] == rid
            sim = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
            await sim.boot()
            await sim.status(1, "Preparing")
            start = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "X"})
            assert start.status_code == 409 and start.json()["error"] == "ConnectorReserved"
        clock.jump(3600 + 1)  # Trio's clock, not the wall clock: the expiry is timed on it
        await eventually(lambda: not site.reservations.held, what="the reservation expired")
        async with api_client(site) as api:  # a fresh connection: hypercorn's timers fired on the jump
            [expired] = await reservations(api, status="expired")
            assert expired["reservationId"] == rid
            assert (await connector(api, 1))["reservationId"] is None
        await sim.aclose()


async def test_a_2_0_1_station_is_sent_reserve_now_and_cancel_reservation(site, api, nursery):
    station = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2, version="2.0.1")
    await station.boot()
    await station.status(2, "Available")
    body = await reserve(api, connector=2, id_tag="RES201", parentIdTag="FLEET")
    call = await station.next_event("call", action="ReserveNow")
    assert call["payload"] == {"id": body["reservationId"], "expiryDateTime": body["expiresAt"],
                               "idToken": {"idToken": "RES201", "type": "ISO14443"}, "evseId": 2,
                               "groupIdToken": {"idToken": "FLEET", "type": "Central"}}  # as Authorize names it
    started = await station.start(connector=2, idTag="RES201", reservationId=body["reservationId"])
    [used] = await reservations(api)
    assert used["status"] == "used" and used["transactionId"] is not None
    assert started["idTagInfo"]["status"] == "Accepted"  # reserved for it, though it is not on the list
    second = await reserve(api, connector=1, id_tag="RES201")
    response = await api.delete(f"/api/v1/chargers/{CHARGER}/reservations/{second['reservationId']}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert (await station.next_event("call", action="CancelReservation"))["payload"] == {
        "reservationId": second["reservationId"]}
    await station.aclose()
