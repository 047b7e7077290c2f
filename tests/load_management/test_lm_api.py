"""The circuits API (every response checked against the OpenAPI document), the limits on the
wire (a raw charger sees schema-valid SetChargingProfile frames), and the Prometheus figures."""

from __future__ import annotations

from datetime import timedelta

import trio
from prometheus_client.parser import text_string_to_metric_families

from controller.config import load_config
from controller.csms import frames
from controller.csms.v16 import schemas as schemas16
from controller.csms.v201 import schemas as schemas201
from controller.simulators.meter import MeterServer, SimulatedMeter
from controller.timefmt import iso, utcnow
from tests.support import API_KEY, api_client, eventually, raw_charger, running_site

from .closed_loop import charger_toml, site_toml

CIRCUITS = """
[[circuits]]
id = "main"
max_current_a = 40
margin_a = 2
meter = "grid"
meter_timeout_s = 2

[[circuits]]
id = "garage"
max_current_a = 16
margin_a = 0
parent = "main"
"""


def _site(tmp_path, port: int):
    path = tmp_path / "site.toml"
    chargers = charger_toml("CP-1") + charger_toml("G-1", circuit="garage", phases=1, phase="L3")
    text = site_toml(tmp_path / "data", port, CIRCUITS, chargers)
    text = text.replace(f'api_keys = ["{API_KEY}"]', f'api_keys = ["{API_KEY}"]\nread_only_api_keys = ["ro-key"]')
    path.write_text(text, encoding="utf-8")
    return load_config(path)


async def test_circuits_read_write_and_survive_a_restart(tmp_path):
    with MeterServer(SimulatedMeter("sdm630", current_a=[10, 11, 12], phase_power_w=[2300, 2530, 2760])) as server:
        config = _site(tmp_path, server.port)
        async with running_site(config) as site, api_client(site) as api:
            async def measured():
                body = (await api.get("/api/v1/circuits/main")).json()
                return body if body["measuredA"] == [10, 11, 12] else None

            main = await eventually(measured, what="the meter's reading in the API")
            assert main["meterState"] == "ok" and main["limitA"] == 40 and main["override"] is None
            assert main["baseLoadA"] == [10, 11, 12] and main["availableA"] == [28, 27, 26]
            listing = (await api.get("/api/v1/circuits")).json()
            assert [c["id"] for c in listing["circuits"]] == ["main", "garage"]
            garage = listing["circuits"][1]
            assert garage["meterState"] == "none" and garage["parent"] == "main"
            assert [c["chargeBoxId"] for c in main["chargers"]] == ["CP-1", "G-1"]
            assert [c["chargeBoxId"] for c in garage["chargers"]] == ["G-1"]

            assert (await api.get("/api/v1/circuits/nope")).status_code == 404
            assert (await api.put("/api/v1/circuits/nope/limit", json={"maxCurrentA": 10})).status_code == 404
            for bad in ({"maxCurrentA": 41}, {"maxCurrentA": -1}, {"maxCurrentA": "10"}, {},
                        {"maxCurrentA": 10, "expiresAt": "2020-01-01T00:00:00Z"},
                        {"maxCurrentA": 10, "expiresAt": "tomorrow"}, {"maxCurrentA": 10, "colour": 1}):
                response = await api.put("/api/v1/circuits/main/limit", json=bad)
                assert response.status_code == 422, (bad, response.text)
            assert (await api.put("/api/v1/circuits/main/limit", content=b"[1]")).status_code == 400

            expires = iso(utcnow() + timedelta(hours=1))
            response = await api.put("/api/v1/circuits/main/limit", json={"maxCurrentA": 20, "expiresAt": expires})
            assert response.status_code == 200, response.text
            assert response.json()["limitA"] == 20
            assert response.json()["override"]["maxCurrentA"] == 20
            assert response.json()["override"]["expiresAt"] == expires
            forever = await api.put("/api/v1/circuits/garage/limit", json={"maxCurrentA": 8})
            assert forever.json()["override"]["expiresAt"] is None

            async with api_client(site, key="ro-key") as read_only:
                assert (await read_only.get("/api/v1/circuits")).status_code == 200
                assert (await read_only.put("/api/v1/circuits/main/limit", json={"maxCurrentA": 5})).status_code == 403
                assert (await read_only.delete("/api/v1/circuits/main/limit")).status_code == 403
            async with api_client(site, key=None) as anonymous:
                assert (await anonymous.get("/api/v1/circuits")).status_code == 401
        async with running_site(config) as site, api_client(site) as api:
            main = (await api.get("/api/v1/circuits/main")).json()
            assert main["limitA"] == 20 and main["override"]["expiresAt"] == expires
            assert (await api.delete("/api/v1/circuits/main/limit")).status_code == 204
            assert (await api.delete("/api/v1/circuits/main/limit")).status_code == 204  # nothing to lift
            assert (await api.get("/api/v1/circuits/main")).json()["override"] is None
            assert (await api.get("/api/v1/circuits/garage")).json()["limitA"] == 8
            assert (await api.delete("/api/v1/circuits/nope/limit")).status_code == 404


