"""The controller as a real subprocess, for tests that kill it (SIGKILL) and start it again.

    config = site_config(tmp_path, receiver)
    async with controller(config) as ctl:        # `evedge run` in a subprocess, ports from its log
        sim = await SimulatedCharger.start(nursery, ctl.url("CP1"))
        ...
        await ctl.kill9()                          # no shutdown, no flush: what is on disk is all
    with open_books(config) as db:                 # the SQLite file, read-only, process dead
        ...
    async with controller(config) as ctl: ...      # same data dir: recovery from the WAL

Also the upstream receiver fixture and the checks shared by the fault tests.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio
from trio_websocket import open_websocket_url

from controller.store.db import DB_FILE
from tests.support import API_KEY, RawCharger, config_text, eventually
from tests.upstream.receiver import Received, Receiver, Reply

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(rb"ready: ocpp_port=(\d+) api_port=(\d+)")
START_TIMEOUT_S = 60  # a cold start on a busy 2-core machine


@dataclass
class Controller:
    """A running `evedge run` process and the ports it reported."""

    process: trio.Process
    ocpp_port: int = 0
    api_port: int = 0
    output: list[bytes] = field(default_factory=list)

    def url(self, charger_id: str) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp/{charger_id}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @asynccontextmanager
    async def client(self, key: str | None = API_KEY) -> AsyncIterator[httpx.AsyncClient]:
        headers = {"X-API-Key": key} if key else {}
        async with httpx.AsyncClient(base_url=self.base, headers=headers, timeout=30) as client:
            yield client

    async def api(self, path: str, **params: Any) -> Any:
        """GET an operator endpoint; it must answer 200."""
        async with self.client() as client:
            response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def kill9(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed that was not already."""
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        assert self.process.returncode == -signal.SIGKILL

    def log(self) -> str:
        return b"\n".join(self.output).decode(errors="replace")


