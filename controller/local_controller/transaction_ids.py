"""Our transaction ids and the central system's, both ways.

The site names every charge (its chargers get our ids, local-first); the central system names
the same charge when it answers the forwarded StartTransaction, which may be long after, when a
start made offline is replayed. Everything later about that charge goes up under its id.
"""

from __future__ import annotations

import sqlite3

from controller.store import Store
from controller.store import forwarding as q


class TransactionIds:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._upstream: dict[int, int] = {}  # ours -> theirs, as read or written

    async def record(self, charger_id: str, row_id: int, transaction_id: int | None, upstream_id: int) -> None:
        """The central system's answer to a start: its id mapped to ours and the queued start gone,
        in one commit, so the central system never sees the same start twice (the messages behind
        it wait for this commit)."""

        def write(conn: sqlite3.Connection) -> None:
            q.answered(conn, charger_id, [row_id])
            if transaction_id is not None:
                q.map_transaction(conn, transaction_id, charger_id, upstream_id)

        await self.store.write(write)
        if transaction_id is not None:
            self._upstream[transaction_id] = upstream_id

    async def upstream(self, transaction_id: int) -> int | None:
        """The central system's id of our transaction; None until its start was answered."""
        known = self._upstream.get(transaction_id)
        if known is None:
            known = await self.store.read(q.upstream_transaction, transaction_id)
            if known is not None:
                self._upstream[transaction_id] = known
        return known

    async def ours(self, charger_id: str, upstream_id: int) -> int | None:
        """Our id of the charge the central system names `upstream_id` on this charger."""
        return await self.store.read(q.our_transaction, charger_id, upstream_id)
