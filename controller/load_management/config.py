"""Configuration of load management: circuits, what each charger may draw, and the loop's timing.

The keys are the ones sites are written against (docs/load-management.md). `ChargerLoadKeys` is
mixed into `[[chargers]]`; `check(config)` runs inside the site config's validation and names the
dotted key of the first mistake; `warnings(config)` lists what is allowed but worth saying
(`evedge check-config` prints them, the site logs them at start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.meters.models import load_model

if TYPE_CHECKING:
    from controller.config import Config

PHASE_NAMES = ("L1", "L2", "L3")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CircuitConfig(_Section):
    """One fuse: the grid connection, or a sub-board inside another circuit (`parent`)."""

    id: str = Field(min_length=1, max_length=64)
    max_current_a: float = Field(gt=0, le=10_000)
    """Per phase: the fuse."""
    margin_a: float = Field(2.0, ge=0, le=10_000)
    """Kept free below max_current_a."""
    meter: str | None = None
    """A [[meters]] id (role "site") measuring everything on this circuit; without one the circuit
    is balanced statically (the sum of allocations stays under its limit)."""
    meter_timeout_s: float = Field(10.0, gt=0, le=3600)
    """A reading older than this is stale: every connector on the circuit goes to failsafe_current_a."""
    failsafe_current_a: float = Field(6.0, ge=0, le=10_000)
    """Per connector while the circuit's meter is stale (0 pauses every charge)."""
    parent: str | None = None
    """The circuit this one hangs from: a connector's share fits every circuit above it."""

    @model_validator(mode="after")
    def _margin(self) -> Self:
        if self.margin_a >= self.max_current_a:
            raise ValueError(f"margin_a: {self.margin_a:g} A leaves nothing of max_current_a"
                             f" ({self.max_current_a:g} A)")
        return self

    @property
    def headroom_a(self) -> float:
        return self.max_current_a - self.margin_a


class ChargerLoadKeys(_Section):
    """The [[chargers]] keys of load management (mixed into the charger's table)."""

    circuit: str | None = None
    """The [[circuits]] id the charger hangs from; chargers without one are not managed."""
    max_current_a: float = Field(32.0, gt=0, le=1000)
    """The charger's own limit, per phase."""
    min_current_a: float = Field(6.0, ge=0, le=1000)
    """Below this a car cannot charge (IEC 61851: 6 A)."""
    phases: Literal[1, 3] = 3
    phase: Literal["L1", "L2", "L3"] | None = None
    """For phases = 1: the grid phase the charger is wired to (default L1)."""
    priority: int = Field(0, ge=-1000, le=1000)
    """Higher is served first when there is not enough for everyone."""
    mode: Literal["normal", "surplus"] = "normal"
    """"surplus": charges only from export measured at the circuit's meter (solar)."""

    @model_validator(mode="after")
    def _load_keys(self) -> Self:
        if self.min_current_a > self.max_current_a:
            raise ValueError(f"min_current_a: {self.min_current_a:g} A is above max_current_a"
                             f" ({self.max_current_a:g} A)")
        if self.phase is not None and self.phases != 1:
            raise ValueError("phase: only for phases = 1 (a three-phase charger uses all three)")
        if self.mode == "surplus" and self.circuit is None:
            raise ValueError("mode: \"surplus\" needs a circuit with a meter")
        return self

    @property
    def phase_index(self) -> int:
        """0, 1 or 2: the grid phase a single-phase charger draws from."""
        return PHASE_NAMES.index(self.phase or "L1")


class LoadManagementSection(_Section):
    """The loop's timing; the defaults suit real chargers (cars take seconds to follow a limit)."""

    interval_s: float = Field(1.0, gt=0, le=60)
    """One allocation per circuit set this often (and at once on every new meter reading)."""
    increase_delay_s: float = Field(10.0, ge=0, le=3600)
    """A connector's limit goes up at most this often (reductions go out at once)."""
    profile_duration_s: int = Field(300, ge=10, le=86400)
    """Every dynamic limit runs out after this unless renewed, so a charger falls back to its safe
    default by itself when the controller is gone. Renewed when half of it is left."""
    charger_reading_max_age_s: float = Field(120.0, gt=0, le=3600)
    """A charger's own current readings (MeterValues Current.Import) older than this are not used."""
    unused_after_s: float = Field(60.0, ge=0, le=3600)
    """A car that draws clearly less than offered for this long gives the rest to the others."""
    overdraw_after_s: float = Field(60.0, ge=0, le=3600)
    """A charger drawing clearly more than its limit for this long is treated as uncontrollable."""
    car_response_s: float = Field(5.0, ge=0, le=60)
    """A car follows a new limit within this (IEC 61851-1 gives it 5 s): until then it may still draw
    the old one, and a base load that seems to fall is believed only once it has stayed down this long."""
    surplus_start_s: float = Field(60.0, ge=0, le=3600)
    """A surplus charger starts once the export has covered its minimum for this long..."""
    surplus_pause_s: float = Field(300.0, ge=0, le=3600)
    """... and pauses once the export has stayed below its minimum for this long."""


