"""The allocation function: examples for each rule, and hypothesis properties over random sites."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.load_management.allocation import (
    CAR_LIMIT, CHARGER_MAX, FAILSAFE, FAIR_SHARE, OFFLINE, OFFLINE_RESERVED, OVERRIDE, PAUSED, SURPLUS,
    SURPLUS_WAITING, UNCONTROLLABLE, UNCONTROLLED, Circuit, Demand, allocate, default_limits,
)

MAIN = Circuit("main", limit_a=63, margin_a=2, metered=True, measured_a=(0.0, 0.0, 0.0))


def amps(outcome, key):
    return outcome.shares[key].amps


def reason(outcome, key):
    return outcome.shares[key].reason


def test_three_chargers_share_equally():
    out = allocate([MAIN], [Demand(k, "main", started=str(k)) for k in range(3)])
    assert [amps(out, k) for k in range(3)] == [20, 20, 20]
    assert {reason(out, k) for k in range(3)} == {FAIR_SHARE}
    assert out.circuits["main"].available_a == (61, 61, 61)
    assert out.circuits["main"].allocated_a == (60, 60, 60)


def test_one_charger_alone_gets_its_max():
    out = allocate([MAIN], [Demand("a", "main")])
    assert (amps(out, "a"), reason(out, "a")) == (32, CHARGER_MAX)


def test_base_load_is_measured_minus_what_connectors_draw():
    measured = (40.0 + 20, 30.0 + 20, 35.0 + 20)  # two 3-phase cars drawing 10 A each
    circuit = Circuit("main", 63, 2, metered=True, measured_a=measured)
    drawn = (10.0, 10.0, 10.0)
    out = allocate([circuit], [Demand("a", "main", drawn_a=drawn), Demand("b", "main", drawn_a=drawn)])
    assert out.circuits["main"].base_a == (40, 30, 35)
    assert out.circuits["main"].available_a == (21, 31, 26)
    assert amps(out, "a") == amps(out, "b") == 10  # 21 A on L1, halved, rounded down


def test_no_meter_means_no_base_load():
    circuit = Circuit("main", 32, 2)
    out = allocate([circuit], [Demand("a", "main"), Demand("b", "main")])
    assert amps(out, "a") == amps(out, "b") == 15


def test_not_enough_for_everyone_pauses_the_lowest_priority_then_the_latest():
    circuit = Circuit("main", 20, 2)  # 18 A: room for three at 6 A, not four
    demands = [Demand("early", "main", started="1"), Demand("late", "main", started="4"),
               Demand("vip", "main", started="9", priority=5), Demand("mid", "main", started="2")]
    out = allocate([circuit], demands)
    assert (amps(out, "late"), reason(out, "late")) == (0, PAUSED)
    assert amps(out, "vip") == amps(out, "early") == amps(out, "mid") == 6
    demands.append(Demand("low", "main", started="0", priority=-1))
    out = allocate([circuit], demands)
    assert reason(out, "low") == PAUSED and reason(out, "late") == PAUSED


def test_higher_priority_is_served_first():
    circuit = Circuit("main", 40, 0)
    out = allocate([circuit], [Demand("vip", "main", priority=1), Demand("a", "main"), Demand("b", "main")])
    assert amps(out, "vip") == 28 and amps(out, "a") == amps(out, "b") == 6


def test_single_phase_chargers_use_their_own_phase():
    circuit = Circuit("main", 32, 2, metered=True, measured_a=(20.0, 0.0, 0.0))
    demands = [Demand("l1", "main", phases=1, phase=0), Demand("l2", "main", phases=1, phase=1),
               Demand("l3", "main", phases=1, phase=2)]
    out = allocate([circuit], demands)
    assert (amps(out, "l1"), amps(out, "l2"), amps(out, "l3")) == (10, 30, 30)
    assert out.circuits["main"].allocated_a == (10, 30, 30)


def test_a_three_phase_charger_is_held_by_its_worst_phase():
    circuit = Circuit("main", 32, 2, metered=True, measured_a=(25.0, 0.0, 0.0))
    out = allocate([circuit], [Demand("three", "main"), Demand("one", "main", phases=1, phase=1)])
    assert (amps(out, "three"), reason(out, "three")) == (0, PAUSED)  # 5 A left on L1: less than 6 A
    assert amps(out, "one") == 30  # the single-phase one on L2 still charges


def test_nested_circuit_fits_every_circuit_above():
    main = Circuit("main", 63, 2, metered=True, measured_a=(10.0, 10.0, 10.0))
    garage = Circuit("garage", 25, 1, parent="main")
    demands = [Demand("g1", "garage"), Demand("g2", "garage"), Demand("m1", "main")]
    out = allocate([main, garage], demands)
    assert amps(out, "g1") == amps(out, "g2") == 12  # 24 A in the garage
    assert amps(out, "m1") == 27  # 51 A left on main, of which the garage takes 24
    assert out.circuits["garage"].allocated_a == (24, 24, 24)
    assert out.circuits["main"].allocated_a == (51, 51, 51)


def test_stale_meter_gives_every_connector_the_failsafe():
    stale = Circuit("main", 63, 2, metered=True, measured_a=None, failsafe_a=6)
    out = allocate([stale], [Demand("a", "main"), Demand("b", "main", max_a=4)])
    assert (amps(out, "a"), reason(out, "a")) == (6, FAILSAFE)
    assert amps(out, "b") == 4  # never above the charger's max
    assert out.circuits["main"].failsafe and out.circuits["main"].base_a is None


def test_stale_parent_meter_reaches_the_sub_board():
    main = Circuit("main", 63, 2, metered=True, measured_a=None, failsafe_a=8)
    garage = Circuit("garage", 25, 1, parent="main", metered=True, measured_a=(0.0, 0.0, 0.0), failsafe_a=6)
    out = allocate([main, garage], [Demand("g", "garage")])
    assert (amps(out, "g"), reason(out, "g")) == (8, FAILSAFE)
    assert out.circuits["garage"].failsafe


def test_uncontrollable_and_offline_connectors_keep_their_reservation():
    circuit = Circuit("main", 40, 0)
    demands = [Demand("wild", "main", state=UNCONTROLLED, reserved_a=16),
               Demand("gone", "main", state=OFFLINE_RESERVED, reserved_a=10), Demand("a", "main")]
    out = allocate([circuit], demands)
    assert (amps(out, "wild"), reason(out, "wild")) == (16, UNCONTROLLABLE)
    assert (amps(out, "gone"), reason(out, "gone")) == (10, OFFLINE)
    assert amps(out, "a") == 14


def test_a_car_that_draws_less_leaves_the_rest_to_the_others():
    circuit = Circuit("main", 40, 0)
    out = allocate([circuit], [Demand("slow", "main", car_limit_a=8), Demand("a", "main")])
    assert (amps(out, "slow"), reason(out, "slow")) == (8, CAR_LIMIT)
    assert amps(out, "a") == 32


def test_override_is_named_as_the_reason():
    circuit = Circuit("main", 20, 2, overridden=True)
    out = allocate([circuit], [Demand("a", "main"), Demand("b", "main")])
    assert amps(out, "a") == 9 and reason(out, "a") == OVERRIDE


def test_surplus_runs_only_on_export():
    exporting = Circuit("main", 63, 2, metered=True, measured_a=(-10.0, -10.0, -10.0))
    waiting = Demand("pv", "main", surplus=True, surplus_on=False)
    out = allocate([exporting], [waiting])
    assert (amps(out, "pv"), reason(out, "pv")) == (0, SURPLUS_WAITING)
    assert out.shares["pv"].surplus_offer_a == 10
    running = Demand("pv", "main", surplus=True, surplus_on=True, drawn_a=(8.0, 8.0, 8.0))
    out = allocate([Circuit("main", 63, 2, metered=True, measured_a=(-2.0, -2.0, -2.0))], [running])
    assert (amps(out, "pv"), reason(out, "pv")) == (10, SURPLUS)  # its own 8 A plus 2 A still exported
    out = allocate([Circuit("main", 63, 2, metered=True, measured_a=(5.0, 5.0, 5.0))], [running])
    assert amps(out, "pv") == 6  # running on too little: its minimum until the loop pauses it
    assert out.shares["pv"].surplus_offer_a == 3


def test_default_limits_keep_the_circuit_safe_when_all_charge():
    main = Circuit("main", 63, 3)
    garage = Circuit("garage", 16, 0, parent="main")
    connectors = [Demand(k, "main") for k in "abc"] + [Demand("g", "garage"),
                                                      Demand("s", "main", phases=1, phase=1, max_a=16)]
    limits = default_limits([main, garage], connectors)
    assert limits["a"] == limits["b"] == limits["c"] == 12  # 60 A / 5 on L2
    assert limits["g"] == 12
    assert limits["s"] == 12


# -- properties ----------------------------------------------------------------------------------

@st.composite
def sites(draw):
    n_circuits = draw(st.integers(1, 4))
    circuits = []
    for i in range(n_circuits):
        limit = draw(st.floats(6, 100))
        metered = draw(st.booleans())
        measured = None
        if metered and draw(st.integers(0, 5)):
            measured = tuple(draw(st.floats(-20, 120)) for _ in range(3))
        circuits.append(Circuit(
            f"c{i}", limit_a=limit, margin_a=draw(st.floats(0, limit * 0.2)),
            parent=f"c{draw(st.integers(0, i - 1))}" if i else None, metered=metered, measured_a=measured,
            failsafe_a=draw(st.sampled_from([0, 6, 8])), overridden=draw(st.booleans())))
    demands = []
    for k in range(draw(st.integers(0, 12))):
        min_a = draw(st.sampled_from([0, 6, 6, 6, 8]))
        max_a = draw(st.floats(min_a, 40)) if min_a else draw(st.floats(1, 40))
        state = draw(st.sampled_from(["active"] * 6 + ["uncontrollable", "offline"]))
        phases = draw(st.sampled_from([1, 3, 3]))
        demands.append(Demand(
            k, f"c{draw(st.integers(0, n_circuits - 1))}", min_a=min_a, max_a=max_a, phases=phases,
            phase=draw(st.integers(0, 2)), priority=draw(st.integers(-1, 2)), started=f"{draw(st.integers(0, 99)):02d}",
            drawn_a=tuple(draw(st.floats(0, 32)) for _ in range(3)), state=state,
            reserved_a=draw(st.floats(0, max_a)), car_limit_a=draw(st.none() | st.floats(0, 40)),
            surplus=(surplus := draw(st.booleans()) and draw(st.booleans())),
            surplus_on=surplus and draw(st.booleans())))
    return circuits, demands


def _below(circuits, demand, cid):
    by_id = {c.id: c for c in circuits}
    current = demand.circuit
    while current is not None:
        if current == cid:
            return True
        current = by_id[current].parent
    return False


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(sites(), st.sampled_from([1.0, 0.1, 0.0]))
def test_property_never_over_budget_shares_in_range(site, step):
    circuits, demands = site
    out = allocate(circuits, demands, step_a=step)
    assert set(out.shares) == {d.key for d in demands}
    fixed_reasons = {FAILSAFE, UNCONTROLLABLE, OFFLINE}
    for d in demands:
        share = out.shares[d.key]
        if share.reason in fixed_reasons:
            continue
        assert share.amps == 0 or d.min_a - 1e-9 <= share.amps <= d.max_a + 1e-9, (d, share)
        if share.reason in (PAUSED, SURPLUS_WAITING):
            assert share.amps == 0
    for c in circuits:
        state = out.circuits[c.id]
        if state.failsafe:
            continue
        for p in range(3):
            fixed = flexible = 0.0
            for d in demands:
                if not _below(circuits, d, c.id):
                    continue
                on = d.on_phases(out.shares[d.key].amps)[p]
                if out.shares[d.key].reason in fixed_reasons:
                    fixed += on
                else:
                    flexible += on
            assert flexible <= max(0.0, state.available_a[p] - fixed) + 1e-6, (c, p, state, out.shares)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(-1, 2), st.integers(0, 99), st.floats(6, 32)), min_size=1, max_size=10),
       st.floats(6, 120), st.sampled_from([1.0, 0.0]))
def test_property_one_circuit_priorities_and_fairness(connectors, limit, step):
    """One circuit, three-phase chargers with min 6 A: a paused connector has nobody of lower
    priority (or of equal priority and later start) charging; a connector held below its max has
    nobody of lower priority above the minimum; equals below their max get the same share."""
    circuit = Circuit("main", limit, 0)
    demands = [Demand(i, "main", max_a=mx, priority=prio, started=f"{start:02d}-{i:02d}")
               for i, (prio, start, mx) in enumerate(connectors)]
    out = allocate([circuit], demands, step_a=step)
    order = lambda d: (-d.priority, d.started)  # noqa: E731
    for d in demands:
        share = out.shares[d.key]
        for e in demands:
            other = out.shares[e.key]
            if share.reason == PAUSED and order(e) > order(d):
                assert other.reason == PAUSED, (d, e, out.shares)
            if share.amps < d.max_a - step - 1e-6 and share.reason != PAUSED and e.priority < d.priority:
                assert other.amps <= e.min_a + 1e-6, (d, e, out.shares)
            if (d.priority == e.priority and share.reason == other.reason == FAIR_SHARE):
                assert abs(share.amps - other.amps) <= max(step, 1e-6), (d, e, out.shares)


@settings(max_examples=200)
@given(st.integers(1, 20), st.floats(10, 200), st.floats(0, 5))
def test_property_default_limits_fit_when_all_charge(n, limit, margin):
    circuit = Circuit("main", limit, margin)
    connectors = [Demand(i, "main") for i in range(n)]
    limits = default_limits([circuit], connectors)
    assert sum(limits.values()) <= limit - margin + 1e-6
