"""Id tags: the local list, and the OCPP `IdTagInfo` answer for a tag.

The list lives in SQLite and is mirrored in memory, so an Authorize or a card tap is answered
without touching the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.store import Store
from controller.store import id_tags as q
from controller.timefmt import parse_iso, utcnow

STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")


@dataclass(frozen=True)
class IdTag:
    id_tag: str
    status: str
    expiry_date: str | None = None
    parent_id_tag: str | None = None

    def to_api(self) -> dict:
        return {"idTag": self.id_tag, "status": self.status, "expiryDate": self.expiry_date,
                "parentIdTag": self.parent_id_tag}


class Authorization:
    def __init__(self, store: Store, accept_unknown: bool = False) -> None:
        self.store = store
        self.accept_unknown = accept_unknown
        self.tags: dict[str, IdTag] = {}  # keyed by the case-folded tag: OCPP IdToken is a CiString

    async def load(self) -> None:
        rows = await self.store.read(q.all_id_tags)
        self.tags = {r["id_tag"].casefold(): IdTag(r["id_tag"], r["status"], r["expiry_date"], r["parent_id_tag"]) for r in rows}

    async def put(self, tag: IdTag) -> None:
        await self.store.write(q.put_id_tag, tag.id_tag, tag.status, tag.expiry_date, tag.parent_id_tag)
        self.tags[tag.id_tag.casefold()] = tag

    async def delete(self, id_tag: str) -> bool:
        deleted = await self.store.write(q.delete_id_tag, id_tag)
        self.tags.pop(id_tag.casefold(), None)
        return deleted

    def id_tag_info(self, id_tag: str, now: datetime | None = None) -> dict:
        """OCPP IdTagInfo: status, and expiry date and parent when the list has them."""
        tag = self.get(id_tag)
        if tag is None:
            return {"status": "Accepted" if self.accept_unknown else "Invalid"}
        status = tag.status
        if status == "Accepted" and tag.expiry_date and parse_iso(tag.expiry_date) <= (now or utcnow()):
            status = "Expired"
        info: dict = {"status": status}
        if tag.expiry_date:
            info["expiryDate"] = tag.expiry_date
        if tag.parent_id_tag:
            info["parentIdTag"] = tag.parent_id_tag
        return info

    def get(self, id_tag: str) -> IdTag | None:
        return self.tags.get(id_tag.casefold())

    def same_owner(self, a: str, b: str) -> bool:
        """Two tags belong together if equal or sharing a parent id tag (a fleet's cards)."""
        if a.casefold() == b.casefold():
            return True
        pa, pb = self.get(a), self.get(b)
        parent_a = pa.parent_id_tag if pa else None
        parent_b = pb.parent_id_tag if pb else None
        return parent_a is not None and parent_a == parent_b
