"""kill -9 of the controller while many chargers send StartTransaction at once.

A charger that got a StartTransaction.conf has been told "stored, this is your transactionId":
after the restart that transaction is on the books under that id. A charger that got no conf
retries the same StartTransaction (OCPP 1.6 transaction messages are retried until answered);
whether or not the first try reached the disk, the retry yields one transaction, and a retry of
an answered one yields the same id again.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import trio
from trio_websocket import ConnectionClosed

from controller.simulators.charger_process import SimulatedCharger, SimulatorError
from controller.timefmt import normalize
from tests.faults.process import (
    Controller, assert_outbox_matches_transactions, controller, open_books, raw_charger_at,
    site_config, wait_outbox_drained,
)
from tests.upstream.receiver import Receiver

SIM_CHARGERS = ("SIM-A", "SIM-B", "SIM-C")  # the independent simulator, 2 connectors each
RAW_CHARGERS = tuple(f"RAW-{n:02d}" for n in range(1, 11))  # cheap in-process clients, 1 connector
LAST_CHARGER = "RAW-LAST"  # sends the start the kill catches
BASE = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
_seconds = itertools.count()


@dataclass
class Start:
    """One StartTransaction as the charger sends it (and would resend it, unchanged)."""

    charger: str
    connector: int
    id_tag: str
    timestamp: str
    meter_start: int
    transaction_id: int | None = None  # set once the charger got its conf
    stopped: bool = False  # its StopTransaction was answered

    @classmethod
    def next(cls, charger: str, connector: int, n: int) -> Start:
        at = BASE + timedelta(seconds=next(_seconds))
        return cls(charger, connector, f"{charger[-2:]}{connector}-{n}", at.isoformat().replace("+00:00", "Z"),
                   n * 1000)

    def payload(self) -> dict:
        return {"connectorId": self.connector, "idTag": self.id_tag, "timestamp": self.timestamp,
                "meterStart": self.meter_start}

    def stop_payload(self, transaction_id: int) -> dict:
        stop_at = datetime.fromisoformat(self.timestamp.replace("Z", "+00:00")) + timedelta(minutes=30)
        return {"transactionId": transaction_id, "meterStop": self.meter_start + 700,
                "timestamp": stop_at.isoformat().replace("+00:00", "Z"), "reason": "Local"}


class Load:
    """StartTransaction (+ StopTransaction) streams until the controller dies."""

    def __init__(self, kill_after: int) -> None:
        self.starts: list[Start] = []
        self.kill_after = kill_after
        self.enough = trio.Event()

    def answered(self, start: Start, transaction_id: int) -> None:
        start.transaction_id = transaction_id
        self._check()

    def sending(self, start: Start) -> None:
        self.starts.append(start)
        self._check()

    def _check(self) -> None:
        if sum(s.transaction_id is not None for s in self.starts) >= self.kill_after:
            self.enough.set()

    async def sim_stream(self, sim: SimulatedCharger, connector: int) -> None:
        try:
            for n in itertools.count():
                start = Start.next(sim.charger_id, connector, n)
                self.sending(start)
                p = start.payload()
                answer = await sim.start(connector=connector, idTag=p["idTag"], meterStart=p["meterStart"],
                                         timestamp=p["timestamp"])
                self.answered(start, answer["transactionId"])
                stop = start.stop_payload(answer["transactionId"])
                await sim.stop(connector, meterStop=stop["meterStop"], timestamp=stop["timestamp"])
                start.stopped = True
        except SimulatorError:
            return  # the controller is gone

    async def last_start(self, url: str, charger: str, sent: trio.Event) -> None:
        """Once enough are answered, one more StartTransaction goes out just before the kill and
        its answer is never read: a start the kill certainly catches in flight (the others may
        all be between two calls at that moment). The charger retries it after the restart."""
        try:
            async with raw_charger_at(url) as cp:
                await self.enough.wait()
                start = Start.next(charger, 1, 0)
                self.sending(start)
                await cp.send([2, "last", "StartTransaction", start.payload()])
                sent.set()
                while True:  # until the kill closes the connection (an answer, if any, is not taken as got)
                    await cp.ws.get_message()
        except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async def raw_stream(self, url: str, charger: str) -> None:
        try:
            async with raw_charger_at(url) as cp:
                for n in itertools.count():
                    start = Start.next(charger, 1, n)
                    self.sending(start)
                    reply = await cp.call("StartTransaction", start.payload())
                    assert reply[0] == 3, reply
                    self.answered(start, reply[2]["transactionId"])
                    reply = await cp.call("StopTransaction", start.stop_payload(start.transaction_id))
                    assert reply[0] == 3, reply
                    start.stopped = True
        except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            return


async def spawn_sims(nursery: trio.Nursery, ctl: Controller) -> dict[str, SimulatedCharger]:
    sims: dict[str, SimulatedCharger] = {}

    async def one(charger: str) -> None:
        sims[charger] = sim = await SimulatedCharger.start(nursery, ctl.url(charger), connectors=2, timeout=30)
        await sim.boot()

    async with trio.open_nursery() as starting:
        for charger in SIM_CHARGERS:
            starting.start_soon(one, charger)
    return sims


async def retry(sims: dict[str, SimulatedCharger], ctl: Controller, starts: list[Start]) -> dict[int, int]:
    """Each charger resends its StartTransactions (and the StopTransactions not yet answered).

    Returns {index in `starts`: transactionId answered now}.
    """
    ids: dict[int, int] = {}
    by_charger: dict[str, list[int]] = {}
    for i, s in enumerate(starts):
        by_charger.setdefault(s.charger, []).append(i)

    async def sim_charger(sim: SimulatedCharger, indexes: list[int]) -> None:
        for i in indexes:
            s = starts[i]
            p = s.payload()
            ids[i] = (await sim.start(connector=s.connector, idTag=p["idTag"], meterStart=p["meterStart"],
                                      timestamp=p["timestamp"]))["transactionId"]
            if not s.stopped:
                stop = s.stop_payload(ids[i])
                await sim.stop(s.connector, meterStop=stop["meterStop"], timestamp=stop["timestamp"])

    async def raw_charger(charger: str, indexes: list[int]) -> None:
        async with raw_charger_at(ctl.url(charger)) as cp:
            for i in indexes:
                s = starts[i]
                reply = await cp.call("StartTransaction", s.payload())
                assert reply[0] == 3, reply
                ids[i] = reply[2]["transactionId"]
                if not s.stopped:
                    assert (await cp.call("StopTransaction", s.stop_payload(ids[i])))[0] == 3

    async with trio.open_nursery() as chargers:
        for charger, indexes in by_charger.items():
            if charger in sims:
                chargers.start_soon(sim_charger, sims[charger], indexes)
            else:
                chargers.start_soon(raw_charger, charger, indexes)
    return ids


async def test_kill_9_during_start_transactions(tmp_path, receiver: Receiver, nursery: trio.Nursery) -> None:
    seed = random.randrange(2**32)
    print(f"kill point seed: {seed}")  # shown on failure, to replay the same kill point
    load = Load(kill_after=random.Random(seed).randint(10, 40))
    config = site_config(tmp_path, receiver)
    async with controller(config) as ctl:
        sims = await spawn_sims(nursery, ctl)
        async with trio.open_nursery() as streams:
            for sim in sims.values():
                for connector in (1, 2):
                    streams.start_soon(load.sim_stream, sim, connector)
            for charger in RAW_CHARGERS:
                streams.start_soon(load.raw_stream, ctl.url(charger), charger)
            sent = trio.Event()
            streams.start_soon(load.last_start, ctl.url(LAST_CHARGER), LAST_CHARGER, sent)
            with trio.fail_after(60):
                await sent.wait()
            await ctl.kill9()  # the streams end as their connections drop

    answered = [s for s in load.starts if s.transaction_id is not None]
    assert len(answered) >= load.kill_after
    assert len(answered) < len(load.starts)  # the kill caught StartTransactions in flight
    with open_books(config) as db:
        for s in answered:  # every conf a charger got is on disk, under the id it was given
            rows = db.execute("SELECT * FROM transactions WHERE charger_id = ? AND id_tag = ?",
                              (s.charger, s.id_tag)).fetchall()
            assert len(rows) == 1, (s, rows)
            row = rows[0]
            assert (row["id"], row["connector_id"], row["meter_start"], row["start_time"]) == (
                s.transaction_id, s.connector, s.meter_start, normalize(s.timestamp)), s
            if s.stopped:
                assert (row["status"], row["meter_stop"]) == ("completed", s.meter_start + 700), s
        duplicates = db.execute("SELECT charger_id, id_tag, count(*) FROM transactions"
                                " GROUP BY charger_id, id_tag HAVING count(*) > 1").fetchall()
        assert not duplicates
        assert_outbox_matches_transactions(db)

    async with controller(config) as ctl:
        for sim in sims.values():
            await sim.cmd("reconnect", url=ctl.url(sim.charger_id))
        ids = await retry(sims, ctl, load.starts)
        for i, s in enumerate(load.starts):
            if s.transaction_id is not None:
                assert ids[i] == s.transaction_id, s  # idempotent: the same transaction
        assert len(set(ids.values())) == len(load.starts)  # one transaction per distinct start
        listing = await ctl.api("/api/v1/transactions", limit=1000)
        assert listing["pagination"]["total"] == len(load.starts)
        by_id = {t["transactionId"]: t for t in listing["transactions"]}
        assert set(by_id) == set(ids.values())
        for i, s in enumerate(load.starts):
            t = by_id[ids[i]]
            assert (t["chargeBoxId"], t["connectorId"], t["idTag"], t["status"]) == (
                s.charger, s.connector, s.id_tag, "completed")
        await wait_outbox_drained(ctl)
        for sim in sims.values():
            await sim.aclose()

    with open_books(config) as db:
        assert_outbox_matches_transactions(db)
    # the upstream heard of each transaction's start and stop exactly once (resends share an event id)
    for kind in ("start", "stop_transaction"):
        events = {r.event_id: r.json["transaction_id"] for r in receiver.delivered() if r.json["type"] == kind}
        assert sorted(events.values()) == sorted(ids.values()), kind
