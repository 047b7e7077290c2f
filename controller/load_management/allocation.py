"""Who gets how many amps: a pure function of the circuits, what their meters measure and what
each connector asks for. No I/O and no clock, so it can be tested exhaustively and the loop
(manager.py) stays a thin layer of timing and messages around it.

The rules (docs/load-management.md):

- A circuit's budget per phase is `limit - margin - base load`, the base load being what its
  meter measures minus what the managed connectors below it draw (never below 0: export is not
  counted on to carry a fuse). A circuit without a meter has a base load of 0.
- A connector below a circuit whose meter is stale gets the fail-safe current; an uncontrollable
  connector has its maximum reserved; an offline one keeps its last allocation. These are fixed:
  they come off every budget above them before anyone else is served.
- The rest are admitted at their minimum in order (higher priority first, then the earliest
  start) while the minimum fits every circuit above them on every phase they use; the others are
  paused at 0 A. What is left is shared in equal steps, higher priorities first, each share capped
  by the connector's maximum and by every circuit above it (progressive filling).
- A surplus connector draws only from export measured at its circuit's meter; whether it runs is
  the loop's decision (it holds the start and pause timers): `surplus_offer_a` tells it how much
  export the connector would get.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

Phases = tuple[float, float, float]
ZERO: Phases = (0.0, 0.0, 0.0)
EPS = 1e-9

# Reasons, as the API shows them.
FAIR_SHARE = "fair share"
CHARGER_MAX = "charger max"
CAR_LIMIT = "car draws less"
PAUSED = "paused: not enough capacity"
FAILSAFE = "failsafe: meter stale"
UNCONTROLLABLE = "uncontrollable"
OFFLINE = "offline: allocation reserved"
OVERRIDE = "override"
SURPLUS = "surplus"
SURPLUS_WAITING = "surplus: waiting for export"

ACTIVE, UNCONTROLLED, OFFLINE_RESERVED = "active", "uncontrollable", "offline"


@dataclass(frozen=True)
class Circuit:
    id: str
    limit_a: float  # per phase, in force now (an override already applied)
    margin_a: float = 0.0
    parent: str | None = None
    metered: bool = False
    measured_a: Phases | None = None  # signed per phase (negative: export); None with a stale meter
    failsafe_a: float = 6.0
    overridden: bool = False
    base_floor_a: Phases | None = None  # the base load is taken as at least this (the loop's recent highs)

    @property
    def stale(self) -> bool:
        return self.metered and self.measured_a is None


@dataclass(frozen=True)
class Demand:
    """One connector that charges or may charge (a transaction runs on it)."""

    key: Hashable
    circuit: str
    min_a: float = 6.0
    max_a: float = 32.0
    phases: int = 3
    phase: int = 0  # 0..2: the grid phase of a single-phase connector
    priority: int = 0
    started: str = ""  # sorts by start: the latest is paused first among equals
    drawn_a: Phases = ZERO  # on the grid's phases; the loop assumes the limit in force when unknown
    state: str = ACTIVE  # active | uncontrollable | offline
    reserved_a: float = 0.0  # uncontrollable: its max; offline: its last allocation
    car_limit_a: float | None = None  # the car draws clearly less than offered: cap it here
    surplus: bool = False
    surplus_on: bool = False  # the loop's verdict: the surplus charge runs
    fixed_reason: str | None = None  # why an "offline" (reserved) demand is reserved, if not offline

    @property
    def grid_phases(self) -> tuple[int, ...]:
        return (0, 1, 2) if self.phases == 3 else (self.phase,)

    def on_phases(self, amps: float) -> Phases:
        if self.phases == 3:
            return (amps, amps, amps)
        out = [0.0, 0.0, 0.0]
        out[self.phase] = amps
        return (out[0], out[1], out[2])


@dataclass(frozen=True)
class Share:
    amps: float
    reason: str
    surplus_offer_a: float | None = None  # surplus connectors: the export this one would get


@dataclass(frozen=True)
class CircuitState:
    base_a: Phases | None  # None: unknown (stale meter); never below the circuit's base_floor_a
    available_a: Phases  # for the managed connectors: limit - margin - base load
    allocated_a: Phases  # the sum of the shares below this circuit
    failsafe: bool  # this circuit's meter, or one above it, is stale
    measured_base_a: Phases | None = None  # measured minus drawn now, before the floor


@dataclass
class Outcome:
    shares: dict[Hashable, Share] = field(default_factory=dict)
    circuits: dict[str, CircuitState] = field(default_factory=dict)


def _add(a: Sequence[float], b: Sequence[float]) -> Phases:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _floor(amps: float, step: float) -> float:
    return math.floor(amps / step + EPS) * step if step > 0 else amps


def allocate(circuits: Iterable[Circuit], demands: Iterable[Demand], step_a: float = 1.0) -> Outcome:
    """Shares for every demand; each is 0 or between its min and max, and the sum below every
    circuit stays within its budget on every phase (fixed reservations aside: a fail-safe,
    uncontrollable or offline connector keeps its amps even when they alone exceed it).

    `step_a`: shares are rounded down to this (1 A: most chargers take whole amps, and small
    changes would only be noise), never below the connector's minimum.
    """
    circuits = {c.id: c for c in circuits}
    demands = list(demands)
    chain: dict[str, list[str]] = {}
    for cid in circuits:
        path, current = [], cid
        while current is not None and current in circuits and current not in path:
            path.append(current)
            current = circuits[current].parent
        chain[cid] = path
    paths = {d.key: chain.get(d.circuit, []) for d in demands}
    stale = {cid: any(circuits[a].stale for a in chain[cid]) for cid in circuits}

    # Base load and budget per circuit and phase.
    drawn = {cid: ZERO for cid in circuits}
    for d in demands:
        for cid in paths[d.key]:
            drawn[cid] = _add(drawn[cid], d.drawn_a)
    base: dict[str, Phases | None] = {}
    raw: dict[str, Phases | None] = {}
    budget: dict[str, list[float]] = {}
    for cid, c in circuits.items():
        headroom = c.limit_a - c.margin_a
        if not c.metered:
            base[cid] = raw[cid] = ZERO
        elif c.measured_a is None:
            base[cid] = raw[cid] = None
        else:
            now = tuple(max(0.0, m - u) for m, u in zip(c.measured_a, drawn[cid]))
            floor = c.base_floor_a or ZERO
            raw[cid] = now  # type: ignore[assignment]
            base[cid] = tuple(max(a, b) for a, b in zip(now, floor))  # type: ignore[assignment]
        b = base[cid] or ZERO
        budget[cid] = [headroom - b[p] for p in range(3)]
    used = {cid: [0.0, 0.0, 0.0] for cid in circuits}

    def charge(d: Demand, amps: float) -> None:
        for cid in paths[d.key]:
            for p in d.grid_phases:
                used[cid][p] += amps

    def fits(d: Demand, amps: float) -> bool:
        return all(used[cid][p] + amps <= budget[cid][p] + EPS for cid in paths[d.key] for p in d.grid_phases)

    shares: dict[Hashable, Share] = {}
    # Fixed: offline and uncontrollable connectors, and everyone below a stale meter.
    flexible: list[Demand] = []
    for d in demands:
        if d.state == UNCONTROLLED:
            shares[d.key] = Share(d.reserved_a, UNCONTROLLABLE)
        elif d.state == OFFLINE_RESERVED:
            shares[d.key] = Share(d.reserved_a, d.fixed_reason or OFFLINE)
        elif not paths[d.key] or stale.get(d.circuit, False):
            failsafe = min((circuits[c].failsafe_a for c in paths[d.key] if circuits[c].stale), default=0.0)
            amps = 0.0 if d.surplus else min(failsafe, d.max_a)
            shares[d.key] = Share(amps, FAILSAFE)
        else:
            flexible.append(d)
            continue
        charge(d, shares[d.key].amps)

    # Surplus: each surplus connector's offer from the export at its own circuit's meter.
    caps: dict[Hashable, float] = {}
    offers: dict[Hashable, float] = {}
    export: dict[str, list[float]] = {}
    for cid, c in circuits.items():
        if c.metered and c.measured_a is not None:
            surplus_draw = ZERO
            for d in demands:
                if d.surplus and cid in paths[d.key]:
                    surplus_draw = _add(surplus_draw, d.drawn_a)
            export[cid] = [max(0.0, -(c.measured_a[p] - surplus_draw[p])) for p in range(3)]
    runnable: list[Demand] = []
    for d in sorted((d for d in flexible if d.surplus), key=lambda d: (not d.surplus_on, -d.priority, d.started)):
        left = export.get(d.circuit)
        offer = min(left[p] for p in d.grid_phases) if left is not None else 0.0
        offers[d.key] = offer
        if d.surplus_on and left is not None:
            take = min(max(offer, d.min_a), d.max_a)
            for p in d.grid_phases:
                left[p] = max(0.0, left[p] - take)
            caps[d.key] = take
            runnable.append(d)
        else:
            shares[d.key] = Share(0.0, SURPLUS_WAITING, offer)
    for d in flexible:
        if not d.surplus:
            cap = d.max_a if d.car_limit_a is None else max(d.min_a, min(d.max_a, d.car_limit_a))
            caps[d.key] = cap
            runnable.append(d)

    # Admission at the minimum: highest priority first, then the earliest start.
    runnable.sort(key=lambda d: (-d.priority, d.started, str(d.key)))
    amps: dict[Hashable, float] = {}
    for d in runnable:
        if fits(d, d.min_a):
            amps[d.key] = d.min_a
            charge(d, d.min_a)
        else:
            shares[d.key] = Share(0.0, PAUSED, offers.get(d.key))

    # Progressive filling, one priority level at a time.
    for level in sorted({d.priority for d in runnable if d.key in amps}, reverse=True):
        growing = [d for d in runnable if d.key in amps and d.priority == level]
        while growing:
            delta = min(caps[d.key] - amps[d.key] for d in growing)
            users: dict[tuple[str, int], int] = {}
            for d in growing:
                for cid in paths[d.key]:
                    for p in d.grid_phases:
                        users[(cid, p)] = users.get((cid, p), 0) + 1
            for (cid, p), n in users.items():
                delta = min(delta, (budget[cid][p] - used[cid][p]) / n)
            delta = max(delta, 0.0)
            for d in growing:
                amps[d.key] += delta
                charge(d, delta)
            tight = {(cid, p) for (cid, p) in users if budget[cid][p] - used[cid][p] <= EPS}
            still = [d for d in growing if caps[d.key] - amps[d.key] > EPS
                     and not any((cid, p) in tight for cid in paths[d.key] for p in d.grid_phases)]
            if len(still) == len(growing):  # nothing froze: only float dust can get here
                break
            growing = still

    for d in runnable:
        if d.key not in amps:
            continue
        exact = amps[d.key]
        rounded = _floor(exact, step_a)
        a = min(d.min_a if rounded < d.min_a else rounded, caps[d.key])
        if d.surplus:
            reason = SURPLUS
        elif exact >= d.max_a - EPS:
            reason = CHARGER_MAX
        elif d.car_limit_a is not None and exact >= caps[d.key] - EPS:
            reason = CAR_LIMIT
        elif any(circuits[c].overridden for c in paths[d.key]):
            reason = OVERRIDE
        else:
            reason = FAIR_SHARE
        shares[d.key] = Share(a, reason, offers.get(d.key))

    out = Outcome(shares=shares)
    for cid, c in circuits.items():
        total = ZERO
        for d in demands:
            if cid in paths[d.key]:
                total = _add(total, d.on_phases(shares[d.key].amps))
        b = base[cid]
        out.circuits[cid] = CircuitState(
            base_a=b, available_a=tuple(budget[cid]) if b is not None else ZERO,  # type: ignore[arg-type]
            allocated_a=total, failsafe=stale[cid], measured_base_a=raw[cid])
    return out


def default_limits(circuits: Iterable[Circuit], connectors: Iterable[Demand],
                   step_a: float = 0.1) -> dict[Hashable, float]:
    """The limit each connector may draw when nobody manages it any more (the charger's default
    profile): the share that keeps every circuit above it safe if every connector below that
    circuit charged at once at that share. Base load is not known then; the margin covers it."""
    circuits = {c.id: c for c in circuits}
    connectors = list(connectors)
    count: dict[tuple[str, int], int] = {}
    chains: dict[Hashable, list[str]] = {}
    for d in connectors:
        path, current = [], d.circuit
        while current is not None and current in circuits and current not in path:
            path.append(current)
            current = circuits[current].parent
        chains[d.key] = path
        for cid in path:
            for p in d.grid_phases:
                count[(cid, p)] = count.get((cid, p), 0) + 1
    out = {}
    for d in connectors:
        share = min((circuits[cid].limit_a - circuits[cid].margin_a) / count[(cid, p)]
                    for cid in chains[d.key] for p in d.grid_phases) if chains[d.key] else 0.0
        out[d.key] = max(0.0, _floor(min(share, d.max_a), step_a))
    return out
