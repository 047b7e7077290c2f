"""What the data directory holds beside the database: the lock that makes one process its owner,
and the marker that says the directory has had books.

Two controllers on one data directory would both serve chargers from the same books and deliver
every webhook twice, so the first one takes an exclusive `flock` on `evedge.lock` and holds it for
its lifetime. The kernel drops the lock when the holder exits, however it exits (kill -9, a power
cut), so a crash never leaves a stale lock behind; the pid in the file is only there to be named.

A missing or 0-byte database (a dying SD card, a slip in a shell) would otherwise start fresh
books without a word: `/healthz` ok, transaction ids from 1 again. So the first start writes
`evedge.books`, naming the site and the database's identity, and a later start that finds the
marker but no database refuses, unless told to begin new books.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("evedge.store")
LOCK_FILE = "evedge.lock"
MARKER_FILE = "evedge.books"


class DataDirRefused(Exception):
    """This process may not use the data directory; the message says why and what to do."""


class DataDirInUse(DataDirRefused):
    """Another process holds the data directory's lock."""


class BooksMissing(DataDirRefused):
    """The directory had books (its marker says so) and the database is missing or empty."""


class DataDirLock:
    """The exclusive lock on a data directory, taken at construction (or DataDirInUse)."""

    def __init__(self, data_dir: Path) -> None:
        # A file object, not a bare descriptor: if its owner is dropped without release(), the
        # garbage collector closes it, and closing releases the lock.
        self._file = open(data_dir / LOCK_FILE, "a+", encoding="ascii")  # noqa: SIM115 (held for the lifetime)
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "unknown"
            self._file.close()
            raise DataDirInUse(f"{data_dir} is in use by another evedge process (pid {holder}); a data directory"
                               " belongs to one controller: stop that one, or give this one its own"
                               " [site] data_dir") from None
        self._file.truncate(0)
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()

    def release(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class Books:
    """Whose books a data directory holds: the site's name and the database's identity."""

    site: str
    database: str  # the random id the database was created with (schema.identity)
    since: str  # when that database was created


def check_books(data_dir: Path, db_file: Path, new_books: bool) -> None:
    """Before the database is opened (opening would create it): BooksMissing if the marker says the
    directory has had books and `db_file` is missing or empty, unless `new_books`."""
    had = _read_marker(data_dir)
    if had is None or (db_file.exists() and db_file.stat().st_size > 0):
        return
    state = "empty" if db_file.exists() else "missing"
    if new_books:
        log.warning("starting new books in %s as told (--new-books): the database was %s; the books of site %r"
                    " (database %s, since %s) are not here", data_dir, state, had.site, had.database, had.since)
        return
    raise BooksMissing(f"{db_file} is {state}, but {data_dir} has held the books of site {had.site!r} (database"
                       f" {had.database}, since {had.since}): restore the database from a backup (docs/install.md),"
                       " or, to begin new books, start once with `evedge run --new-books`")


def mark_books(data_dir: Path, books: Books) -> None:
    """Name the books the directory holds now (written once, and again when they change)."""
    had = _read_marker(data_dir)
    if had == books:
        return
    if had is not None and had.database != books.database:
        log.warning("the database in %s is %s, not %s as before (restored from a backup, or replaced)",
                    data_dir, books.database, had.database)
    path = data_dir / MARKER_FILE
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(asdict(books), file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _read_marker(data_dir: Path) -> Books | None:
    """The books the marker names; a marker that cannot be read still says there were books."""
    path = data_dir / MARKER_FILE
    try:
        return Books(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return Books(site="?", database="?", since="?")
