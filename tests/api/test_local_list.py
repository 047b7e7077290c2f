"""Chargers' local authorization lists kept in step with the id tags, against the simulated 1.6
charger (a subprocess with its own local list) over real sockets."""

from __future__ import annotations

import pytest
import trio

from controller.charger_jobs import SETTLE_S
from controller.simulators.charger_process import SimulatedCharger
from tests.support import CHARGER, api_client, eventually, make_config, ocpp_url, running_site

pytestmark = pytest.mark.site(local_list="push")
TAGS = {"CARD-A": "Accepted", "CARD-B": "Blocked"}


async def _put_tags(api, tags: dict[str, str]) -> None:
    for tag, status in tags.items():
        response = await api.put(f"/api/v1/id-tags/{tag}", json={"status": status})
        assert response.status_code == 200, response.text


async def _local_list(api, charger_id: str = CHARGER) -> dict:
    return (await api.get(f"/api/v1/chargers/{charger_id}")).json()["localList"]


async def _synced(api, version: int) -> dict:
    async def check():
        local_list = await _local_list(api)
        return local_list if local_list["state"] == "synced" and local_list["version"] == version else None
    return await eventually(check, what=f"local list synced at version {version}")


async def _booted(site, nursery, **options) -> SimulatedCharger:
    sim = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2, **options)
    assert (await sim.boot())["status"] == "Accepted"
    return sim


async def test_full_list_at_boot_then_each_change(site, api, nursery):
    await _put_tags(api, TAGS)
    sim = await _booted(site, nursery)
    assert (await sim.next_event("call", action="GetLocalListVersion"))["payload"] == {}
    full = await sim.next_event("call", action="SendLocalList")
    assert full["payload"]["updateType"] == "Full" and full["payload"]["listVersion"] == 1
    listed = await _synced(api, 1)
    assert listed["maxLength"] == 100 and listed["syncedAt"] is not None
    assert (await sim.state())["localList"] == {"CARD-A": {"status": "Accepted"}, "CARD-B": {"status": "Blocked"}}

    # a new tag, a changed one and a deleted one each go out as a differential update
    await _put_tags(api, {"CARD-C": "Accepted"})
    added = await sim.next_event("call", action="SendLocalList")
    assert added["payload"] == {"listVersion": 2, "updateType": "Differential",
                                "localAuthorizationList": [{"idTag": "CARD-C", "idTagInfo": {"status": "Accepted"}}]}
    await _synced(api, 2)
    assert (await api.patch("/api/v1/id-tags/CARD-A", json={"status": "Blocked"})).status_code == 200
    await _synced(api, 3)
    assert (await api.delete("/api/v1/id-tags/CARD-B")).status_code == 204
    removed = await sim.next_event(lambda e: e["event"] == "call" and e["action"] == "SendLocalList"
                                   and e["payload"]["listVersion"] == 4)
    assert removed["payload"]["localAuthorizationList"] == [{"idTag": "CARD-B"}]
    await _synced(api, 4)
    assert (await sim.state())["localList"] == {"CARD-A": {"status": "Blocked"}, "CARD-C": {"status": "Accepted"}}


async def test_a_charger_that_lost_its_list_gets_it_again_at_boot(site, api, nursery):
    await _put_tags(api, TAGS)
    sim = await _booted(site, nursery)
    await _synced(api, 1)
    await sim.cmd("locallist", forget=True)
    await sim.cmd("disconnect")
    await sim.cmd("reconnect")
    await sim.boot()
    await _synced(api, 2)
    assert set((await sim.state())["localList"]) == set(TAGS)


async def _away_while_a_tag_changes(site, api, nursery) -> SimulatedCharger:
    """A charger synced at version 1 that disconnects; CARD-C is added while it is away."""
    await _put_tags(api, TAGS)
    sim = await _booted(site, nursery)
    await _synced(api, 1)
    await sim.cmd("disconnect")
    await eventually(lambda: not site.chargers.get(CHARGER).online, what="charger offline")
    await _put_tags(api, {"CARD-C": "Accepted"})
    await eventually(lambda: _state_is(api, "stale"), what="stale")  # nothing could be sent yet
    return sim


async def test_changes_made_while_offline_are_sent_on_reconnect(site, api, nursery):
    sim = await _away_while_a_tag_changes(site, api, nursery)
    await sim.cmd("reconnect")  # no boot: a reconnection alone brings it up to date
    await _synced(api, 2)
    assert set((await sim.state())["localList"]) == {"CARD-A", "CARD-B", "CARD-C"}


async def test_not_supported_is_remembered(site, api, nursery):
    await _put_tags(api, TAGS)
    sim = await _booted(site, nursery, response_timeout=5)
    await sim.respond("SendLocalList", payload={"status": "NotSupported"})
    await eventually(lambda: _state_is(api, "unsupported"), what="unsupported")
    await _put_tags(api, {"CARD-C": "Accepted"})
    await sim.cmd("disconnect")
    await sim.cmd("reconnect")
    await sim.boot()
    await trio.sleep(SETTLE_S * 1.5)  # past the moment a boot's check would call
    calls = [e for e in sim.events if e["event"] == "call" and e["action"] in ("SendLocalList", "GetLocalListVersion")]
    assert [c["action"] for c in calls] == ["GetLocalListVersion", "SendLocalList"]  # only the first time


