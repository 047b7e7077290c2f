"""The closed loop, for real: controller, simulated chargers (their cars follow the limits sent as
SetChargingProfile) and a simulated grid meter reading base load plus what the chargers draw.

No wall-clock assertions: every check waits for a state (`eventually`), bounded generously.
"""

from __future__ import annotations

from datetime import timedelta

from controller.timefmt import iso, utcnow
from tests.support import eventually, running_site

from .closed_loop import charger_toml, closed_loop

MAIN = """
[[circuits]]
id = "main"
max_current_a = 63
margin_a = 3
meter = "grid"
meter_timeout_s = 1
failsafe_current_a = 6
"""
THREE = "".join(charger_toml(f"CP-{n}") for n in (1, 2, 3))


async def test_three_chargers_share_fairly_and_a_base_load_jump_lowers_them(tmp_path):
    async with closed_loop(tmp_path, MAIN, THREE, base_a=(5, 5, 5)) as loop:
        for n in (1, 2, 3):
            await loop.charger(f"CP-{n}")
        await loop.limits_are({"CP-1": 18, "CP-2": 18, "CP-3": 18})  # (63 - 3 - 5) / 3, rounded down
        await loop.until(lambda: all(abs(loop.sims[f"CP-{n}"].drawn(1) - 18) < 0.01 for n in (1, 2, 3)),
                         what="cars draw their share")
        body = await loop.circuit()
        assert body["meterState"] == "ok" and not body["failsafe"]
        assert [c["reason"] for c in body["connectors"]] == ["fair share"] * 3
        assert all(c["profile"]["kind"] == "transaction" and c["profile"]["answer"] == "accepted"
                   for c in body["connectors"])
        assert all(c["defaultProfile"]["answer"] == "accepted" and c["defaultLimitA"] == 20 for c in body["chargers"])
        assert loop.measured_max() <= 60

        loop.grid.set_base(35, 20, 20)  # the building switches on a load on L1
        await loop.limits_are({"CP-1": 8, "CP-2": 8, "CP-3": 8})  # (60 - 35) / 3
        await loop.until(lambda: loop.measured_max() <= 60, what="the site back under its limit")
        body = await loop.circuit()
        assert body["baseLoadA"][0] >= 34 and body["availableA"][0] <= 26

        loop.grid.set_base(5, 5, 5)
        await loop.limits_are({"CP-1": 18, "CP-2": 18, "CP-3": 18})


async def test_not_enough_for_everyone_pauses_the_lowest_priority(tmp_path):
    circuit = MAIN.replace("max_current_a = 63", "max_current_a = 16").replace("margin_a = 3", "margin_a = 1")
    chargers = charger_toml("CP-1", priority=1) + charger_toml("CP-2") + charger_toml("CP-3", priority=-1)
    async with closed_loop(tmp_path, circuit, chargers) as loop:
        for n in (3, 2, 1):  # the lowest priority started first
            await loop.charger(f"CP-{n}")
        await loop.limits_are({"CP-1": 9, "CP-2": 6, "CP-3": 0})  # priority first, then 6 A or nothing
        paused = await loop.connector("CP-3")
        assert paused["allocatedA"] == 0 and paused["reason"] == "paused: not enough capacity"
        await loop.until(lambda: loop.sims["CP-3"].drawn(1) == 0, what="the paused car stops")


async def test_meter_stale_means_failsafe_and_back(tmp_path):
    async with closed_loop(tmp_path, MAIN, THREE) as loop:
        for n in (1, 2):
            await loop.charger(f"CP-{n}")
        await loop.limits_are({"CP-1": 30, "CP-2": 30})
        loop.server.silent = True  # the meter stops answering
        await loop.limits_are({"CP-1": 6, "CP-2": 6})
        body = await loop.circuit()
        assert body["failsafe"] and body["failsafeReason"] == "meter stale" and body["meterState"] == "stale"
        health = (await loop.api.get("/healthz")).json()
        assert health["status"] == "degraded" and health["checks"]["circuit:main"]["failsafe"]
        assert body["measuredA"] is None
        assert {c["reason"] for c in body["connectors"]} == {"failsafe: meter stale"}
        loop.server.silent = False
        await loop.limits_are({"CP-1": 30, "CP-2": 30})
        assert not (await loop.circuit())["failsafe"]
        assert (await loop.api.get("/healthz")).json()["checks"]["circuit:main"]["status"] == "ok"


async def test_a_charger_that_rejects_profiles_has_its_max_reserved(tmp_path):
    async with closed_loop(tmp_path, MAIN, THREE) as loop:
        await loop.charger("CP-1")
        await loop.charger("CP-2", reject_profiles=True)
        await loop.limits_are({"CP-1": 28})  # 60 - CP-2's 32 A
        assert loop.sims["CP-2"].limits.get(1) is None  # it never took one: its car draws all it can
        body = await loop.circuit()
        rejecting = next(c for c in body["chargers"] if c["chargeBoxId"] == "CP-2")
        assert not rejecting["controllable"] and "rejected" in rejecting["uncontrollableReason"]
        assert (await loop.connector("CP-2"))["reason"] == "uncontrollable"
        await loop.until(lambda: loop.measured_max() <= 60, what="the site under its limit")


