"""Stand-ins for the manager's surroundings, for tests on a MockClock: links that record the
limits they are sent, a meter whose readings the test sets, a store in memory.

    lab = Lab(tmp_path, CIRCUIT_TOML)          # a LoadManager over fakes
    async with lab.running():
        lab.connect("CP-1")                     # an accepted charger that booted
        lab.charge("CP-1", 1)                   # a transaction runs on connector 1
        lab.meter(10, 10, 10)                   # the grid meter reads 10 A per phase
        await lab.settle()                      # one loop later
        assert lab.links["CP-1"].limit(1) == 20
"""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import trio

from controller.chargers import ChargerRegistry, ChargerState
from controller.config import load_config
from controller.errors import ChargerCallError, ChargerTimeout
from controller.live_config import LiveConfig
from controller.load_management.manager import LoadManager, RunningCharge
from controller.store.schema import migrate
from controller.timefmt import now_iso
from drivers.meters.state import MeterState

HEAD = """
[[buses]]
id = "gw"
kind = "tcp"
host = "127.0.0.1"

[[meters]]
id = "grid"
bus = "gw"
model = "sdm630"

[load_management]
interval_s = 1
increase_delay_s = 10
profile_duration_s = 60
unused_after_s = 30
overdraw_after_s = 20
surplus_start_s = 30
surplus_pause_s = 60
"""


@dataclass
class Call:
    kind: str  # default | transaction
    amps: float
    phases: int
    at: float
    connector: int | None = None
    transaction: int | None = None
    duration: int | None = None


@dataclass
class FakeLink:
    """A charger's connection: answers every limit as `answer` says ("accept", "reject", "error",
    "hang" for no answer)."""

    charger_id: str
    answer: str = "accept"
    transaction_answer: str | None = None  # answers to charge limits only, if set
    delay: float = 0.0
    calls: list[Call] = field(default_factory=list)
    protocol: str = "ocpp1.6"
    address: str | None = None

    async def _answer(self, answer: str | None = None) -> bool:
        answer = answer or self.answer
        if self.delay:
            await trio.sleep(self.delay)
        if answer == "hang":
            await trio.sleep(30)
            raise ChargerTimeout("no answer")
        if answer == "error":
            raise ChargerCallError("NotSupported", "no smart charging here")
        return answer == "accept"

    async def set_default_limit(self, amps: float, phases: int) -> bool:
        self.calls.append(Call("default", amps, phases, trio.current_time()))
        return await self._answer()

    async def set_transaction_limit(self, connector_id: int, transaction_id: int, amps: float, phases: int,
                                    duration_s: int, charger_transaction_id: str | None = None) -> bool:
        self.calls.append(Call("transaction", amps, phases, trio.current_time(), connector_id, transaction_id,
                               duration_s))
        return await self._answer(self.transaction_answer)

    async def close(self, code: int, reason: str) -> None:
        pass

    def transaction_calls(self, connector: int) -> list[Call]:
        return [c for c in self.calls if c.kind == "transaction" and c.connector == connector]

    def limit(self, connector: int) -> float | None:
        calls = self.transaction_calls(connector)
        return calls[-1].amps if calls else None

    def default(self) -> float | None:
        calls = [c for c in self.calls if c.kind == "default"]
        return calls[-1].amps if calls else None


class MemoryStore:
    """The Store's read/write interface over one in-memory SQLite connection, without threads."""

    def __init__(self, conn: sqlite3.Connection | None = None) -> None:
        if conn is None:
            conn = sqlite3.connect(":memory:", isolation_level=None)
            conn.row_factory = sqlite3.Row
            migrate(conn)
        self.conn = conn

    async def read(self, fn, *args, **kwargs):
        return fn(self.conn, *args, **kwargs)

    async def write(self, fn, *args, events=(), **kwargs):
        return fn(self.conn, *args, **kwargs)


class Lab:
    def __init__(self, tmp_path: Path, toml: str, store: MemoryStore | None = None) -> None:
        path = tmp_path / "site.toml"
        path.write_text(f'[site]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n' + HEAD + toml, encoding="utf-8")
        self.config = load_config(path)
        self.live = LiveConfig(self.config)
        self.registry = ChargerRegistry(self.live, None, None, {})  # type: ignore[arg-type]
        self.meters: dict[str, Any] = {
            m.id: SimpleNamespace(state=MeterState(m.id, m.model, m.bus, m.role, m.charger, m.connector))
            for m in self.config.meters}
        self.store = store or MemoryStore()
        self.charges: dict[tuple[str, int], RunningCharge] = {}
        self.links: dict[str, FakeLink] = {}
        self._tx = 0
        self.manager = LoadManager(self.live, self.registry, self.store, SimpleNamespace(meters=self.meters),
                                   running_charges=self._running)

    async def _running(self):
        return dict(self.charges)

    @asynccontextmanager
    async def running(self):
        async with trio.open_nursery() as nursery:
            await nursery.start(self.manager.run)
            try:
                yield self
            finally:
                nursery.cancel_scope.cancel()

    def connect(self, charger_id: str, answer: str = "accept") -> FakeLink:
        state = self.registry.chargers.get(charger_id) or ChargerState(charger_id, "accepted", configured=True)
        self.registry.chargers[charger_id] = state
        link = self.links[charger_id] = FakeLink(charger_id, answer)
        state.link = link  # type: ignore[assignment]
        state.connected_at = state.last_boot = now_iso()
        self.manager.wake()
        return link

    def disconnect(self, charger_id: str) -> None:
        self.registry.chargers[charger_id].link = None
        self.manager.wake()

    def charge(self, charger_id: str, connector: int) -> int:
        self._tx += 1
        self.charges[(charger_id, connector)] = RunningCharge(self._tx, f"2026-01-01T00:00:{self._tx:02d}.000Z")
        self.manager.wake()
        return self._tx

    def stop(self, charger_id: str, connector: int) -> None:
        del self.charges[(charger_id, connector)]
        self.manager.wake()

    def meter(self, l1: float, l2: float, l3: float, meter_id: str = "grid", power_w: float | None = None,
              online: bool = True) -> None:
        """A new reading; `power_w` < 0 makes it export."""
        state = self.meters[meter_id].state
        state = dataclasses.replace(state, online=online, current_a=(l1, l2, l3), power_w=power_w,
                                    phase_power_w=None)
        self.meters[meter_id].state = state
        trio.lowlevel.spawn_system_task(self.manager.on_reading, state)

    def drawn(self, charger_id: str, connector: int, *amps: float) -> None:
        """The charger reports what its connector draws (MeterValues Current.Import)."""
        c = self.registry.chargers[charger_id].connector(connector)
        c.current_a, c.current_at = tuple(amps), trio.current_time()

    def share(self, charger_id: str, connector: int):
        track = self.manager.connectors.get((charger_id, connector))
        return track.share if track is not None else None

    async def settle(self, seconds: float = 0.5) -> None:
        """Let the loop run (on the MockClock this takes no real time)."""
        await trio.sleep(seconds)
