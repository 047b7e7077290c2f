"""A controller that once had books does not start on a missing or empty database unless told.

Otherwise a 0-byte file (a dying SD card) or a deleted one starts fresh books: `/healthz` ok,
transaction ids from 1 again, and the charges since the last backup silently lost.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import trio

from controller.simulators.charger_process import SimulatedCharger
from controller.store.db import DB_FILE
from controller.cli import EXIT_NEEDS_OPERATOR
from tests.faults.process import controller, refused_start, site_config
from tests.support import CHARGER


def database(config: Path) -> Path:
    return Path(tomllib.loads(config.read_text())["site"]["data_dir"]) / DB_FILE


def lose(db: Path, how: str) -> None:
    for extra in ("-wal", "-shm"):
        db.with_name(db.name + extra).unlink(missing_ok=True)
    if how == "emptied":
        db.write_bytes(b"")
    else:
        db.unlink()


@pytest.mark.parametrize("how", ["emptied", "deleted"])
async def test_lost_books_are_refused_until_told(tmp_path, nursery: trio.Nursery, how: str) -> None:
    config = site_config(tmp_path)
    async with controller(config) as ctl:
        sim = await SimulatedCharger.start(nursery, ctl.url(CHARGER), connectors=2)
        await sim.boot()
        await sim.status(1, "Preparing")
        assert (await sim.start(connector=1, idTag="TAG-1", meterStart=0))["transactionId"] == 1
        await sim.aclose()
        await ctl.kill9()
    db = database(config)
    lose(db, how)

    code, output = await refused_start(config)
    assert code == EXIT_NEEDS_OPERATOR  # systemd does not restart into it
    assert str(db) in output and "--new-books" in output, output
    assert (db.exists() and db.stat().st_size == 0) if how == "emptied" else not db.exists()  # left as found
    code, _ = await refused_start(config)  # and again: nothing was created meanwhile
    assert code == EXIT_NEEDS_OPERATOR

    async with controller(config, "--new-books") as ctl:  # told: new books
        assert (await ctl.api("/healthz"))["status"] == "ok"
        assert "new books" in ctl.log()
    async with controller(config):  # from now on these are the books
        pass
