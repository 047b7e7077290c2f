"""`evedge backup` while the controller runs and charges are booked, `evedge restore` only when it is
stopped; real processes, a real WAL database, a raw OCPP charger over a real socket."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

import trio

from controller.store.data_dir import MARKER_FILE
from controller.store.db import DB_FILE
from tests.appliance.conftest import evedge
from tests.faults.process import controller, open_books, raw_charger_at, site_config
from tests.support import CHARGER


def data_dir(config: Path) -> Path:
    return Path(tomllib.loads(config.read_text())["site"]["data_dir"])


async def _charge(cp, n: int) -> int:
    reply = await cp.call("StartTransaction", {"connectorId": 1, "idTag": f"TAG-{n}", "meterStart": n * 1000,
                                               "timestamp": f"2026-02-01T10:{n:02d}:00Z"})
    tx = reply[2]["transactionId"]
    reply = await cp.call("StopTransaction", {"transactionId": tx, "meterStop": n * 1000 + 500,
                                              "timestamp": f"2026-02-01T10:{n:02d}:30Z"})
    assert reply[0] == 3
    return tx


async def test_backup_while_running_and_restore_when_stopped(tmp_path: Path) -> None:
    config = site_config(tmp_path)
    backups = tmp_path / "backups"
    backups.mkdir()
    async with controller(config) as ctl:
        async with raw_charger_at(ctl.url(CHARGER)) as cp:
            await cp.boot()
            booked = [await _charge(cp, n) for n in range(1, 4)]

            # a backup while charges keep being booked: every copy is a consistent state
            async def keep_charging() -> None:
                for n in range(4, 30):
                    await _charge(cp, n)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(keep_charging)
                rc, out, err = await evedge("backup", str(backups / "during.sqlite3"), "--config", str(config))
            assert rc == 0, err
            assert "backed up database" in out
            rc, out, err = await evedge("backup", str(backups), "--keep", "1", "--config", str(config))
            assert rc == 0, err

        # restore refuses while the controller holds the data directory
        rc, out, err = await evedge("restore", str(backups / "during.sqlite3"), "--config", str(config))
        assert rc == 1 and "in use by another evedge process" in err, err
        await ctl.kill9()

    timed = sorted(backups.glob("evedge-*.sqlite3"))
    assert len(timed) == 1
    with sqlite3.connect(timed[0]) as copy:  # taken after the charges: all of them, checked, standalone
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("SELECT count(*) FROM transactions").fetchone()[0] == 29
    with sqlite3.connect(backups / "during.sqlite3") as copy:
        during = copy.execute("SELECT count(*) FROM transactions WHERE status = 'completed'").fetchone()[0]
        assert 3 <= during <= 29
        # consistent: a completed charge has its stop, and nothing is half-booked
        assert copy.execute("SELECT count(*) FROM transactions WHERE status != 'completed'").fetchone()[0] <= 1
    assert not list(backups.glob("*.part"))

    with open_books(config) as db:
        assert db.execute("SELECT count(*) FROM transactions").fetchone()[0] == 29

    rc, out, err = await evedge("restore", str(backups / "during.sqlite3"), "--config", str(config))
    assert rc == 0, err
    assert "restored database" in out and "kept as" in out
    kept = next(p for p in data_dir(config).glob(f"{DB_FILE}.before-restore-*") if not p.name.endswith("-wal"))
    with sqlite3.connect(kept) as replaced:  # the books it replaced are kept, with their last commits
        assert replaced.execute("SELECT count(*) FROM transactions").fetchone()[0] == 29

    async with controller(config) as ctl:  # the restored books are accepted without --new-books
        listing = await ctl.api("/api/v1/transactions", limit=1000)
        assert listing["pagination"]["total"] == during
        assert {t["transactionId"] for t in listing["transactions"]} >= set(booked)
        assert "restored from a backup" not in ctl.log()  # the marker already names these books


async def test_restore_refuses_what_is_not_an_evedge_database(tmp_path: Path) -> None:
    config = site_config(tmp_path)
    async with controller(config):
        pass
    before = (data_dir(config) / DB_FILE).read_bytes()
    marker = (data_dir(config) / MARKER_FILE).read_text()

    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE contacts (name TEXT)")
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\x07" * 4096)
    for file, why in ((other, "not an evedge database"), (garbage, "not a usable SQLite database"),
                      (tmp_path / "missing.sqlite3", "no such file")):
        rc, _, err = await evedge("restore", str(file), "--config", str(config))
        assert rc == 1 and why in err, err
        assert "Traceback" not in err
    assert (data_dir(config) / DB_FILE).read_bytes() == before  # untouched
    assert (data_dir(config) / MARKER_FILE).read_text() == marker

    rc, _, err = await evedge("backup", str(tmp_path / "x.sqlite3"), "--config", str(tmp_path / "nope.toml"))
    assert rc == 2 and "nope.toml" in err
