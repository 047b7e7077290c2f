"""The load-management loop: measure, allocate, send; and the fail-safes around it.

Why it is shaped like this: the site must stay under its fuse when anything fails, the controller
included (docs/load-management.md, ARCHITECTURE "Safety rules"). So

- every managed charger holds a default limit (`ChargerLink.set_default_limit`) that keeps its
  circuits safe if every connector on them charged at once: sent when it connects and whenever
  the share changes;
- a running charge gets its dynamic limit with a duration (`set_transaction_limit`), renewed
  when half of it is left, so it lapses to the default by itself when we are gone;
- reductions go out at once (each charger has its own sender task, so 50 chargers are told in
  parallel), increases at most every `increase_delay_s` and only by 1 A or more;
- a stale meter puts its circuit on the fail-safe current within one loop; a charger that
  refuses limits (or draws clearly more than its limit) has its maximum reserved; a charger that
  went away mid-charge keeps what it had until its charge ends or it comes back; a limit whose
  answer got lost is reserved at the higher of the old and the new until one is confirmed.

Time is `trio.current_time()` throughout (tests run it on a MockClock); wall-clock time is only
shown (the API) and compared with an override's expiry.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import trio

from controller import metrics
from controller.chargers import ChargerRegistry, ChargerState
from controller.errors import AnswerLost, ChargerCallError, ChargerOffline, Invalid, NotFound
from controller.live_config import LiveConfig
from controller.load_management.allocation import (
    ACTIVE, EPS, OFFLINE_RESERVED, UNCONTROLLED, ZERO, Circuit, CircuitState, Demand, Phases, Share, allocate,
    default_limits,
)
from controller.load_management.caps import Cap, Caps
from controller.load_management.config import CircuitConfig
from controller.store import circuits as q
from controller.timefmt import now_iso, parse_iso, utcnow

log = logging.getLogger("evedge.load")

TOLERANCE_A = 2.0  # "clearly" more or less than the limit
INCREASE_STEP_A = 1.0  # a smaller increase is not sent
BOOT_GRACE_S = 5.0  # a connected charger that has not booted by then gets its default limit anyway
MIN_STEP_S = 0.05  # new meter readings wake the loop at most this often
REFUSAL_GRACE_S = 2.0  # a charge's limit refused twice, the charge still running this much later: the
# charger refuses limits (not a race with the start or the end of the charge)

ChargeKey = tuple[str, int]


@dataclass(frozen=True)
class RunningCharge:
    transaction_id: int
    started: str
    charger_transaction_id: str | None = None  # the charger's own id, where it names its charges


@dataclass(frozen=True)
class Override:
    max_current_a: float
    expires_at: str | None
    created_at: str


@dataclass
class Sent:
    """A limit we sent and what became of it."""

    kind: str  # "default" | "transaction"
    amps: float
    phases: int
    at: float  # trio time
    sent_at: str  # wall clock, for people
    answer: str  # accepted | rejected | no answer | offline | error: <code> | sending
    transaction_id: int | None = None
    duration_s: int | None = None

    @property
    def accepted(self) -> bool:
        return self.answer == "accepted"

    def expired(self, now: float) -> bool:
        return self.duration_s is not None and now >= self.at + self.duration_s


@dataclass
class ConnectorTrack:
    charger_id: str
    connector_id: int
    transaction_id: int
    started: str
    charger_transaction_id: str | None = None
    profile: Sent | None = None  # the last limit sent for this charge, whatever came of it
    in_force: Sent | None = None  # the last one the charger accepted
    changed_at: float = -math.inf  # when the limit in force last changed (increases wait on it)
    unconfirmed: float | None = None  # amps of a limit whose answer got lost (or that was refused)
    refused: tuple[float, str] | None = None  # (when, answer) of a refused limit, until judged
    refusals: int = 0  # refused limits in a row
    sending: float | None = None  # amps of the limit on its way
    job: float | None = None  # amps to send next
    low_since: float | None = None
    car_limit: float | None = None
    over_since: float | None = None
    surplus_on: bool = False
    surplus_since: float | None = None
    share: Share | None = None
    drawn: Phases | None = None
    drawn_source: str = "assumed"
    history: list[tuple[float, float]] = field(default_factory=list)  # (since, amps) of the limits in force

    def limit_in_force(self, now: float, amps: float) -> None:
        if not self.history or abs(self.history[-1][1] - amps) > EPS:
            self.history.append((now, amps))
        cutoff = now - 600
        while len(self.history) > 1 and self.history[1][0] < cutoff:
            del self.history[0]

    def changed_since(self, at: float) -> bool:
        return len(self.history) > 1 and self.history[-1][0] > at

    def assumed_draw(self, at: float, response_s: float) -> float:
        """What the car may have drawn when a reading was taken at `at`: the highest limit in force
        from `response_s` before it (a car still slowing down) until then (not any later limit:
        the reading does not show it yet)."""
        start = at - response_s
        before = [amps for since, amps in self.history if since <= start]
        during = [amps for since, amps in self.history if start < since <= at]
        candidates = ([before[-1]] if before else []) + during
        return max(candidates) if candidates else self.history[0][1]


@dataclass
class ChargerTrack:
    id: str
    wake: trio.Event = field(default_factory=trio.Event)
    default: Sent | None = None  # the last default limit sent
    default_link: Any = None  # the connection it went out on
    default_job: float | None = None
    default_sending: bool = False
    wanted_default: float | None = None
    uncontrollable: str | None = None  # why, once it is
    uncontrollable_link: Any = None
    link_seen: Any = None
    link_seen_at: float = 0.0


@dataclass
class CircuitView:
    """One circuit as the API shows it."""

    config: CircuitConfig
    limit_a: float
    override: Override | None
    meter_state: str  # ok | stale | none
    measured_a: Phases | None
    state: CircuitState
    over_limit_s: float
    connectors: list[ConnectorTrack]


class LoadManager:
    def __init__(self, config: LiveConfig, chargers: ChargerRegistry, store: Any, hardware: Any,
                 running_charges: Callable[[], Awaitable[dict[ChargeKey, RunningCharge]]] | None = None) -> None:
        """`hardware.meters[id].state` are the meters' latest readings (drivers.Hardware);
        `running_charges` (tests) replaces the store's list of running transactions."""
        self.config = config
        self.chargers = chargers
        self.store = store
        self.hardware = hardware
        self._running_charges = running_charges or self._stored_charges
        self.overrides: dict[str, Override] = {}
        self.caps = Caps()  # bounds from above the site (local-controller mode)
        self.connectors: dict[ChargeKey, ConnectorTrack] = {}
        self.charger_tracks: dict[str, ChargerTrack] = {}
        self.views: dict[str, CircuitView] = {}
        self.over_limit_s: dict[str, float] = {}
        self._fresh: dict[str, float] = {}  # meter id -> trio time of its latest good reading
        self._wake = trio.Event()
        self._last_step: float | None = None
        self._failsafe: dict[str, bool] = {}
        self._base_seen: dict[str, list[tuple[float, Phases]]] = {}  # circuit -> recent (time, base load)
        self.steps = 0

    # -- what the rest of the site calls --------------------------------------------------

    @property
    def enabled(self) -> bool:
        return bool(self.config.current.circuits)

    async def on_reading(self, state: Any) -> None:
        """A meter's new snapshot (drivers.Hardware's on_reading): fresh data, allocate now."""
        if state.online:
            self._fresh[state.id] = trio.current_time()
        if self.enabled:
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        if not self.enabled:
            task_status.started()
            return
        await self.load_overrides()
        cfg = self.config.current
        for problem in _warnings(cfg):
            log.warning("load management: %s", problem)
        async with trio.open_nursery() as nursery:
            for charger in cfg.chargers:
                if charger.circuit is not None:
                    track = self.charger_tracks[charger.id] = ChargerTrack(charger.id)
                    nursery.start_soon(self._sender, track)
            task_status.started()
            while True:
                started = trio.current_time()
                try:
                    await self.step()
                except Exception:
                    log.exception("load management step failed; chargers keep their limits until they lapse")
                with trio.move_on_after(cfg.load_management.interval_s):
                    await self._wake.wait()
                self._wake = trio.Event()
                await trio.sleep_until(started + MIN_STEP_S)

    def view(self, circuit_id: str) -> CircuitView:
        """The circuit as of the latest allocation (NotFound for an unknown id)."""
        circuit = self._circuit(circuit_id)
        view = self.views.get(circuit_id)
        if view is None or view.config != circuit:  # before the first allocation
            view = CircuitView(config=circuit, limit_a=self.effective_limit(circuit),
                               override=self.overrides.get(circuit_id),
                               meter_state="none" if circuit.meter is None else "stale", measured_a=None,
                               state=CircuitState(None, ZERO, ZERO, circuit.meter is not None), over_limit_s=0.0,
                               connectors=[])
        return view

    def health_checks(self) -> dict[str, Callable[[], dict]]:
        """For /healthz: one per circuit, "degraded" while it runs on fail-safe currents or a charger
        on it is uncontrollable (charging goes on, within the fuse, but not as planned)."""
        def check(circuit_id: str) -> dict:
            view = self.view(circuit_id)
            wild = [c for c in self.chargers_below(circuit_id)
                    if (t := self.charger_tracks.get(c)) is not None and t.uncontrollable]
            ok = not view.state.failsafe and not wild
            return {"status": "ok" if ok else "degraded", "failsafe": view.state.failsafe,
                    "meterState": view.meter_state, "uncontrollable": wild}

        return {f"circuit:{c.id}": (lambda cid=c.id: check(cid)) for c in self.config.current.circuits}

    def chargers_below(self, circuit_id: str) -> list[str]:
        """The managed chargers on this circuit or on one below it, in config order."""
        cfg = self.config.current
        below = {c.id for c in cfg.circuits if circuit_id in _chain(cfg.circuits, c.id)}
        return [ch.id for ch in cfg.chargers if ch.circuit in below]

    # -- overrides ---------------------------------------------------------------------------

    async def load_overrides(self) -> None:
        for row in await self.store.read(q.all_overrides):
            self.overrides[row["circuit_id"]] = Override(row["max_current_a"], row["expires_at"], row["created_at"])

    def _circuit(self, circuit_id: str) -> CircuitConfig:
        circuit = next((c for c in self.config.current.circuits if c.id == circuit_id), None)
        if circuit is None:
            raise NotFound("Circuit", circuit_id)
        return circuit

    async def set_override(self, circuit_id: str, max_current_a: float, expires_at: str | None) -> Override:
        """A lower limit on a circuit (demand response, a DSO's dimming signal) until `expires_at`."""
        circuit = self._circuit(circuit_id)
        if not 0 <= max_current_a <= circuit.max_current_a:
            raise Invalid(f"maxCurrentA: must be between 0 and the circuit's max_current_a"
                          f" ({circuit.max_current_a:g} A)")
        if expires_at is not None and parse_iso(expires_at) <= parse_iso(now_iso()):
            raise Invalid("expiresAt: in the past")
        created = await self.store.write(q.put_override, circuit_id, max_current_a, expires_at)
        self.overrides[circuit_id] = override = Override(max_current_a, expires_at, created)
        log.info("circuit=%s override %g A until %s", circuit_id, max_current_a, expires_at or "lifted")
        self.wake()
        return override

    async def clear_override(self, circuit_id: str) -> None:
        self._circuit(circuit_id)
        await self.store.write(q.delete_override, circuit_id)
        if self.overrides.pop(circuit_id, None) is not None:
            log.info("circuit=%s override lifted", circuit_id)
        self.wake()

    async def _expire_overrides(self) -> None:
        now = parse_iso(now_iso())
        for circuit_id, override in list(self.overrides.items()):
            if override.expires_at is not None and parse_iso(override.expires_at) <= now:
                log.info("circuit=%s override of %g A expired", circuit_id, override.max_current_a)
                del self.overrides[circuit_id]
                try:
                    await self.store.write(q.delete_override, circuit_id)
                except Exception as exc:  # it is ignored once read back after a restart anyway
                    log.warning("circuit=%s: could not delete the expired override: %s", circuit_id, exc)

    # -- one allocation -----------------------------------------------------------------------

    async def _stored_charges(self) -> dict[ChargeKey, RunningCharge]:
        rows = await self.store.read(q.running_charges)
        return {(r["charger_id"], r["connector_id"]): RunningCharge(r["id"], r["start_time"] or "",
                                                                          r["ocpp_transaction_id"]) for r in rows}

    def _measured(self, circuit: CircuitConfig, now: float) -> Phases | None:
        """The circuit meter's signed current per phase (negative: export), None when stale."""
        meter = self.hardware.meters.get(circuit.meter) if circuit.meter else None
        state = meter.state if meter is not None else None
        fresh = self._fresh.get(circuit.meter or "")
        if state is None or not state.online or fresh is None or now - fresh > circuit.meter_timeout_s:
            return None
        return signed_currents(state)

    def effective_limit(self, circuit: CircuitConfig) -> float:
        override = self.overrides.get(circuit.id)
        return min(circuit.max_current_a, override.max_current_a) if override else circuit.max_current_a

    async def step(self) -> None:
        cfg = self.config.current
        lm = cfg.load_management
        now = trio.current_time()
        dt = 0.0 if self._last_step is None else min(now - self._last_step, 2 * lm.interval_s)
        self._last_step = now
        self.steps += 1
        await self._expire_overrides()
        charges = await self._running_charges()

        circuits: list[Circuit] = []
        measured: dict[str, Phases | None] = {}
        for c in cfg.circuits:
            measured[c.id] = self._measured(c, now) if c.meter else None
            circuits.append(Circuit(
                c.id, self.effective_limit(c), c.margin_a, c.parent, metered=c.meter is not None,
                measured_a=measured[c.id], failsafe_a=c.failsafe_current_a, overridden=c.id in self.overrides,
                base_floor_a=self._base_floor(c.id, now, lm.car_response_s)))

        demands: list[Demand] = []
        every_connector: list[Demand] = []
        for charger in cfg.chargers:
            if charger.circuit is None or charger.id not in self.charger_tracks:
                continue
            ct = self.charger_tracks[charger.id]
            state = self.chargers.get(charger.id)
            link = state.link if state is not None and state.registration == "accepted" else None
            if link is not ct.link_seen:
                ct.link_seen, ct.link_seen_at = link, now
                if link is not None and ct.uncontrollable and ct.uncontrollable_link is not link:
                    log.info("charger=%s reconnected: trying its limits again", charger.id)
                    ct.uncontrollable = None
            base = dict(circuit=charger.circuit, min_a=charger.min_current_a, max_a=charger.max_current_a,
                        phases=charger.phases, phase=charger.phase_index, priority=charger.priority)
            for n in range(1, charger.connectors + 1):
                key = (charger.id, n)
                base.update(self._capped(charger, n))
                every_connector.append(Demand(key, **base))
                charge = charges.get(key)
                track = self.connectors.get(key)
                if charge is None:
                    if track is not None:
                        del self.connectors[key]
                        metrics.connector_allocated(charger.id, n, None)
                    continue
                if track is None or track.transaction_id != charge.transaction_id:
                    track = self.connectors[key] = ConnectorTrack(charger.id, n, charge.transaction_id, charge.started,
                                                                      charge.charger_transaction_id)
                in_force = self._in_force(ct, track, charger.max_current_a, now)
                track.limit_in_force(now, in_force)
                reading_at = min((self._fresh.get(c.meter, now) for c in _configs_above(cfg, charger.circuit)
                                  if c.meter), default=now)
                assumed = track.assumed_draw(reading_at, lm.car_response_s)
                track.drawn, track.drawn_source = self._drawn(charger, state, n, assumed, now)
                drawn = track.drawn
                if track.drawn_source != "assumed" and track.changed_since(reading_at - lm.car_response_s):
                    # the car may still be on its way to a new limit: count the higher of the two, so
                    # that what it still draws is not taken for base load
                    mine = (0, 1, 2) if charger.phases == 3 else (charger.phase_index,)
                    drawn = tuple(max(v, assumed) if p in mine else v for p, v in enumerate(drawn))  # type: ignore[assignment]
                self._watch_draw(charger, ct, track, in_force, now, lm)
                if track.refused is not None and now - track.refused[0] >= REFUSAL_GRACE_S:
                    if track.refusals >= 2:  # refused again, and the charge still runs
                        self._refused(ct, ct.link_seen, "transaction", track.refused[1])
                        track.unconfirmed = None
                    track.refused = None  # else: sent again (below) while the old limit stays reserved
                kind, reserved, why = ACTIVE, 0.0, None
                if link is None:
                    kind, reserved = OFFLINE_RESERVED, in_force
                elif ct.uncontrollable:
                    kind, reserved = UNCONTROLLED, charger.max_current_a
                elif track.unconfirmed is not None:
                    kind, reserved = OFFLINE_RESERVED, max(in_force, track.unconfirmed)
                    why = "unconfirmed: limit reserved"
                demands.append(Demand(
                    key, **base, started=track.started, drawn_a=drawn, state=kind, reserved_a=reserved,
                    car_limit_a=track.car_limit, surplus=charger.mode == "surplus", surplus_on=track.surplus_on,
                    fixed_reason=why))

        outcome = allocate(circuits, demands)
        for cid, state in outcome.circuits.items():
            if state.measured_base_a is not None:
                self._base_seen.setdefault(cid, []).append((now, state.measured_base_a))
        defaults = default_limits(circuits, every_connector)

        for d in demands:
            track = self.connectors[d.key]
            track.share = outcome.shares[d.key]
            self._surplus(track, d, now, lm)
            metrics.connector_allocated(d.key[0], d.key[1], track.share.amps)
            if d.state == ACTIVE:
                self._decide(track, now, lm)
            elif d.fixed_reason is not None and track.refused is None and track.sending is None \
                    and track.profile is not None:  # unconfirmed (online, controllable)
                track.job = track.profile.amps  # again, until the charger says yes or no

        for charger in cfg.chargers:
            ct = self.charger_tracks.get(charger.id)
            if ct is None:
                continue
            wanted = min(defaults[(charger.id, n)] for n in range(1, charger.connectors + 1))
            ct.wanted_default = wanted
            state = self.chargers.get(charger.id)
            link = ct.link_seen
            if link is None or ct.uncontrollable or ct.default_sending:
                continue
            booted = state is not None and state.last_boot is not None and state.connected_at is not None \
                and state.last_boot >= state.connected_at
            if not booted and now - ct.link_seen_at < BOOT_GRACE_S:
                continue
            last = ct.default
            if ct.default_link is not link or last is None or not last.accepted or abs(last.amps - wanted) > EPS:
                ct.default_job = wanted
        for ct in self.charger_tracks.values():
            if ct.default_job is not None or any(
                    t.job is not None for t in self.connectors.values() if t.charger_id == ct.id):
                ct.wake.set()

        self._publish(cfg, circuits, measured, outcome.circuits, dt)

    def set_cap(self, charger_id: str, connector_id: int, profile_id: int, start: datetime,
                periods: list[tuple[float, float]], until: datetime | None) -> None:
        """An upper bound from above the site (controller/load_management/caps.py); applied at once."""
        self.caps.set(charger_id, connector_id, profile_id, Cap(start, periods, until))
        log.info("charger=%s connector=%s: bound from above the site %s", charger_id, connector_id, periods)
        self.wake()

    def clear_caps(self, charger_id: str, connector_id: int | None, profile_id: int | None) -> bool:
        cleared = self.caps.clear(charger_id, connector_id, profile_id)
        self.wake()
        return cleared

    def _capped(self, charger: Any, connector_id: int) -> dict[str, float]:
        """The connector's min and max under its bound from above the site: a bound below the
        minimum current pauses it."""
        cap = self.caps.limit(charger.id, connector_id, utcnow())
        if cap is None or cap >= charger.max_current_a:
            return {"min_a": charger.min_current_a, "max_a": charger.max_current_a}
        return {"min_a": charger.min_current_a, "max_a": cap} if cap >= charger.min_current_a else {"min_a": 0.0, "max_a": 0.0}

    def _base_floor(self, circuit_id: str, now: float, window: float) -> Phases | None:
        """The highest base load seen in the last `window` s: a base load rises at once, and is
        believed to fall once it has stayed down that long (a car slowing down to a new limit
        would otherwise look like the building using less)."""
        seen = self._base_seen.get(circuit_id)
        if not seen:
            return None
        while seen and seen[0][0] < now - window:
            seen.pop(0)
        if not seen:
            return None
        return (max(b[0] for _, b in seen), max(b[1] for _, b in seen), max(b[2] for _, b in seen))

    def _in_force(self, ct: ChargerTrack, track: ConnectorTrack, charger_max: float, now: float) -> float:
        """The limit the charger applies to this charge now, as far as we know."""
        if track.in_force is not None and not track.in_force.expired(now):
            return track.in_force.amps
        if ct.default is not None and ct.default.accepted:
            return ct.default.amps
        return charger_max

    def _drawn(self, charger: Any, state: ChargerState | None, connector_id: int, in_force: float,
               now: float) -> tuple[Phases, str]:
        """What the connector draws on the grid's phases, and where that figure comes from."""
        phases = (0, 1, 2) if charger.phases == 3 else (charger.phase_index,)

        def on_grid(values: tuple) -> Phases:
            known = [v for v in values if v is not None]
            if charger.phases == 1:
                out = [0.0, 0.0, 0.0]
                out[charger.phase_index] = max(known, default=0.0)
                return (out[0], out[1], out[2])
            padded = [float(v) if v is not None else 0.0 for v in values] + [0.0, 0.0, 0.0]
            return (padded[0], padded[1], padded[2])

        for meter in self.hardware.meters.values():
            m = meter.state
            if m.role == "connector" and (m.charger, m.connector) == (charger.id, connector_id):
                fresh = self._fresh.get(m.id)
                if m.online and m.current_a is not None and fresh is not None \
                        and now - fresh <= self.config.current.load_management.charger_reading_max_age_s:
                    return on_grid(tuple(m.current_a)), "connector meter"
        if state is not None:
            c = state.connectors.get(connector_id)
            if c is not None and c.current_a is not None and c.current_at is not None \
                    and now - c.current_at <= self.config.current.load_management.charger_reading_max_age_s:
                return on_grid(tuple(c.current_a)), "charger"
        out = [0.0, 0.0, 0.0]
        for p in phases:
            out[p] = in_force
        return (out[0], out[1], out[2]), "assumed"

    def _watch_draw(self, charger: Any, ct: ChargerTrack, track: ConnectorTrack, in_force: float, now: float,
                    lm: Any) -> None:
        """A car that leaves capacity unused gives it back; a charger that ignores its limit is
        uncontrollable."""
        if track.drawn_source == "assumed" or track.drawn is None:
            track.low_since = track.over_since = None
            return
        phases = (0, 1, 2) if charger.phases == 3 else (charger.phase_index,)
        drawn = max(track.drawn[p] for p in phases)
        limit_known = (track.in_force is not None and not track.in_force.expired(now)) or (
            ct.default is not None and ct.default.accepted)
        if limit_known and drawn > in_force + TOLERANCE_A and not ct.uncontrollable:
            track.over_since = track.over_since if track.over_since is not None else now
            if now - track.over_since >= lm.overdraw_after_s:
                ct.uncontrollable = f"draws {drawn:.1f} A, over its limit of {in_force:g} A"
                ct.uncontrollable_link = ct.link_seen
                log.warning("charger=%s is uncontrollable: connector %d %s", ct.id, track.connector_id,
                            ct.uncontrollable)
        else:
            track.over_since = None
        if track.car_limit is not None and drawn >= track.car_limit - 0.5:
            track.car_limit = None  # the car wants more again
            track.low_since = None
        elif drawn < in_force - TOLERANCE_A and track.car_limit is None:
            track.low_since = track.low_since if track.low_since is not None else now
            if now - track.low_since >= lm.unused_after_s:
                track.car_limit = math.ceil(drawn) + INCREASE_STEP_A
        else:
            track.low_since = None

    def _surplus(self, track: ConnectorTrack, d: Demand, now: float, lm: Any) -> None:
        """Start a surplus charge once the export has covered its minimum for surplus_start_s,
        pause it once the export has stayed under it for surplus_pause_s."""
        if not d.surplus or track.share is None:
            return
        offer = track.share.surplus_offer_a or 0.0
        enough = offer >= d.min_a - EPS
        if enough == track.surplus_on:
            track.surplus_since = None
            return
        track.surplus_since = track.surplus_since if track.surplus_since is not None else now
        if now - track.surplus_since >= (lm.surplus_start_s if enough else lm.surplus_pause_s):
            track.surplus_on, track.surplus_since = enough, None
            log.info("charger=%s connector=%d surplus charge %s (export offers %.1f A)", track.charger_id,
                     track.connector_id, "starts" if enough else "pauses", offer)
            self.wake()

    def _decide(self, track: ConnectorTrack, now: float, lm: Any) -> None:
        """Whether this charge's limit goes out now: reductions at once, increases rate-limited,
        renewals when half the duration is gone."""
        assert track.share is not None
        target = track.share.amps
        if track.sending is not None:
            track.job = target if target < track.sending - EPS else None
            return
        current = track.in_force if track.in_force is not None and not track.in_force.expired(now) else None
        if current is None:
            track.job = target
        elif target < current.amps - EPS:
            track.job = target
        elif target >= current.amps + INCREASE_STEP_A - EPS and now - track.changed_at >= lm.increase_delay_s:
            track.job = target
        elif now >= current.at + lm.profile_duration_s / 2:
            track.job = current.amps
        else:
            track.job = None

    # -- sending ------------------------------------------------------------------------------

    async def _sender(self, ct: ChargerTrack) -> None:
        """One charger's limits, one call at a time (OCPP allows one outstanding call), most
        urgent first: reductions, then the default, then the rest."""
        while True:
            await ct.wake.wait()
            ct.wake = trio.Event()
            while True:
                state = self.chargers.get(ct.id)
                link = state.link if state is not None else None
                charger = self.config.current.charger(ct.id)
                if link is None or charger is None:
                    break
                tracks = sorted((t for t in self.connectors.values() if t.charger_id == ct.id and t.job is not None),
                                key=lambda t: t.job - (t.in_force.amps if t.in_force else charger.max_current_a))
                reductions = [t for t in tracks if t.in_force is None or t.job < t.in_force.amps - EPS]
                if reductions:
                    await self._send_transaction(ct, link, reductions[0], charger.phases)
                elif ct.default_job is not None:
                    await self._send_default(ct, link, charger.phases)
                elif tracks:
                    await self._send_transaction(ct, link, tracks[0], charger.phases)
                else:
                    break

    async def _call(self, ct: ChargerTrack, send: Callable[[], Awaitable[bool]]) -> str:
        try:
            return "accepted" if await send() else "rejected"
        except ChargerCallError as exc:
            return f"error: {exc.error_code}"
        except AnswerLost:
            return "no answer"
        except ChargerOffline:
            return "offline"
        except Exception:
            log.exception("charger=%s: a limit could not be sent", ct.id)
            return "error: not sent"

    async def _send_default(self, ct: ChargerTrack, link: Any, phases: int) -> None:
        amps, ct.default_job = ct.default_job, None
        assert amps is not None
        ct.default_sending = True
        sent = Sent("default", amps, phases, trio.current_time(), now_iso(), "sending")
        try:
            sent.answer = await self._call(ct, lambda: link.set_default_limit(amps, phases))
        finally:
            ct.default_sending = False
        ct.default, answer = sent, sent.answer
        if answer == "accepted":
            ct.default_link = link
            log.info("charger=%s default limit %g A accepted", ct.id, amps)
        else:
            self._refused(ct, link, "default", answer)
        self.wake()

    async def _send_transaction(self, ct: ChargerTrack, link: Any, track: ConnectorTrack, phases: int) -> None:
        amps, track.job = track.job, None
        assert amps is not None
        duration = self.config.current.load_management.profile_duration_s
        sent = Sent("transaction", amps, phases, trio.current_time(), now_iso(), "sending", track.transaction_id,
                    duration)
        track.sending = amps
        try:
            answer = sent.answer = await self._call(ct, lambda: link.set_transaction_limit(
                track.connector_id, track.transaction_id, amps, phases, duration, track.charger_transaction_id))
        finally:
            track.sending = None
        track.profile = sent  # the last limit sent, with the charger's answer
        if answer == "accepted":
            before = track.in_force.amps if track.in_force is not None else None
            if before is None or abs(before - amps) > EPS:
                track.changed_at = sent.at
            track.in_force, track.unconfirmed, track.refusals = sent, None, 0
            track.limit_in_force(trio.current_time(), amps)
            log.debug("charger=%s connector=%d limit %g A accepted", ct.id, track.connector_id, amps)
        elif answer == "no answer":
            track.unconfirmed = max(amps, track.unconfirmed or 0.0)
            log.warning("charger=%s connector=%d: no answer to a %g A limit; reserving the higher of the"
                        " old and the new until one is confirmed", ct.id, track.connector_id, amps)
        elif answer != "offline":
            # Refused: the charge may have begun or ended in the same instant (the charger does not
            # know the transaction yet, or any more). Sent once more after REFUSAL_GRACE_S, and a
            # second refusal of a charge that still runs makes the charger uncontrollable; the
            # higher limit stays reserved meanwhile.
            track.refused, track.refusals = (trio.current_time(), answer), track.refusals + 1
            track.unconfirmed = max(amps, track.in_force.amps if track.in_force else 0.0, track.unconfirmed or 0.0)
        self.wake()

    def _refused(self, ct: ChargerTrack, link: Any, kind: str, answer: str) -> None:
        if answer in ("offline", "no answer"):
            return
        ct.uncontrollable = f"answered {answer} to a {kind} limit"
        ct.uncontrollable_link = link
        log.warning("charger=%s is uncontrollable (%s): its max current is reserved", ct.id, ct.uncontrollable)

    # -- what the API and the metrics see -------------------------------------------------------

    def _publish(self, cfg: Any, circuits: list[Circuit], measured: dict[str, Phases | None],
                 states: dict[str, CircuitState], dt: float) -> None:
        by_id = {c.id: c for c in circuits}
        for c in cfg.circuits:
            m = measured.get(c.id)
            limit = by_id[c.id].limit_a
            over = dt if m is not None and max(abs(v) for v in m) > limit + EPS else 0.0
            self.over_limit_s[c.id] = self.over_limit_s.get(c.id, 0.0) + over
            state = states[c.id]
            if state.failsafe != self._failsafe.get(c.id, False):
                self._failsafe[c.id] = state.failsafe
                if state.failsafe:
                    log.warning("circuit=%s fail-safe: its meter (or one above) is stale; every connector at"
                                " failsafe_current_a", c.id)
                else:
                    log.info("circuit=%s meter readings fresh again; fail-safe ends", c.id)
            below = {x.id for x in cfg.circuits if c.id in _chain(cfg.circuits, x.id)}
            chargers = {ch.id for ch in cfg.chargers if ch.circuit in below}
            self.views[c.id] = CircuitView(
                config=c, limit_a=limit, override=self.overrides.get(c.id),
                meter_state="none" if c.meter is None else ("ok" if m is not None else "stale"),
                measured_a=m, state=state, over_limit_s=self.over_limit_s[c.id],
                connectors=[t for k, t in sorted(self.connectors.items()) if t.charger_id in chargers])
            metrics.circuit_state(c.id, m, state.allocated_a, limit, state.failsafe, over)


