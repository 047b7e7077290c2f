"""kill -9 of the controller while a public session's capture request is at Stripe.

Two ways the request can be caught: Stripe already captured and its answer never came back (the
dangerous one: a naive retry captures twice), or it never got as far as capturing. Either way the
restarted controller finds the session `settling`, captures again with the same Idempotency-Key,
and the session ends `captured` with exactly one capture at Stripe and the books agreeing.
"""

from __future__ import annotations

import pytest
import trio

from controller.simulators.charger_process import SimulatedCharger
from tests.faults.process import (
    Controller, controller, open_books, upstream_toml, wait_outbox_drained,
)
from tests.public_charging.fake_stripe import FakeStripe
from tests.public_charging.helpers import CHARGER, CODE, config_text
from tests.support import eventually
from tests.upstream.receiver import Receiver

METER_STOP_WH = 1000
COST = 89  # 1 kWh x 39 + 50 start fee (tests/public_charging/helpers.py PRICING)


class HangingStripe(FakeStripe):
    """The fake Stripe, able to swallow capture requests before performing them."""

    hang_captures = 0  # this many capture requests are read and never performed nor answered

    async def _perform(self, kind: str, intent_id: str | None, form: dict) -> tuple[int, dict]:
        if kind == "capture" and self.hang_captures:
            self.hang_captures -= 1
            await trio.sleep_forever()
        return await super()._perform(kind, intent_id, form)


async def session(ctl: Controller) -> dict:
    """The site's only public session, as the operator sees it."""
    listing = await ctl.api("/api/v1/public-sessions")
    assert len(listing["sessions"]) == 1, listing
    return listing["sessions"][0]


async def wait_status(ctl: Controller, status: str) -> dict:
    async def reached() -> dict | None:
        found = await session(ctl)
        return found if found["status"] == status else None

    return await eventually(reached, timeout=30, what=f"public session {status}")


def capture_requests(server: FakeStripe) -> list[tuple]:
    return [r for r in server.requests if r[1].endswith("/capture")]


@pytest.mark.parametrize("caught", ["after_capture", "before_capture"])
async def test_kill_9_while_capturing(tmp_path, receiver: Receiver, nursery: trio.Nursery, caught: str) -> None:
    server = await nursery.start(HangingStripe().run)
    text = config_text(tmp_path / "data", provider="stripe", stripe_base=server.base)
    # a capture must stay in flight until the kill, not time out and be retried first
    assert "stripe_timeout_s = 3\n" in text
    config = tmp_path / "site.toml"
    config.write_text(text.replace("stripe_timeout_s = 3\n", "stripe_timeout_s = 120\n") + upstream_toml(receiver))

    async with controller(config) as ctl, ctl.client(key=None) as public:
        sim = await SimulatedCharger.start(nursery, ctl.url(CHARGER), connectors=2, timeout=30)
        await sim.boot()
        await sim.status(1, "Preparing")  # the driver has plugged in
        response = await public.post("/api/v1/public-charging/sessions", json={"code": CODE, "connector_id": 1})
        assert response.status_code == 201, response.text
        token = response.json()["session_token"]
        server.confirm(server.last_intent()["id"])  # the driver's card is accepted (stripe.js)
        response = await public.post(f"/api/v1/public-charging/sessions/{token}/confirm")
        assert response.status_code == 200, response.text
        started = await sim.next_event("sent", action="StartTransaction", timeout=30)  # remote start, auto
        transaction_id = started["response"]["transactionId"]
        await wait_status(ctl, "charging")

        if caught == "after_capture":
            server.capture_delay_s = 3600  # Stripe captures; its answer never arrives before the kill
        else:
            server.hang_captures = 1
        await sim.stop(1, meterStop=METER_STOP_WH)  # answered: the charge is over and on the books
        with trio.fail_after(30):
            while not capture_requests(server):
                await trio.sleep(0.01)
        assert len(server.captures) == (1 if caught == "after_capture" else 0)
        await ctl.kill9()
        await sim.aclose()

    with open_books(config) as db:
        row = db.execute("SELECT * FROM public_sessions").fetchone()
        assert (row["status"], row["transaction_id"], row["cost_amount"]) == ("settling", transaction_id, COST)
        txn = db.execute("SELECT * FROM transactions WHERE id = ?", (transaction_id,)).fetchone()
        assert (txn["status"], txn["meter_stop"]) == ("completed", METER_STOP_WH)
        stop = db.execute("SELECT count(*) FROM outbox WHERE type = 'stop_transaction' AND transaction_id = ?",
                          (transaction_id,)).fetchone()[0]
        assert stop == 1

    server.capture_delay_s = 0
    async with controller(config) as ctl:
        data = await wait_status(ctl, "captured")
        assert (data["amount_captured"], data["cost_amount"], data["transaction_id"]) == (COST, COST, transaction_id)
        assert data["hold_released"]
        await wait_outbox_drained(ctl)
        txn = await ctl.api(f"/api/v1/transactions/{transaction_id}")
        assert txn["status"] == "completed" and txn["energyDelivered"] == METER_STOP_WH / 1000

    intent = server.last_intent()
    assert server.captures == [(intent["id"], COST)]  # exactly one capture, of the right amount
    assert intent["status"] == "succeeded" and intent["amount_received"] == COST
    keys = {key for *_, key in capture_requests(server)}
    assert len(capture_requests(server)) >= 2 and len(keys) == 1 and None not in keys  # retried, same key
    # the upstream heard of the charge's start and stop once each, with the session's payment
    stops = {r.event_id: r.json for r in receiver.delivered() if r.json["type"] == "stop_transaction"}
    starts = {r.event_id for r in receiver.delivered() if r.json["type"] == "start"}
    assert len(stops) == 1 and len(starts) == 1
    (stop,) = stops.values()
    assert stop["transaction_id"] == transaction_id
    assert stop["payment"]["payment_id"] == intent["id"] and stop["payment"]["amount"] == COST
