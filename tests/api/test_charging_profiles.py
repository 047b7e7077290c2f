"""Charging profiles as records: stored, sent, listed, cleared and sent again after a reboot,
against the simulated 1.6 charger (which holds the profiles and answers GetCompositeSchedule)."""

from __future__ import annotations

import pytest

from controller.simulators.charger_process import SimulatedCharger
from tests.support import CHARGER, eventually, ocpp_url

PATH = f"/api/v1/chargers/{CHARGER}/charging-profiles"


def cap(profile_id: int = 2001, amps: float = 10.0, stack_level: int = 1) -> dict:
    """A ChargePointMaxProfile: the whole charger at most `amps` per phase."""
    return {"connectorId": 0, "csChargingProfiles": {
        "chargingProfileId": profile_id, "stackLevel": stack_level, "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": amps}]},
    }}


@pytest.fixture
def sim(booted_charger):
    return booted_charger


async def installed(sim) -> set[int]:
    return {int(pid) for pid in (await sim.state())["installedProfiles"]}


async def test_set_list_composite_schedule_and_clear(site, api, sim):
    response = await api.post(PATH, json=cap())
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["chargingProfileId"], body["status"], body["purpose"], body["stackLevel"]) == (
        2001, "Accepted", "ChargePointMaxProfile", 1)
    assert body["csChargingProfiles"] == cap()["csChargingProfiles"]
    call = await sim.next_event("call", action="SetChargingProfile")
    assert call["payload"] == cap()
    assert await installed(sim) == {2001}

    listed = (await api.get(PATH)).json()["chargingProfiles"]
    assert [(p["chargingProfileId"], p["status"]) for p in listed] == [(2001, "Accepted")]

    # the charger reports the limit in force from what it holds
    schedule = await api.post(f"/api/v1/chargers/{CHARGER}/operations/GetCompositeSchedule",
                              json={"connectorId": 0, "duration": 3600})
    assert schedule.status_code == 200, schedule.text
    assert schedule.json()["status"] == "Accepted"
    assert schedule.json()["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 10.0

    # the same id again replaces the record (and the charger's profile)
    assert (await api.post(PATH, json=cap(amps=8.0))).json()["csChargingProfiles"]["chargingSchedule"][
        "chargingSchedulePeriod"][0]["limit"] == 8.0
    assert len((await api.get(PATH)).json()["chargingProfiles"]) == 1

    cleared = await api.delete(f"{PATH}/2001")
    assert cleared.status_code == 200, cleared.text
    assert cleared.json() == {"chargingProfileId": 2001, "status": "Accepted"}
    assert (await sim.next_event("call", action="ClearChargingProfile"))["payload"] == {"id": 2001}
    assert (await api.get(PATH)).json()["chargingProfiles"] == []
    assert await installed(sim) == set()
    assert (await api.delete(f"{PATH}/2001")).status_code == 404


async def test_stored_profiles_are_sent_again_after_a_boot(site, api, sim):
    assert (await api.post(PATH, json=cap())).status_code == 201
    await sim.cmd("forget_profiles")  # a charger that lost its profiles in a reboot
    assert await installed(sim) == set()
    await sim.boot()
    await eventually(lambda: _installed_has(sim, 2001), what="profile sent again")


async def _installed_has(sim, profile_id: int) -> bool:
    return profile_id in await installed(sim)


async def test_a_profile_set_while_offline_is_sent_at_the_next_boot(site, api, nursery):
    response = await api.post(PATH, json=cap(2002))
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending" and response.json()["sentAt"] is None
    sim = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
    await sim.boot()
    await eventually(lambda: _installed_has(sim, 2002), what="pending profile sent")
    assert (await api.get(PATH)).json()["chargingProfiles"][0]["status"] == "Accepted"


async def test_a_profile_the_charger_rejects_is_kept_with_its_answer(site, api, sim):
    tx_profile = {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 2003, "stackLevel": 1, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6}]},
    }}
    response = await api.post(PATH, json=tx_profile)  # no transaction runs: the charger refuses it
    assert response.status_code == 201 and response.json()["status"] == "Rejected"


@pytest.mark.parametrize(("change", "field"), [
    (lambda b: b["csChargingProfiles"].update(chargingProfilePurpose="Bogus"), "csChargingProfiles/chargingProfilePurpose"),
    (lambda b: b["csChargingProfiles"].pop("chargingSchedule"), "chargingSchedule"),
    (lambda b: b["csChargingProfiles"].update(chargingProfileId=1), "csChargingProfiles.chargingProfileId"),
    (lambda b: b["csChargingProfiles"].update(stackLevel=0), "csChargingProfiles.stackLevel"),
    (lambda b: b.update(connectorId=9), "connectorId"),
    (lambda b: b.update(connectorId="1"), "connectorId"),
])
async def test_bad_profiles_answer_422_naming_the_field(site, api, change, field):
    body = cap()
    change(body)
    response = await api.post(PATH, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["message"]
    assert (await api.get(PATH)).json()["chargingProfiles"] == []


async def test_unknown_charger_is_404(site, api):
    assert (await api.post("/api/v1/chargers/NOPE/charging-profiles", json=cap())).status_code == 404
    assert (await api.get("/api/v1/chargers/NOPE/charging-profiles")).status_code == 404


MANAGED = """
[[chargers]]
id = "LM-1"
connectors = 1
circuit = "main"

[[circuits]]
id = "main"
max_current_a = 32
"""


@pytest.mark.site(extra=MANAGED)
async def test_a_load_managed_charger_takes_only_capping_profiles(site, api):
    default = cap()
    default["connectorId"] = 1
    default["csChargingProfiles"].update(chargingProfilePurpose="TxDefaultProfile", chargingProfileKind="Relative")
    refused = await api.post("/api/v1/chargers/LM-1/charging-profiles", json=default)
    assert refused.status_code == 409 and refused.json()["error"] == "LoadManaged", refused.text
    capped = await api.post("/api/v1/chargers/LM-1/charging-profiles", json=cap())
    assert capped.status_code == 201 and capped.json()["status"] == "pending"  # offline: sent when it boots
