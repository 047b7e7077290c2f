"""The loop on a MockClock, over fake links and a fake meter: what goes out, when, and the fail-safes."""

from __future__ import annotations

import pytest
import trio

from controller.load_management.allocation import (
    CAR_LIMIT, FAILSAFE, FAIR_SHARE, OFFLINE, PAUSED, SURPLUS, SURPLUS_WAITING, UNCONTROLLABLE,
)

from .fakes import Lab

THREE = """
[[circuits]]
id = "main"
max_current_a = 63
margin_a = 3
meter = "grid"
meter_timeout_s = 5
failsafe_current_a = 6

[[chargers]]
id = "CP-1"
circuit = "main"

[[chargers]]
id = "CP-2"
circuit = "main"

[[chargers]]
id = "CP-3"
circuit = "main"
"""


@pytest.fixture
async def lab(tmp_path):
    lab = Lab(tmp_path, THREE)
    async with lab.running():
        lab.meter(0, 0, 0)
        yield lab


async def keep_reading(lab: Lab, values, until: trio.Event | None = None, every: float = 1.0) -> None:
    while True:
        lab.meter(*values())
        await trio.sleep(every)


async def test_default_limit_at_connection_keeps_the_circuit_safe_if_all_charge(lab, autojump_clock):
    links = [lab.connect(f"CP-{n}") for n in (1, 2, 3)]
    await lab.settle()
    assert [link.default() for link in links] == [20, 20, 20]  # 60 A / 3
    assert all(link.calls[0].phases == 3 for link in links)


async def test_three_charges_share_fairly_and_limits_are_renewed_before_they_lapse(lab, nursery, autojump_clock):
    links = [lab.connect(f"CP-{n}") for n in (1, 2, 3)]
    nursery.start_soon(keep_reading, lab, lambda: (0, 0, 0))
    tx = lab.charge("CP-1", 1)
    await lab.settle()
    first = links[0].transaction_calls(1)
    assert [(c.amps, c.transaction, c.duration) for c in first] == [(32, tx, 60)]  # alone: its max
    lab.charge("CP-2", 1)
    lab.charge("CP-3", 1)
    await lab.settle()
    assert [link.limit(1) for link in links] == [20, 20, 20]  # reductions at once
    assert lab.share("CP-1", 1).reason == FAIR_SHARE
    sent = len(links[0].calls)
    await trio.sleep(25)
    assert len(links[0].calls) == sent  # nothing changed: nothing sent
    await trio.sleep(10)  # half the 60 s duration has gone
    renewed = links[0].transaction_calls(1)[-1]
    assert renewed.amps == 20 and renewed.at > first[0].at + 29


async def test_base_load_jump_is_answered_at_once_and_the_way_back_up_waits(lab, nursery, autojump_clock):
    links = [lab.connect(f"CP-{n}") for n in (1, 2, 3)]
    base = [0.0]
    drawn = {1: 0.0}

    def reading():
        total = base[0] + sum(link.limit(1) or 0 for link in links)
        return (total, total, total)

    for n in (1, 2, 3):
        lab.charge(f"CP-{n}", 1)
    nursery.start_soon(keep_reading, lab, reading)
    await lab.settle(10)  # past the cars' response time to the first limits
    assert [link.limit(1) for link in links] == [20, 20, 20]
    base[0] = 30.0  # the building switches on a load
    jump = trio.current_time()
    lab.meter(*reading())
    await lab.settle(0.2)
    assert [link.limit(1) for link in links] == [10, 10, 10]  # (60 - 30) / 3
    assert all(link.transaction_calls(1)[-1].at - jump < 0.2 for link in links)
    base[0] = 0.0
    lab.meter(*reading())
    await lab.settle(3)
    assert [link.limit(1) for link in links] == [10, 10, 10]  # increases wait
    await lab.settle(10)
    assert [link.limit(1) for link in links] == [20, 20, 20]
    del drawn


async def test_noise_does_not_flap_limits(lab, nursery, autojump_clock):
    """A base load wandering by less than 1 A: only whole-amp changes go out, increases at most
    every increase_delay_s, reductions at once."""
    import random

    rng = random.Random(7)
    link = lab.connect("CP-1")
    lab.charge("CP-1", 1)

    def reading():
        base = 30 + rng.uniform(-0.45, 0.45)
        total = base + (link.limit(1) or 0)
        return (total, total, total)

    nursery.start_soon(keep_reading, lab, reading)
    await lab.settle(120)
    calls = link.transaction_calls(1)
    assert all(c.amps == int(c.amps) for c in calls)
    changes = [(a, b) for a, b in zip(calls, calls[1:]) if a.amps != b.amps]
    assert all(abs(b.amps - a.amps) >= 1 for a, b in changes)
    increases = [b.at for a, b in changes if b.amps > a.amps]
    assert all(later - earlier >= 10 - 1e-6 for earlier, later in zip(increases, increases[1:]))
    assert len(changes) <= 2 * 120 / 10 + 1


