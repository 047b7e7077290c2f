"""Full public sessions with provider `none` against the independent simulated charger."""

from __future__ import annotations

import orjson
import pytest
import trio
from trio.testing import MockClock

from controller.store import public_sessions as q
from tests.public_charging.helpers import (
    CHARGER, Harness, charger, make_config, problem, public_site, transaction_started, wait_connector,
)
from controller.timefmt import now_iso
from tests.support import eventually, raw_charger


@pytest.fixture
def clock() -> MockClock:
    """Time flows normally; tests jump it past the timers."""
    return MockClock(rate=1.0)


async def test_captured_session_free(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        await sim.status(1, "Preparing")
        await wait_connector(h.site, 1, "Preparing")
        token, body = await h.create(1, email="driver@example.com")
        assert body["payment"] == {"provider": "none"}
        assert body["data"]["status"] == "authorized"
        assert body["data"]["driver_email"] == "driver@example.com"
        txn = await transaction_started(sim)
        data = await h.wait_status(token, "charging")
        assert data["transaction_id"] == txn
        assert data["energy_kwh"] == "0.000" and data["cost_amount"] == 50
        await sim.meter(1, energyWh=1500)
        await eventually(lambda: h.session(token), what="session")
        public = (await h.public.get(f"/api/v1/public-charging/sessions/{token}")).json()
        assert "payment" not in public
        await eventually(lambda: _energy_is(h, token, "1.500"), what="energy 1.500")
        response = await h.public.post(f"/api/v1/public-charging/sessions/{token}/stop")
        assert response.status_code == 200, response.text
        assert response.json()["data"]["status"] in ("stopping", "settling", "captured")
        data = await h.wait_status(token, "captured")
        # 1500 Wh x 39 = 58.5 -> 59 (half up) + 50 start fee
        assert data["energy_kwh"] == "1.500" and data["cost_amount"] == 109
        assert data["amount_captured"] == 0  # provider none never charges
        assert data["tax_amount"] == 0
        assert data["completed_at"] and data["charging_started_at"] and data["captured_at"]
        txn_row = (await h.admin.get(f"/api/v1/transactions/{txn}")).json()
        assert txn_row["mode"] == "remote" and txn_row["status"] == "completed"


async def _energy_is(h: Harness, token: str, kwh: str) -> bool:
    return (await h.session(token))["energy_kwh"] == kwh


async def test_unplug_from_car_ends_like_stop(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        await sim.status(2, "Preparing")
        await wait_connector(h.site, 2, "Preparing")
        token, _ = await h.create(2)
        await transaction_started(sim, 2)
        await h.wait_status(token, "charging")
        await sim.stop(2, meterStop=2000, reason="EVDisconnected")  # the car is unplugged
        data = await h.wait_status(token, "captured")
        assert data["energy_kwh"] == "2.000" and data["cost_amount"] == 50 + 78


async def test_no_energy_is_no_charge(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        await sim.status(1, "Preparing")
        await wait_connector(h.site, 1, "Preparing")
        token, _ = await h.create(1)
        await transaction_started(sim)
        await h.wait_status(token, "charging")
        await sim.stop(1, reason="Local")
        data = await h.wait_status(token, "no_charge")
        assert data["amount_captured"] == 0 and data["cost_amount"] == 0 and data["hold_released"]


async def test_waits_for_plug_then_starts(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        token, _ = await h.create(1)  # connector Available: the car is not plugged in yet
        await trio.sleep(0.6)  # a few of the session's once-a-second looks at the connector
        # (between two looks it is `authorized`; during one, briefly `starting`)
        assert (await h.session(token))["status"] in ("authorized", "starting")
        assert not any(e["event"] == "call" and e["action"] == "RemoteStartTransaction" for e in sim.events)
        await sim.status(1, "Preparing")
        await transaction_started(sim)
        await h.wait_status(token, "charging")


async def test_abandoned_when_never_plugged_in(tmp_path, clock):
    async with public_site(make_config(tmp_path, start_timeout_s=120)) as h, charger(h.site):
        token, _ = await h.create(1)
        assert (await h.session(token))["status"] == "authorized"
        await h.jump(clock, 121)
        data = await h.wait_status(token, "abandoned")
        assert data["failure_reason"] == "charging_not_started"
        await h.wait_released(token)


async def test_cancel_before_start_and_409_after(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        token, _ = await h.create(1)
        response = await h.public.post(f"/api/v1/public-charging/sessions/{token}/cancel")
        assert response.status_code == 200
        assert response.json()["data"]["status"] == "failed"
        assert response.json()["data"]["failure_reason"] == "cancelled"
        again = await h.public.post(f"/api/v1/public-charging/sessions/{token}/cancel")
        assert problem(again, 409, "NotCancellable")["message"] == (
            "the session is failed and can no longer be cancelled")
        # the connector is free again for the next driver
        await sim.status(1, "Preparing")
        await wait_connector(h.site, 1, "Preparing")
        token2, _ = await h.create(1)
        await transaction_started(sim)
        await h.wait_status(token2, "charging")
        assert (await h.public.post(f"/api/v1/public-charging/sessions/{token2}/cancel")).status_code == 409


async def test_charger_rejects_remote_start(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        await sim.respond("RemoteStartTransaction", payload={"status": "Rejected"})
        await sim.status(1, "Preparing")
        await wait_connector(h.site, 1, "Preparing")
        token, _ = await h.create(1)
        data = await h.wait_status(token, "failed")
        assert data["failure_reason"] == "charger_rejected"


async def test_stop_refused_by_charger_is_400(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        await sim.status(1, "Preparing")
        await wait_connector(h.site, 1, "Preparing")
        token, _ = await h.create(1)
        await transaction_started(sim)
        await h.wait_status(token, "charging")
        await sim.respond("RemoteStopTransaction", payload={"status": "Rejected"})
        response = await h.public.post(f"/api/v1/public-charging/sessions/{token}/stop")
        problem(response, 400, "ChargerRefused")
        assert (await h.session(token))["status"] == "charging"


async def test_upstream_events_carry_mode_remote_and_payment(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        h.site.events.enabled = frozenset({*h.site.events.enabled, "start", "stop_transaction"})
        await sim.status(1, "Preparing")
        await wait_connector(h.site, 1, "Preparing")
        token, _ = await h.create(1)
        await transaction_started(sim)
        await h.wait_status(token, "charging")
        await sim.stop(1, meterStop=1000)
        await h.wait_status(token, "captured")

        def outbox(conn):
            return [orjson.loads(r["payload"]) for r in conn.execute("SELECT payload FROM outbox ORDER BY id")]

        payloads = await h.site.store.read(outbox)
        start = next(p for p in payloads if p["type"] == "start")
        stop = next(p for p in payloads if p["type"] == "stop_transaction")
        assert start["mode"] == "remote" and start["accepted"] is True
        assert start["payment"]["provider"] == "none" and start["payment"]["amount_authorized"] == 5000
        assert stop["payment"]["amount"] == 50 + 39


@pytest.mark.parametrize("state", ["created_none", "authorized", "charging", "stopping", "settling", "captured"])
async def test_restart_in_every_state_free(tmp_path, state):
    """Stop the controller with the session in `state`; a new one continues where it was."""
    config = make_config(tmp_path)
    async with public_site(config) as h, charger(h.site) as sim:
        if state == "created_none":
            await sim.status(1, "Preparing")
            await wait_connector(h.site, 1, "Preparing")
            token, _ = await h.create(1)
            await transaction_started(sim)
            state = "charging"
        else:
            if state != "authorized":
                await sim.status(1, "Preparing")
                await wait_connector(h.site, 1, "Preparing")
            token, _ = await h.create(1)
            if state != "authorized":
                await transaction_started(sim)
                await h.wait_status(token, "charging")
            if state == "stopping":
                await sim.cmd("auto", enabled=False)  # the charger accepts the stop but reports it later
                response = await h.public.post(f"/api/v1/public-charging/sessions/{token}/stop")
                assert response.json()["data"]["status"] == "stopping"
            if state == "settling":
                h.site.public_charging.lifecycle.busy.add(1)  # hold the worker off this session
                await sim.stop(1, meterStop=3000)
                await h.wait_status(token, "settling")
            if state == "captured":
                await sim.stop(1, meterStop=3000)
                await h.wait_status(token, "captured")
        before = await h.session(token)
        assert before["status"] == state
    async with public_site(config) as h, charger(h.site) as sim:
        data = await h.session(token)
        assert (await h.public.get(f"/api/v1/public-charging/sessions/{token}")).status_code == 200
        if state == "authorized":
            assert data["status"] == "authorized"
            await sim.status(1, "Preparing")
            await transaction_started(sim)
            await h.wait_status(token, "charging")
        elif state in ("charging", "stopping"):
            assert data["status"] == state
            await sim.stop(1, transactionId=data["transaction_id"], meterStop=3000)
            data = await h.wait_status(token, "captured")
            assert data["cost_amount"] == 50 + 117
        elif state == "settling":
            data = await h.wait_status(token, "captured")
            assert data["cost_amount"] == 50 + 117
        else:
            assert data["status"] == "captured" and data["cost_amount"] == 50 + 117


async def test_token_expires_after_ttl(tmp_path, clock):
    async with public_site(make_config(tmp_path, token_ttl_s=600)) as h, charger(h.site):
        token, _ = await h.create(1)
        await h.public.post(f"/api/v1/public-charging/sessions/{token}/cancel")
        assert (await h.public.get(f"/api/v1/public-charging/sessions/{token}")).status_code == 200
        await h.jump(clock, 601)

        async def gone() -> bool:
            row = await h.site.store.read(q.get, 1)
            return row["token_hash"] is None

        await eventually(gone, what="token forgotten")
        response = await h.public.get(f"/api/v1/public-charging/sessions/{token}")
        assert response.status_code == 404
        assert response.json()["error"] == "SessionNotFound"


async def test_remote_start_answer_lost_waits_for_the_charger_instead_of_starting_twice(tmp_path):
    """The charger drops right after receiving RemoteStartTransaction, before answering: it may
    well be starting. The session stays `starting` (no second RemoteStart that could begin a second
    charge) and the StartTransaction sent after the reconnect becomes the session's charge."""
    async with public_site(make_config(tmp_path)) as h:
        async with raw_charger(h.site, CHARGER) as cp:
            await cp.boot()
            await cp.status(1, "Preparing")
            await wait_connector(h.site, 1, "Preparing")
            token, _ = await h.create(1)
            call = await cp.receive()
            assert call[2] == "RemoteStartTransaction"
        await eventually(lambda: not h.site.chargers.get(CHARGER).online, what="charger offline")
        assert (await h.session(token))["status"] == "starting"
        async with raw_charger(h.site, CHARGER) as cp:
            await cp.boot()
            await cp.status(1, "Preparing")
            started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": call[3]["idTag"],
                                                         "meterStart": 0, "timestamp": now_iso()})
            assert started[2]["idTagInfo"]["status"] == "Accepted"
            data = await h.wait_status(token, "charging")
            assert data["transaction_id"] == started[2]["transactionId"]
            # the next frame the charger gets answers its Heartbeat: no second RemoteStartTransaction
            assert (await cp.call("Heartbeat", {}))[0] == 3
