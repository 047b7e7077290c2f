"""A damaged database: found at start and on a schedule, named in /healthz, never a traceback.

An SD card that is dying truncates files and garbles pages. A database that cannot even be opened
refuses the start with a message naming the file and how to restore it (`DamagedDatabase`, exit
status EXIT_NEEDS_OPERATOR: systemd does not restart into the same failure). A database that
opens but fails `PRAGMA quick_check` (at start, then every CHECK_EVERY_S) keeps serving chargers
from what still works, while `store.damage` makes /healthz fail with the reason; a read that hits
a damaged page answers 503 naming the damage (`DatabaseDamaged`), not a bare 500.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Protocol

import trio

from controller import errors
from controller.store.data_dir import DataDirRefused

log = logging.getLogger("evedge.store")
CHECK_EVERY_S = 6 * 3600.0
MAX_PROBLEMS = 5  # quick_check lists at most this many problems
_DAMAGE_CODES = {11: "SQLITE_CORRUPT", 26: "SQLITE_NOTADB"}
RESTORE = "restore it from a backup (docs/install.md, Backups: stop evedge, copy the backup over it, remove its -wal and -shm files)"


class DamagedDatabase(DataDirRefused):
    """The database file cannot be opened as a database (truncated, overwritten)."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        super().__init__(f"the database {path} is damaged ({cause}): {RESTORE}; to begin new books instead, move"
                         " it aside and start once with `evedge run --new-books`")


class DatabaseDamaged(errors.StorageUnavailable):
    """A read or write met a damaged part of the database."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"the database is damaged ({cause}); the operator has to restore it from a backup")
        self.cause = cause


class _Checked(Protocol):
    path: Path
    damage: str | None


def is_damage(exc: BaseException) -> bool:
    """An error that means the file's content is broken (not the disk full or a lock)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.OperationalError) and str(exc).startswith("Could not decode to UTF-8"):
        return True  # a text cell whose bytes a garbled page overwrote: SQLite reads it, Python cannot
    return isinstance(exc, sqlite3.DatabaseError) and code is not None and code & 0xFF in _DAMAGE_CODES


def quick_check(path: Path) -> str | None:
    """`PRAGMA quick_check` on its own read-only connection: None when the file is sound, else
    what is wrong (blocking: run it in a thread)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = [row[0] for row in conn.execute(f"PRAGMA quick_check({MAX_PROBLEMS})")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(exc)
    return None if rows == ["ok"] else "; ".join(rows)


def note(store: _Checked, exc: BaseException) -> bool:
    """Record damage that a query met; True if `exc` is damage."""
    if not is_damage(exc):
        return False
    if store.damage is None:
        log.critical("the database %s is damaged: %s; %s", store.path, exc, RESTORE)
    store.damage = str(exc)
    return True


def checked(store: _Checked, problem: str | None) -> None:
    """Record the outcome of a quick_check."""
    if problem is not None:
        if store.damage != problem:
            log.critical("the database %s fails its integrity check: %s; %s", store.path, problem, RESTORE)
        store.damage = problem
    elif store.damage is not None:
        log.info("the database %s passes its integrity check again", store.path)
        store.damage = None


async def watch(store: _Checked, every_s: float = CHECK_EVERY_S) -> None:
    """Check the database every `every_s` (in a thread: the loop serves chargers meanwhile)."""
    while True:
        await trio.sleep(every_s)
        checked(store, await trio.to_thread.run_sync(quick_check, store.path))
