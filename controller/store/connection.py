"""The writer thread's SQLite connection, and what it knows beyond SQLite.

Every statement the writer thread runs hands the interpreter's lock to the Trio loop and takes it
back (sqlite3 releases it around each step), and each hand-over costs both threads a wake-up. A
commit of many meter readings used to run four statements per reading. This connection lets a
reading cost none of its own:

- rows deferred to one multi-row INSERT per table (`defer`), written when the store leaves the
  readings of a commit for any other write, and before COMMIT (`flush`);
- a memo of facts about committed rows (`recall` / `remember` / `forget`): what a reading needs to
  know of its charge, its shape and the readings before it, without a query each time. What a
  transaction remembers counts for later transactions once it commits; a rollback forgets it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

MEMO_MAX = 4096  # facts kept; the oldest go first (a fact forgotten is read again)
_GONE = object()
_CHUNKS = (128, 32, 8, 2, 1)  # rows per INSERT: few statement texts, each prepared once
_VARIABLES = 999  # values one statement may bind in any SQLite (newer ones take more)


class WriteConnection(sqlite3.Connection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deferring = False  # set by the store while it runs the readings of a commit
        self._deferred: dict[str, list[tuple]] = {}
        self._memo: dict[Any, Any] = {}
        self._pending: dict[Any, Any] = {}  # this transaction's memo changes

    def defer(self, insert: str, row: tuple) -> bool:
        """Queue `row` for `insert` ("INSERT INTO t (a, b)"), written by the next `flush`; False
        (nothing queued: run it now) unless the store is running readings."""
        if not self.deferring:
            return False
        self._deferred.setdefault(insert, []).append(row)
        return True

    def flush(self) -> None:
        """Write the deferred rows, in the order they were deferred."""
        deferred, self._deferred = self._deferred, {}
        for insert, rows in deferred.items():
            marks = "(" + ", ".join("?" * len(rows[0])) + ")"
            at = 0
            for size in (n for n in _CHUNKS if n * len(rows[0]) <= _VARIABLES or n == 1):
                while len(rows) - at >= size:
                    chunk = rows[at:at + size]
                    self.execute(f"{insert} VALUES {', '.join([marks] * size)}",
                                 [value for row in chunk for value in row])
                    at += size

    def recall(self, key: Any) -> Any:
        """A remembered fact, or None."""
        value = self._pending.get(key, self._memo.get(key))
        return None if value is _GONE else value

    def remember(self, key: Any, value: Any) -> None:
        self._pending[key] = value

    def forget(self, key: Any) -> None:
        self._pending[key] = _GONE

    def committed(self) -> None:
        """The transaction committed: what it remembered counts from now on."""
        for key, value in self._pending.items():
            self._memo.pop(key, None)
            if value is not _GONE:
                self._memo[key] = value
        self._pending.clear()
        while len(self._memo) > MEMO_MAX:
            del self._memo[next(iter(self._memo))]

    def forget_all(self) -> None:
        """After a statement the store cannot follow (an operator's PRAGMA, a test's fault)."""
        self._memo.clear()
        self._pending.clear()

    def rolled_back(self) -> None:
        """The transaction was rolled back: its deferred rows and what it remembered are gone."""
        self._deferred.clear()
        self._pending.clear()


def remembered(conn: sqlite3.Connection, key: Any, load: Callable[[], T | None]) -> T | None:
    """What the write connection remembers under `key`, else `load()` (remembered if not None).
    Any other connection (a test's, a tool's) just loads."""
    if not isinstance(conn, WriteConnection):
        return load()
    if (known := conn.recall(key)) is not None:
        return known
    if (value := load()) is not None:
        conn.remember(key, value)
    return value


def forget(conn: sqlite3.Connection, key: Any) -> None:
    """The fact under `key` may have changed: the write connection reads it again next time."""
    if isinstance(conn, WriteConnection):
        conn.forget(key)
