"""300 chargers reconnecting at the same moment after a controller restart.

After a power cut or an update every charger on a site redials within seconds. The controller
must take them all back (BootNotification and StatusNotification answered, all online), keep what
it knew about each from before the restart, and let a charge begun before the restart end normally.
"""

from __future__ import annotations

import logging

import trio
import trio.testing
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.faults.ocpp_clients import fault_config, free_port, status_payload
from tests.support import RawCharger, api_client, running_site

N = 300
IDS = [f"STORM-{i:03d}" for i in range(N)]
CHARGING = IDS[0]  # begins a transaction before the restart and stops it after
T_START = "2026-02-06T10:00:00.000Z"
T_STOP = "2026-02-06T11:30:00.000Z"


def before_status(charger_id: str) -> str:
    """What each charger reports before the restart (varied, so persistence is checked per charger)."""
    return "Charging" if charger_id == CHARGING else ("Available", "Preparing", "Unavailable")[int(charger_id[-3:]) % 3]


async def test_300_chargers_reconnect_at_once_after_a_restart(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    port = free_port()
    # all chargers dial from 127.0.0.1 here; on a real site they have their own addresses
    config = fault_config(tmp_path, ocpp={"max_connections_per_address": 1000}, unknown_chargers="accept",
                          ocpp_listen=f"127.0.0.1:{port}", call_timeout_s=10)
    closes: dict[str, int | None] = {}
    transaction_id: int | None = None

    # -- before the restart: every charger boots and reports a status; one starts charging
    async with trio.open_nursery() as clients:
        async with running_site(config) as site:
            booted = trio.Semaphore(0)

            async def first_life(charger_id: str) -> None:
                async with open_websocket_url(f"ws://127.0.0.1:{port}/ocpp/{charger_id}",
                                              subprotocols=["ocpp1.6"], connect_timeout=30) as ws:
                    cp = RawCharger(ws)
                    assert (await cp.boot())["status"] == "Accepted"
                    await cp.status(1, before_status(charger_id))
                    if charger_id == CHARGING:
                        nonlocal transaction_id
                        reply = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "STORMTAG",
                                                                   "meterStart": 1000, "timestamp": T_START})
                        transaction_id = reply[2]["transactionId"]
                    booted.release()
                    try:
                        while True:  # hold the connection until the controller goes away
                            await ws.get_message()
                    except ConnectionClosed as closed:
                        closes[charger_id] = closed.reason.code

            for charger_id in IDS:
                clients.start_soon(first_life, charger_id)
            with trio.fail_after(60):
                for _ in IDS:
                    await booted.acquire()
            assert site.chargers.online_count() == N
        # leaving running_site: the controller shuts down and says goodbye to everyone
    assert closes == {charger_id: 1001 for charger_id in IDS}
    assert transaction_id is not None

    # -- the restarted controller: same data directory, same port
    async with running_site(config) as site, api_client(site) as api:
        listed = {c["chargeBoxId"]: c for c in (await api.get("/api/v1/chargers")).json()["chargers"]}
        storm = {cid: c for cid, c in listed.items() if cid.startswith("STORM-")}
        assert set(storm) == set(IDS)
        assert not any(c["online"] for c in storm.values())
        # what each charger last said survived the restart
        assert {cid: c["connectors"][-1]["status"] for cid, c in storm.items()} == {
            cid: before_status(cid) for cid in IDS}
        assert all(c["registration"] == "accepted" and c["vendor"] == "raw" for c in storm.values())
        transaction = (await api.get(f"/api/v1/transactions/{transaction_id}")).json()
        assert (transaction["status"], transaction["startTime"]) == ("active", T_START)

        go = trio.Event()
        ready = trio.Semaphore(0)
        release = trio.Event()
        connected: dict[str, RawCharger] = {}
        answers: dict[str, tuple[dict, list]] = {}

        async def second_life(charger_id: str) -> None:
            await go.wait()
            async with open_websocket_url(f"ws://127.0.0.1:{port}/ocpp/{charger_id}",
                                          subprotocols=["ocpp1.6"], connect_timeout=30) as ws:
                cp = connected[charger_id] = RawCharger(ws)
                boot = await cp.boot()
                status = await cp.call("StatusNotification", status_payload(1, "Available" if charger_id != CHARGING
                                                                              else "Charging"))
                answers[charger_id] = (boot, status)
                ready.release()
                await release.wait()

        async with trio.open_nursery() as clients:
            for charger_id in IDS:
                clients.start_soon(second_life, charger_id)
            await trio.testing.wait_all_tasks_blocked()
            go.set()  # everyone dials at the same moment
            with trio.fail_after(60):
                for _ in IDS:
                    await ready.acquire()

            assert all(boot["status"] == "Accepted" for boot, _ in answers.values()), answers
            assert all(status == [3, status[1], {}] for _, status in answers.values()), answers
            listed = {c["chargeBoxId"]: c for c in (await api.get("/api/v1/chargers")).json()["chargers"]}
            assert all(listed[cid]["online"] for cid in IDS)
            assert all(listed[cid]["connectors"][-1]["status"] == ("Charging" if cid == CHARGING else "Available")
                       for cid in IDS)

            # the charge begun before the restart ends normally on the new controller
            cp = connected[CHARGING]
            stop = await cp.call("StopTransaction", {"transactionId": transaction_id, "meterStop": 8500,
                                                      "timestamp": T_STOP, "reason": "Local"})
            assert stop[0] == 3, stop
            transaction = (await api.get(f"/api/v1/transactions/{transaction_id}")).json()
            assert (transaction["status"], transaction["energyDelivered"], transaction["durationMinutes"]) == (
                "completed", 7.5, 90)
            # a second transaction was never created by the storm
            page = (await api.get("/api/v1/transactions", params={"chargeBoxId": CHARGING})).json()
            assert [t["transactionId"] for t in page["transactions"]] == [transaction_id]
            release.set()

    problems = [r for r in caplog.records if r.levelno >= logging.ERROR
                or (r.name.startswith("evedge") and "refused" in r.getMessage())]
    assert not problems, [r.getMessage() for r in problems[:5]]
