"""The simulated charger's electrics (controller/simulators/ev.py): which profile is in force and
what the car draws. The closed-loop tests trust these, so they are checked on their own."""

from __future__ import annotations

import time

from controller.simulators.ev import ChargingProfiles, Electrics


def _profile(pid: int, purpose: str, limit: float, *, stack: int = 0, kind: str = "Absolute",
             duration: int | None = None, start: str | None = None, tx: int | None = None, unit: str = "A") -> dict:
    schedule: dict = {"chargingRateUnit": unit, "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}
    if duration is not None:
        schedule["duration"] = duration
    if start is not None:
        schedule["startSchedule"] = start
    profile = {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
               "chargingProfileKind": kind, "chargingSchedule": schedule}
    if tx is not None:
        profile["transactionId"] = tx
    return profile


def test_tx_profile_beats_the_default_and_lapses_after_its_duration():
    p = ChargingProfiles()
    assert p.install(0, _profile(1, "TxDefaultProfile", 16, kind="Relative"), None) == "Accepted"
    now = time.time()
    assert p.limit(1, 7, 3, started=now) == 16
    assert p.install(1, _profile(2, "TxProfile", 10, duration=60, tx=7), 7) == "Accepted"
    assert p.limit(1, 7, 3, started=now) == 10
    assert p.limit(1, 7, 3, started=now, now=now + 61) == 16  # lapsed: back to the default
    assert p.limit(1, None, 3, started=None) is None  # no transaction, nothing drawn anyway


def test_tx_profile_needs_its_transaction_and_ends_with_it():
    p = ChargingProfiles()
    assert p.install(1, _profile(2, "TxProfile", 10), None) == "Rejected"
    assert p.install(1, _profile(2, "TxProfile", 10, tx=8), 7) == "Rejected"
    assert p.install(1, _profile(2, "TxProfile", 10, tx=7), 7) == "Accepted"
    p.transaction_ended(1)
    assert p.limit(1, 9, 3, started=time.time()) is None


def test_replacement_stack_levels_and_the_charge_point_max():
    p = ChargingProfiles()
    p.install(0, _profile(1, "TxDefaultProfile", 20, kind="Relative"), None)
    p.install(0, _profile(1, "TxDefaultProfile", 12, kind="Relative"), None)  # same id: replaced
    assert p.limit(1, 1, 3, started=time.time()) == 12
    p.install(1, _profile(5, "TxDefaultProfile", 25, kind="Relative", stack=1), None)  # the connector's own
    assert p.limit(1, 1, 3, started=time.time()) == 25
    p.install(0, _profile(9, "ChargePointMaxProfile", 7360, unit="W"), None)  # 7360 W / 230 V / 3 = 10.7 A
    assert round(p.limit(1, 1, 3, started=time.time()), 1) == 10.7
    assert p.clear(purpose="ChargePointMaxProfile")
    assert p.limit(1, 1, 3, started=time.time()) == 25


def test_cars_ramp_to_the_limit_never_past_their_own_max_and_stop_below_6_a():
    e = Electrics(phases=1, ramp_s=1.0)
    e.profiles.install(0, _profile(1, "TxDefaultProfile", 16, kind="Relative"), None)
    e.car(1).max_a = 13
    e.tick(0.25, {1: 1})
    assert e.car(1).drawn_a == 8  # 32 A per second
    e.tick(1.0, {1: 1})
    assert e.per_phase(1) == [13, 0, 0]  # the car's own max
    e.profiles.install(0, _profile(1, "TxDefaultProfile", 5, kind="Relative"), None)
    e.tick(1.0, {1: 1})
    assert e.car(1).drawn_a == 0  # below 6 A a car cannot charge
    e.obey = False
    e.tick(1.0, {1: 1})
    assert e.car(1).drawn_a == 13
    e.tick(1.0, {1: None})
    assert e.car(1).drawn_a == 0  # the transaction ended
