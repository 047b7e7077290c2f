"""What the data directory holds beside the database: the lock that makes one process its owner.

Two controllers on one data directory would both serve chargers from the same books and deliver
every webhook twice, so the first one takes an exclusive `flock` on `evedge.lock` and holds it for
its lifetime. The kernel drops the lock when the holder exits, however it exits (kill -9, a power
cut), so a crash never leaves a stale lock behind; the pid in the file is only there to be named.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "evedge.lock"


class DataDirRefused(Exception):
    """This process may not use the data directory; the message says why and what to do."""


class DataDirInUse(DataDirRefused):
    """Another process holds the data directory's lock."""


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
