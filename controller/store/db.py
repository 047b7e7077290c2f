"""The SQLite file and the threads that touch it.

SQLite calls block, and an fsync on a Pi's SD card can take tens of milliseconds, so every query
runs in a worker thread while the Trio loop keeps serving other chargers. One connection writes
(serialized: SQLite has one writer anyway), another reads, so API reads never wait behind a
commit (WAL mode lets them run side by side). `synchronous=FULL` makes a commit durable before we
tell a charger it is stored: losing power after the answer loses nothing.
"""

from __future__ import annotations

import contextvars
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import trio

from controller import errors
from controller.elapsed import QueueTimes
from controller.store import integrity, space, transactions
from controller.store.connection import WriteConnection
from controller.store.data_dir import Books, DataDirLock, check_books, mark_books
from controller.store.outbox import OutboxEvent, insert_events, insert_generation, last_id
from controller.store.schema import identity, migrate
from controller.timefmt import utcnow

log = logging.getLogger("evedge.store")
T = TypeVar("T")
DB_FILE = "evedge.sqlite3"
COALESCE_S = 0.002  # how long a commit waits for more writes when writes come ...
COALESCE_WHEN_S = 0.02  # ... less than this apart on average (a busy site)
GAP_WEIGHT = 0.2  # the weight of the latest gap between two writes in their running mean
READINGS_WINDOW_S = 0.1
"""How long a reading (telemetry: MeterValues) may wait for others to share its commit on a site
that is not busy. At a site's rate (200 chargers, one reading each every 10 s: one every ~50 ms)
each message would be a commit of its own, and every commit dirties at least one 4 KiB page of the
WAL file and costs an fsync whatever it holds: readings that share a commit share both (two or
three readings a commit at that rate, under 4 KB written per reading instead of 9). The answer
still follows the commit, so a reading's answer is up to this much later, which a charger does
not notice (its call timeout is tens of seconds; the reading carries its own timestamp). Any other
write (a start, a stop, an authorization) ends the wait at once. A busy site, whose commits fill
by themselves, has COALESCE_S instead, so its answers are not held back; a site whose writes come
further apart on average than the window holds nothing either (no other reading is likely to join,
the wait would only delay the answer)."""
HOLD_BACKOFF_MAX = 64
"""After a hold that found no other write to share its commit, the next 1, 2, 4, ... up to this
many readings commit without holding (see HoldPolicy)."""
WAL_CHECKPOINT_PAGES = 4000  # copy the WAL into the file once it holds this many pages (4 MiB)
BUSY_TIMEOUT_S = 30  # how long a write waits for a lock held by another process (a backup)
# Primary SQLite result codes that mean "the database cannot take writes now" (not "this write is
# wrong"): permissions, locks held elsewhere, read-only, I/O errors, corruption, disk full.
_STORAGE_CODES = {
    3: "SQLITE_PERM", 5: "SQLITE_BUSY", 6: "SQLITE_LOCKED", 7: "SQLITE_NOMEM", 8: "SQLITE_READONLY",
    10: "SQLITE_IOERR", 11: "SQLITE_CORRUPT", 13: "SQLITE_FULL", 14: "SQLITE_CANTOPEN",
    15: "SQLITE_PROTOCOL", 26: "SQLITE_NOTADB",
}