async def test_stale_meter_means_failsafe_within_one_loop_and_back(lab, nursery, autojump_clock):
    links = [lab.connect(f"CP-{n}") for n in (1, 2)]
    lab.charge("CP-1", 1)
    lab.charge("CP-2", 1)
    alive = [True]

    async def meter():
        while True:
            if alive[0]:
                lab.meter(0, 0, 0)
            await trio.sleep(1)

    nursery.start_soon(meter)
    await lab.settle(2)
    assert [link.limit(1) for link in links] == [30, 30]
    alive[0] = False
    silent = trio.current_time()
    while lab.share("CP-1", 1).reason != FAILSAFE:
        await trio.sleep(0.1)
    assert trio.current_time() - silent <= 1 + 5 + 1  # last reading + meter_timeout_s + one loop
    await lab.settle(0.2)
    assert [link.limit(1) for link in links] == [6, 6]
    assert lab.manager.views["main"].meter_state == "stale"
    alive[0] = True
    await lab.settle(2)
    assert lab.share("CP-1", 1).reason == FAIR_SHARE
    assert [link.limit(1) for link in links] == [6, 6]  # back up after increase_delay_s
    await lab.settle(10)
    assert [link.limit(1) for link in links] == [30, 30]


async def test_a_charger_that_rejects_limits_has_its_max_reserved(lab, nursery, autojump_clock):
    good = lab.connect("CP-1")
    bad = lab.connect("CP-2", answer="reject")
    nursery.start_soon(keep_reading, lab, lambda: (0, 0, 0))
    lab.charge("CP-1", 1)
    lab.charge("CP-2", 1)
    await lab.settle(2)
    assert lab.share("CP-2", 1).reason == UNCONTROLLABLE and lab.share("CP-2", 1).amps == 32
    assert "rejected" in lab.manager.charger_tracks["CP-2"].uncontrollable
    assert good.limit(1) == 28  # 60 - 32
    calls = len(bad.calls)
    await lab.settle(20)
    assert len(bad.calls) == calls  # not asked again until it reconnects
    lab.connect("CP-2")
    await lab.settle(2)
    assert lab.share("CP-2", 1).reason == FAIR_SHARE


async def test_a_refused_charge_limit_counts_only_if_the_charge_goes_on(lab, nursery, autojump_clock):
    """A charge that ends as its limit arrives is refused by the charger (it no longer knows the
    transaction): not a reason to call the charger uncontrollable."""
    one, two = lab.connect("CP-1"), lab.connect("CP-2")
    nursery.start_soon(keep_reading, lab, lambda: (0, 0, 0))
    lab.charge("CP-1", 1)
    await lab.settle(2)
    one.transaction_answer = "reject"
    lab.charge("CP-2", 1)  # CP-1 must come down to 30 A: refused
    await lab.settle(0.5)
    assert lab.share("CP-1", 1).reason.startswith("unconfirmed")  # 32 A kept reserved meanwhile
    assert two.limit(1) == 28
    lab.stop("CP-1", 1)  # the charge had ended
    await lab.settle(5)
    assert lab.manager.charger_tracks["CP-1"].uncontrollable is None
    lab.charge("CP-1", 1)
    await lab.settle(5)  # refused again, and this time the charge goes on
    assert "rejected" in lab.manager.charger_tracks["CP-1"].uncontrollable
    assert lab.share("CP-1", 1).reason == UNCONTROLLABLE


async def test_a_charger_answering_with_an_error_is_uncontrollable(lab, nursery, autojump_clock):
    lab.connect("CP-1", answer="error")
    nursery.start_soon(keep_reading, lab, lambda: (0, 0, 0))
    await lab.settle(2)
    assert "NotSupported" in lab.manager.charger_tracks["CP-1"].uncontrollable


async def test_a_charger_that_keeps_drawing_over_its_limit_is_uncontrollable(lab, nursery, autojump_clock):
    one, two = lab.connect("CP-1"), lab.connect("CP-2")
    lab.charge("CP-1", 1)
    lab.charge("CP-2", 1)
    nursery.start_soon(keep_reading, lab, lambda: (60, 60, 60))
    await lab.settle(2)
    assert one.limit(1) == two.limit(1) == 30
    for _ in range(25):
        lab.drawn("CP-1", 1, 34, 34, 34)  # ignores the 30 A
        lab.drawn("CP-2", 1, 28, 28, 28)
        await trio.sleep(1)
    assert lab.share("CP-1", 1).reason == UNCONTROLLABLE
    assert "over its limit" in lab.manager.charger_tracks["CP-1"].uncontrollable
    assert two.limit(1) == 28