def check(config: Config) -> None:
    """What one table cannot check alone; ValueError naming the dotted key of the first mistake."""
    circuits = {c.id: c for c in config.circuits}
    meters = {m.id: m for m in config.meters}
    seen: set[str] = set()
    for index, circuit in enumerate(config.circuits):
        if circuit.id in seen:
            raise ValueError(f"circuits[{index}].id: duplicate circuit id {circuit.id!r}")
        seen.add(circuit.id)
    for index, circuit in enumerate(config.circuits):
        if circuit.meter is not None:
            meter = meters.get(circuit.meter)
            if meter is None:
                raise ValueError(f"circuits[{index}].meter: {circuit.meter!r} is not a [[meters]] id"
                                 f" (known: {', '.join(sorted(meters)) or 'none'})")
            if meter.role != "site":
                raise ValueError(f"circuits[{index}].meter: {circuit.meter!r} is a connector meter;"
                                 " a circuit's meter has role = \"site\"")
            registers = meter.map if meter.map is not None else load_model(meter.model)
            if "current_a_l1" not in registers.registers:
                raise ValueError(f"circuits[{index}].meter: {circuit.meter!r} reads no current (its map has no"
                                 " current_a_l1); load management needs the current per phase")
        if circuit.parent is not None and circuit.parent not in circuits:
            raise ValueError(f"circuits[{index}].parent: unknown circuit {circuit.parent!r}"
                             f" (known: {', '.join(sorted(circuits))})")
    for index, circuit in enumerate(config.circuits):
        path = [circuit.id]
        parent = circuit.parent
        while parent is not None:
            path.append(parent)
            if parent == circuit.id:
                raise ValueError(f"circuits[{index}].parent: a cycle ({' -> '.join(path)})")
            parent = circuits[parent].parent
            if len(path) > len(circuits) + 1:
                break  # a cycle further up: reported at its own index
    for index, charger in enumerate(config.chargers):
        if charger.circuit is None:
            continue
        circuit = circuits.get(charger.circuit)
        if circuit is None:
            raise ValueError(f"chargers[{index}].circuit: unknown circuit {charger.circuit!r}"
                             f" (known: {', '.join(sorted(circuits)) or 'none'})")
        if charger.mode == "surplus" and circuit.meter is None:
            raise ValueError(f"chargers[{index}].mode: \"surplus\" needs a meter on circuit {circuit.id!r}")
        for above in ancestry(circuits, circuit.id):
            if above.failsafe_current_a > charger.max_current_a:
                where = config.circuits.index(above)
                raise ValueError(f"circuits[{where}].failsafe_current_a: {above.failsafe_current_a:g} A is above"
                                 f" the max_current_a of charger {charger.id!r} ({charger.max_current_a:g} A)")


def ancestry(circuits: dict[str, CircuitConfig], circuit_id: str) -> list[CircuitConfig]:
    """The circuit and every circuit above it, nearest first (a validated config has no cycles)."""
    out: list[CircuitConfig] = []
    current: str | None = circuit_id
    while current is not None and current in circuits and len(out) <= len(circuits):
        out.append(circuits[current])
        current = circuits[current].parent
    return out


def warnings(config: Config) -> list[str]:
    """What is allowed but worth telling the installer, each naming its key."""
    out: list[str] = []
    circuits = {c.id: c for c in config.circuits}
    for index, charger in enumerate(config.chargers):
        if charger.circuit is None or charger.circuit not in circuits:
            continue
        need = charger.min_current_a * charger.connectors
        for above in ancestry(circuits, charger.circuit):
            if need > above.headroom_a:
                out.append(f"chargers[{index}].min_current_a: the {charger.connectors} connector(s) of"
                           f" {charger.id!r} need {need:g} A at their minimum, more than circuit"
                           f" {above.id!r} can give even to this charger alone ({above.headroom_a:g} A after"
                           " the margin); when all charge, the lowest priority is paused")
                break
    for index, circuit in enumerate(config.circuits):
        below = {c.id for c in config.circuits if circuit in ancestry(circuits, c.id)}
        per_phase = [0.0, 0.0, 0.0]
        for charger in config.chargers:
            if charger.circuit in below:
                for p in ((0, 1, 2) if charger.phases == 3 else (charger.phase_index,)):
                    per_phase[p] += circuit.failsafe_current_a * charger.connectors
        if circuit.meter is not None and max(per_phase) > circuit.headroom_a:
            out.append(f"circuits[{index}].failsafe_current_a: with the meter stale, every connector at"
                       f" {circuit.failsafe_current_a:g} A adds up to {max(per_phase):g} A on a phase, more than"
                       f" the {circuit.headroom_a:g} A the circuit has after its margin")
    return out
