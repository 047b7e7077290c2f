"""REST error paths, id tags and chargers, against raw OCPP clients (fast, frame-exact)."""

from __future__ import annotations

import pytest
import trio

from tests.support import CHARGER, CHARGER_2, api_client, raw_charger


async def _remote_start(api, body, charger=CHARGER):
    return await api.post(f"/api/v1/chargers/{charger}/remote-start", json=body)


def _error(response, status, code=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "message"} and isinstance(body["message"], str)
    if code:
        assert body["error"] == code, body
    return body


# -- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "wrong", "test-key2", "TEST-KEY"])
async def test_missing_or_wrong_key_is_401(site, key):
    async with api_client(site, key=key) as client:
        for method, path in (("GET", "/api/v1/chargers"), ("GET", "/api/v1/transactions"),
                             ("POST", f"/api/v1/chargers/{CHARGER}/remote-start"), ("GET", "/api/v1/id-tags"),
                             ("DELETE", "/api/v1/id-tags/X"), ("GET", "/api/v1/nothing-here")):
            _error(await client.request(method, path, json={}), 401, "Unauthorized")
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] in ("ok", "degraded")
        assert health.json()["chargersOnline"] == 0
        assert (await client.get("/api/v1/openapi.json")).json()["openapi"] == "3.1.0"


async def test_healthz_counts_online_chargers(site, api):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        assert (await api.get("/healthz")).json()["chargersOnline"] == 1


# -- generic HTTP errors -------------------------------------------------------------------------


async def test_405_names_the_allowed_methods(site, api):
    response = await api.delete("/api/v1/chargers")
    _error(response, 405, "MethodNotAllowed")
    assert "GET" in response.headers["Allow"]
    response = await api.get(f"/api/v1/chargers/{CHARGER}/remote-start")
    _error(response, 405)
    assert "POST" in response.headers["Allow"]
    response = await api.post("/api/v1/id-tags/X", json={})
    _error(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "PUT", "PATCH", "DELETE"}


async def test_unknown_path_is_json_404(site, api):
    _error(await api.get("/api/v1/nothing-here"), 404, "NotFound")


# -- remote start --------------------------------------------------------------------------------


async def test_remote_start_errors(site, api):
    _error(await _remote_start(api, {"connectorId": 1, "idTag": "U"}, "NOBODY"), 404, "ChargerNotFound")
    _error(await _remote_start(api, {"connectorId": 1, "idTag": "U"}), 409, "ChargerOffline")
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        body = _error(await _remote_start(api, {"connectorId": 1, "idTag": "U"}), 409, "ConnectorNotPreparing")
        assert "Preparing" in body["message"]
        await cp.status(1, "Available")
        _error(await _remote_start(api, {"connectorId": 1, "idTag": "U"}), 409, "ConnectorNotPreparing")
        _error(await _remote_start(api, {"connectorId": 3, "idTag": "U"}), 422)

        await cp.status(1, "Preparing")
        async with trio.open_nursery() as nursery:
            results = []

            async def start():
                results.append(await _remote_start(api, {"connectorId": 1, "idTag": "U"}))

            nursery.start_soon(start)
            call = await cp.answer_next_call({"status": "Rejected"})
        assert call[2:] == ["RemoteStartTransaction", {"connectorId": 1, "idTag": "U"}]
        _error(results[0], 409, "ChargerRejected")
    listing = (await api.get("/api/v1/transactions", params={"status": "failed"})).json()
    assert listing["pagination"]["total"] == 1


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"idTag": "U"}, "connectorId", 422),
        ({"connectorId": 1}, "idTag", 422),
        ({"connectorId": "1", "idTag": "U"}, "connectorId", 422),
        ({"connectorId": 1.5, "idTag": "U"}, "connectorId", 422),
        ({"connectorId": 0, "idTag": "U"}, "connectorId", 422),
        ({"connectorId": 1, "idTag": ""}, "idTag", 422),
        ({"connectorId": 1, "idTag": "X" * 21}, "idTag", 422),
        ({"connectorId": 1, "idTag": 7}, "idTag", 422),
        ({"connectorId": 1, "idTag": "U", "colour": "red"}, "colour", 422),
    ],
)
async def test_remote_start_body_errors_name_the_field(site, api, body, field, status):
    message = _error(await _remote_start(api, body), status)["message"]
    assert field in message


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b'"text"'])
async def test_remote_start_malformed_body_is_400(site, api, content):
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", content=content,
                              headers={"Content-Type": "application/json"})
    _error(response, 400, "BadRequest")


# -- transactions --------------------------------------------------------------------------------