async def test_offline_mid_charge_keeps_its_allocation_until_the_charge_ends(lab, nursery, autojump_clock):
    one, two = lab.connect("CP-1"), lab.connect("CP-2")
    nursery.start_soon(keep_reading, lab, lambda: (0, 0, 0))
    lab.charge("CP-1", 1)
    lab.charge("CP-2", 1)
    await lab.settle(2)
    assert one.limit(1) == two.limit(1) == 30
    lab.disconnect("CP-2")
    await lab.settle(30)
    assert lab.share("CP-2", 1).reason == OFFLINE and lab.share("CP-2", 1).amps == 30
    assert one.limit(1) == 30  # its 30 A stay reserved
    lab.stop("CP-2", 1)
    await lab.settle(15)
    assert one.limit(1) == 32


async def test_a_lost_answer_reserves_the_higher_limit_until_one_is_confirmed(lab, nursery, autojump_clock):
    one, two = lab.connect("CP-1"), lab.connect("CP-2")
    nursery.start_soon(keep_reading, lab, lambda: (0, 0, 0))
    lab.charge("CP-1", 1)
    await lab.settle(2)
    assert one.limit(1) == 32
    one.answer = "hang"
    lab.charge("CP-2", 1)
    await lab.settle(2)
    assert one.limit(1) == 30  # sent, no answer yet
    await lab.settle(31)
    assert lab.share("CP-1", 1).reason.startswith("unconfirmed")
    assert two.limit(1) == 28  # 60 - 32: CP-1 may still draw its old limit
    one.answer = "accept"
    await lab.settle(35)
    assert lab.share("CP-1", 1).reason == FAIR_SHARE


async def test_a_car_drawing_less_leaves_the_rest_to_the_others(lab, nursery, autojump_clock):
    one, two = lab.connect("CP-1"), lab.connect("CP-2")
    nursery.start_soon(keep_reading, lab, lambda: (40, 40, 40))
    lab.charge("CP-1", 1)
    lab.charge("CP-2", 1)
    await lab.settle(2)
    assert one.limit(1) == two.limit(1) == 30
    for _ in range(45):
        lab.drawn("CP-1", 1, 10, 10, 10)  # a car that takes 10 A whatever it is offered
        lab.drawn("CP-2", 1, 30, 30, 30)
        await trio.sleep(1)
    assert lab.share("CP-1", 1).reason == CAR_LIMIT and one.limit(1) == 11
    assert two.limit(1) == 32


async def test_not_enough_for_all_pauses_the_last_started(tmp_path, autojump_clock, nursery):
    lab = Lab(tmp_path, THREE.replace("max_current_a = 63", "max_current_a = 15"))
    async with lab.running():
        links = [lab.connect(f"CP-{n}") for n in (1, 2, 3)]
        nursery.start_soon(keep_reading, lab, lambda: (0, 0, 0))
        for n in (1, 2, 3):
            lab.charge(f"CP-{n}", 1)
        await lab.settle(2)
        assert [link.limit(1) for link in links] == [6, 6, 0]
        assert lab.share("CP-3", 1).reason == PAUSED


SURPLUS_SITE = THREE + """
[[chargers]]
id = "PV-1"
circuit = "main"
mode = "surplus"
"""


async def test_surplus_starts_after_the_export_held_and_pauses_likewise(tmp_path, autojump_clock, nursery):
    lab = Lab(tmp_path, SURPLUS_SITE)
    async with lab.running():
        link = lab.connect("PV-1")
        export = [0.0]

        def reading():
            drawn = link.limit(1) or 0
            net = drawn - export[0]
            return (abs(net),) * 3, -1 if net < 0 else 1

        async def meter():
            while True:
                currents, sign = reading()
                lab.meter(*currents, power_w=sign * 1000)
                await trio.sleep(1)

        nursery.start_soon(meter)
        lab.charge("PV-1", 1)
        await lab.settle(2)
        assert lab.share("PV-1", 1).reason == SURPLUS_WAITING and link.limit(1) == 0
        export[0] = 10.0
        await lab.settle(20)
        assert link.limit(1) == 0  # not yet: the export must hold for surplus_start_s
        await lab.settle(12)
        assert lab.share("PV-1", 1).reason == SURPLUS and link.limit(1) == 10
        export[0] = 2.0  # a cloud
        await lab.settle(30)
        assert link.limit(1) == 6  # at its minimum, not paused yet
        await lab.settle(40)
        assert link.limit(1) == 0 and lab.share("PV-1", 1).reason == SURPLUS_WAITING
