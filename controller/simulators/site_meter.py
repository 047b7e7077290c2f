"""A simulated grid (or sub-board) meter that reads base load plus what simulated chargers draw,
so the load-management loop can be tested closed: the controller limits the chargers, their cars
follow, the meter sees it.

    device = SimulatedMeter("sdm630")
    with MeterServer(device) as server:
        site = SimulatedSiteMeter(device, base_a=(10, 10, 10))
        site.add(charger)                   # a SimulatedCharger; three-phase
        site.add(single_phase, phase="L2")  # a single-phase charger wired to L2
        site.set_base(40, 10, 10)           # the building switches something on
        site.set_base(-12, -12, -12)        # solar export

The meter is updated on every `draw` event of the chargers added (they emit one whenever what a
connector draws changes) and on every `set_base`. Currents are magnitudes, as real meters give
them; the direction is in each phase's power (negative: export).
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.simulators.charger_process import SimulatedCharger
from controller.simulators.meter import SimulatedMeter

VOLTS = 230.0
_PHASE = {"L1": 0, "L2": 1, "L3": 2}


class SimulatedSiteMeter:
    def __init__(self, meter: SimulatedMeter, base_a: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        self.meter = meter
        self.base_a = [float(v) for v in base_a]
        self.chargers: list[tuple[SimulatedCharger, int]] = []
        self.energy_wh = 0.0
        self.update()

    def add(self, charger: SimulatedCharger, phase: str = "L1") -> SimulatedCharger:
        """Count what `charger` draws; a single-phase one's L1 lands on the grid's `phase`."""
        self.chargers.append((charger, _PHASE[phase]))
        charger.draw_listeners.append(lambda _: self.update())
        self.update()
        return charger

    def set_base(self, l1: float, l2: float, l3: float) -> None:
        self.base_a = [float(l1), float(l2), float(l3)]
        self.update()

    def net_a(self) -> list[float]:
        """Signed current per grid phase: base load plus every connector's draw."""
        net = list(self.base_a)
        for charger, phase in self.chargers:
            for amps in charger.draw.values():
                if any(amps[1:]):  # three-phase
                    for p in range(3):
                        net[p] += amps[p]
                else:
                    net[phase] += amps[0]
        return net

    def update(self) -> None:
        net = self.net_a()
        powers = [round(a * VOLTS, 1) for a in net]
        self.meter.set(current_a=[round(abs(a), 3) for a in net], phase_power_w=powers, power_w=round(sum(powers), 1),
                       voltage_v=[VOLTS, VOLTS, VOLTS])
