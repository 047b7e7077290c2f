"""Load management, measured two ways.

1. Reaction time, end to end (`reaction`): the controller runs as its own process with 50
   chargers on one circuit whose grid meter is an emulated SDM630 on Modbus TCP (served from this
   process). The chargers are played here over WebSockets: each starts a charge and answers every
   SetChargingProfile, and its "car" draws the limit at once, so the meter reads base load plus
   the limits. Each round raises the base load so that the circuit is over its limit; the time is
   taken from the first Modbus response that carries the new reading (the moment the controller
   can know) to the last of the 50 reducing SetChargingProfile frames arriving at its charger.

2. Seconds over the limit per simulated hour of a noisy base load (`noisy_hour`): the real
   LoadManager on a trio MockClock over in-process stand-ins (links, meter, store), with cars that
   follow their limits after a delay and a ramp, a base load that wanders, jumps for minutes and
   spikes for seconds. Counted: seconds in which the meter reads more than the fuse, and more
   than the fuse minus the margin (what the controller aims for).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

CHARGERS = 50
FUSE_A, MARGIN_A = 500, 10
LOW_BASE_A, HIGH_BASE_A = 40.0, 200.0  # 9 A each, then (490 - 200) / 50 < 6: 48 at 6 A, 2 paused


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))]


def _config(port: int) -> str:
    chargers = "".join(f'[[chargers]]\nid = "LM-{i:03d}"\nconnectors = 1\ncircuit = "main"\n' for i in range(CHARGERS))
    return (f'[[buses]]\nid = "gw"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {port}\ntimeout_s = 0.5\n'
            '[[meters]]\nid = "grid"\nbus = "gw"\nmodel = "sdm630"\npoll_s = 0.25\n'
            f'[[circuits]]\nid = "main"\nmax_current_a = {FUSE_A}\nmargin_a = {MARGIN_A}\nmeter = "grid"\n'
            'meter_timeout_s = 5\n'
            '[load_management]\ninterval_s = 1\nincrease_delay_s = 0.5\ncar_response_s = 0.5\n'
            'profile_duration_s = 600\n' + chargers)


def reaction(workdir: Path, rounds: int) -> dict:
    """Meter reading over the limit -> the last reducing SetChargingProfile on the wire, 50 chargers."""
    from websockets.asyncio.client import connect

    from bench.run import Server
    from controller.simulators.meter import MeterServer, SimulatedMeter

    device = SimulatedMeter("sdm630")
    limits: dict[str, float] = {}
    base = [LOW_BASE_A]
    armed: dict[str, float | None] = {"at": None, "first_response": None}

    class TimedMeterServer(MeterServer):
        def _trace(self, sending: bool, packet: bytes) -> bytes:  # runs in the server's thread
            if sending and packet and armed["at"] is not None and armed["first_response"] is None:
                armed["first_response"] = time.perf_counter()
            return super()._trace(sending, packet)

    def feed() -> None:
        total = base[0] + sum(limits.values())
        device.set(current_a=[total] * 3, phase_power_w=[total * 230] * 3, power_w=total * 690)

    feed()
    received: dict[str, list[tuple[float, float]]] = {}
    with TimedMeterServer(device, "tcp") as meter:
        server = Server("evedge", workdir, extra_config=_config(meter.port)).start()
        try:
            async def charger(charger_id: str, ready: asyncio.Event) -> None:
                async with connect(f"{server.url}/{charger_id}", subprotocols=["ocpp1.6"], ping_interval=None) as ws:
                    pending: dict[str, asyncio.Future] = {}

                    async def call(action: str, payload: dict) -> dict:
                        uid = f"{charger_id}-{len(pending)}-{action}"
                        pending[uid] = asyncio.get_running_loop().create_future()
                        await ws.send(orjson.dumps([2, uid, action, payload]).decode())
                        return await pending[uid]

                    async def reader() -> None:
                        async for text in ws:
                            frame = orjson.loads(text)
                            if frame[0] == 2:
                                if frame[2] == "SetChargingProfile":
                                    profile = frame[3]["csChargingProfiles"]
                                    amps = profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
                                    if profile["chargingProfilePurpose"] == "TxProfile":
                                        received.setdefault(charger_id, []).append((time.perf_counter(), amps))
                                        limits[charger_id] = amps
                                        feed()
                                await ws.send(orjson.dumps([3, frame[1], {"status": "Accepted"}]).decode())
                            elif frame[1] in pending:
                                pending.pop(frame[1]).set_result(frame[2] if frame[0] == 3 else {})

                    task = asyncio.create_task(reader())
                    await call("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "LM"})
                    await call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"})
                    await call("StartTransaction", {"connectorId": 1, "idTag": "BENCH", "meterStart": 0,
                                                    "timestamp": "2026-01-01T00:00:00Z"})
                    ready.set()
                    await task

            async def settle(want: float, timeout: float = 30) -> None:
                deadline = time.perf_counter() + timeout
                while not (len(limits) == CHARGERS and all(v == want for v in limits.values())):
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"limits did not settle at {want}: {sorted(set(limits.values()))}")
                    await asyncio.sleep(0.02)

            async def main() -> list[float]:
                events = [asyncio.Event() for _ in range(CHARGERS)]
                tasks = [asyncio.create_task(charger(f"LM-{i:03d}", events[i])) for i in range(CHARGERS)]
                await asyncio.gather(*(e.wait() for e in events))
                out = []
                low = (FUSE_A - MARGIN_A - LOW_BASE_A) // CHARGERS
                for _ in range(rounds):
                    base[0] = LOW_BASE_A
                    feed()
                    await settle(low)
                    await asyncio.sleep(0.6)  # past the response window: the loop believes the low base
                    before = {c: len(v) for c, v in received.items()}
                    armed["first_response"] = None
                    base[0] = HIGH_BASE_A
                    armed["at"] = time.perf_counter()
                    feed()
                    deadline = time.perf_counter() + 10
                    while True:
                        reduced = [next((t for t, a in received[c][before[c]:] if a < low), None) for c in received]
                        if all(t is not None for t in reduced) and len(reduced) == CHARGERS:
                            break
                        if time.perf_counter() > deadline:
                            raise RuntimeError("not every charger got a reduction")
                        await asyncio.sleep(0.005)
                    armed["at"] = None
                    out.append((max(reduced) - armed["first_response"]) * 1000)
                for task in tasks:
                    task.cancel()
                return out

            latencies = asyncio.run(main())
        finally:
            server.stop()
    return {"chargers": CHARGERS, "rounds": rounds, "meter_poll_s": 0.25,
            "p50_ms": round(_pct(latencies, 50), 1), "p99_ms": round(_pct(latencies, 99), 1),
            "max_ms": round(max(latencies), 1), "mean_ms": round(statistics.mean(latencies), 1)}


# -- a noisy hour on a MockClock ------------------------------------------------------------------

NOISY_SITE = """
[site]
data_dir = "{data}"
[[buses]]
id = "gw"
kind = "tcp"
host = "127.0.0.1"
[[meters]]
id = "grid"
bus = "gw"
model = "sdm630"
[[circuits]]
id = "main"
max_current_a = 63
margin_a = 3
meter = "grid"
meter_timeout_s = 10
"""


def noisy_hour(workdir: Path, hours: float = 1.0, seed: int = 1) -> dict:
    """Seconds over the limit per simulated hour: 6 chargers on a 63 A fuse, a noisy base load."""
    import trio
    import trio.testing

    from controller.chargers import ChargerRegistry, ChargerState
    from controller.config import load_config
    from controller.live_config import LiveConfig
    from controller.load_management.manager import LoadManager, RunningCharge
    from controller.store.schema import migrate
    from drivers.meters.state import MeterState

    n = 6
    text = NOISY_SITE.format(data=(workdir / "data").as_posix()) + "".join(
        f'[[chargers]]\nid = "C{i}"\nconnectors = 1\ncircuit = "main"\n' for i in range(n))
    path = workdir / "noisy.toml"
    path.write_text(text)
    config = load_config(path)
    rng = random.Random(seed)

    class Store:
        def __init__(self) -> None:
            self.conn = sqlite3.connect(":memory:", isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            migrate(self.conn)

        async def read(self, fn, *args):
            return fn(self.conn, *args)

        async def write(self, fn, *args, events=()):
            return fn(self.conn, *args)

    class Car:
        """Follows its charger's limit after a 1 s delay at 32 A per 5 s; some cars take less."""

        def __init__(self, max_a: float) -> None:
            self.max_a, self.drawn, self.limit, self.pending = max_a, 0.0, 32.0, []

    class Link:
        protocol, address = "ocpp1.6", None

        def __init__(self, car: Car) -> None:
            self.car = car

        async def set_default_limit(self, amps: float, phases: int) -> bool:
            self.car.pending.append((trio.current_time() + 1.0, amps))
            return True

        async def set_transaction_limit(self, connector_id, transaction_id, amps, phases, duration_s) -> bool:
            await trio.sleep(0.05)
            self.car.pending.append((trio.current_time() + 1.0, amps))
            return True

        async def close(self, code: int, reason: str) -> None:
            pass

    live = LiveConfig(config)
    registry = ChargerRegistry(live, None, None, {})  # type: ignore[arg-type]
    meter = SimpleNamespace(state=MeterState("grid", "sdm630", "gw", "site"))
    cars = [Car(rng.choice([32, 32, 16, 11])) for _ in range(n)]
    charges = {(f"C{i}", 1): RunningCharge(i + 1, f"2026-01-01T00:00:{i:02d}Z") for i in range(n)}

    async def running():
        return charges

    manager = LoadManager(live, registry, Store(), SimpleNamespace(meters={"grid": meter}), running_charges=running)
    result: dict[str, Any] = {}

    async def main() -> None:
        for i, car in enumerate(cars):
            state = registry.chargers[f"C{i}"] = ChargerState(f"C{i}", "accepted", configured=True)
            state.link = Link(car)  # type: ignore[assignment]
            state.connected_at = state.last_boot = "2026-01-01T00:00:00.000Z"
        base, spike_until, spike_a, burst_until = 20.0, 0.0, 0.0, 0.0
        over_fuse = over_target = over_in_burst = 0
        peak = 0.0
        samples = 0
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            step = 0.25
            warmup = int(120 / step)  # the cars plug in at the start: not counted
            for tick in range(warmup + int(hours * 3600 / step)):
                now = trio.current_time()
                for car in cars:
                    while car.pending and car.pending[0][0] <= now:
                        car.limit = car.pending.pop(0)[1]
                    target = min(car.limit, car.max_a) if car.limit >= 6 else 0.0
                    rate = 32 / 5 * step
                    car.drawn += max(-rate, min(rate, target - car.drawn))
                if tick % 4 == 0:  # once a second: the base load moves, the meter is read
                    base += 0.1 * (20 - base) + rng.gauss(0, 1.0)
                    if now >= spike_until and rng.random() < 1 / 600:
                        spike_until, spike_a = now + rng.uniform(30, 300), rng.uniform(10, 30)
                    if rng.random() < 1 / 300:
                        burst_until = now + rng.uniform(1, 3)  # a motor starting
                    load = max(0.0, base) + (spike_a if now < spike_until else 0) + (15 if now < burst_until else 0)
                    total = load + sum(car.drawn for car in cars)
                    if tick < warmup:
                        total = -total  # not counted (the meter below still reads it)
                    samples += tick >= warmup
                    peak = max(peak, total)
                    over_fuse += total > 63
                    over_in_burst += total > 63 and now < burst_until
                    over_target += total > 60
                    total = abs(total)
                    meter.state = MeterState("grid", "sdm630", "gw", "site", online=True, current_a=(total,) * 3,
                                             phase_power_w=(total * 230,) * 3, power_w=total * 690)
                    await manager.on_reading(meter.state)
                    if tick % 40 == 0:  # chargers report their current every 10 s
                        for i, car in enumerate(cars):
                            c = registry.chargers[f"C{i}"].connector(1)
                            c.current_a, c.current_at = (car.drawn,) * 3, trio.current_time()
                await trio.sleep(step)
            nursery.cancel_scope.cancel()
        result.update(simulated_s=samples, over_fuse_s=over_fuse, over_fuse_minus_margin_s=over_target,
                      over_fuse_in_bursts_s=over_in_burst, peak_a=round(peak, 1))

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    per_hour = 3600 / result["simulated_s"]
    return {"chargers": n, "fuse_a": 63, "margin_a": 3, "hours": hours, "seed": seed,
            "over_fuse_s_per_hour": round(result["over_fuse_s"] * per_hour, 1),
            "over_fuse_minus_margin_s_per_hour": round(result["over_fuse_minus_margin_s"] * per_hour, 1),
            "over_fuse_during_motor_starts_s_per_hour": round(result["over_fuse_in_bursts_s"] * per_hour, 1),
            "peak_a": result["peak_a"]}


def run(workdir: Path, rounds: int, hours: float) -> dict:
    return {"reaction": reaction(workdir, rounds), "noisy_hour": noisy_hour(workdir, hours)}


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    with tempfile.TemporaryDirectory() as tmp:
        print(run(Path(tmp), int(sys.argv[1]) if len(sys.argv) > 1 else 10, 1.0))
