"""A charger's connection drops in the middle of a call, in either direction.

- We call the charger (RemoteStartTransaction, any operation) and it vanishes before answering:
  the API answers at once with a clear error instead of hanging, nothing is left locked, and a
  remote start the charger may still act on is not thrown away.
- The charger calls us (StartTransaction) and vanishes before reading the answer: what it sent
  is stored once, and its retry after reconnecting gets the same transactionId.
"""

from __future__ import annotations

import pytest
import trio

from controller.simulators.charger_process import SimulatedCharger
from tests.faults.process import Controller, controller, raw_charger_at, site_config
from tests.support import CHARGER, eventually

TAG = "APP-4711"  # not on the local list: only the remote start makes it acceptable


async def api_post(ctl: Controller, path: str, body: dict) -> tuple[int, dict]:
    async with ctl.client() as client:
        response = await client.post(path, json=body)
    return response.status_code, response.json()


async def transactions(ctl: Controller, charger_id: str = CHARGER) -> list[dict]:
    return (await ctl.api("/api/v1/transactions", chargeBoxId=charger_id))["transactions"]


async def call_and_lose_the_charger(ctl: Controller, sim: SimulatedCharger, path: str, body: dict,
                                    action: str, how: str) -> tuple[int, dict]:
    """POST `path`; once the charger has the CALL, drop its connection (or let it stay silent)."""
    await sim.respond(action, no_answer=True)
    result: dict = {}

    async def post() -> None:
        result["status"], result["body"] = await api_post(ctl, path, body)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(post)
        await sim.next_event("call", action=action, timeout=20)
        if how == "dropped":
            await sim.cmd("disconnect")  # abrupt: TCP closed, no WebSocket close handshake
    return result["status"], result["body"]


@pytest.mark.parametrize("how", ["dropped", "silent"])
async def test_charger_lost_during_remote_start(tmp_path, nursery: trio.Nursery, how: str) -> None:
    config = site_config(tmp_path, accept_unknown_id_tags=False, call_timeout_s=2)
    async with controller(config) as ctl:
        sim = await SimulatedCharger.start(nursery, ctl.url(CHARGER), connectors=2, timeout=30)
        await sim.boot()
        await sim.status(1, "Preparing")
        status, problem = await call_and_lose_the_charger(
            ctl, sim, f"/api/v1/chargers/{CHARGER}/remote-start", {"connectorId": 1, "idTag": TAG},
            "RemoteStartTransaction", how)
        assert (status, problem["error"]) == ((409, "ChargerOffline") if how == "dropped" else (504, "ChargerTimeout"))
        (txn,) = await transactions(ctl)
        assert txn["status"] == "pending"  # the charger got the request: it may still start (until it expires)

        # The charger had accepted; its answer was lost. Back online, it starts the charge.
        await sim.respond("RemoteStartTransaction")  # default answers again
        if how == "dropped":
            await sim.cmd("reconnect")
        await sim.boot()
        answer = await sim.start(connector=1, idTag=TAG, meterStart=0)
        assert answer["transactionId"] == txn["transactionId"]
        assert answer["idTagInfo"]["status"] == "Accepted"  # the tag we asked to start with
        (txn,) = await transactions(ctl)
        assert txn["status"] == "active"

        # Nothing is left locked: the next call to this charger goes through.
        await sim.status(2, "Preparing")
        status, body = await api_post(ctl, f"/api/v1/chargers/{CHARGER}/remote-start",
                                      {"connectorId": 2, "idTag": "APP-2"})
        assert status == 202, body
        started = await sim.next_event("sent", action="StartTransaction", timeout=20)
        assert started["response"]["transactionId"] == body["transactionId"]
        await sim.aclose()


async def test_remote_start_to_a_charger_that_never_got_it_expires(tmp_path, nursery: trio.Nursery) -> None:
    """A lost remote start is pending only until ocpp.remote_start_timeout_s, then failed."""
    config = site_config(tmp_path, call_timeout_s=2, remote_start_timeout_s=1)
    async with controller(config) as ctl:
        sim = await SimulatedCharger.start(nursery, ctl.url(CHARGER), connectors=2, timeout=30)
        await sim.boot()
        await sim.status(1, "Preparing")
        status, _ = await call_and_lose_the_charger(
            ctl, sim, f"/api/v1/chargers/{CHARGER}/remote-start", {"connectorId": 1, "idTag": TAG},
            "RemoteStartTransaction", "dropped")
        assert status == 409

        async def failed() -> dict | None:
            (txn,) = await transactions(ctl)
            return txn if txn["status"] == "failed" else None

        await eventually(failed, timeout=30, what="the lost remote start failed")
        await sim.aclose()