async def test_transaction_errors(site, api):
    _error(await api.get("/api/v1/transactions/999"), 404, "TransactionNotFound")
    _error(await api.post("/api/v1/transactions/999/stop"), 404, "TransactionNotFound")
    body = _error(await api.get("/api/v1/transactions/abc"), 422)
    assert "transactionId" in body["message"]
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        start = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                   "timestamp": "2026-02-06T12:00:00Z"})
        tx = start[2]["transactionId"]
        # the charger refuses the stop
        async with trio.open_nursery() as nursery:
            results = []

            async def stop():
                results.append(await api.post(f"/api/v1/transactions/{tx}/stop"))

            nursery.start_soon(stop)
            call = await cp.answer_next_call({"status": "Rejected"})
        assert call[2:] == ["RemoteStopTransaction", {"transactionId": tx}]
        _error(results[0], 409, "ChargerRejected")
        assert (await api.get(f"/api/v1/transactions/{tx}")).json()["status"] == "active"
    # the charger went away: offline
    _error(await api.post(f"/api/v1/transactions/{tx}/stop"), 409, "ChargerOffline")
    async with raw_charger(site, CHARGER) as cp:
        await cp.call("StopTransaction", {"transactionId": tx, "meterStop": 10, "timestamp": "2026-02-06T12:01:00Z"})
    _error(await api.post(f"/api/v1/transactions/{tx}/stop"), 409, "NotInTransaction")


# -- operations ----------------------------------------------------------------------------------


async def test_operation_call_error_is_502_with_call_error(site, api):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        async with trio.open_nursery() as nursery:
            results = []

            async def reset():
                results.append(await api.post(f"/api/v1/chargers/{CHARGER}/operations/Reset", json={"type": "Hard"}))

            nursery.start_soon(reset)
            call = await cp.receive()
            assert call[2:] == ["Reset", {"type": "Hard"}]
            await cp.send([4, call[1], "NotSupported", "no resets today", {"why": "policy"}])
        body = _error(results[0], 502, "CallError")
        assert body["callError"] == {"code": "NotSupported", "description": "no resets today", "details": {"why": "policy"}}


async def test_operation_errors(site, api):
    _error(await api.post("/api/v1/chargers/NOBODY/operations/Reset", json={"type": "Soft"}), 404, "ChargerNotFound")
    _error(await api.post(f"/api/v1/chargers/{CHARGER}/operations/Reset", json={"type": "Soft"}), 409, "ChargerOffline")
    _error(await api.post(f"/api/v1/chargers/{CHARGER}/operations/Reset", content=b"nope",
                          headers={"Content-Type": "application/json"}), 400)
    body = _error(await api.post(f"/api/v1/chargers/{CHARGER}/operations/Reset", json={}), 422)
    assert "type" in body["message"]


# -- chargers ------------------------------------------------------------------------------------


async def test_chargers_list_and_detail(site, api):
    listing = (await api.get("/api/v1/chargers")).json()["chargers"]
    assert [c["chargeBoxId"] for c in listing] == [CHARGER, CHARGER_2]
    assert all(c["registration"] == "accepted" and c["online"] is False for c in listing)
    detail = (await api.get(f"/api/v1/chargers/{CHARGER}")).json()
    assert [c["connectorId"] for c in detail["connectors"]] == [0, 1, 2]
    _error(await api.get("/api/v1/chargers/NOBODY"), 404, "ChargerNotFound")
    _error(await api.post("/api/v1/chargers/NOBODY/approve"), 404)


# -- id tags -------------------------------------------------------------------------------------


async def test_id_tag_crud(site, api):
    assert (await api.get("/api/v1/id-tags")).json() == {"idTags": []}
    created = await api.post("/api/v1/id-tags", json={"idTag": "CARD1", "expiryDate": "2030-01-01T00:00:00+01:00",
                                                      "parentIdTag": "FLEET"})
    assert created.status_code == 201
    assert created.json() == {"idTag": "CARD1", "status": "Accepted", "expiryDate": "2029-12-31T23:00:00.000Z",
                              "parentIdTag": "FLEET", "tokenType": "ISO14443"}
    _error(await api.post("/api/v1/id-tags", json={"idTag": "card1"}), 409, "IdTagExists")
    assert (await api.get("/api/v1/id-tags/card1")).json()["idTag"] == "CARD1"
    put = await api.put("/api/v1/id-tags/CARD1", json={"status": "Blocked", "tokenType": "ISO15693"})
    assert put.status_code == 200 and put.json() == {"idTag": "CARD1", "status": "Blocked", "expiryDate": None,
                                                     "parentIdTag": None, "tokenType": "ISO15693"}
    assert (await api.put("/api/v1/id-tags/CARD2", json={})).json()["status"] == "Accepted"
    assert [t["idTag"] for t in (await api.get("/api/v1/id-tags")).json()["idTags"]] == ["CARD1", "CARD2"]
    deleted = await api.delete("/api/v1/id-tags/CARD1")
    assert deleted.status_code == 204 and deleted.content == b""
    _error(await api.get("/api/v1/id-tags/CARD1"), 404, "IdTagNotFound")
    _error(await api.delete("/api/v1/id-tags/CARD1"), 404)


