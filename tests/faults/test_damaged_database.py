"""A damaged database (a dying SD card), with real damaged files.

A truncated file used to exit with a raw traceback, and systemd restarted it into the same failure
for ever; one garbled page made a list answer 500 while /healthz said ok. Now a file that cannot be
opened refuses the start in words (exit status 3, which the unit does not restart on), and a file
that opens but is damaged keeps serving chargers while /healthz fails naming the damage and how to
restore, at start (PRAGMA quick_check) or when the scheduled check or a query finds it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from controller.cli import EXIT_NEEDS_OPERATOR
from controller.store import integrity
from controller.store.db import DB_FILE
from tests.faults.process import refused_start, site_config
from tests.support import CHARGER, api_client, make_config, raw_charger, running_site

TRANSACTIONS = 300


async def books_with_transactions(tmp_path: Path) -> Path:
    """A site's books holding TRANSACTIONS charges (several pages of the transactions table);
    returns the database file, checkpointed (everything in the main file)."""
    async with running_site(make_config(tmp_path)) as site, raw_charger(site, CHARGER) as cp:
        await cp.boot()
        for i in range(TRANSACTIONS):
            reply = await cp.call("StartTransaction", {"connectorId": 1, "idTag": f"T{i}", "meterStart": i,
                                                       "timestamp": "2026-12-01T00:00:00Z"})
            assert reply[0] == 3
    path = tmp_path / "data" / DB_FILE
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def garble_a_transactions_page(path: Path) -> None:
    """Overwrite part of a leaf page of the transactions table, as a failing card would."""
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = [row[0] for row in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'transactions' AND pagetype = 'leaf' ORDER BY pageno")]
    with open(path, "r+b") as file:
        file.seek((pages[len(pages) // 2] - 1) * page_size + page_size // 2)
        file.write(b"\xde\xad\xbe\xef" * 100)


async def test_a_truncated_database_refuses_the_start_in_words(tmp_path: Path) -> None:
    config = site_config(tmp_path)
    path = await books_with_transactions(tmp_path)
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size // 2)
    code, output = await refused_start(config)  # no traceback (refused_start checks)
    assert code == EXIT_NEEDS_OPERATOR
    assert str(path) in output and "damaged" in output and "backup" in output, output


def test_the_unit_does_not_restart_into_a_refusal() -> None:
    unit = (Path(__file__).resolve().parents[2] / "systemd" / "evedge.service").read_text()
    assert f"RestartPreventExitStatus={EXIT_NEEDS_OPERATOR}" in unit


async def test_a_garbled_page_fails_healthz_and_lists_answer_503_while_chargers_are_served(tmp_path: Path) -> None:
    garble_a_transactions_page(await books_with_transactions(tmp_path))
    async with running_site(make_config(tmp_path)) as site, api_client(site, validate=False) as api:
        health = await api.get("/healthz")
        assert health.status_code == 503
        database = health.json()["checks"]["database"]
        assert database["status"] == "failing" and "damaged" in database["error"] and "backup" in database["error"]
        listing = await api.get("/api/v1/transactions", params={"limit": 1000})
        assert listing.status_code == 503, listing.text  # not a 500
        assert "damaged" in listing.json()["message"] and "Retry-After" in listing.headers
        async with raw_charger(site, CHARGER) as cp:  # chargers are served from what still works
            await cp.boot()
            assert (await cp.call("Heartbeat", {}))[0] == 3


@pytest.fixture
def clock() -> MockClock:
    """Time flows normally; the test jumps it to the next scheduled check."""
    return MockClock(rate=1.0)


async def test_the_scheduled_check_finds_damage_that_appears_while_running(tmp_path: Path, clock: MockClock) -> None:
    path = await books_with_transactions(tmp_path)
    async with running_site(make_config(tmp_path)) as site, api_client(site, validate=False) as api:
        assert (await api.get("/healthz")).status_code == 200
        garble_a_transactions_page(path)
        clock.jump(integrity.CHECK_EVERY_S)
        with trio.fail_after(10):
            while site.store.damage is None:
                await trio.sleep(0.05)
        health = await api.get("/healthz")
        assert health.status_code == 503 and "damaged" in health.json()["checks"]["database"]["error"]
