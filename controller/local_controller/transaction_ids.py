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

    def record(self, conn: sqlite3.Connection, transaction_id: int, charger_id: str, upstream_id: int) -> None:
        """Inside the write that takes the central system's answer to the start."""
        q.map_transaction(conn, transaction_id, charger_id, upstream_id)
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
