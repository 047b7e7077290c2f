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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

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


@dataclass
class _Write:
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict
    events: Iterable[OutboxEvent]
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class Store:
    """Runs query functions `fn(conn, *args)` (from the modules of this package) off the loop.

    Writes are group-committed: the writes that queue up while one commit is on disk go to disk
    together in the next transaction (each in its own savepoint, so one failing write does not
    undo the others). Every caller still returns only after its own write is durable; under load
    many chargers share one fsync instead of queueing for one each.
    """

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_FILE
        self._writer = connect(self.path)
        self.version = migrate(self._writer)
        self._reader = connect(self.path)
        self._queue: list[_Write] = []
        self._committing: trio.Event | None = None  # set when the commit in progress is durable
        self._read_limiter = trio.CapacityLimiter(1)
        self.after_write: Callable[[], None] | None = None
        """Called after every write (the upstream worker uses it to notice new outbox rows)."""

    async def write(
        self, fn: Callable[..., T], *args: object, events: Iterable[OutboxEvent] = (), **kwargs: object
    ) -> T:
        """Run `fn` in a transaction together with the outbox rows it causes; return once durable.

        A write that has started always finishes, even when its caller is cancelled, so a
        shutdown never leaves half of what a charger sent.
        """
        request = _Write(fn, args, kwargs, events)
        self._queue.append(request)
        try:
            while not request.done:
                if self._committing is not None:
                    # A commit is on disk: wait for it (its end wakes all of its writers at
                    # once), then either we were in it or the first of us commits the next batch.
                    await self._committing.wait()
                    continue
                batch, self._queue = self._queue, []
                self._committing = committing = trio.Event()
                try:
                    await trio.to_thread.run_sync(self._commit, batch)
                finally:
                    self._committing = None
                    committing.set()
        except trio.Cancelled:
            if request in self._queue:
                self._queue.remove(request)
            raise
        if self.after_write is not None:
            self.after_write()
        if request.error is not None:
            raise request.error
        return request.result

    def _commit(self, batch: list[_Write]) -> None:
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            for request in batch:
                conn.execute("SAVEPOINT write")
                try:
                    request.result = request.fn(conn, *request.args, **request.kwargs)
                    insert_events(conn, request.events)
                except Exception as exc:
                    conn.execute("ROLLBACK TO write")
                    request.error = exc
                conn.execute("RELEASE write")
            conn.execute("COMMIT")
        except Exception as exc:  # the transaction as a whole failed (disk full, I/O error)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for request in batch:
                request.error = request.error or exc
        finally:
            for request in batch:
                request.done = True

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
