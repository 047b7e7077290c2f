"""The SQLite file and the threads that touch it.

SQLite calls block, and an fsync on a Pi's SD card can take tens of milliseconds, so every query
runs in a worker thread while the Trio loop keeps serving other chargers. One connection writes
(serialized: SQLite has one writer anyway), another reads, so API reads never wait behind a
commit (WAL mode lets them run side by side). `synchronous=FULL` makes a commit durable before we
tell a charger it is stored: losing power after the answer loses nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import trio

from controller.store.outbox import OutboxEvent, insert_events
from controller.store.schema import migrate

T = TypeVar("T")
DB_FILE = "evedge.sqlite3"


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Store:
    """Runs query functions `fn(conn, *args)` (from the modules of this package) off the loop."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_FILE
        self._writer = connect(self.path)
        self.version = migrate(self._writer)
        self._reader = connect(self.path)
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(1)

    async def write(
        self, fn: Callable[..., T], *args: object, events: Iterable[OutboxEvent] = (), **kwargs: object
    ) -> T:
        """Run `fn` in one transaction, together with the outbox rows it causes.

        Not abandoned on cancellation: a write that has started always finishes, so a shutdown
        never leaves half of what a charger sent.
        """

        def run() -> T:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args, **kwargs)
                insert_events(conn, events)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await trio.to_thread.run_sync(run, limiter=self._write_limiter)

    async def read(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        def run() -> T:
            conn = self._reader
            conn.execute("BEGIN")
            try:
                return fn(conn, *args, **kwargs)
            finally:
                conn.execute("COMMIT")

        return await trio.to_thread.run_sync(run, limiter=self._read_limiter)

    def close(self) -> None:
        self._reader.close()
        self._writer.close()