def connect(path: Path, factory: type[sqlite3.Connection] = sqlite3.Connection) -> Any:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S,
                           factory=factory)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def is_storage_error(exc: BaseException) -> bool:
    """True for errors of the database itself (disk full, read-only, I/O), not of one write."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in _STORAGE_CODES


class StorageUnavailable(errors.StorageUnavailable):
    """A write the database refused (disk full, read-only, I/O error): nothing of it is stored.

    The API answers 503 with Retry-After; an OCPP handler that lets it escape answers CALLERROR
    InternalError, so the charger keeps the message and sends it again later.
    """

    def __init__(self, cause: sqlite3.Error) -> None:
        super().__init__(f"the database cannot store this now: {cause}")
        self.cause = cause


@dataclass(frozen=True)
class WriteFailure:
    """The last write the database refused; cleared by the next commit that stores something."""

    error: str
    at: datetime


# What `Store.beside_next_write` has the current task's next write do too (a Trio task's own).
_BESIDE: contextvars.ContextVar[list[Callable[[sqlite3.Connection], None]] | None] = contextvars.ContextVar(
    "evedge_beside_next_write", default=None)


@dataclass(eq=False, slots=True)  # a write equals only itself (the writer thread looks for _STOP in a batch)
class _Write:
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict
    events: Iterable[OutboxEvent]
    exclusive: bool = False  # runs alone, outside any transaction (on_writer, probe)
    telemetry: bool = False  # a reading: may wait READINGS_WINDOW_S for company on a quiet site
    queued_at: float = 0.0  # time.monotonic() when it was queued
    task: trio.lowlevel.Task | None = None  # its caller, rescheduled once the write is durable (or failed)
    beside: Callable[[sqlite3.Connection], None] | None = None  # Store.beside_next_write's, in its transaction
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class HoldPolicy:
    """Whether the next reading waits for company, from how the last holds went. A hold pays when
    other chargers' readings join it; when one charger sends alone (a backlog it replays after a
    reconnect, each reading answered before the next is sent) nothing can join, and holding each
    reading would only slow it down tenfold. So a hold that found no company makes the next 1, 2,
    4, ... readings (up to HOLD_BACKOFF_MAX) commit at once, and one that found company ends that.
    Writer thread only."""

    def __init__(self) -> None:
        self.alone = 0  # holds in a row that found no company
        self.skip = 0  # readings still to commit without holding

    def hold_next(self) -> bool:
        if self.skip:
            self.skip -= 1
            return False
        return True

    def held(self, company: bool) -> None:
        self.alone = 0 if company else min(2 * self.alone or 1, HOLD_BACKOFF_MAX)
        self.skip = self.alone


class Store:
    """Runs query functions `fn(conn, *args)` (from the modules of this package) off the loop.

    Writes are group-committed by one long-lived writer thread fed by a queue: the writes that
    queue up while one commit is on disk go to disk together in the next transaction (when one
    write fails, each is retried in a transaction of its own, so one failing write does not undo
    the others), and the thread wakes the Trio side once per commit. Every caller still returns
    only after its own write is durable; under load many chargers share one fsync instead of
    queueing for one each.

    When the database refuses writes (disk full, read-only, I/O errors) the Store stays up: each
    writer gets `StorageUnavailable` (nothing of its write is stored), `write_failure` says what
    and when for /healthz, and the next commit that stores rows clears it.
    """

    def __init__(self, data_dir: Path, after_write: Callable[[], None] | None = None, *, site: str = "",
                 new_books: bool = False) -> None:
        """Opens (or creates) the database in `data_dir`, holding the directory's lock. Raises
        DataDirInUse (another controller has it) or BooksMissing (the directory had books and the
        database is gone: `new_books` starts new ones)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_FILE
        self._lock = DataDirLock(data_dir)
        try:
            check_books(data_dir, self.path, new_books)
            try:
                self._writer: WriteConnection = connect(self.path, WriteConnection)
                if space.prepare(self._writer):
                    log.info("database file rewritten with %d-byte pages and incremental vacuum (once)",
                             space.PAGE_SIZE)
                self.version = migrate(self._writer)
                transactions.settle_running(self._writer)  # a crash may have left charges behind their readings
                self._reader = connect(self.path)
                mark_books(data_dir, Books(site, *identity(self._writer)))
            except sqlite3.DatabaseError as exc:
                if integrity.is_damage(exc):  # truncated, overwritten: say so, not a traceback
                    raise integrity.DamagedDatabase(self.path, exc) from None
                raise
        except BaseException:
            self._lock.release()
            raise
        self.damage: str | None = None
        """What is wrong with the file (a failed quick_check, a damaged page met); /healthz fails."""
        integrity.checked(self, integrity.quick_check(self.path))
        self._queue: deque[_Write] = deque()  # waiting for the writer thread; guarded by _wakeup
        self._wakeup = threading.Condition(threading.Lock())  # never taken twice by one thread
        self._running: list[_Write] = []  # the batch on disk now (writer thread)
        self._thread: threading.Thread | None = None
        self._woken = True  # the last batch's writers were woken (guarded by _wakeup)
        self._stopping = False
        self._idle = False  # the writer thread waits for a notify (guarded by _wakeup)
        self._holding = False  # the writer thread holds readings for READINGS_WINDOW_S (guarded by _wakeup)
        self._holds = HoldPolicy()
        self._gap = 1.0  # running mean of the seconds between two queued writes (guarded by _wakeup)
        self._last_queued = 0.0  # time.monotonic() when the last write was queued (guarded by _wakeup)
        self._token: trio.lowlevel.TrioToken | None = None
        self._read_limiter = trio.CapacityLimiter(1)
        self.after_write = after_write
        """Called in the Trio thread after every write (upstream delivery notices new outbox rows)."""
        self.write_failure: WriteFailure | None = None
        self.outbox_generation = 0
        """Bumped (writer thread) after each commit that stored outbox rows, never before: the
        delivery worker compares it after every write, and a row it is woken for is readable."""
        self.outbox_queued = QueueTimes(last_id(self._writer))
        """When each upstream notification was queued, on the monotonic clock (its age for /healthz)."""
        self._stored = False  # the current group commit stored rows (writer thread only)
        self._on_commit: list[Callable[[], None]] = []  # the current transaction's after_commit (writer thread)

    @property
    def queued(self) -> int:
        """Writes waiting for the writer thread (not yet in a commit)."""
        return len(self._queue)

    @property
    def committing(self) -> bool:
        """Whether the writer thread is running a batch now."""
        return bool(self._running)

    async def write(
        self, fn: Callable[..., T], *args: object, events: Iterable[OutboxEvent] = (), telemetry: bool = False,
        **kwargs: object
    ) -> T:
        """Run `fn` in a transaction together with the outbox rows it causes; return once durable.

        `telemetry`: the write stores readings only, and may wait up to READINGS_WINDOW_S to share
        its commit (never a start, a stop or anything a charger or an operator waits on to go on).
        A write that has started always finishes, even when its caller is cancelled, so a
        shutdown never leaves half of what a charger sent; one still queued is withdrawn.
        """
        beside = _BESIDE.get()
        request = await self._submit(_Write(fn, args, kwargs, events, beside=beside.pop() if beside else None,
                                            telemetry=telemetry))
        if self.after_write is not None:
            self.after_write()
        if request.error is not None and request.beside is not None and beside is not None:
            beside.append(request.beside)  # not stored: it rides with the task's next write, or its owner writes it
        if request.error is not None:
            if is_storage_error(request.error):
                raise StorageUnavailable(request.error) from request.error  # type: ignore[arg-type]
            raise request.error
        return request.result

    async def _submit(self, request: _Write) -> _Write:
        """Queue the request for the writer thread and wait until it is done."""
        self._token = trio.lowlevel.current_trio_token()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run_writer, name="evedge-store-writer", daemon=True)
            self._thread.start()
        request.task = trio.lowlevel.current_task()
        request.queued_at = now = time.monotonic()
        with self._wakeup:
            self._gap += GAP_WEIGHT * (min(now - self._last_queued, 1.0) - self._gap)
            self._last_queued = now
            self._queue.append(request)
            # an idle thread is notified only when it can go on (else `_wake` notifies, once the last
            # batch's writers go on); one holding readings, by anything but another reading
            if (self._idle and self._woken) or (self._holding and not request.telemetry):
                self._wakeup.notify()
        started = False

        def abort(_: object) -> trio.lowlevel.Abort:
            """Cancelled: a write still queued is withdrawn; one started finishes first."""
            nonlocal started
            with self._wakeup:
                if request in self._queue:
                    self._queue.remove(request)
                    return trio.lowlevel.Abort.SUCCEEDED
            started = True
            return trio.lowlevel.Abort.FAILED

        # The task sleeps until `_wake` reschedules it: no Event, no parking lot, per write.
        await trio.lowlevel.wait_task_rescheduled(abort)
        if started:
            await trio.lowlevel.checkpoint()  # the cancellation goes on, now that the write is done
        return request

    def _take_batch(self) -> list[_Write]:
        """Wait for writes and take every one queued. The previous batch's writers are woken
        first (under load they are the next batch: a charger's next message waits for the answer
        to its last). When writes come close together the writes of the next COALESCE_S join
        too, so a busy site shares one fsync among more messages; on a quieter one readings wait
        for others up to READINGS_WINDOW_S after the first of them was queued, and anything else
        commits at once (with the readings queued before it)."""
        with self._wakeup:
            while not self._queue or not (self._woken or self._stopping):
                self._idle = True  # the loop's side notifies only then: a notify wakes this thread
                self._wakeup.wait()
                self._idle = False
            quiet = self._gap >= COALESCE_WHEN_S
            if quiet and self._gap < READINGS_WINDOW_S and self._queue[0].telemetry and self._holds.hold_next():
                self._hold_readings()
        if not quiet and not self._stopping:
            try:
                time.sleep(COALESCE_S)  # writes queue meanwhile without waking this thread
            except OSError:  # only an optimisation: never the writer's end (seen under libfaketime)
                pass
        with self._wakeup:
            batch, self._queue = list(self._queue), deque()
            self._woken = False
        return batch

    def _hold_readings(self) -> None:
        """(Holding _wakeup) while only readings are queued, wait until READINGS_WINDOW_S after
        the first; a write of another kind (its `_submit` notifies) or close() ends the wait."""
        deadline = self._queue[0].queued_at + READINGS_WINDOW_S
        self._holding = True
        try:
            while not self._stopping and all(request.telemetry for request in self._queue):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wakeup.wait(left)
        except OSError:  # only an optimisation, as above
            pass
        finally:
            self._holding = False
        self._holds.held(company=len(self._queue) > 1)

    def _wake(self, batch: list[_Write]) -> None:
        """In the Trio thread: the batch is done, its writers go on; the writer thread may take the next."""
        for request in batch:
            trio.lowlevel.reschedule(request.task)  # type: ignore[arg-type]
        with self._wakeup:
            self._woken = True
            if self._idle and self._queue:  # else the next write notifies: the thread sleeps on
                self._wakeup.notify()

    def _run_writer(self) -> None:
        """The writer thread: takes what is queued, commits it, wakes its writers, and again."""
        while True:
            batch = self._take_batch()
            stop = _STOP in batch
            if stop:
                batch.remove(_STOP)
            self._running = batch
            start = 0
            for i, request in enumerate(batch + [None]):
                if request is None or request.exclusive:
                    if i > start:
                        self._commit(batch[start:i])
                    if request is not None:
                        self._run_alone(request)
                    start = i + 1
            self._running = []
            try:
                self._token.run_sync_soon(self._wake, batch)  # type: ignore[union-attr]
            except trio.RunFinishedError:  # nobody waits any more
                self._woken = True
            if stop:
                return

    def _run_alone(self, request: _Write) -> None:
        try:
            request.result = request.fn(self._writer)
        except BaseException as exc:  # handed to its caller
            request.error = exc
        finally:
            self._writer.forget_all()  # it may have changed anything
        request.done = True

    @staticmethod
    @contextmanager
    def beside_next_write(fn: Callable[[sqlite3.Connection], None]) -> Iterator[Callable[[], bool]]:
        """Have `fn(conn)` run inside the next write the current task makes, in its transaction:
        stored with it or not at all, at no commit of its own. Yields `written()`: whether it was
        stored (if the task made no write that succeeded, the caller writes it itself)."""
        holder = [fn]
        token = _BESIDE.set(holder)
        try:
            yield lambda: not holder
        finally:
            _BESIDE.reset(token)

    async def _exclusive(self, fn: Callable[[], T]) -> T:
        """Run `fn` in the writer thread between two group commits (no commit runs meanwhile)."""
        request = await self._submit(_Write(lambda conn: fn(), (), {}, (), exclusive=True))
        if request.error is not None:
            raise request.error
        return request.result

    async def on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the write connection outside any transaction, between commits.

        For connection settings (PRAGMAs), and for tests that inject faults with them
        (`PRAGMA query_only = 1`: read-only; `PRAGMA max_page_count`: disk full).
        """
        return await self._exclusive(lambda: fn(self._writer))

    async def probe(self, timeout_s: float = 1.0) -> str | None:
        """Whether the database takes writes now: None if so, else what the database said.

        Commits a real (content-neutral) write, rewriting the header's user_version, and checks
        that the file can grow by a page (a table created in a savepoint that is rolled back).
        Success clears `write_failure`, so /healthz recovers even on a site where nothing writes.
        """

        def run() -> str | None:
            conn = self._writer
            conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")  # a probe must not hang
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("SAVEPOINT probe")
                conn.execute("CREATE TABLE main.evedge_write_probe (x)")  # allocates a page
                conn.execute("ROLLBACK TO probe")
                conn.execute("RELEASE probe")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                conn.execute(f"PRAGMA user_version = {int(version)}")
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                self._failed(exc)
                return str(exc)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
            if self.write_failure is not None:
                log.info("database takes writes again")
                self.write_failure = None
            return None

        return await self._exclusive(run)

    def _commit(self, batch: list[_Write]) -> None:
        """Commit the batch; if the transaction as a whole fails, retry each write on its own, so
        one write that needs space the disk does not have cannot take the others with it.
        Never raises (this is the writer thread): every request ends with a result or an error."""
        self._stored = False
        try:
            failure, began = self._transaction(batch)
            if failure is not None and began and len(batch) > 1:
                for i, request in enumerate(batch):
                    failure, began = self._transaction([request])
                    if not began:  # no transaction at all now (a lock held elsewhere): stop here
                        for rest in batch[i + 1:]:
                            rest.result, rest.error = None, failure
                        break
        except BaseException as exc:  # a bug here must still not acknowledge unstored writes
            log.exception("group commit failed")
            self._rollback()
            for request in batch:
                request.error = request.error or exc  # at worst a stored write is retried
        finally:
            for request in batch:
                request.done = True
        refused = any(request.error is not None and is_storage_error(request.error) for request in batch)
        if self._stored and not refused and self.write_failure is not None:
            log.info("database takes writes again")
            self.write_failure = None

    def _transaction(self, batch: list[_Write]) -> tuple[BaseException | None, bool]:
        """One transaction for the batch. Returns why it failed (then nothing of it is stored and
        each request's error is that reason; `_commit` retries each write alone), and whether it
        began at all. No savepoint per write: the retry gives each write its own outcome on the
        rare failure, and the common path saves two statements per write."""
        conn = self._writer
        changes = conn.total_changes
        generation = insert_generation()
        began = False
        self._on_commit = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            began = True
            for request in batch:
                if request.telemetry != conn.deferring:  # readings' rows are written before anything else runs
                    conn.flush()
                    conn.deferring = request.telemetry
                request.result, request.error = None, None
                request.result = request.fn(conn, *request.args, **request.kwargs)
                if request.events:
                    insert_events(conn, request.events)
                if request.beside is not None:
                    request.beside(conn)
            conn.deferring = False
            conn.flush()
            conn.execute("COMMIT")
            conn.committed()
        except Exception as exc:
            self._rollback()
            self._failed(exc)
            for request in batch:
                request.result, request.error = None, exc
            return exc, began
        self._stored = self._stored or conn.total_changes > changes
        if insert_generation() != generation:
            self.outbox_generation += 1
            self.outbox_queued.queued(last_id(conn))
        for fn in self._on_commit:
            try:
                fn()
            except Exception:  # noqa: BLE001 - the writer thread never ends on a hook's bug
                log.exception("after-commit hook failed")
        return None, began

    def after_commit(self, fn: Callable[[], None]) -> None:
        """(Inside a write, in the writer thread) call `fn()` there once the write's transaction
        has committed, never if it is rolled back. For what tells the loop's side to look at the
        rows just written: told before the commit, it could look, find nothing yet, and never
        look again."""
        self._on_commit.append(fn)

    def _rollback(self) -> None:
        self._writer.deferring = False
        self._writer.rolled_back()
        try:
            if self._writer.in_transaction:
                self._writer.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("rollback failed")

    def _failed(self, exc: BaseException) -> None:
        if not is_storage_error(exc):
            return
        integrity.note(self, exc)
        if self.write_failure is None:
            log.error("database refuses writes: %s", exc)
        self.write_failure = WriteFailure(str(exc), utcnow())

    async def read(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        def run() -> T:
            conn = self._reader
            conn.execute("BEGIN")
            try:
                return fn(conn, *args, **kwargs)
            finally:
                conn.execute("COMMIT")

        try:
            return await trio.to_thread.run_sync(run, limiter=self._read_limiter)
        except sqlite3.DatabaseError as exc:
            if integrity.note(self, exc):
                raise integrity.DatabaseDamaged(exc) from exc
            raise

    def close(self) -> None:
        if self._thread is not None:
            with self._wakeup:
                self._stopping = True
                self._queue.append(_STOP)
                self._wakeup.notify()
            self._thread.join()
        self._reader.close()
        self._writer.close()
        self._lock.release()


_STOP = _Write(lambda conn: None, (), {}, ())  # queued by close(): the writer thread ends
