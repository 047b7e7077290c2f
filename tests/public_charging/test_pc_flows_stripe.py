"""Public sessions paid through Stripe (a local fake Stripe server behind a breakable TCP proxy)."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import trio
from trio.testing import MockClock

from controller.public_charging.payments import CAPTURE_ATTEMPTS
from tests.public_charging.fake_stripe import PUBLISHABLE, BreakingProxy, FakeStripe
from tests.public_charging.helpers import (
    charger, make_config, problem, public_site, transaction_started, wait_connector,
)
from tests.support import eventually


@pytest.fixture
def clock() -> MockClock:
    return MockClock(rate=1.0)


@asynccontextmanager
async def stripe():
    async with trio.open_nursery() as nursery:
        server = await nursery.start(FakeStripe().run)
        proxy = await nursery.start(BreakingProxy(server.port).run)
        yield server, proxy
        nursery.cancel_scope.cancel()


async def paid_and_charging(h, sim, server, connector: int = 1, **extra) -> tuple[str, int]:
    await sim.status(connector, "Preparing")
    await wait_connector(h.site, connector, "Preparing")
    token, body = await h.create(connector, **extra)
    intent = server.last_intent()
    assert body["data"]["status"] == "created"
    assert body["payment"] == {"provider": "stripe", "payment_intent_id": intent["id"],
                               "client_secret": intent["client_secret"], "publishable_key": PUBLISHABLE}
    server.confirm(intent["id"])  # the driver's browser: stripe.confirmPayment succeeded
    response = await h.public.post(f"/api/v1/public-charging/sessions/{token}/confirm")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] in ("authorized", "starting", "charging")
    txn = await transaction_started(sim, connector)
    await h.wait_status(token, "charging")
    return token, txn


async def test_stripe_captured(tmp_path):
    async with stripe() as (server, proxy):
        config = make_config(tmp_path, provider="stripe", stripe_base=proxy.base)
        async with public_site(config) as h, charger(h.site) as sim:
            token, _ = await paid_and_charging(h, sim, server, email="driver@example.com")
            intent = server.last_intent()
            create = next(r for r in server.requests if r[1] == "/v1/payment_intents")
            assert create[2]["amount"] == "5000" and create[2]["currency"] == "eur"
            assert create[2]["capture_method"] == "manual" and create[3]
            assert create[2]["receipt_email"] == "driver@example.com"  # Stripe sends the receipt
            await sim.meter(1, energyWh=10_000)
            response = await h.public.post(f"/api/v1/public-charging/sessions/{token}/stop")
            assert response.status_code == 200
            data = await h.wait_status(token, "captured")
            # 10 kWh x 39 + 50 = 440; tax inside 440 at 21%: 440 - round(440 / 1.21) = 440 - 364 = 76
            assert data["cost_amount"] == 440 and data["amount_captured"] == 440 and data["tax_amount"] == 76
            assert server.captures == [(intent["id"], 440)]
            assert all(key for method, _, _, key in server.requests if method == "POST")
            public = (await h.public.get(f"/api/v1/public-charging/sessions/{token}")).json()
            assert public["data"]["amount_captured"] == 440 and "payment" not in public


async def test_cost_is_capped_at_the_hold(tmp_path):
    async with stripe() as (server, proxy):
        config = make_config(tmp_path, provider="stripe", stripe_base=proxy.base)
        async with public_site(config) as h, charger(h.site) as sim:
            token, _ = await paid_and_charging(h, sim, server)
            assert "receipt_email" not in server.requests[0][2]  # no address given: none sent
            await sim.stop(1, meterStop=500_000)  # 500 kWh would cost far more than 5000
            data = await h.wait_status(token, "captured")
            assert data["cost_amount"] == 5000 and data["amount_captured"] == 5000


async def test_declined_card_then_expired(tmp_path, clock):
    async with stripe() as (server, proxy):
        config = make_config(tmp_path, provider="stripe", stripe_base=proxy.base, session_expiry_s=300)
        async with public_site(config) as h, charger(h.site):
            token, _ = await h.create(1)
            intent = server.last_intent()
            server.decline(intent["id"])
            response = await h.public.post(f"/api/v1/public-charging/sessions/{token}/confirm")
            data = response.json()["data"]
            assert data["status"] == "created" and data["failure_reason"] == "card_declined"
            get = (await h.public.get(f"/api/v1/public-charging/sessions/{token}")).json()
            assert get["payment"]["client_secret"] == intent["client_secret"]  # the driver may try another card
            await h.jump(clock, 301)
            data = await h.wait_status(token, "expired")
            assert data["failure_reason"] == "payment_not_completed"
            await h.wait_released(token)
            assert intent["status"] == "canceled"


async def test_capture_failed(tmp_path):
    async with stripe() as (server, proxy):
        config = make_config(tmp_path, provider="stripe", stripe_base=proxy.base)
        async with public_site(config) as h, charger(h.site) as sim:
            token, _ = await paid_and_charging(h, sim, server)
            server.fail_capture = "insufficient_funds"
            await sim.stop(1, meterStop=1000)
            data = await h.wait_status(token, "capture_failed")
            assert data["failure_reason"] == "insufficient_funds" and data["amount_captured"] is None
            # the operator writes it off through the keyed API
            sid = data["id"]
            problem(await h.admin.post(f"/api/v1/public-sessions/{sid}/resolve", json={"status": "refunded"}),
                    409, "InvalidTransition")
            response = await h.admin.post(f"/api/v1/public-sessions/{sid}/resolve", json={"status": "written_off"})
            assert response.status_code == 200 and response.json()["status"] == "written_off"
            assert (await h.public.post(f"/api/v1/public-sessions/{sid}/resolve",
                                        json={"status": "refunded"})).status_code == 401


async def test_network_errors_are_retried_with_the_same_key(tmp_path, clock):
    async with stripe() as (server, proxy):
        config = make_config(tmp_path, provider="stripe", stripe_base=proxy.base)
        async with public_site(config) as h, charger(h.site) as sim:
            h.site.public_charging.provider.backoff_s = (0.01, 0.05)  # keep the test quick
            proxy.broken = True
            response = await h.public.post("/api/v1/public-charging/sessions", json={"code": "A1B2", "connector_id": 1})
            assert response.status_code == 502 and response.json()["error"] == "PaymentProviderError"
            assert proxy.resets >= 3  # the provider retried
            proxy.broken = False
            await h.jump(clock, 61)  # past the per-client rate limit window
            token, _ = await paid_and_charging(h, sim, server, connector=2)
            proxy.broken = True
            await sim.stop(2, meterStop=2000)
            data = await h.wait_status(token, "settling")

            async def attempted() -> bool:
                return (await h.session(token))["status"] == "settling" and proxy.resets >= 6

            await eventually(attempted, what="a failed capture attempt")
            proxy.broken = False
            await h.jump(clock, 60)  # the retry backoff
            data = await h.wait_status(token, "captured")
            assert data["amount_captured"] == 50 + 78
            assert len(server.captures) == 1
            captures = [r for r in server.requests if r[1].endswith("/capture")]
            assert len({key for *_, key in captures}) == 1


async def test_provider_down_for_good_requires_review(tmp_path, clock):
    async with stripe() as (server, proxy):
        config = make_config(tmp_path, provider="stripe", stripe_base=proxy.base)
        async with public_site(config) as h, charger(h.site) as sim:
            h.site.public_charging.provider.backoff_s = (0.01, 0.05)  # keep the test quick
            token, _ = await paid_and_charging(h, sim, server)
            server.fail_status = 503
            await sim.stop(1, meterStop=1000)
            def captures_tried() -> int:
                return sum(1 for r in server.requests if r[1].endswith("/capture"))

            for attempt in range(1, CAPTURE_ATTEMPTS + 1):
                # each attempt is ATTEMPTS requests (the provider's own retries); then the session backs off
                await eventually(lambda: captures_tried() >= attempt * 3, what=f"capture attempt {attempt}")
                await trio.sleep(0.1)
                await h.jump(clock, 301)
            data = await h.wait_status(token, "requires_review")
            assert data["failure_reason"] == "provider_unreachable"
            server.fail_status = None
            response = await h.admin.post(f"/api/v1/public-sessions/{data['id']}/resolve", json={"status": "settling"})
            assert response.status_code == 200
            data = await h.wait_status(token, "captured")
            assert data["amount_captured"] == 89


async def test_crash_between_capture_and_bookkeeping_captures_once(tmp_path):
    async with stripe() as (server, proxy):
        config = make_config(tmp_path, provider="stripe", stripe_base=proxy.base)
        async with public_site(config) as h, charger(h.site) as sim:
            token, _ = await paid_and_charging(h, sim, server)
            server.capture_delay_s = 30  # Stripe captures, but the answer never arrives before the crash
            await sim.stop(1, meterStop=1000)
            await eventually(lambda: len(server.captures) == 1, what="capture performed")
            assert (await h.session(token))["status"] == "settling"
        server.capture_delay_s = 0
        async with public_site(config) as h:
            data = await h.wait_status(token, "captured")
            assert data["amount_captured"] == 89
            assert len(server.captures) == 1  # the repeat was answered from the idempotency key


@pytest.mark.parametrize("state", ["created", "authorized", "charging", "settling", "capture_failed"])
async def test_restart_in_every_state_stripe(tmp_path, state):
    async with stripe() as (server, proxy):
        config = make_config(tmp_path, provider="stripe", stripe_base=proxy.base)
        async with public_site(config) as h, charger(h.site) as sim:
            if state in ("created", "authorized"):
                token, _ = await h.create(1)
                if state == "authorized":
                    server.confirm(server.last_intent()["id"])
                    await h.public.post(f"/api/v1/public-charging/sessions/{token}/confirm")
            else:
                token, _ = await paid_and_charging(h, sim, server)
                if state == "settling":
                    server.fail_status = 503
                    await sim.stop(1, meterStop=1000)
                    await h.wait_status(token, "settling")
                elif state == "capture_failed":
                    server.fail_capture = "card_declined"
                    await sim.stop(1, meterStop=1000)
                    await h.wait_status(token, "capture_failed")
            assert (await h.session(token))["status"] == state
        server.fail_status = server.fail_capture = None
        async with public_site(config) as h, charger(h.site) as sim:
            # a settling session is captured at once after the restart; the others wait where they were
            assert (await h.session(token))["status"] in ((state, "captured") if state == "settling" else (state,))
            if state == "created":
                server.confirm(server.last_intent()["id"])
                await h.public.post(f"/api/v1/public-charging/sessions/{token}/confirm")
                state = "authorized"
            if state == "authorized":
                await sim.status(1, "Preparing")
                await transaction_started(sim)
                await h.wait_status(token, "charging")
                await sim.stop(1, meterStop=1000)
            elif state == "charging":
                data = await h.session(token)
                await sim.stop(1, transactionId=data["transaction_id"], meterStop=1000)
            if state == "capture_failed":
                await trio.sleep(0.5)
                assert (await h.session(token))["status"] == "capture_failed"
                assert server.captures == []
            else:
                data = await h.wait_status(token, "captured")
                assert data["amount_captured"] == 89 and len(server.captures) == 1
