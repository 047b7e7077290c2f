"""A whole site in a closed loop: the controller in-process, simulated chargers in subprocesses
whose cars follow the limits they are sent, and a simulated grid meter (Modbus TCP) that reads a
base load plus what those chargers draw.

    async with closed_loop(tmp_path, CIRCUITS, chargers=[...]) as loop:
        cp = await loop.charger("CP-1")            # boots, reports, starts a transaction
        await loop.until(lambda: cp.limits.get(1) == 20)
        loop.grid.set_base(30, 30, 30)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from controller.config import load_config
from controller.simulators.charger_process import SimulatedCharger
from controller.simulators.meter import MeterServer, SimulatedMeter
from controller.simulators.site_meter import SimulatedSiteMeter
from controller.site import Site
from tests.support import API_KEY, api_client, eventually, ocpp_url, running_site

TIMING = """
[load_management]
interval_s = 0.2
increase_delay_s = 1
profile_duration_s = 10
unused_after_s = 2
overdraw_after_s = 2
car_response_s = 1
surplus_start_s = 1.5
surplus_pause_s = 1.5
"""


def site_toml(data_dir: Path, meter_port: int, circuits: str, chargers: str, extra: str = "",
              timing: dict[str, float] | None = None) -> str:
    lines = []
    for line in TIMING.splitlines():
        key = line.split(" = ")[0]
        lines.append(f"{key} = {timing[key]}" if timing and key in timing else line)
    return f"""
[site]
name = "closed loop"
data_dir = "{data_dir.as_posix()}"

[ocpp]
listen = "127.0.0.1:0"
unknown_chargers = "reject"
accept_unknown_id_tags = true
local_list = "off"
call_timeout_s = 3

[api]
listen = "127.0.0.1:0"
api_keys = ["{API_KEY}"]

[[buses]]
id = "gw"
kind = "tcp"
host = "127.0.0.1"
port = {meter_port}
timeout_s = 0.2
retries = 0
reconnect_min_s = 0.05
reconnect_max_s = 0.2

[[meters]]
id = "grid"
bus = "gw"
model = "sdm630"
poll_s = 0.1

{chr(10).join(lines)}
{circuits}
{chargers}
{extra}
"""


def charger_toml(charger_id: str, circuit: str = "main", **keys: Any) -> str:
    lines = [f'[[chargers]]\nid = "{charger_id}"\nconnectors = 1\ncircuit = "{circuit}"']
    for key, value in keys.items():
        lines.append(f"{key} = {value!r}".replace("'", '"'))
    return "\n".join(lines) + "\n"


@dataclass
class ClosedLoop:
    site: Site
    api: httpx.AsyncClient
    grid: SimulatedSiteMeter
    server: MeterServer
    nursery: trio.Nursery
    sims: dict[str, SimulatedCharger]

    async def charger(self, charger_id: str, *, phase: str = "L1", phases: int = 3, charge: bool = True,
                      reject_profiles: bool = False, car_max: float | None = None) -> SimulatedCharger:
        """A simulated charger wired to the grid meter, booted, and (`charge`) charging on connector 1."""
        sim = await SimulatedCharger.start(self.nursery, ocpp_url(self.site, charger_id), connectors=1,
                                           phases=phases, ramp_s=0.2, meter_interval=0.3)
        self.sims[charger_id] = sim
        self.grid.add(sim, phase=phase)
        if reject_profiles:
            await sim.respond("SetChargingProfile", payload={"status": "Rejected"})
        if car_max is not None:
            await sim.car(1, car_max)
        assert (await sim.boot())["status"] == "Accepted"
        await sim.status(1, "Preparing")
        if charge:
            await self.start(charger_id)
        return sim

    async def start(self, charger_id: str) -> int:
        sim = self.sims[charger_id]
        answer = await sim.start(connector=1, idTag="CAR")
        await sim.status(1, "Charging")
        return answer["transactionId"]

    async def circuit(self, circuit_id: str = "main") -> dict:
        response = await self.api.get(f"/api/v1/circuits/{circuit_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def connector(self, charger_id: str, circuit_id: str = "main") -> dict | None:
        body = await self.circuit(circuit_id)
        return next((c for c in body["connectors"] if c["chargeBoxId"] == charger_id), None)

    async def until(self, check: Callable[[], Any], what: str = "condition", timeout: float = 15) -> Any:
        return await eventually(check, timeout=timeout, what=what)

    async def limits_are(self, expected: dict[str, float], timeout: float = 15) -> None:
        """Each charger's car follows the expected limit (and draws it, up to its own max)."""
        def check() -> bool:
            return all(self.sims[c].limits.get(1) == amps for c, amps in expected.items())

        try:
            await eventually(check, timeout=timeout, what=f"limits {expected}")
        except AssertionError:
            seen = {c: self.sims[c].limits.get(1) for c in expected}
            raise AssertionError(f"limits {seen}, expected {expected}; circuit: {await self.circuit()}") from None

    def measured_max(self) -> float:
        return max(abs(a) for a in self.grid.net_a())


@asynccontextmanager
async def closed_loop(tmp_path: Path, circuits: str, chargers: str, *, base_a=(0.0, 0.0, 0.0), extra: str = "",
                      data_dir: Path | None = None, meter: SimulatedMeter | None = None,
                      timing: dict[str, float] | None = None) -> AsyncIterator[ClosedLoop]:
    """`timing`: [load_management] keys to change from TIMING."""
    device = meter or SimulatedMeter("sdm630")
    with MeterServer(device, "tcp") as server:
        grid = SimulatedSiteMeter(device, base_a)
        path = tmp_path / "site.toml"
        path.write_text(site_toml(data_dir or tmp_path / "data", server.port, circuits, chargers, extra, timing),
                        encoding="utf-8")
        config = load_config(path)
        async with trio.open_nursery() as nursery, running_site(config) as site, api_client(site) as api:
            await eventually(lambda: site.hardware.meters["grid"].state.online, what="grid meter online")
            loop = ClosedLoop(site, api, grid, server, nursery, {})
            try:
                yield loop
            finally:
                with trio.CancelScope(shield=True):
                    for sim in loop.sims.values():
                        await sim.aclose()
                nursery.cancel_scope.cancel()
