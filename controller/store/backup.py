"""`evedge backup` and `evedge restore`: a consistent copy of the books, and putting one back.

A backup uses SQLite's online backup API in one step: it reads one snapshot of the database
(write-ahead log included) while the controller keeps writing (in WAL mode a reader never blocks
the writer), so a copy taken mid-charge is a consistent state of the books, never a torn file as
`cp` of a database in use can be. The copy is checked (`PRAGMA integrity_check`) before it gets
its name.

A restore only runs while no controller holds the data directory (its lock, data_dir.py): the
file must be an intact evedge database (integrity check, the `books` identity row, a schema this
evedge knows). The database it replaces is kept beside it, never deleted, and the books marker is
written for the restored database so the next start accepts it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from controller.store.data_dir import MARKER_FILE, Books, DataDirLock, mark_books
from controller.store.db import DB_FILE
from controller.store.schema import MIGRATIONS
from controller.timefmt import utcnow

BACKUP_PREFIX = "evedge-"  # a backup named by `evedge backup DIR/`: evedge-20260201T020000Z.sqlite3
BACKUP_SUFFIX = ".sqlite3"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class BooksInfo:
    """What a database file holds, for the operator to check before and after."""

    database: str  # its identity (schema.identity)
    since: str
    schema_version: int
    transactions: int
    newest_start: str | None
    size_bytes: int

    def describe(self) -> str:
        return (f"database {self.database} (since {self.since}), {self.transactions} transactions"
                f"{f', newest started {self.newest_start}' if self.newest_start else ''},"
                f" {self.size_bytes // 1024} KiB")


def inspect(path: Path) -> BooksInfo:
    """Check that `path` is an intact evedge database this version can run; BackupError if not."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{path}: cannot open: {exc}") from None
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupError(f"{path}: damaged: {'; '.join(problems[:3])}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"books", "transactions"} <= tables:
            raise BackupError(f"{path}: not an evedge database (no books identity)")
        if version > len(MIGRATIONS):
            raise BackupError(f"{path}: written by a newer evedge (schema {version}, this one knows"
                              f" {len(MIGRATIONS)}): upgrade evedge first")
        database, since = conn.execute("SELECT id, created_at FROM books").fetchone()
        count, newest = conn.execute("SELECT count(*), max(start_time) FROM transactions").fetchone()
    except sqlite3.DatabaseError as exc:  # not a database at all, or encrypted, or truncated
        raise BackupError(f"{path}: not a usable SQLite database: {exc}") from None
    finally:
        conn.close()
    return BooksInfo(database, since, version, count, newest, path.stat().st_size)


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """The online backup of `source` into a new file `target`, in one step (one snapshot), synced."""
    destination = sqlite3.connect(target)
    try:
        source.backup(destination, pages=-1)
    finally:
        destination.close()
    with open(target, "rb") as file:
        os.fsync(file.fileno())


def backup_target(target: Path) -> Path:
    """FILE as given, or in a directory a new file named by the time (UTC)."""
    if target.is_dir():
        return target / f"{BACKUP_PREFIX}{utcnow().strftime('%Y%m%dT%H%M%SZ')}{BACKUP_SUFFIX}"
    return target


def backup(data_dir: Path, target: Path, keep: int | None = None) -> tuple[Path, BooksInfo, list[Path]]:
    """Copy the books in `data_dir` (running controller or not) to `target` (a file, or a directory
    for a file named by the time); `keep`: in a directory, remove all but the newest `keep` backups.
    Returns (the file, what it holds, the backups removed)."""
    database = data_dir / DB_FILE
    if not database.is_file() or database.stat().st_size == 0:
        raise BackupError(f"{database}: no books to back up (is [site] data_dir right?)")
    final = backup_target(target)
    if final.resolve() == database.resolve():
        raise BackupError(f"{final}: that is the database itself")
    partial = final.with_name(final.name + ".part")
    try:
        source = sqlite3.connect(database, timeout=30)
        try:
            _copy(source, partial)
        finally:
            source.close()
        info = inspect(partial)
        os.replace(partial, final)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {database}: {exc}") from None
    except OSError as exc:
        raise BackupError(f"cannot write {final}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    removed = _prune(final.parent, keep) if keep is not None and target.is_dir() else []
    return final, info, removed


def _prune(directory: Path, keep: int) -> list[Path]:
    """Remove the oldest timed backups in `directory` beyond the newest `keep` (names sort by time)."""
    backups = sorted(p for p in directory.glob(f"{BACKUP_PREFIX}*{BACKUP_SUFFIX}") if p.is_file())
    old = backups[:-keep] if keep > 0 else backups
    for path in old:
        path.unlink()
    return old


def restore(data_dir: Path, source: Path, site: str) -> tuple[BooksInfo, Path | None]:
    """Make the database in `source` the books of `data_dir`, which no controller may hold.
    Returns what was restored and where the replaced database was put (None: there was none)."""
    info = inspect(source)
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = DataDirLock(data_dir)  # DataDirInUse (a DataDirRefused) while the controller runs
    try:
        database = data_dir / DB_FILE
        kept = _set_aside(database)
        partial = database.with_name(database.name + ".restoring")
        try:
            reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
            try:
                _copy(reader, partial)
            finally:
                reader.close()
            _same_owner(partial, data_dir)
            os.replace(partial, database)
        except (sqlite3.Error, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise BackupError(f"cannot restore into {database}: {exc}") from None
        mark_books(data_dir, Books(site, info.database, info.since))
        _same_owner(data_dir / MARKER_FILE, data_dir)
        return info, kept
    finally:
        lock.release()


def _set_aside(database: Path) -> Path | None:
    """Move the current database (with its write-ahead log, which may hold its latest commits)
    to a name of its own; returns that name, or None when there was no database."""
    if not database.exists():
        return None
    aside = database.with_name(f"{database.name}.before-restore-{utcnow().strftime('%Y%m%dT%H%M%SZ')}")
    os.replace(database, aside)
    wal = database.with_name(database.name + "-wal")
    if wal.exists():
        os.replace(wal, aside.with_name(aside.name + "-wal"))
    database.with_name(database.name + "-shm").unlink(missing_ok=True)  # an index of the log: rebuilt
    return aside


def _same_owner(path: Path, data_dir: Path) -> None:
    """Run as root (sudo), a restored file gets the data directory's owner: the service user must
    be able to write it."""
    if os.geteuid() == 0 and path.exists():
        owner = data_dir.stat()
        shutil.chown(path, owner.st_uid, owner.st_gid)