async def test_id_tag_patch_changes_only_the_fields_sent(site, api):
    """Blocking a card with PATCH keeps its expiry and parent (PUT would reset them)."""
    await api.post("/api/v1/id-tags", json={"idTag": "CARD1", "expiryDate": "2030-01-01T00:00:00Z",
                                            "parentIdTag": "FLEET"})
    blocked = await api.patch("/api/v1/id-tags/card1", json={"status": "Blocked"})
    assert blocked.status_code == 200
    assert blocked.json() == {"idTag": "CARD1", "status": "Blocked", "expiryDate": "2030-01-01T00:00:00.000Z",
                              "parentIdTag": "FLEET", "tokenType": "ISO14443"}
    async with raw_charger(site, CHARGER) as cp:  # what chargers are told follows at once
        await cp.boot()
        info = (await cp.call("Authorize", {"idTag": "CARD1"}))[2]["idTagInfo"]
        assert info == {"status": "Blocked", "expiryDate": "2030-01-01T00:00:00.000Z", "parentIdTag": "FLEET"}
    moved = await api.patch("/api/v1/id-tags/CARD1", json={"parentIdTag": "FLEET-2", "expiryDate": None,
                                                           "tokenType": "eMAID"})
    assert moved.json() == {"idTag": "CARD1", "status": "Blocked", "expiryDate": None, "parentIdTag": "FLEET-2",
                            "tokenType": "eMAID"}
    assert (await api.patch("/api/v1/id-tags/CARD1", json={})).json() == moved.json()  # nothing sent, nothing changed
    assert (await api.get("/api/v1/id-tags/CARD1")).json() == moved.json()
    _error(await api.patch("/api/v1/id-tags/NOBODY", json={"status": "Blocked"}), 404, "IdTagNotFound")


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PATCH", "/api/v1/id-tags/A", {"status": None}, "status"),
        ("PATCH", "/api/v1/id-tags/A", {"status": "Maybe"}, "status"),
        ("PATCH", "/api/v1/id-tags/A", {"expiryDate": "tomorrow"}, "expiryDate"),
        ("PATCH", "/api/v1/id-tags/A", {"idTag": "B"}, "idTag"),
        ("PATCH", "/api/v1/id-tags/A", {"tokenType": None}, "tokenType"),
        ("PUT", "/api/v1/id-tags/A", {"tokenType": "Barcode"}, "tokenType"),
        ("POST", "/api/v1/id-tags", {}, "idTag"),
        ("POST", "/api/v1/id-tags", {"idTag": "X" * 21}, "idTag"),
        ("POST", "/api/v1/id-tags", {"idTag": "A", "status": "Maybe"}, "status"),
        ("POST", "/api/v1/id-tags", {"idTag": "A", "expiryDate": "tomorrow"}, "expiryDate"),
        ("POST", "/api/v1/id-tags", {"idTag": "A", "nick": "x"}, "nick"),
        ("PUT", "/api/v1/id-tags/A", {"parentIdTag": ""}, "parentIdTag"),
        ("PUT", "/api/v1/id-tags/" + "X" * 21, {}, "idTag"),
    ],
)
async def test_id_tag_body_errors_name_the_field(site, api, method, path, body, field):
    assert field in _error(await api.request(method, path, json=body), 422)["message"]
    _error(await api.request(method, path, content=b"[]", headers={"Content-Type": "application/json"}), 400)


@pytest.mark.parametrize("answer", [None, [], "Accepted", {"status": "Unlocked", "extra": 1}])
async def test_operation_answer_is_returned_as_given(site, api, answer):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        async with trio.open_nursery() as nursery:
            results = []

            async def unlock():
                results.append(await api.post(f"/api/v1/chargers/{CHARGER}/operations/UnlockConnector",
                                              json={"connectorId": 1}))

            nursery.start_soon(unlock)
            await cp.answer_next_call(lambda frame: answer)
        assert results[0].status_code == 200, results[0].text
        assert results[0].json() == answer


@pytest.mark.parametrize("answer", [None, [], {"status": "Maybe"}])
async def test_remote_start_with_a_nonsense_answer_is_a_rejection(site, api, answer):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        await cp.status(1, "Preparing")
        async with trio.open_nursery() as nursery:
            results = []

            async def start():
                results.append(await _remote_start(api, {"connectorId": 1, "idTag": "U"}))

            nursery.start_soon(start)
            await cp.answer_next_call(lambda frame: answer)
        _error(results[0], 409, "ChargerRejected")
