"""The driver API's status codes, rate limits and token handling; the keyed operator API."""

from __future__ import annotations

import hashlib

import pytest
from trio.testing import MockClock

from controller.store import public_sessions as q
from tests.public_charging.helpers import (
    CODE, charger, make_config, problem, public_site, transaction_started, wait_connector,
)

SESSIONS = "/api/v1/public-charging/sessions"


@pytest.fixture
def clock() -> MockClock:
    return MockClock(rate=1.0)


async def test_create_errors(tmp_path, clock):
    async with public_site(make_config(tmp_path)) as h:
        post = lambda body: h.public.post(SESSIONS, json=body)  # noqa: E731
        problem(await post({"code": "NOPE", "connector_id": 1}), 404, "ChargerNotFound")
        offline = await post({"code": CODE, "connector_id": 1})
        assert problem(offline, 400, "ChargerOffline")["message"] == "the charger is offline"
        await h.jump(clock, 61)
        async with charger(h.site) as sim:
            unknown = await post({"code": CODE, "connector_id": 3})
            assert problem(unknown, 422, "ConnectorNotValid")["message"] == "the charger has no connector 3"
            await sim.status(1, "Faulted")
            await wait_connector(h.site, 1, "Faulted")
            busy = await post({"code": CODE, "connector_id": 1})
            assert problem(busy, 409, "ConnectorUnavailable")["message"] == "connector 1 is Faulted"
            ok = await post({"code": CODE, "connector_id": 2})  # the third this minute
            assert ok.status_code == 201
            limited = await post({"code": CODE, "connector_id": 2})
            problem(limited, 429, "TooManyRequests")
            assert int(limited.headers["Retry-After"]) >= 1
            await h.jump(clock, 61)
            assert (await post({"code": CODE, "connector_id": 101})).status_code == 422
            assert (await post({"code": CODE, "connector_id": "1"})).status_code == 422
            assert (await post({"code": CODE, "connector_id": 2, "email": "not-an-email"})).status_code == 422
            await h.jump(clock, 61)
            bad = await h.public.post(SESSIONS, content=b"[1]", headers={"Content-Type": "application/json"})
            assert bad.status_code == 400
            taken = await post({"code": CODE, "connector_id": 2})
            assert problem(taken, 409, "ConnectorUnavailable")["message"] == "connector 2 is in use"  # one a connector


async def test_public_charging_off_is_404(tmp_path):
    async with public_site(make_config(tmp_path, enabled=False)) as h, charger(h.site):
        response = await h.public.post(SESSIONS, json={"code": CODE, "connector_id": 1})
        problem(response, 404, "ChargerNotFound")
        problem(await h.public.get(f"/api/v1/public-charging/chargers/{CODE}"), 404, "ChargerNotFound")


async def test_per_charger_cap(tmp_path, clock):
    async with public_site(make_config(tmp_path, per_hour=2)) as h, charger(h.site) as sim:
        for _ in range(2):
            token, _ = await h.create(1)
            assert (await h.public.post(f"{SESSIONS}/{token}/cancel")).status_code == 200
        await h.jump(clock, 61)
        capped = await h.public.post(SESSIONS, json={"code": CODE, "connector_id": 1})
        problem(capped, 429, "TooManySessions")
        assert capped.headers["Retry-After"] == "600"
        for _ in range(30):  # an hour on the monotonic clock (the wall clock has not moved)
            clock.jump(120)
            await sim.heartbeat()  # the charger stays online meanwhile
        await h.open_clients()
        token, _ = await h.create(1)
        assert (await h.public.post(f"{SESSIONS}/{token}/cancel")).status_code == 200