def _chain(circuits: list[CircuitConfig], circuit_id: str) -> list[str]:
    by_id = {c.id: c for c in circuits}
    out: list[str] = []
    current: str | None = circuit_id
    while current is not None and current in by_id and current not in out:
        out.append(current)
        current = by_id[current].parent
    return out


def _configs_above(cfg: Any, circuit_id: str) -> list[CircuitConfig]:
    by_id = {c.id: c for c in cfg.circuits}
    return [by_id[c] for c in _chain(cfg.circuits, circuit_id)]


def _warnings(cfg: Any) -> list[str]:
    from controller.load_management.config import warnings

    return warnings(cfg)


def signed_currents(state: Any) -> Phases | None:
    """A meter's current per phase, negative where it exports (the sign of that phase's power, or
    of the total power); a single-phase meter reads on L1. None if it has no current readings."""
    if state.current_a is None:
        return None
    values = [float(v) if v is not None else 0.0 for v in state.current_a][:3]
    values += [0.0] * (3 - len(values))
    powers = list(state.phase_power_w) if state.phase_power_w is not None else None
    for p in range(3):
        power = powers[p] if powers is not None and p < len(powers) and powers[p] is not None else state.power_w
        if power is not None and power < 0:
            values[p] = -abs(values[p])
    return (values[0], values[1], values[2])


__all__ = ["CircuitView", "LoadManager", "RunningCharge", "signed_currents"]
