"""The delivery worker against a real HTTP receiver, on a real SQLite store, under a MockClock.

Backoff and Retry-After are checked in mock time: the receiver stamps every request with
trio.current_time(), and the expected delays come from the same seeded jitter the worker uses.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import datetime, timezone
from email.utils import format_datetime

import orjson
import pytest
import trio
import trio.testing

from controller.store import outbox
from controller.store import transactions as txq
from controller.store.outbox import OutboxEvent
from controller.upstream.delivery import backoff, parse_retry_after, payment_amount
from tests.upstream.conftest import event, queue_events, running_delivery, urls
from tests.upstream.receiver import HANG, RESET, Reply


@pytest.fixture
def clock():
    # Autojump only once every task has been idle for 50 ms of real time: SQLite commits run in
    # threads, and the clock must not jump while one is under way.
    return trio.testing.MockClock(autojump_threshold=0.05)


async def rows(store, status=None, charger=None):
    found, _ = await store.read(outbox.page, status, charger, None, 1000, 0)
    return sorted(found, key=lambda r: r["id"])


async def until(check, progress=None, timeout=100_000):
    """Wait for `check()` to be truthy, re-checking after every attempt the worker records."""
    with trio.fail_after(timeout):
        while True:
            result = await check()
            if result:
                return result
            if progress is None:
                await trio.sleep(0.01)
            else:
                with trio.move_on_after(60):  # a safety net; progress normally comes first
                    await progress.wait_progress()


async def all_settled(store, n, delivery=None):
    async def check():
        done = await rows(store)
        return len(done) == n and all(r["status"] != "pending" for r in done)
    await until(check, delivery)
    return await rows(store)


async def test_delivers_body_headers_and_signature(store, receiver, clock):
    await queue_events(store, event("A", 0))
    async with running_delivery(store, **urls(receiver), headers={"X-Api-Key": "k-123"}, signing_secret="s3cret") as d:
        await receiver.wait_count(1)
        (done,) = await all_settled(store, 1, d)
    (request,) = receiver.requests
    assert request.method == "POST" and request.path == "/status_url"
    assert request.json == {"type": "status", "chargebox": "A", "n": 0}
    assert request.body == done["payload"].encode()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-api-key"] == "k-123"
    assert request.headers["x-evedge-event-id"] == done["event_id"]
    assert request.headers["x-evedge-event-type"] == "status"
    expected = hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-evedge-signature"] == f"sha256={expected}"
    assert (done["status"], done["attempts"], done["last_status"]) == ("delivered", 1, 200)
    assert done["delivered_at"] is not None


async def test_no_signature_without_secret_and_new_rows_wake_the_worker(store, receiver, clock):
    async with running_delivery(store, **urls(receiver)):
        for n in range(3):
            await queue_events(store, event("A", n))
            await receiver.wait_count(n + 1, timeout=5)  # woken by the write, not by polling
    assert [r.json["n"] for r in receiver.requests] == [0, 1, 2]
    assert "x-evedge-signature" not in receiver.requests[0].headers


async def test_in_order_per_charger_and_chargers_do_not_wait_for_each_other(store, receiver, clock):
    failures = {"A": 3}

    def answer(request):
        box = request.json["chargebox"]
        if failures.get(box, 0) > 0:
            failures[box] -= 1
            return Reply(503)
        return Reply(200)

    receiver.default = answer
    for n in range(5):
        await queue_events(store, event("A", n), event("B", n))
    async with running_delivery(store, **urls(receiver), retry_initial_s=10) as d:
        done = await all_settled(store, 10, d)
    assert all(r["status"] == "delivered" for r in done)
    by_box = {box: [r.json["n"] for r in receiver.requests if r.json["chargebox"] == box] for box in "AB"}
    assert by_box == {"A": [0, 0, 0, 0, 1, 2, 3, 4], "B": [0, 1, 2, 3, 4]}
    first_a_success = next(i for i, r in enumerate(receiver.requests)
                           if r.json["chargebox"] == "A" and r.answer.status == 200)
    last_b = max(i for i, r in enumerate(receiver.requests) if r.json["chargebox"] == "B")
    assert last_b < first_a_success  # B was not held up behind A's retries
    a_ids = [r.event_id for r in receiver.requests if r.json["chargebox"] == "A"]
    assert len(set(a_ids[:4])) == 1  # every retry carries the same event id


async def test_exponential_backoff_with_jitter_up_to_the_cap(store, receiver, clock):
    receiver.plan(*[Reply(503)] * 7)
    await queue_events(store, event("A", 0))
    async with running_delivery(store, **urls(receiver), retry_initial_s=1, retry_max_s=8, seed=7) as d:
        await receiver.wait_count(8)
        (done,) = await all_settled(store, 1, d)
    rng = random.Random(7)
    expected = [backoff(n, 1, 8, rng) for n in range(1, 8)]
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:])]
    for gap, delay in zip(gaps, expected):
        assert delay - 0.002 <= gap <= delay + 0.5, (gaps, expected)
    assert expected[0] <= 1 and 4 <= expected[3] <= 8 and all(4 <= d <= 8 for d in expected[3:])
    assert done["status"] == "delivered" and done["attempts"] == 8


async def test_retry_after_is_honoured_in_seconds_and_as_a_date_up_to_its_cap(store, receiver, clock):
    state = {}

    def http_date(request):
        later = datetime.fromtimestamp(state["delivery"].wall() + 300, timezone.utc)
        return Reply(429, headers={"Retry-After": format_datetime(later, usegmt=True)})

    receiver.plan(Reply(503, headers={"Retry-After": "120"}), http_date,
                  Reply(503, headers={"Retry-After": "99999"}))
    await queue_events(store, event("A", 0))
    async with running_delivery(store, **urls(receiver), retry_initial_s=1, retry_after_max_s=900) as d:
        state["delivery"] = d
        await receiver.wait_count(4)
        await all_settled(store, 1, d)
    at = [r.at for r in receiver.requests]
    eps = 1e-6  # float arithmetic on mock time
    assert 120 - eps <= at[1] - at[0] <= 120.5
    assert 299 - eps <= at[2] - at[1] <= 301  # an HTTP date has whole seconds
    assert 900 - eps <= at[3] - at[2] <= 900.5  # capped at retry_after_max_s
    assert parse_retry_after("garbage", 0) is None and parse_retry_after("7", 0) == 7


async def test_resets_hangs_timeouts_408_5xx_and_slow_answers(store, receiver, clock):
    receiver.plan(RESET, HANG, Reply(408), Reply(502), Reply(200, delay=6))
    await queue_events(store, event("A", 0))
    async with running_delivery(store, **urls(receiver), retry_initial_s=1, timeout_s=10) as d:
        (done,) = await all_settled(store, 1, d)
    assert len(receiver.requests) == 5  # the slow answer came within timeout_s: delivered once
    assert len({r.event_id for r in receiver.requests}) == 1
    hang, after_hang = receiver.requests[1], receiver.requests[2]
    assert after_hang.at - hang.at >= 10 - 1e-6  # waited the timeout out, then backed off
    assert done["status"] == "delivered" and done["attempts"] == 5


async def test_a_reset_is_recorded_as_the_last_error(store, receiver, clock):
    receiver.default = RESET
    await queue_events(store, event("A", 0))
    async with running_delivery(store, **urls(receiver), retry_initial_s=5) as d:
        await receiver.wait_count(2)

        async def errored():
            (row,) = await rows(store)
            return row if row["attempts"] >= 2 else None
        row = await until(errored, d)
    assert row["status"] == "pending" and row["last_status"] is None and row["last_error"]
    assert row["next_attempt_at"] is not None


async def test_an_unreachable_upstream_is_retried_until_it_is_back(store, receiver, clock):
    receiver.down()
    await queue_events(store, event("A", 0), event("A", 1))
    async with running_delivery(store, **urls(receiver), retry_initial_s=1, retry_max_s=60) as d:
        async def refused_a_few_times():
            first = (await rows(store))[0]
            return first["attempts"] >= 6
        await until(refused_a_few_times, d)
        assert receiver.requests == []
        first = (await rows(store))[0]
        assert first["status"] == "pending" and "Connect" in first["last_error"]
        await receiver.up()
        done = await all_settled(store, 2, d)
    assert [r.json["n"] for r in receiver.requests] == [0, 1]
    assert all(r["status"] == "delivered" for r in done)


async def test_other_4xx_are_parked_after_a_few_tries_and_the_queue_moves_on(store, receiver, clock):
    receiver.default = lambda r: Reply(400, body=b'{"error":"bad"}') if r.json["n"] == 0 else Reply(200)
    await queue_events(store, event("A", 0), event("A", 1))
    async with running_delivery(store, **urls(receiver), retry_initial_s=1, client_error_attempts=3) as d:
        failed, delivered = await all_settled(store, 2, d)
        assert (failed["status"], failed["attempts"], failed["last_status"]) == ("failed", 3, 400)
        assert "bad" in failed["last_error"]
        assert delivered["status"] == "delivered"
        assert [r.json["n"] for r in receiver.requests] == [0, 0, 0, 1]
        # the operator fixes the upstream and replays the parked event: same event id
        receiver.default = Reply(200)
        await store.write(outbox.retry, failed["id"])
        d.wake()
        await receiver.wait_count(5)
        replayed = await all_settled(store, 2, d)
    assert replayed[0]["status"] == "delivered"
    assert receiver.requests[-1].event_id == failed["event_id"]


async def test_5xx_after_4xx_keeps_trying_and_a_type_without_url_is_parked(store, receiver, clock):
    await queue_events(store, event("A", 0, kind="connection"), event("A", 1))
    async with running_delivery(store, status_url=receiver.url("/status")) as d:
        parked, delivered = await all_settled(store, 2, d)
    assert parked["status"] == "failed" and parked["attempts"] == 0
    assert "no URL" in parked["last_error"]
    assert delivered["status"] == "delivered"


async def test_payment_amount_from_the_answer_goes_on_the_transaction(store, receiver, clock):
    txn = await store.write(txq.create_pending, "A", 1, "TAG", "api")
    other = await store.write(txq.create_pending, "A", 2, "TAG", "api")
    receiver.plan(Reply(200, body=b'{"amount": "4.20"}'), Reply(200, body=b'{"ok": true}'))
    await queue_events(store, event("A", 0, kind="start", transaction_id=txn),
                       event("A", 1, kind="start", transaction_id=other))
    async with running_delivery(store, **urls(receiver)) as d:
        await all_settled(store, 2, d)
    assert (await store.read(txq.get, txn))["payment_amount"] == "4.20"
    assert (await store.read(txq.get, other))["payment_amount"] is None
    assert payment_amount(b'{"amount": 0}') == "0" and payment_amount(b"[1]") is None
    assert payment_amount(b"not json") is None and payment_amount(b'{"amount": true}') is None


async def test_prune_keeps_the_outbox_bounded(store, receiver, clock):
    for n in range(130):
        await queue_events(store, event("A", n))
    # a dead upstream: beyond max_rows the oldest pending are parked (failed, retryable)
    result = await store.write(outbox.prune, "0000", "0000", 100, "2030-01-01T00:00:00.000Z")
    assert result == {"removed": 0, "parked": 30}
    stats = await store.read(outbox.stats)
    assert (stats["pending"], stats["failed"]) == (100, 30)
    assert [r["id"] for r in await rows(store, "failed")] == [r["id"] for r in (await rows(store))[:30]]
    async with running_delivery(store, **urls(receiver)) as d:
        await all_settled(store, 130, d)
        # delivered rows older than the retention are pruned; failed ones are kept longer
        far_future = "9999-01-01T00:00:00.000Z"
        result = await store.write(outbox.prune, far_future, "0000", 100, d.now_iso())
    assert result == {"removed": 100, "parked": 0}
    assert len(await rows(store)) == 30
    result = await store.write(outbox.prune, "0000", "0000", 10, "2030-01-01T00:00:00.000Z")
    assert result == {"removed": 0, "parked": 0}  # what a pass parked stays for an operator...
    result = await store.write(outbox.prune, "0000", "0000", 10, "2030-01-02T00:00:00.000Z")
    assert result == {"removed": 20, "parked": 0}  # ...until a later pass: failed beyond max_rows, the oldest go


def status_event(charger_id: str, connector: int, status: str) -> OutboxEvent:
    return OutboxEvent("status", charger_id, {"type": "status", "chargebox": charger_id, "connector": connector,
                                              "status": status})


async def test_a_flapping_charger_never_pushes_out_start_and_stop_events(store, clock):
    """With the upstream down, one charger's status flapping must not cost another charger's
    billing events: a connector keeps its latest undelivered statuses only, and starts and stops
    are never parked or pruned to make room."""
    await queue_events(store, event("B", 0, kind="start", transaction_id=1))
    for n in range(300):
        await queue_events(store, status_event("A", 1 + n % 2, "Charging" if n % 3 else "SuspendedEV"))
    await queue_events(store, event("B", 1, kind="stop_transaction", transaction_id=1))
    pending = await rows(store)
    statuses = [orjson.loads(r["payload"]) for r in pending if r["type"] == "status"]
    assert len(statuses) == 2 * outbox.STATUS_BACKLOG  # per connector, the latest
    assert [s["connector"] for s in statuses][-2:] == [1, 2] and [r["type"] for r in pending][-1] == "stop_transaction"
    assert [r["type"] for r in pending][0] == "start"
    for n in range(150):  # many chargers' statuses: more than the bound
        await queue_events(store, status_event(f"C{n}", 1, "Available"))
    for at in ("2030-01-01T00:00:00.000Z", "2030-01-02T00:00:00.000Z"):
        await store.write(outbox.prune, "0000", "0000", 100, at)
    kept = {(r["charger_id"], r["type"], r["status"]) for r in await rows(store, "pending") + await rows(store, "failed")}
    assert ("B", "start", "pending") in kept and ("B", "stop_transaction", "pending") in kept


def connection_event(charger_id: str, online: bool) -> OutboxEvent:
    return OutboxEvent("connection", charger_id, {"type": "connection", "chargebox": charger_id, "online": online})


async def test_one_chargers_flood_is_bounded_per_charger(store, clock, monkeypatch):
    """A charger reconnecting in a loop keeps its latest connection events; whatever it floods the
    outbox with, it keeps a bounded share, and another charger's start and stop stay."""
    monkeypatch.setattr(outbox, "CHARGER_BACKLOG", 30)
    await queue_events(store, event("B", 0, kind="start", transaction_id=1))
    for n in range(200):
        await queue_events(store, connection_event("A", online=n % 2 == 1))
    connections = [orjson.loads(r["payload"]) for r in await rows(store) if r["type"] == "connection"]
    assert len(connections) == outbox.CONNECTION_BACKLOG and connections[-1]["online"] is True  # the latest
    for n in range(200):  # every kind at once: statuses on many connectors, unlocks, connections
        kind = ("status", "unlocked", "connection")[n % 3]
        await queue_events(store, status_event("A", n, "Available") if kind == "status"
                           else connection_event("A", True) if kind == "connection"
                           else OutboxEvent("unlocked", "A", {"type": "unlocked", "connector": 1}))
    await queue_events(store, event("A", 1, kind="stop_transaction", transaction_id=2))
    await queue_events(store, event("B", 1, kind="stop_transaction", transaction_id=1))
    pending = await rows(store)
    flood = [r for r in pending if r["charger_id"] == "A" and r["type"] not in outbox.BILLING]
    assert len(flood) == outbox.CHARGER_BACKLOG
    kept = [(r["charger_id"], r["type"]) for r in pending if r["type"] in outbox.BILLING]
    assert kept == [("B", "start"), ("A", "stop_transaction"), ("B", "stop_transaction")]


async def test_queue_stats(store, receiver, clock):
    receiver.down()
    await queue_events(store, event("A", 0), event("B", 0))
    async with running_delivery(store, **urls(receiver), retry_initial_s=100) as d:
        await trio.sleep(50)
        queue = await d.queue()
    assert queue["pending"] == 2 and queue["delivered"] == 0 and queue["failed"] == 0
    assert queue["oldestPendingAgeSeconds"] >= 0