async def test_tokens_and_unknown_tokens(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site):
        token, body = await h.create(1)
        assert len(token) >= 40 and body["data"]["status"] == "authorized"
        row = await h.site.store.read(q.by_token_hash, hashlib.sha256(token.encode()).hexdigest())
        assert row is not None

        def dump(conn):
            return [tuple(r) for r in conn.execute("SELECT * FROM public_sessions")]

        assert token not in repr(await h.site.store.read(dump))  # only the hash is stored
        assert len(row["id_tag"]) <= 20
        responses = [
            await h.public.get(f"{SESSIONS}/pcs_unknown"),
            await h.public.get(f"{SESSIONS}/{token[:-1]}x"),
            await h.public.post(f"{SESSIONS}/{'x' * 300}/stop"),
            await h.public.post(f"{SESSIONS}/pcs_unknown/cancel"),
            await h.public.post(f"{SESSIONS}/pcs_unknown/confirm"),
        ]
        assert {r.status_code for r in responses} == {404}
        assert len({r.text for r in responses}) == 1  # the same answer whatever the token
        assert problem(responses[0], 404, "SessionNotFound")["message"] == "unknown or expired session token"
        ok = await h.public.get(f"{SESSIONS}/{token}")
        assert ok.status_code == 200 and ok.json()["data"]["charger"] == {
            "public_code": CODE, "name": "Bay 1", "online": True}
        stop = await h.public.post(f"{SESSIONS}/{token}/stop")
        assert problem(stop, 409, "NotCharging")["message"] == "the session is authorized, not charging"


async def test_rate_limits_per_endpoint(tmp_path, clock):
    async with public_site(make_config(tmp_path)) as h, charger(h.site):
        token, _ = await h.create(1)
        for _ in range(30):
            assert (await h.public.get(f"{SESSIONS}/{token}")).status_code == 200
        limited = await h.public.get(f"{SESSIONS}/{token}")
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
        for _ in range(10):
            assert (await h.public.post(f"{SESSIONS}/{token}/confirm")).status_code == 200
        assert (await h.public.post(f"{SESSIONS}/{token}/confirm")).status_code == 429
        assert (await h.public.post(f"{SESSIONS}/pcs_x/stop")).status_code == 404  # its own bucket
        await h.jump(clock, 60)
        assert (await h.public.get(f"{SESSIONS}/{token}")).status_code == 200


async def test_charger_info_and_page(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        await sim.status(1, "Preparing")
        await wait_connector(h.site, 1, "Preparing")
        info = (await h.public.get(f"/api/v1/public-charging/chargers/{CODE.lower()}")).json()["data"]
        assert info["pricing"] == {"currency": "EUR", "price_per_kwh": 39, "start_fee": 50}
        assert info["connectors"][0] == {"connector_id": 1, "status": "Preparing"}
        import httpx

        async with httpx.AsyncClient(base_url=str(h.public.base_url)) as plain:
            page = await plain.get(f"/charge/{CODE}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "/api/v1/public-charging" in page.text
        # the keyed API still needs the key
        assert (await h.public.get("/api/v1/public-sessions")).status_code == 401
        listing = (await h.admin.get("/api/v1/public-sessions", params={"status": "captured"})).json()
        assert listing["sessions"] == []


async def test_operator_api_errors(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site):
        missing = await h.admin.get("/api/v1/public-sessions/999")
        assert problem(missing, 404, "SessionNotFound")["message"] == "public session 999 not found"
        problem(await h.admin.post("/api/v1/public-sessions/999/resolve", json={"status": "refunded"}),
                404, "SessionNotFound")
        token, _ = await h.create(1)
        assert (await h.public.post(f"{SESSIONS}/{token}/cancel")).status_code == 200
        sid = (await h.session(token))["id"]
        wrong = await h.admin.post(f"/api/v1/public-sessions/{sid}/resolve", json={"status": "refunded"})
        assert problem(wrong, 409, "InvalidTransition")["message"] == (
            f"session {sid} is failed; refunded needs one of captured")
        unknown = await h.admin.post(f"/api/v1/public-sessions/{sid}/resolve", json={"status": "open"})
        assert problem(unknown, 422, "InvalidRequest")["message"] == (
            "body field 'status': one of ['refunded', 'settling', 'written_off']")


async def test_driver_stop_then_charger_stop_race(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        await sim.status(1, "Preparing")
        await wait_connector(h.site, 1, "Preparing")
        token, _ = await h.create(1)
        await transaction_started(sim)
        await h.wait_status(token, "charging")
        await sim.stop(1, meterStop=100)
        response = await h.public.post(f"{SESSIONS}/{token}/stop")  # after the car already stopped
        assert response.status_code == 200
        assert response.json()["data"]["status"] in ("settling", "captured")
