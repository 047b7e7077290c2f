"""How the database file uses the disk: its page size, and giving freed pages back.

SQLite writes whole pages: a commit appends every page it changed to the WAL, and a MeterValues
changes four (its reading, the reading's index entry, the transaction's latest energy, the
connector's latest reading). With 1 KiB pages instead of 4 KiB that commit writes ~4 KiB instead
of ~16 KiB, which is what wears an SD card at a site where every message is a commit of its own;
rows of this database are small (a reading is ~100 bytes), so nothing needs bigger pages.

Freed pages (readings pruned by retention) go back to the file system on request
(`auto_vacuum = INCREMENTAL`), so the file shrinks instead of keeping its largest size.
"""

from __future__ import annotations

import sqlite3

PAGE_SIZE = 1024


def prepare(conn: sqlite3.Connection) -> bool:
    """Give the database PAGE_SIZE pages and incremental vacuum. A new database gets them at
    once; an existing one takes one full VACUUM (a rewrite of the file, once), outside WAL mode
    (a WAL database cannot change its page size). Returns whether it rewrote the file."""
    auto_vacuum = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    if auto_vacuum == 2 and page_size == PAGE_SIZE:
        return False
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("VACUUM")
    conn.execute("PRAGMA journal_mode = WAL")
    return True


def vacuum_step(conn: sqlite3.Connection, pages: int) -> int:
    """Give up to `pages` free pages back to the file system; returns how many stay free."""
    conn.execute(f"PRAGMA incremental_vacuum({int(pages)})").fetchall()
    return conn.execute("PRAGMA freelist_count").fetchone()[0]
