"""The central system's upper bounds on chargers under load management, on disk and in force.

A bound is written to the books before load management applies it and before the central system
hears Accepted, and read back at start (those ended by then are dropped), so a restart does not
lift a limit the central system set; its ClearChargingProfile removes it from both.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from controller.store import Store
from controller.store import upstream_caps as q
from controller.timefmt import iso, now_iso, parse_iso

log = logging.getLogger("evedge.local_controller")


class UpstreamCaps:
    def __init__(self, store: Store, load: Any) -> None:
        """`load`: load management's bounds (LoadManager `set_cap` / `clear_caps`)."""
        self.store = store
        self.load = load

    async def restore(self) -> None:
        """The bounds still in force, from the books into load management (at start)."""
        rows = await self.store.write(q.in_force, now_iso())
        for row in rows:
            self.load.set_cap(row["charger_id"], row["connector_id"], row["profile_id"], parse_iso(row["start"]),
                              row["periods"], parse_iso(row["until"]) if row["until"] else None)
        if rows:
            log.info("%d bound(s) from the central system in force again", len(rows))

    async def set(self, charger_id: str, connector_id: int, profile_id: int, start: datetime,
                  periods: list[tuple[float, float]], until: datetime | None) -> None:
        await self.store.write(q.put_cap, charger_id, connector_id, profile_id, iso(start), periods,
                               iso(until) if until else None)
        self.load.set_cap(charger_id, connector_id, profile_id, start, periods, until)

    async def clear(self, charger_id: str, connector_id: int | None, profile_id: int | None) -> bool:
        """Whether any were (on disk or in force)."""
        deleted = await self.store.write(q.delete_caps, charger_id, connector_id, profile_id)
        return self.load.clear_caps(charger_id, connector_id, profile_id) or deleted > 0