async def test_charger_lost_during_an_operation(tmp_path, nursery: trio.Nursery) -> None:
    config = site_config(tmp_path)
    async with controller(config) as ctl:
        sim = await SimulatedCharger.start(nursery, ctl.url(CHARGER), connectors=2, timeout=30)
        await sim.boot()
        status, problem = await call_and_lose_the_charger(
            ctl, sim, f"/api/v1/chargers/{CHARGER}/operations/ChangeAvailability",
            {"connectorId": 1, "type": "Inoperative"}, "ChangeAvailability", "dropped")
        assert (status, problem["error"]) == (409, "ChargerOffline")
        status, problem = await api_post(ctl, f"/api/v1/chargers/{CHARGER}/operations/ChangeAvailability",
                                         {"connectorId": 1, "type": "Inoperative"})
        assert (status, problem["error"]) == (409, "ChargerOffline")  # offline now: no waiting either
        await sim.respond("ChangeAvailability")
        await sim.cmd("reconnect")
        status, answer = await api_post(ctl, f"/api/v1/chargers/{CHARGER}/operations/ChangeAvailability",
                                        {"connectorId": 1, "type": "Inoperative"})
        assert (status, answer) == (200, {"status": "Accepted"})
        await sim.aclose()


async def test_start_transaction_then_gone_before_the_answer(tmp_path) -> None:
    config = site_config(tmp_path)
    start = {"connectorId": 1, "idTag": "TAG-LEFT", "timestamp": "2024-05-01T08:00:00Z", "meterStart": 4200}
    async with controller(config) as ctl:
        async with raw_charger_at(ctl.url(CHARGER)) as cp:
            await cp.boot()
            await cp.send([2, "start-1", "StartTransaction", start])
            # gone at once: it closes without reading the answer
        stored = await eventually(lambda: transactions(ctl), timeout=20, what="the StartTransaction stored")
        assert len(stored) == 1 and stored[0]["idTag"] == "TAG-LEFT" and stored[0]["status"] == "active"

        async with raw_charger_at(ctl.url(CHARGER)) as cp:  # back: it resends the unanswered call
            await cp.boot()
            reply = await cp.call("StartTransaction", start, unique_id="start-2")
            assert reply[0] == 3 and reply[2]["transactionId"] == stored[0]["transactionId"]
        assert [t["transactionId"] for t in await transactions(ctl)] == [stored[0]["transactionId"]]


async def test_calls_read_before_a_drop_are_handled_under_load(tmp_path) -> None:
    """Chargers that vanish right after sending StartTransaction, while others keep the disk busy."""
    config = site_config(tmp_path)
    async with controller(config) as ctl:
        stop = trio.Event()

        async def busy(charger_id: str) -> None:
            async with raw_charger_at(ctl.url(charger_id)) as cp:
                n = 0
                while not stop.is_set():
                    n += 1
                    reply = await cp.call("MeterValues", {"connectorId": 1, "meterValue": [
                        {"timestamp": "2024-05-01T08:00:00Z", "sampledValue": [{"value": str(n)}]}]})
                    assert reply[0] == 3

        async def vanish(charger_id: str) -> None:
            async with raw_charger_at(ctl.url(charger_id)) as cp:
                await cp.send([2, "s1", "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                             "timestamp": "2024-05-01T08:00:00Z"}])

        async with trio.open_nursery() as nursery:
            for n in range(6):
                nursery.start_soon(busy, f"BUSY-{n}")
            for n in range(20):
                await vanish(f"GONE-{n}")
            stop.set()

        async def all_stored() -> bool:
            return all([await transactions(ctl, f"GONE-{n}") for n in range(20)])

        await eventually(all_stored, timeout=20, what="every StartTransaction of a vanished charger stored")