async def test_a_charger_that_goes_offline_mid_charge_keeps_its_allocation(tmp_path):
    # a limit lasts 60 s here: long enough for the test, so the offline charger keeps its 30 A
    # (after that it would fall back to its default limit, and the reservation with it)
    async with closed_loop(tmp_path, MAIN, THREE, timing={"profile_duration_s": 60}) as loop:
        for n in (1, 2):
            await loop.charger(f"CP-{n}")
        await loop.limits_are({"CP-1": 30, "CP-2": 30})
        await loop.sims["CP-2"].cmd("disconnect")  # its car goes on at the 30 A it holds
        await loop.until(lambda: loop.connector("CP-2"), what="API")

        async def reserved():
            c = await loop.connector("CP-2")
            return c is not None and c["reason"] == "offline: allocation reserved" and c["allocatedA"] == 30

        await loop.until(reserved, what="CP-2's 30 A reserved")
        await loop.charger("CP-3")
        await loop.limits_are({"CP-1": 15, "CP-2": 30, "CP-3": 15})  # the 30 A stay out of the share
        await loop.until(lambda: loop.measured_max() <= 60, what="the site under its limit")
        await loop.sims["CP-2"].cmd("reconnect")
        await loop.limits_are({"CP-1": 20, "CP-2": 20, "CP-3": 20})


async def test_single_phase_chargers_on_different_phases(tmp_path):
    circuit = MAIN.replace("max_current_a = 63", "max_current_a = 32").replace("margin_a = 3", "margin_a = 2")
    chargers = charger_toml("L1-CP", phases=1) + charger_toml("L2-CP", phases=1, phase="L2")
    async with closed_loop(tmp_path, circuit, chargers, base_a=(18, 0, 0)) as loop:
        await loop.charger("L1-CP", phases=1, phase="L1")
        await loop.charger("L2-CP", phases=1, phase="L2")
        await loop.limits_are({"L1-CP": 12, "L2-CP": 30})  # L1 carries 18 A of the building
        net = loop.grid.net_a()
        await loop.until(lambda: abs(loop.grid.net_a()[0] - 30) < 0.1 and abs(loop.grid.net_a()[1] - 30) < 0.1,
                         what=f"L1 and L2 at 30 A (now {net})")
        assert loop.grid.net_a()[2] == 0
        body = await loop.circuit()
        assert body["allocatedA"] == [12, 30, 0]


async def test_nested_circuit_fits_both_fuses(tmp_path):
    circuits = MAIN + """
[[circuits]]
id = "garage"
max_current_a = 16
margin_a = 0
parent = "main"
"""
    chargers = charger_toml("G-1", circuit="garage") + charger_toml("G-2", circuit="garage") + charger_toml("CP-1")
    async with closed_loop(tmp_path, circuits, chargers, base_a=(30, 30, 30)) as loop:
        for charger_id in ("G-1", "G-2", "CP-1"):
            await loop.charger(charger_id)
        await loop.limits_are({"G-1": 8, "G-2": 8, "CP-1": 14})  # garage 16 A; main 60 - 30 - 16
        garage = await loop.circuit("garage")
        assert garage["parent"] == "main" and garage["allocatedA"] == [16, 16, 16]
        assert (await loop.circuit("main"))["allocatedA"] == [30, 30, 30]


async def test_override_with_expiry_survives_a_restart(tmp_path):
    data = tmp_path / "data"
    expires = iso(utcnow() + timedelta(seconds=6))
    async with closed_loop(tmp_path, MAIN, charger_toml("CP-1"), data_dir=data) as loop:
        await loop.charger("CP-1")
        await loop.limits_are({"CP-1": 32})
        response = await loop.api.put("/api/v1/circuits/main/limit", json={"maxCurrentA": 20, "expiresAt": expires})
        assert response.status_code == 200, response.text
        assert response.json()["limitA"] == 20 and response.json()["override"]["expiresAt"] == expires
        await loop.limits_are({"CP-1": 17})  # 20 - 3 A margin
        assert (await loop.connector("CP-1"))["reason"] == "override"
        config = loop.site.config
    async with running_site(config) as site:  # a restart: the override is read back
        assert site.load.overrides["main"].max_current_a == 20
        assert site.load.effective_limit(config.circuits[0]) == 20
        await eventually(lambda: "main" not in site.load.overrides, timeout=20, what="the override expires")
        assert site.load.effective_limit(config.circuits[0]) == 63


async def test_surplus_charger_starts_on_export_and_pauses_without_it(tmp_path):
    chargers = charger_toml("PV-1", mode="surplus")
    async with closed_loop(tmp_path, MAIN, chargers, base_a=(2, 2, 2)) as loop:
        await loop.charger("PV-1")
        await loop.limits_are({"PV-1": 0})
        assert (await loop.connector("PV-1"))["reason"] == "surplus: waiting for export"
        loop.grid.set_base(-10, -10, -10)  # the sun comes out: 10 A export per phase
        await loop.limits_are({"PV-1": 10})
        assert (await loop.connector("PV-1"))["reason"] == "surplus"
        await loop.until(lambda: abs(loop.sims["PV-1"].drawn(1) - 10) < 0.01, what="the car takes the surplus")
        await loop.until(lambda: max(loop.grid.net_a()) <= 0.01, what="nothing imported")
        loop.grid.set_base(-3, -3, -3)  # a cloud
        await loop.limits_are({"PV-1": 6})  # its minimum until the pause delay has passed
        await loop.limits_are({"PV-1": 0})
