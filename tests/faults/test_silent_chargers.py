"""Chargers that stop talking, and handshakes that never start.

A charger whose cable is cut (no FIN) used to show `online` for ever, and a remote start to it
waited the whole call timeout. Now a charger that has not been heard from for `[ocpp]
offline_after_s` (no frame, no answer to our WebSocket ping) is declared offline: the upstream
hears it, its connection is closed, remote starts are refused at once. A charger that is quiet but
alive answers the pings and stays online.

And a handshake alone lists nothing: 3,000 connections that never say a word used to become 3,000
pending chargers. An unknown charger is listed (and stored) once it has booted.
"""

from __future__ import annotations

import sqlite3

import trio
from trio_websocket import open_websocket_url

from tests.faults.ocpp_clients import BOOT, CutCableCharger, fault_config, status_payload, upstream_toml
from tests.support import CHARGER, CHARGER_2, api_client, eventually, ocpp_url, raw_charger, running_site
from tests.upstream.receiver import Receiver

OFFLINE_AFTER_S = 1.0
CALL_TIMEOUT_S = 5.0  # what a remote start to a silent charger used to wait


def connection_events(receiver: Receiver, charger_id: str) -> list[bool]:
    return [r.json["online"] for r in receiver.requests if r.json["type"] == "connection"
            and r.json["chargebox"] == charger_id]


async def online(api, charger_id: str) -> bool:
    return (await api.get(f"/api/v1/chargers/{charger_id}")).json()["online"]


async def offline(api, charger_id: str) -> bool:
    return not await online(api, charger_id)


async def test_a_charger_with_its_cable_cut_goes_offline(tmp_path, receiver: Receiver) -> None:
    config = fault_config(tmp_path, ocpp={"offline_after_s": OFFLINE_AFTER_S}, call_timeout_s=CALL_TIMEOUT_S,
                          extra=upstream_toml(receiver))
    async with running_site(config) as site, api_client(site) as api:
        cut = await CutCableCharger.connect(site.ocpp_port, CHARGER)
        async with raw_charger(site, CHARGER_2) as quiet:  # alive, says nothing after its boot
            assert (await cut.call("BootNotification", BOOT))[2]["status"] == "Accepted"
            assert (await cut.call("StatusNotification", status_payload(1, "Preparing")))[0] == 3
            await quiet.boot()
            assert await online(api, CHARGER) and await online(api, CHARGER_2)
            cut_at = trio.current_time()  # from here on it reads and answers nothing

            await eventually(lambda: offline(api, CHARGER), timeout=OFFLINE_AFTER_S * 6,
                             what="the silent charger offline")
            assert trio.current_time() - cut_at < OFFLINE_AFTER_S * 6
            asked_at = trio.current_time()
            response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start",
                                      json={"connectorId": 1, "idTag": "TAG"})
            assert response.status_code == 409 and response.json()["error"] == "ChargerOffline", response.text
            assert trio.current_time() - asked_at < CALL_TIMEOUT_S / 5  # at once, not after the call timeout
            with trio.fail_after(10):
                await receiver.wait_for(lambda r: connection_events(receiver, CHARGER) == [True, False])

            await trio.sleep(OFFLINE_AFTER_S * 2)  # the quiet one answers our pings: still online
            assert await online(api, CHARGER_2) and connection_events(receiver, CHARGER_2) == [True]
            assert (await quiet.call("Heartbeat", {}))[0] == 3
        await cut.aclose()


async def test_handshakes_that_never_boot_list_nothing(tmp_path) -> None:
    config = fault_config(tmp_path, unknown_chargers="pending")
    silent = [f"SILENT-{n}" for n in range(30)]
    async with running_site(config) as site, api_client(site) as api:
        async with trio.open_nursery() as nursery:
            opened = trio.Semaphore(0)
            done = trio.Event()

            async def connect(charger_id: str) -> None:
                async with open_websocket_url(ocpp_url(site, charger_id), subprotocols=["ocpp1.6"]):
                    opened.release()
                    await done.wait()

            for charger_id in silent:
                nursery.start_soon(connect, charger_id)
            for _ in silent:
                await opened.acquire()
            listed = {c["chargeBoxId"] for c in (await api.get("/api/v1/chargers")).json()["chargers"]}
            assert listed == {CHARGER, CHARGER_2}, listed
            assert (await api.get("/api/v1/chargers/SILENT-0")).status_code == 404
            async with raw_charger(site, "TALKER") as talker:  # one that boots is listed, pending approval
                assert (await talker.call("BootNotification", BOOT))[2]["status"] == "Pending"
                shown = (await api.get("/api/v1/chargers/TALKER")).json()
                assert shown["registration"] == "pending" and shown["online"]
            done.set()
        assert not (await api.get("/api/v1/chargers/TALKER")).json()["online"]
        listed = {c["chargeBoxId"] for c in (await api.get("/api/v1/chargers")).json()["chargers"]}
        assert listed == {CHARGER, CHARGER_2, "TALKER"}, listed
    with sqlite3.connect(site.store.path) as db:
        stored = {row[0] for row in db.execute("SELECT id FROM chargers")}
        events = db.execute("SELECT count(*) FROM outbox WHERE charger_id LIKE 'SILENT-%'").fetchone()[0]
    assert stored == {"TALKER"} and events == 0, stored
