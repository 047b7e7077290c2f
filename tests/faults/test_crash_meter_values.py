"""kill -9 of the controller during a MeterValues burst from many chargers.

MeterValues.conf is sent only after the samples are committed (synchronous=FULL, group commit):
every MeterValues a charger got an answer for is in the SQLite file the dead process left, and
each transaction's latest register (its row and the readings stored after it) is at least the last
answered one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import orjson
import trio
from trio_websocket import ConnectionClosed

from controller.simulators.charger_process import SimulatedCharger, SimulatorError
from controller.store import transactions as txq
from controller.timefmt import normalize
from tests.faults.process import (
    assert_outbox_matches_transactions, controller, open_books, raw_charger_at, site_config,
    wait_outbox_drained,
)
from tests.upstream.receiver import Receiver

SIM_CHARGERS = ("SIM-A", "SIM-B")  # the independent simulator, 2 connectors each
RAW_CHARGERS = tuple(f"RAW-{n:02d}" for n in range(1, 9))
BASE = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
START_WH = 100_000
STEP_WH = 25


def stamp(seconds: int) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@dataclass
class Stream:
    """One connector's charge: its transaction and the samples the charger got answers for."""

    charger: str
    connector: int
    transaction_id: int = 0
    sent: int = 0
    answered: list[tuple[str, int]] = field(default_factory=list)  # (timestamp, Wh)

    def sample(self) -> tuple[str, int]:
        self.sent += 1
        return stamp(self.sent), START_WH + self.sent * STEP_WH


class Burst:
    def __init__(self, kill_after: int) -> None:
        self.streams: list[Stream] = []
        self.kill_after = kill_after
        self.enough = trio.Event()
        self.started = 0

    def answered(self, stream: Stream, sample: tuple[str, int]) -> None:
        stream.answered.append(sample)
        if sum(len(s.answered) for s in self.streams) >= self.kill_after:
            self.enough.set()

    async def sim_stream(self, sim: SimulatedCharger, connector: int, ready: trio.Event) -> None:
        stream = Stream(sim.charger_id, connector)
        self.streams.append(stream)
        answer = await sim.start(connector=connector, idTag=f"TAG{connector}", meterStart=START_WH,
                                 timestamp=stamp(0))
        stream.transaction_id = answer["transactionId"]
        await ready.wait()
        try:
            while True:
                at, wh = sample = stream.sample()
                await sim.meter(connector, energyWh=wh, timestamp=at)
                self.answered(stream, sample)
        except SimulatorError:
            return  # the controller is gone

    async def raw_stream(self, url: str, charger: str, ready: trio.Event) -> None:
        stream = Stream(charger, 1)
        self.streams.append(stream)
        try:
            async with raw_charger_at(url) as cp:
                reply = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "TAG1",
                                                           "meterStart": START_WH, "timestamp": stamp(0)})
                stream.transaction_id = reply[2]["transactionId"]
                await ready.wait()
                while True:
                    at, wh = sample = stream.sample()
                    reply = await cp.call("MeterValues", {
                        "connectorId": 1, "transactionId": stream.transaction_id,
                        "meterValue": [{"timestamp": at, "sampledValue": [
                            {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]})
                    assert reply == [3, reply[1], {}], reply
                    self.answered(stream, sample)
        except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            return


async def test_kill_9_during_a_meter_values_burst(tmp_path, receiver: Receiver, nursery: trio.Nursery) -> None:
    seed = random.randrange(2**32)
    print(f"kill point seed: {seed}")  # shown on failure, to replay the same kill point
    burst = Burst(kill_after=random.Random(seed).randint(40, 160))
    config = site_config(tmp_path, receiver)
    go = trio.Event()  # every transaction is started: the burst is MeterValues only
    async with controller(config) as ctl:
        sims: list[SimulatedCharger] = []

        async def spawn(charger: str) -> None:
            sims.append(sim := await SimulatedCharger.start(nursery, ctl.url(charger), connectors=2, timeout=30))
            await sim.boot()

        async with trio.open_nursery() as starting:
            for charger in SIM_CHARGERS:
                starting.start_soon(spawn, charger)
        async with trio.open_nursery() as streams:
            for sim in sims:
                for connector in (1, 2):
                    streams.start_soon(burst.sim_stream, sim, connector, go)
            for charger in RAW_CHARGERS:
                streams.start_soon(burst.raw_stream, ctl.url(charger), charger, go)
            with trio.fail_after(30):
                while len(burst.streams) < 2 * len(SIM_CHARGERS) + len(RAW_CHARGERS) or not all(
                        s.transaction_id for s in burst.streams):
                    await trio.sleep(0.01)
            go.set()
            with trio.fail_after(60):
                await burst.enough.wait()
            await ctl.kill9()
        for sim in sims:
            await sim.aclose()

    sent = sum(s.sent for s in burst.streams)
    answered = sum(len(s.answered) for s in burst.streams)
    assert answered >= burst.kill_after
    with open_books(config) as db:
        stored_rows = db.execute("SELECT count(*) FROM meter_values").fetchone()[0]
        assert answered <= stored_rows <= sent  # no answered sample lost, none invented
        for stream in burst.streams:
            rows = [r for r in txq.meter_values(db, stream.transaction_id)
                    if (r["charger_id"], r["connector_id"]) == (stream.charger, stream.connector)]
            stored = [(r["timestamp"], int(float(orjson.loads(r["sampled_value"])[0]["value"]))) for r in rows]
            expected = [(normalize(at), wh) for at, wh in stream.answered]
            assert stored[:len(expected)] == expected, stream  # answered ones, in order, exactly once
            assert len(stored) <= stream.sent
            latest = txq.latest_wh(db, txq.get(db, stream.transaction_id))
            last_answered = stream.answered[-1][1] if stream.answered else START_WH
            assert latest >= last_answered, stream
        assert_outbox_matches_transactions(db)

    async with controller(config) as ctl:  # the restarted controller books the same energy
        for stream in burst.streams:
            txn = await ctl.api(f"/api/v1/transactions/{stream.transaction_id}")
            last_answered = stream.answered[-1][1] if stream.answered else START_WH
            assert txn["status"] == "active" and txn["meterStart"] == START_WH
            assert txn["energyDelivered"] >= round((last_answered - START_WH) / 1000, 3)
        await wait_outbox_drained(ctl)
    started = {r.json["transaction_id"] for r in receiver.delivered() if r.json["type"] == "start"}
    assert started == {s.transaction_id for s in burst.streams}  # the upstream heard of every charge
