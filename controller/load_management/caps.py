"""Upper bounds on a charger's current set from above the site (a central system's charging
profile in local-controller mode): load management shares within them and never beyond.

A bound is a schedule: (seconds from its start, amps per phase) periods, in force from its start
until it ends (`until`) or is cleared. Connector 0 bounds every connector of the charger. Held
here in memory; the party that sets them keeps them on disk and sets them again at start
(local_controller/caps.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Cap:
    start: datetime
    periods: list[tuple[float, float]]  # (seconds from start, amps per phase), ascending
    until: datetime | None = None

    def amps_at(self, now: datetime) -> float | None:
        """The bound in force at `now`; None before its start or after its end."""
        if now < self.start or (self.until is not None and now >= self.until):
            return None
        elapsed = (now - self.start).total_seconds()
        in_force = [amps for offset, amps in self.periods if offset <= elapsed]
        return in_force[-1] if in_force else None


class Caps:
    def __init__(self) -> None:
        self._caps: dict[tuple[str, int], dict[int, Cap]] = {}  # (charger, connector) -> profile id -> cap

    def set(self, charger_id: str, connector_id: int, profile_id: int, cap: Cap) -> None:
        self._caps.setdefault((charger_id, connector_id), {})[profile_id] = cap

    def clear(self, charger_id: str, connector_id: int | None = None, profile_id: int | None = None) -> bool:
        """Clear the charger's bounds (those of one connector, or one profile id); whether any were."""
        cleared = False
        for (charger, connector), caps in self._caps.items():
            if charger != charger_id or connector_id not in (None, connector):
                continue
            for pid in [p for p in caps if profile_id in (None, p)]:
                del caps[pid]
                cleared = True
        return cleared

    def limit(self, charger_id: str, connector_id: int, now: datetime) -> float | None:
        """The lowest bound in force on a connector (its own and its charger's), or None."""
        bounds = [amps for key in ((charger_id, connector_id), (charger_id, 0))
                  for cap in self._caps.get(key, {}).values() if (amps := cap.amps_at(now)) is not None]
        return min(bounds) if bounds else None