async def test_limits_on_the_wire_are_valid_1_6_profiles_and_metrics_follow(tmp_path):
    with MeterServer(SimulatedMeter("sdm630", current_a=[4, 4, 4], phase_power_w=[920, 920, 920])) as server:
        config = _site(tmp_path, server.port)
        async with running_site(config) as site, api_client(site) as api:
            await eventually(lambda: site.hardware.meters["grid"].state.online, what="meter online")
            async with raw_charger(site, "CP-1") as cp:
                await cp.boot()
                default = await cp.receive()
                assert default[2] == "SetChargingProfile"
                schemas16.validate(frames.CALL, "SetChargingProfile", default[3])
                profile = default[3]["csChargingProfiles"]
                assert default[3]["connectorId"] == 0
                assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
                assert "duration" not in profile["chargingSchedule"]
                schedule_period = profile["chargingSchedule"]["chargingSchedulePeriod"][0]
                assert profile["chargingSchedule"]["chargingRateUnit"] == "A"
                assert schedule_period == {"startPeriod": 0, "limit": 19.0, "numberPhases": 3}  # 38 A / 2 on L3
                await cp.send([3, default[1], {"status": "Accepted"}])
                start = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "CAR", "meterStart": 0,
                                                           "timestamp": iso(utcnow())})
                tx = start[2]["transactionId"]
                with trio.fail_after(10):
                    limit = await cp.receive()
                schemas16.validate(frames.CALL, "SetChargingProfile", limit[3])
                profile = limit[3]["csChargingProfiles"]
                assert limit[3]["connectorId"] == 1 and profile["transactionId"] == tx
                assert profile["chargingProfilePurpose"] == "TxProfile"
                assert profile["chargingSchedule"]["duration"] == 10
                assert profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 32
                await cp.send([3, limit[1], {"status": "Accepted"}])

                async def scraped():
                    text = (await api.get("/metrics")).text
                    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                               for f in text_string_to_metric_families(text) for s in f.samples}
                    key = ("evedge_connector_allocated_current_amperes", (("charger", "CP-1"), ("connector", "1")))
                    return samples if samples.get(key) == 32 else None

                samples = await eventually(scraped, what="metrics")
                main_l1, main_l2 = (("circuit", "main"), ("phase", "L1")), (("circuit", "main"), ("phase", "L2"))
                assert samples[("evedge_circuit_measured_current_amperes", main_l2)] == 4
                assert samples[("evedge_circuit_allocated_current_amperes", main_l1)] == 32
                assert samples[("evedge_circuit_limit_amperes", (("circuit", "main"),))] == 40
                assert samples[("evedge_circuit_failsafe", (("circuit", "main"),))] == 0
                assert ("evedge_circuit_over_limit_seconds_total", (("circuit", "main"),)) in samples
                connector = (await api.get("/api/v1/circuits/main")).json()["connectors"][0]
                assert connector["profile"]["answer"] == "accepted" and connector["drawnSource"] == "assumed"
                assert connector["reason"] == "charger max"


async def test_limits_reach_a_2_0_1_station_as_valid_2_0_1_profiles_bound_to_its_transaction(tmp_path):
    """A 2.0.1 station gets the same limits in its own words: a TxDefaultProfile on EVSE 0, then a
    TxProfile naming the station's own (string) transaction id, both valid under 2.0.1's schema."""
    with MeterServer(SimulatedMeter("sdm630", current_a=[4, 4, 4], phase_power_w=[920, 920, 920])) as server:
        config = _site(tmp_path, server.port)
        async with running_site(config) as site, api_client(site) as api:
            await eventually(lambda: site.hardware.meters["grid"].state.online, what="meter online")
            async with raw_charger(site, "CP-1", subprotocols=["ocpp2.0.1"]) as cp:
                boot = await cp.call("BootNotification", {"reason": "PowerUp",
                                                          "chargingStation": {"model": "raw", "vendorName": "raw"}})
                assert boot[2]["status"] == "Accepted"
                default = await cp.receive()
                assert default[2] == "SetChargingProfile"
                schemas201.validate(frames.CALL, "SetChargingProfile", default[3])
                assert default[3]["evseId"] == 0
                profile = default[3]["chargingProfile"]
                assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
                assert profile["chargingSchedule"][0]["chargingSchedulePeriod"][0] == {
                    "startPeriod": 0, "limit": 19.0, "numberPhases": 3}
                await cp.send([3, default[1], {"status": "Accepted"}])
                started = await cp.call("TransactionEvent", {
                    "eventType": "Started", "timestamp": iso(utcnow()), "triggerReason": "Authorized", "seqNo": 0,
                    "transactionInfo": {"transactionId": "tx-A1"}, "evse": {"id": 1, "connectorId": 1},
                    "idToken": {"idToken": "CAR", "type": "ISO14443"}})
                assert started[0] == 3, started
                with trio.fail_after(10):
                    limit = await cp.receive()
                schemas201.validate(frames.CALL, "SetChargingProfile", limit[3])
                profile = limit[3]["chargingProfile"]
                assert limit[3]["evseId"] == 1 and profile["transactionId"] == "tx-A1"
                assert profile["chargingProfilePurpose"] == "TxProfile"
                assert profile["chargingSchedule"][0]["duration"] == 10
                assert profile["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 32
                await cp.send([3, limit[1], {"status": "Accepted"}])

                async def accepted():
                    connectors = (await api.get("/api/v1/circuits/main")).json()["connectors"]
                    return [c for c in connectors if c["profile"] and c["profile"]["answer"] == "accepted"]

                assert (await eventually(accepted, what="the limit accepted"))[0]["chargeBoxId"] == "CP-1"
