"""The simulated charger's electrics: which OCPP 1.6 charging profile is in force on a connector,
and what the car plugged into it draws.

Independent of evedge's code on purpose (the simulator is the other side of the wire): profiles
are read as a charger reads them (1.6 section 3.13: ChargePointMaxProfile caps everything, a
TxProfile for the running transaction beats the TxDefaultProfile, a connector's own default beats
connector 0's, the highest stackLevel wins; a schedule's `duration` ends it), and the car follows
the limit after a short ramp, never above its own maximum, and stops below 6 A (IEC 61851).
Plain Python, no asyncio: the simulator ticks it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

VOLTS = 230.0
IEC_MIN_A = 6.0


def _wall() -> float:
    return time.time()


def _parse(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp()


@dataclass
class Installed:
    connector_id: int
    profile: dict[str, Any]  # camelCase, as on the wire
    received: float  # wall clock


class ChargingProfiles:
    def __init__(self) -> None:
        self.installed: dict[int, Installed] = {}

    def install(self, connector_id: int, profile: dict[str, Any], transaction_id: int | None) -> str:
        """SetChargingProfile: the answer's status. A TxProfile needs a transaction on the connector."""
        purpose = profile.get("chargingProfilePurpose")
        if purpose == "TxProfile":
            if connector_id == 0 or transaction_id is None:
                return "Rejected"
            if profile.get("transactionId") not in (None, transaction_id):
                return "Rejected"
        if purpose == "ChargePointMaxProfile" and connector_id != 0:
            return "Rejected"
        for pid, old in list(self.installed.items()):
            same_slot = (old.connector_id == connector_id and old.profile.get("stackLevel") == profile.get("stackLevel")
                         and old.profile.get("chargingProfilePurpose") == purpose)
            if pid == profile.get("chargingProfileId") or same_slot:
                del self.installed[pid]
        self.installed[profile["chargingProfileId"]] = Installed(connector_id, profile, _wall())
        return "Accepted"

    def clear(self, profile_id: int | None = None, connector_id: int | None = None, purpose: str | None = None,
              stack_level: int | None = None) -> bool:
        gone = [pid for pid, p in self.installed.items()
                if (profile_id is None or pid == profile_id)
                and (connector_id is None or p.connector_id == connector_id)
                and (purpose is None or p.profile.get("chargingProfilePurpose") == purpose)
                and (stack_level is None or p.profile.get("stackLevel") == stack_level)]
        for pid in gone:
            del self.installed[pid]
        return bool(gone)

    def transaction_ended(self, connector_id: int) -> None:
        """A TxProfile lives as long as its transaction (1.6 3.13.6)."""
        self.clear(connector_id=connector_id, purpose="TxProfile")

    def _limit_of(self, item: Installed, phases: int, started: float | None, now: float) -> float | None:
        """The profile's limit now in amps, or None when it is not in force."""
        p = item.profile
        if p.get("validFrom") and _parse(p["validFrom"]) > now:
            return None
        if p.get("validTo") and _parse(p["validTo"]) <= now:
            return None
        schedule = p.get("chargingSchedule") or {}
        if p.get("chargingProfileKind") == "Relative":
            start = started if started is not None else item.received
        elif schedule.get("startSchedule"):
            start = _parse(schedule["startSchedule"])
        else:
            start = item.received
        elapsed = now - start
        if elapsed < 0:
            return None
        duration = schedule.get("duration")
        if duration is not None and elapsed >= float(duration):
            return None
        periods = sorted(schedule.get("chargingSchedulePeriod") or [], key=lambda x: x.get("startPeriod", 0))
        current = None
        for period in periods:
            if float(period.get("startPeriod", 0)) <= elapsed:
                current = period
        if current is None:
            return None
        limit = float(current["limit"])
        if schedule.get("chargingRateUnit") == "W":
            limit = limit / (VOLTS * float(current.get("numberPhases") or phases))
        return limit

    def limit(self, connector_id: int, transaction_id: int | None, phases: int, started: float | None,
              now: float | None = None) -> float | None:
        """The limit in force on a connector (amps per phase), None when no profile limits it."""
        now = _wall() if now is None else now

        def best(items: list[Installed]) -> float | None:
            in_force = [(i.profile.get("stackLevel", 0), self._limit_of(i, phases, started, now)) for i in items]
            in_force = [x for x in in_force if x[1] is not None]
            return max(in_force, key=lambda x: x[0])[1] if in_force else None

        def having(purpose: str, connector: int) -> list[Installed]:
            return [i for i in self.installed.values()
                    if i.profile.get("chargingProfilePurpose") == purpose and i.connector_id == connector]

        limit = None
        if transaction_id is not None:
            limit = best([i for i in having("TxProfile", connector_id)
                          if i.profile.get("transactionId") in (None, transaction_id)])
            if limit is None:
                limit = best(having("TxDefaultProfile", connector_id))
                if limit is None:
                    limit = best(having("TxDefaultProfile", 0))
        cap = best(having("ChargePointMaxProfile", 0))
        if cap is not None:
            limit = cap if limit is None else min(limit, cap)
        return limit


@dataclass
class Car:
    """What is plugged into one connector while a transaction runs."""

    max_a: float = 32.0  # the car's own maximum per phase
    drawn_a: float = 0.0
    started: float | None = None  # wall clock of the transaction's start (Relative profiles count from it)


@dataclass
class Electrics:
    """A charger's connectors: the limit each obeys and what each car draws, ticked in real time."""

    phases: int = 3
    max_a: float = 32.0  # the charger's own maximum
    ramp_s: float = 1.0  # a car goes from 0 to 32 A in this long (and back)
    obey: bool = True  # False: ignores every profile (a charger that accepts and does nothing)
    profiles: ChargingProfiles = field(default_factory=ChargingProfiles)
    cars: dict[int, Car] = field(default_factory=dict)

    def car(self, connector_id: int) -> Car:
        return self.cars.setdefault(connector_id, Car())

    def target(self, connector_id: int, transaction_id: int | None) -> float:
        if transaction_id is None:
            return 0.0
        car = self.car(connector_id)
        offered = self.max_a
        if self.obey:
            limit = self.profiles.limit(connector_id, transaction_id, self.phases, car.started)
            if limit is not None:
                offered = min(offered, limit)
        if offered < IEC_MIN_A:
            return 0.0
        return min(offered, car.max_a)

    def tick(self, dt: float, transactions: dict[int, int | None]) -> list[int]:
        """Move every car toward its target; the connectors whose draw changed."""
        changed = []
        step = 32.0 * dt / self.ramp_s if self.ramp_s > 0 else float("inf")
        for connector_id, transaction_id in transactions.items():
            car = self.car(connector_id)
            target = self.target(connector_id, transaction_id)
            before = car.drawn_a
            if car.drawn_a < target:
                car.drawn_a = min(target, car.drawn_a + step)
            elif car.drawn_a > target:
                car.drawn_a = max(target, car.drawn_a - step)
            if abs(car.drawn_a - before) > 1e-9:
                changed.append(connector_id)
        return changed

    def per_phase(self, connector_id: int) -> list[float]:
        """What the connector draws on the charger's own L1, L2, L3."""
        a = round(self.car(connector_id).drawn_a, 2)
        return [a, a, a] if self.phases == 3 else [a, 0.0, 0.0]

    def power_w(self, connector_id: int) -> float:
        return self.car(connector_id).drawn_a * VOLTS * self.phases
