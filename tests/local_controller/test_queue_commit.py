"""A forwarded message is queued in the commit of what the charger's call changed (no commit of its
own), and only if that commit stores: `Store.beside_next_write`, over a real SQLite file."""

from __future__ import annotations

import sqlite3
from functools import partial

import pytest

from controller.store import Store
from controller.store import forwarding as q
from controller.store.db import StorageUnavailable


def row(conn: sqlite3.Connection) -> None:
    q.enqueue(conn, q.queued_row("CP-1", "MeterValues", {"connectorId": 1}, None, "ocpp1.6"))


def queued(conn: sqlite3.Connection) -> int:
    return q.counts(conn).get("CP-1", 0)


def boom(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO forward_queue (charger_id) VALUES ('x')")  # NOT NULL columns missing


async def test_the_row_rides_with_the_next_write_and_not_with_a_failed_one(tmp_path):
    store = Store(tmp_path)
    try:
        with store.beside_next_write(row) as written:
            with pytest.raises(sqlite3.IntegrityError):
                await store.write(boom)
            assert not written() and await store.read(queued) == 0  # undone with the write it rode on
            await store.write(partial(q.counts))
            assert written() and await store.read(queued) == 1
            await store.write(partial(q.counts))
        assert await store.read(queued) == 1  # once
        with store.beside_next_write(row) as written:
            pass  # no write: the owner writes it itself
        assert not written()
    finally:
        store.close()


async def test_a_refused_disk_stores_neither(tmp_path):
    store = Store(tmp_path)
    try:
        await store.on_writer(lambda conn: conn.execute("PRAGMA query_only = 1"))
        with store.beside_next_write(row) as written:
            with pytest.raises(StorageUnavailable):
                await store.write(partial(q.counts))
            assert not written()
        await store.on_writer(lambda conn: conn.execute("PRAGMA query_only = 0"))
        assert await store.read(queued) == 0
    finally:
        store.close()