async def _state_is(api, state: str) -> bool:
    return (await _local_list(api))["state"] == state


async def test_a_charger_without_a_list_says_version_minus_one(site, api, nursery):
    sim = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
    await sim.cmd("locallist", supported=False)
    await sim.boot()
    await eventually(lambda: _state_is(api, "unsupported"), what="unsupported")
    assert not [e for e in sim.events if e["event"] == "call" and e["action"] == "SendLocalList"]


async def test_version_mismatch_is_answered_with_the_whole_list(site, api, nursery):
    await _put_tags(api, TAGS)
    sim = await _booted(site, nursery)
    await _synced(api, 1)
    await sim.cmd("locallist", version=50)  # the charger's version moved on without us
    await _put_tags(api, {"CARD-C": "Accepted"})
    listed = await _synced(api, 51)
    assert listed["detail"] is None
    sends = [e["payload"] for e in sim.events if e["event"] == "call" and e["action"] == "SendLocalList"]
    assert [(p["listVersion"], p["updateType"]) for p in sends] == [(1, "Full"), (2, "Differential"), (51, "Full")]
    assert set((await sim.state())["localList"]) == {"CARD-A", "CARD-B", "CARD-C"}


async def test_a_list_longer_than_the_charger_takes_goes_in_parts(site, api, nursery):
    tags = {f"CARD-{n}": "Accepted" for n in range(5)}
    await _put_tags(api, tags)
    sim = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
    await sim.cmd("locallist", maxLength=2)
    await sim.boot()
    listed = await _synced(api, 3)
    assert listed["maxLength"] == 2
    sends = [e["payload"] for e in sim.events if e["event"] == "call" and e["action"] == "SendLocalList"]
    assert [(p["updateType"], len(p["localAuthorizationList"])) for p in sends] == [
        ("Full", 2), ("Differential", 2), ("Differential", 1)]
    assert set((await sim.state())["localList"]) == set(tags)


async def test_a_refused_whole_list_is_shown_as_failed(site, api, nursery):
    await _put_tags(api, TAGS)
    sim = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
    await sim.respond("SendLocalList", payload={"status": "Failed"})
    await sim.boot()
    await eventually(lambda: _state_is(api, "failed"), what="failed")
    assert (await _local_list(api))["detail"] == "the charger answered Failed"
    sends = [e for e in sim.events if e["event"] == "call" and e["action"] == "SendLocalList"]
    assert len(sends) == 2  # retried once with the whole list
    # the next boot tries again, and a charger that takes it now is in step
    await sim.respond("SendLocalList")
    await sim.boot()
    await _synced(api, 1)


@pytest.mark.site(local_list="off")
async def test_off_leaves_lists_alone(site, api, nursery):
    await _put_tags(api, TAGS)
    sim = await _booted(site, nursery)
    await _put_tags(api, {"CARD-C": "Accepted"})
    await trio.sleep(SETTLE_S * 1.5)  # past the moment a boot's check would call
    assert (await _local_list(api))["state"] == "unknown"
    assert not [e for e in sim.events if e["event"] == "call"]


async def test_a_201_station_gets_the_list_as_id_tokens(site, api, nursery):
    await _put_tags(api, TAGS)
    station = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2, version="2.0.1")
    assert (await station.boot())["status"] == "Accepted"
    listed = await _synced(api, 1)
    assert listed["maxLength"] == 100  # LocalAuthListCtrlr.ItemsPerMessage
    assert (await station.state())["localList"] == {
        "CARD-A": {"type": "ISO14443", "idTokenInfo": {"status": "Accepted"}},
        "CARD-B": {"type": "ISO14443", "idTokenInfo": {"status": "Blocked"}}}
    assert (await api.delete("/api/v1/id-tags/CARD-A")).status_code == 204
    await _synced(api, 2)
    assert list((await station.state())["localList"]) == ["CARD-B"]


async def test_a_charger_that_missed_changes_gets_the_list_after_a_restart(tmp_path, nursery):
    """Staleness is in the books: a change made while the charger was away reaches it even when
    the controller restarted in between."""
    config = make_config(tmp_path, local_list="push")
    async with running_site(config) as site, api_client(site) as api:
        sim = await _away_while_a_tag_changes(site, api, nursery)
    async with running_site(config) as site, api_client(site) as api:
        assert (await _local_list(api))["state"] == "stale"
        await sim.cmd("reconnect", url=ocpp_url(site, CHARGER))
        await sim.boot()
        await _synced(api, 2)
        assert set((await sim.state())["localList"]) == {"CARD-A", "CARD-B", "CARD-C"}
