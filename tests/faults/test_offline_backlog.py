"""A charger that charged while it could not reach us sends its backlog when it reconnects.

OCPP 1.6 chargers queue StartTransaction / MeterValues / StopTransaction while offline and send
them, oldest first and back to back, once the connection is back, each with the timestamp of when
it happened. The books must hold every charge at its real time with its real energy, once, even
when the charger re-sends a message whose answer it never got, and the upstream must hear of each.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
import trio

from controller.store import transactions as txq
from controller.timefmt import iso, parse_iso, utcnow
from tests.faults.ocpp_clients import upstream_toml
from tests.support import CHARGER, CHARGER_2, RawCharger, eventually, make_config, raw_charger, running_site


def ago(hours: float) -> str:
    """A timestamp `hours` before now, in the canonical form the API answers with."""
    return iso(utcnow() - timedelta(hours=hours))


def energy(value: int, context: str = "Sample.Periodic") -> dict:
    return {"value": str(value), "context": context, "measurand": "Energy.Active.Import.Register", "unit": "Wh"}


def meter_values(transaction_id: int | None, timestamp: str, wh: int) -> dict:
    payload: dict = {"connectorId": 1, "meterValue": [{"timestamp": timestamp, "sampledValue": [energy(wh)]}]}
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    return payload


async def ok(cp: RawCharger, action: str, payload: dict, unique_id: str | None = None) -> dict:
    reply = await cp.call(action, payload, unique_id)
    assert reply[0] == 3, reply
    return reply[2]


@pytest.fixture
async def site(tmp_path, receiver):
    config = make_config(tmp_path, accept_unknown_id_tags=True, extra=upstream_toml(receiver))
    async with running_site(config) as running:
        yield running


async def test_backlog_is_booked_at_its_original_times_once(site, api, receiver) -> None:
    t = {h: ago(h) for h in (6, 5.5, 5, 4.5, 4, 3.5, 3, 2.75)}
    url_charger = f"/api/v1/chargers/{CHARGER}"

    # Online: charge A begins, one sample arrives, then the site's uplink goes down.
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        a = (await ok(cp, "StartTransaction", {"connectorId": 1, "idTag": "TAG-A", "meterStart": 10_000,
                                                "timestamp": t[6]}))["transactionId"]
        await ok(cp, "MeterValues", meter_values(a, t[5.5], 10_500))

    # Back online: a live reading first, then the backlog, oldest first, without pause.
    now = iso(utcnow())
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        await ok(cp, "MeterValues", meter_values(None, now, 21_000))
        await ok(cp, "MeterValues", meter_values(a, t[5], 12_000))
        a_data = [{"timestamp": t[6], "sampledValue": [energy(10_000, "Transaction.Begin")]},
                  {"timestamp": t[4.5], "sampledValue": [energy(14_000, "Transaction.End")]}]
        assert await ok(cp, "StopTransaction", {"transactionId": a, "idTag": "TAG-A", "meterStop": 14_000,
                                                "timestamp": t[4.5], "reason": "EVDisconnected",
                                                "transactionData": a_data}) == {
            "idTagInfo": {"status": "Accepted"}}
        start_b = {"connectorId": 1, "idTag": "TAG-B", "meterStart": 14_000,
                   # the same instant as t[4], written with another UTC offset, as some chargers do
                   "timestamp": parse_iso(t[4]).astimezone(timezone(timedelta(hours=2))).isoformat(
                       timespec="milliseconds")}
        b = (await ok(cp, "StartTransaction", start_b))["transactionId"]
        assert b != a
        await ok(cp, "MeterValues", meter_values(b, t[3.5], 17_000))
        await cp.send([2, "lost-mv", "MeterValues", meter_values(b, t[3], 19_500)])
        # the connection drops before the charger reads the answer; the charger will send it again
        await eventually(lambda: _count(site, b, 2), what="MeterValues stored")

    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        await ok(cp, "MeterValues", meter_values(b, t[3], 19_500), unique_id="lost-mv")  # re-sent
        again = await ok(cp, "StartTransaction", start_b)  # re-sent too: the same transaction
        assert again["transactionId"] == b
        stop_b = {"transactionId": b, "meterStop": 21_000, "timestamp": t[2.75], "reason": "Local",
                  "transactionData": [{"timestamp": t[2.75], "sampledValue": [energy(21_000, "Transaction.End")]}]}
        await cp.send([2, "lost-stop", "StopTransaction", stop_b])
        await eventually(lambda: _status(api, b, "completed"), what="B completed")

    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        assert await ok(cp, "StopTransaction", stop_b, unique_id="lost-stop") == {}  # re-sent: acknowledged

        books = {t_["transactionId"]: t_ for t_ in (await api.get("/api/v1/transactions", params={
            "chargeBoxId": CHARGER})).json()["transactions"]}
        assert sorted(books) == sorted([a, b])  # nothing twice
        got_a = (await api.get(f"/api/v1/transactions/{a}")).json()
        got_b = (await api.get(f"/api/v1/transactions/{b}")).json()
        assert {k: got_a[k] for k in ("status", "startTime", "stopTime", "durationMinutes", "energyDelivered",
                                      "meterStart", "meterStop", "stopReason")} == {
            "status": "completed", "startTime": t[6], "stopTime": t[4.5], "durationMinutes": 90,
            "energyDelivered": 4.0, "meterStart": 10_000, "meterStop": 14_000, "stopReason": "EVDisconnected"}
        assert {k: got_b[k] for k in ("status", "startTime", "stopTime", "durationMinutes", "energyDelivered")} == {
            "status": "completed", "startTime": t[4], "stopTime": t[2.75], "durationMinutes": 75,
            "energyDelivered": 7.0}
        # every sample is kept at its own time, and the re-sent one only once
        assert [r["timestamp"] for r in await site.store.read(_samples, a)] == [t[5.5], t[5]]
        assert [r["timestamp"] for r in await site.store.read(_samples, b)] == [t[3.5], t[3]]
        row_a = await site.store.read(txq.get, a)
        assert row_a["transaction_data"] is not None and t[6][:19] in row_a["transaction_data"]
        # the connector's live reading is the newest one, not a replayed old sample
        connector = (await api.get(url_charger)).json()["connectors"][1]
        assert (connector["energyWh"], connector["meterUpdatedAt"]) == (21_000, now)

    # The upstream hears of every charge once, in order, with the times it really took.
    def charges(requests: list) -> list[dict]:
        return [r.json for r in receiver.delivered() if r.json["type"] in ("start", "stop_transaction")]

    await receiver.wait_for(lambda _: len(charges(_)) >= 4, timeout=15)
    with trio.move_on_after(0.5):  # a duplicate would arrive right behind the others
        await receiver.wait_for(lambda _: len(charges(_)) > 4)
    events = charges(receiver.requests)
    assert [(e["type"], e["transaction_id"]) for e in events] == [
        ("start", a), ("stop_transaction", a), ("start", b), ("stop_transaction", b)]
    assert (events[1]["kwh"], events[1]["time"]) == (4.0, 90 * 60)
    assert (events[3]["kwh"], events[3]["time"]) == (7.0, 75 * 60)


def _samples(conn, transaction_id: int) -> list:
    return txq.meter_values(conn, transaction_id)


async def _count(site, transaction_id: int, n: int) -> bool:
    return len(await site.store.read(_samples, transaction_id)) == n


async def _status(api, transaction_id: int, status: str) -> bool:
    return (await api.get(f"/api/v1/transactions/{transaction_id}")).json()["status"] == status


async def test_stop_for_a_transaction_we_never_heard_of(site, api) -> None:
    """Its StartTransaction was lost: the charge is still booked, from what StopTransaction carries."""
    begin, end = ago(3), ago(2)
    data = [{"timestamp": begin, "sampledValue": [energy(5_000, "Transaction.Begin")]},
            {"timestamp": end, "sampledValue": [energy(9_500, "Transaction.End")]}]
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        stop = {"transactionId": 4242, "idTag": "TAG-LOST", "meterStop": 9_500, "timestamp": end,
                "reason": "PowerLoss", "transactionData": data}
        assert await ok(cp, "StopTransaction", stop) == {"idTagInfo": {"status": "Accepted"}}
        assert await ok(cp, "StopTransaction", stop) == {"idTagInfo": {"status": "Accepted"}}  # re-sent
    got = (await api.get("/api/v1/transactions/4242")).json()
    assert {k: got[k] for k in ("status", "chargeBoxId", "idTag", "startTime", "stopTime", "meterStart",
                                "meterStop", "energyDelivered", "durationMinutes")} == {
        "status": "completed", "chargeBoxId": CHARGER, "idTag": "TAG-LOST", "startTime": begin, "stopTime": end,
        "meterStart": 5_000, "meterStop": 9_500, "energyDelivered": 4.5, "durationMinutes": 60}
    page = (await api.get("/api/v1/transactions", params={"chargeBoxId": CHARGER})).json()
    assert page["pagination"]["total"] == 1


async def test_a_stop_never_touches_another_chargers_transaction(site, api) -> None:
    """A charger's backlog may carry a transactionId that is, on our books, another charger's charge."""
    async with raw_charger(site, CHARGER) as cp, raw_charger(site, CHARGER_2) as other:
        await cp.boot()
        await other.boot()
        theirs = (await ok(cp, "StartTransaction", {"connectorId": 1, "idTag": "TAG-1", "meterStart": 100,
                                                     "timestamp": ago(1)}))["transactionId"]
        stop = {"transactionId": theirs, "idTag": "TAG-2", "meterStop": 900, "timestamp": ago(0.5),
                "reason": "Local"}
        await ok(other, "StopTransaction", stop)
        await ok(other, "StopTransaction", stop)  # re-sent: still not a second row
        got = (await api.get(f"/api/v1/transactions/{theirs}")).json()
        assert (got["status"], got["chargeBoxId"], got["stopTime"]) == ("active", CHARGER, None)
        # the stray stop is on the books, once, under the charger that sent it
        stray = (await api.get("/api/v1/transactions", params={"chargeBoxId": CHARGER_2})).json()["transactions"]
        assert [(t["status"], t["idTag"]) for t in stray] == [("completed", "TAG-2")]
        # and the real charge still ends normally
        await ok(cp, "StopTransaction", {"transactionId": theirs, "meterStop": 600, "timestamp": ago(0),
                                         "reason": "Local"})
        got = (await api.get(f"/api/v1/transactions/{theirs}")).json()
        assert (got["status"], got["energyDelivered"]) == ("completed", 0.5)


async def test_placeholder_and_out_of_range_ids_are_booked_without_harm(site, api) -> None:
    """Chargers that never got a transactionId stop with a placeholder (-1, 0) or garbage; every such
    charge is booked once, and no id can push our id sequence to its end."""
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        first = {"transactionId": -1, "meterStop": 500, "timestamp": ago(5), "reason": "Local"}
        second = {"transactionId": -1, "meterStop": 900, "timestamp": ago(4), "reason": "Local"}
        last_id = {"transactionId": 2**63 - 1, "meterStop": 1_000, "timestamp": ago(3), "reason": "Local"}
        for stop in (first, second, first, last_id, last_id):  # the repeats are re-sends
            assert await ok(cp, "StopTransaction", stop) == {}
        stops = (await api.get("/api/v1/transactions", params={"chargeBoxId": CHARGER})).json()["transactions"]
        assert sorted(t["stopTime"] for t in stops) == sorted([first["timestamp"], second["timestamp"],
                                                               last_id["timestamp"]])
        assert all(0 < t["transactionId"] < 2**31 for t in stops)
        # new charges still get ids
        started = await ok(cp, "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                    "timestamp": ago(0)})
        assert 0 < started["transactionId"] < 2**31