def _run_command(config: Path, args: Sequence[str], env: dict[str, str] | None = None) -> partial:
    """`python -m controller run --config config *args`, its output (log and stderr) on one pipe;
    `env`: more environment variables."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), **(env or {}))
    return partial(trio.run_process, [sys.executable, "-m", "controller", "run", "--config", str(config), *args],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, env=env, cwd=str(ROOT))


@asynccontextmanager
async def controller(config: Path, *args: str, env: dict[str, str] | None = None) -> AsyncIterator[Controller]:
    """`python -m controller run --config config *args`, yielded once it logs its listening ports."""
    async with trio.open_nursery() as nursery:
        process = await nursery.start(_run_command(config, args, env))
        running = Controller(process)
        ready = trio.Event()

        async def read_output() -> None:
            buffer = b""
            async for chunk in process.stdout:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    running.output.append(line)
                    found = READY.search(line)
                    if found:
                        running.ocpp_port, running.api_port = int(found[1]), int(found[2])
                        ready.set()
            ready.set()  # EOF: it exited (or was killed) without getting ready

        nursery.start_soon(read_output)
        try:
            with trio.fail_after(START_TIMEOUT_S):
                await ready.wait()
            assert running.api_port, "the controller exited before it was ready"
            yield running
        except BaseException:
            print(f"--- controller output (exit {process.returncode}) ---\n{running.log()}")  # pytest shows it on failure
            raise
        finally:
            if process.returncode is None:
                process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()


async def refused_start(config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """`evedge run` that must refuse to start: (its exit status, its output). It must exit, not
    get ready, and say why in words, not in a traceback."""
    output = b""
    async with trio.open_nursery() as nursery:
        process = await nursery.start(_run_command(config, args, env))
        with trio.fail_after(START_TIMEOUT_S):
            async for chunk in process.stdout:
                output += chunk
                assert not READY.search(output), f"the controller started:\n{output.decode(errors='replace')}"
            await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode not in (0, None), text
    assert "Traceback" not in text, text
    return process.returncode, text


# -- config and the books on disk ---------------------------------------------------------------


def upstream_toml(receiver: Receiver, **options: Any) -> str:
    """An [upstream] section sending every event type to `receiver`, retrying quickly."""
    lines = ["[upstream]"]
    for key, path in (("start_url", "/start"), ("stop_url", "/stop"), ("status_url", "/status"),
                      ("connection_url", "/connection")):
        lines.append(f'{key} = "{receiver.url(path)}"')
    options = {"retry_initial_s": 0.05, "retry_max_s": 0.2, "timeout_s": 10, **options}
    lines += [f"{k} = {v}" for k, v in options.items()]
    return "\n".join(lines) + "\n"


def site_config(tmp_path: Path, receiver: Receiver | None = None, *, upstream: dict | None = None,
                **options: Any) -> Path:
    """site.toml for a test site (tests.support.config_text) accepting any charger and tag."""
    options = {"unknown_chargers": "accept", "accept_unknown_id_tags": True, **options}
    extra = options.pop("extra", "")
    if receiver is not None:
        extra += upstream_toml(receiver, **(upstream or {}))
    path = tmp_path / "site.toml"
    path.write_text(config_text(tmp_path / "data", extra=extra, **options))
    return path


@contextmanager
def open_books(config: Path) -> Iterator[sqlite3.Connection]:
    """The site's SQLite file opened read-only (WAL included), for a controller that is dead."""
    data_dir = Path(tomllib.loads(config.read_text())["site"]["data_dir"])
    conn = sqlite3.connect(f"file:{data_dir / DB_FILE}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def assert_outbox_matches_transactions(db: sqlite3.Connection) -> None:
    """Every stored start has exactly one `start` event, every completed one one `stop_transaction`."""
    starts = dict(db.execute("SELECT transaction_id, count(*) FROM outbox WHERE type = 'start'"
                             " GROUP BY transaction_id").fetchall())
    stops = dict(db.execute("SELECT transaction_id, count(*) FROM outbox WHERE type = 'stop_transaction'"
                            " GROUP BY transaction_id").fetchall())
    for row in db.execute("SELECT id, status FROM transactions WHERE start_key IS NOT NULL"):
        assert starts.get(row["id"]) == 1, f"transaction {row['id']}: {starts.get(row['id'])} start events"
        if row["status"] == "completed":
            assert stops.get(row["id"]) == 1, f"transaction {row['id']}: {stops.get(row['id'])} stop events"
    assert set(starts) <= {r[0] for r in db.execute("SELECT id FROM transactions")}


# -- raw OCPP clients by URL --------------------------------------------------------------------


@asynccontextmanager
async def raw_charger_at(url: str) -> AsyncIterator[RawCharger]:
    """tests.support.RawCharger on a URL (the controller here is another process, not a Site)."""
    async with open_websocket_url(url, subprotocols=["ocpp1.6"]) as ws:
        yield RawCharger(ws)


# -- the upstream side --------------------------------------------------------------------------


async def wait_outbox_drained(ctl: Controller, timeout: float = 30) -> dict:
    """Until no notification is pending; none may have been parked as failed."""
    async def drained() -> dict | None:
        queue = await ctl.api("/api/v1/notifications/queue")
        return queue if queue["pending"] == 0 else None

    queue = await eventually(drained, timeout=timeout, what="outbox drained")
    assert queue["failed"] == 0, queue
    return queue


def firsts(requests: list[Received]) -> list[str]:
    """Event ids in the order they first arrived."""
    seen: dict[str, None] = {}
    for r in requests:
        seen.setdefault(r.event_id, None)
    return list(seen)


async def stored_order(ctl: Controller, charger_id: str) -> list[str]:
    """A charger's event ids in the order the controller recorded them."""
    listing = await ctl.api("/api/v1/notifications", chargeBoxId=charger_id, limit=1000)
    return [n["eventId"] for n in sorted(listing["notifications"], key=lambda n: n["id"])]


def assert_complete_and_in_order(receiver: Receiver, orders: dict[str, list[str]]) -> None:
    """Each charger's events all arrived, first arrivals in recorded order; resends are identical."""
    for charger_id, expected in orders.items():
        got = [r for r in receiver.requests if r.json["chargebox"] == charger_id]
        assert firsts(got) == expected, charger_id  # every event, in order
        delivered = {r.event_id for r in got if isinstance(r.answer, Reply) and r.answer.status == 200}
        assert delivered == set(expected)
    bodies: dict[str, bytes] = {}
    for r in receiver.requests:  # a duplicate is the same event: same id, same body
        assert bodies.setdefault(r.event_id, r.body) == r.body
