"""The central system's calls through the site (local-controller mode): they reach the charger and
its answer goes back; remote starts and stops are booked as ours; a charging profile becomes a
bound load management never exceeds; what the site must keep is refused with a reason."""

from __future__ import annotations


from controller.simulators.charger_process import SimulatedCharger
from tests.local_controller.support import call_charger, central_system, local_config
from tests.support import CHARGER, api_client, eventually, ocpp_url, running_site, unique


async def test_remote_start_and_stop_from_the_central_system_are_booked_under_our_ids(tmp_path):
    tag = unique()
    async with central_system() as cs:
        async with running_site(local_config(tmp_path, cs.port)) as site, \
                SimulatedCharger.open(ocpp_url(site, CHARGER)) as sim, api_client(site) as api:
            await sim.boot()
            await sim.status(1, "Preparing")
            await cs.next_event(event="connected", charger=CHARGER)
            reply = await call_charger(cs, CHARGER, "RemoteStartTransaction", {"connectorId": 1, "idTag": tag})
            assert reply["ok"] and reply["result"] == {"status": "Accepted"}
            start = await sim.next_event("sent", action="StartTransaction")  # the charger started the charge
            ours = start["response"]["transactionId"]
            assert start["response"]["idTagInfo"]["status"] == "Accepted"  # a start we asked for
            booked = (await api.get(f"/api/v1/transactions/{ours}")).json()
            assert booked["mode"] == "remote" and booked["remoteStarted"] and booked["idTag"] == tag
            assert (await cs.next_call("StartTransaction"))["idTag"] == tag

            await eventually(lambda: _mapped(site, ours), what="the central system's id mapped")
            reply = await call_charger(cs, CHARGER, "RemoteStopTransaction", {"transactionId": 1001})
            assert reply["result"] == {"status": "Accepted"}
            remote_stop = await sim.next_event("call", action="RemoteStopTransaction")
            assert remote_stop["payload"]["transactionId"] == ours  # the charger hears our id
            assert (await cs.next_call("StopTransaction"))["transactionId"] == 1001
            assert (await call_charger(cs, CHARGER, "RemoteStopTransaction", {"transactionId": 4242}))["result"] == {
                "status": "Rejected"}  # not a charge of this charger


async def _mapped(site, transaction_id: int) -> bool:
    return await site.forwarder.ids.upstream(transaction_id) is not None


async def test_central_system_calls_reach_the_charger_and_what_the_site_keeps_is_refused(tmp_path):
    async with central_system() as cs:
        config = local_config(tmp_path, cs.port, ocpp='refused_actions = ["Reset"]')
        async with running_site(config) as site, SimulatedCharger.open(ocpp_url(site, CHARGER)) as sim:
            await sim.boot()
            await cs.next_event(event="connected", charger=CHARGER)
            reply = await call_charger(cs, CHARGER, "GetConfiguration", {"key": ["HeartbeatInterval"]})
            assert reply["ok"] and reply["result"]["configuration_key"][0]["key"] == "HeartbeatInterval"
            # a trigger: the charger answers, then sends the status, which goes up
            reply = await call_charger(cs, CHARGER, "TriggerMessage",
                                       {"requestedMessage": "StatusNotification", "connectorId": 1})
            assert reply["result"] == {"status": "Accepted"}
            assert (await cs.next_call("StatusNotification"))["connectorId"] == 1

            refused = await call_charger(cs, CHARGER, "ChangeConfiguration",
                                         {"key": "AuthorizationKey", "value": "0123456789abcdef"})
            assert not refused["ok"] and "SecurityError" in refused["error"] and "kept by the site" in refused["error"]
            refused = await call_charger(cs, CHARGER, "Reset", {"type": "Hard"})
            assert not refused["ok"] and "refused_actions" in refused["error"]
            assert not [e for e in sim.events if e.get("action") in ("ChangeConfiguration", "Reset")]
            allowed = await call_charger(cs, CHARGER, "ChangeConfiguration", {"key": "MeterValueSampleInterval",
                                                                               "value": "30"})
            assert allowed["ok"], allowed


LOAD = """
[[circuits]]
id = "main"
max_current_a = 16
margin_a = 0

[load_management]
interval_s = 0.1
increase_delay_s = 0
"""


def _profile(profile_id: int, limit: float, unit: str = "A") -> dict:
    return {"connectorId": 0, "csChargingProfiles": {
        "chargingProfileId": profile_id, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": unit, "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}}}


async def test_a_profile_from_the_central_system_is_a_bound_under_the_local_limit(tmp_path):
    async with central_system() as cs:
        config = local_config(tmp_path, cs.port, chargers='circuit = "main"\nmax_current_a = 32\n', extra=LOAD)
        async with running_site(config) as site, SimulatedCharger.open(ocpp_url(site, CHARGER)) as sim:
            await sim.boot()
            await sim.status(1, "Preparing")
            await sim.start_transaction(1, unique())
            await eventually(lambda: sim.limits.get(1) == 16, what="the circuit's 16 A")
            reply = await call_charger(cs, CHARGER, "SetChargingProfile", _profile(1, 10))
            assert reply["result"] == {"status": "Accepted"}
            await eventually(lambda: sim.limits.get(1) == 10, what="the central system's 10 A")
            # 11 kW on three phases is 15.9 A: within the circuit's 16 A, so the bound
            await call_charger(cs, CHARGER, "SetChargingProfile", _profile(1, 11000, "W"))
            await eventually(lambda: sim.limits.get(1) == 15, what="11 kW as whole amps")
            # more than the site can give: the site's own limit holds
            await call_charger(cs, CHARGER, "SetChargingProfile", _profile(1, 40))
            await eventually(lambda: sim.limits.get(1) == 16, what="the circuit's 16 A again")
            assert not [e for e in sim.events if e.get("event") == "call" and e.get("action") == "SetChargingProfile"
                        and e["payload"]["csChargingProfiles"]["chargingProfilePurpose"] == "ChargePointMaxProfile"]
            cleared = await call_charger(cs, CHARGER, "ClearChargingProfile", {"id": 1})
            assert cleared["result"] == {"status": "Accepted"}
