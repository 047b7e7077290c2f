"""Id tags: the local list, the upstream's answers, and the verdict on a tag (a protocol adapter
renders it for the charger).

The list lives in SQLite and is mirrored in memory, so an Authorize or a card tap is answered
without touching the disk. So are the upstream's answers on cards (the authorize webhook's, or a
central system's above the site), each until the expiry it gave: while the upstream cannot be
reached, the site decides from the list and these. A refusal, from the list or the upstream,
wins over an acceptance.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from controller.errors import NotFound
from controller.live_config import LiveConfig
from controller.store import Store
from controller.store import card_answers
from controller.store import id_tags as q
from controller.timefmt import parse_iso, utcnow

STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")
# How a token is read (OCPP 2.0.1's IdTokenEnumType). Tags are matched by their value alone: the
# type is how we name a listed tag to a station (remote starts, local lists), not a second key.
TOKEN_TYPES = ("Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress", "NoAuthorization")
DEFAULT_TOKEN_TYPE = "ISO14443"  # an RFID card, as most of a site's tags are


@dataclass(frozen=True)
class IdTag:
    id_tag: str
    status: str
    expiry_date: str | None = None
    parent_id_tag: str | None = None
    token_type: str = DEFAULT_TOKEN_TYPE


@dataclass(frozen=True)
class Verdict:
    """What the site says of a tag: its status (one of STATUSES), and expiry and parent when known."""

    status: str
    expiry_date: str | None = None
    parent_id_tag: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == "Accepted"

    @property
    def blocked(self) -> bool:
        return self.status == "Blocked"

    def with_status(self, status: str) -> Verdict:
        return Verdict(status, self.expiry_date, self.parent_id_tag)


Ask = Callable[[str, int, str], Awaitable["IdTag | None"]]
"""(charger, connector, id tag) -> the upstream's answer on the card, with its expiry in
`expiry_date`; None when it did not answer in time (controller/upstream/card_decisions.py)."""


class Authorization:
    def __init__(self, store: Store, config: LiveConfig, ask: Ask | None = None) -> None:
        self.store = store
        self.config = config
        self.ask = ask
        self.tags: dict[str, IdTag] = {}  # keyed by the case-folded tag: OCPP IdToken is a CiString
        self.listeners: list[Callable[[str], None]] = []  # told of each tag stored or deleted (local lists)
        self.answers: dict[str, IdTag] = {}  # the upstream's, same keys; expiry_date: until when it holds

    async def load(self) -> None:
        rows = await self.store.read(q.all_id_tags)
        self.tags = {r["id_tag"].casefold(): IdTag(r["id_tag"], r["status"], r["expiry_date"], r["parent_id_tag"],
                                                   r["token_type"]) for r in rows}
        rows = await self.store.read(card_answers.all_answers)
        self.answers = {r["id_tag"].casefold(): IdTag(r["id_tag"], r["status"], r["expires_at"], r["parent_id_tag"])
                        for r in rows}

    async def remember(self, answer: IdTag) -> None:
        """The upstream's answer on a card, in force until its `expiry_date` (or a later answer)."""
        await self.store.write(card_answers.put_answer, answer.id_tag, answer.status, answer.expiry_date,
                               answer.parent_id_tag)
        self.answers[answer.id_tag.casefold()] = answer

    async def decide(self, charger_id: str, connector_id: int, id_tag: str) -> Verdict:
        """The verdict on a card presented at a charger: the upstream asked first when it is
        configured (its answer remembered), else, or when it does not answer in time, from the
        local list and its earlier answers."""
        if self.ask is not None and (answer := await self.ask(charger_id, connector_id, id_tag)) is not None:
            await self.remember(answer)
        return self.verdict(id_tag)

    def listed(self, id_tag: str) -> bool:
        """On the local list, or answered by the upstream and still in force."""
        return self.get(id_tag) is not None or self._answer(id_tag, utcnow()) is not None

    def _answer(self, id_tag: str, now: datetime) -> IdTag | None:
        answer = self.answers.get(id_tag.casefold())
        if answer is None or (answer.expiry_date and parse_iso(answer.expiry_date) <= now):
            return None
        return answer

    async def put(self, tag: IdTag) -> None:
        await self.store.write(q.put_id_tag, tag.id_tag, tag.status, tag.expiry_date, tag.parent_id_tag,
                               tag.token_type)
        self.tags[tag.id_tag.casefold()] = tag
        self._changed(tag.id_tag)

    async def change(self, id_tag: str, **changes: str | None) -> IdTag:
        """Change some fields of a listed tag (status, expiry_date, parent_id_tag, token_type), keeping the
        others: blocking a card must not drop its expiry or its parent."""
        tag = self.get(id_tag)
        if tag is None:
            raise NotFound("IdTag", id_tag)
        changed = replace(tag, **changes)
        await self.put(changed)
        return changed

    async def delete(self, id_tag: str) -> bool:
        deleted = await self.store.write(q.delete_id_tag, id_tag)
        self.tags.pop(id_tag.casefold(), None)
        self._changed(id_tag)
        return deleted

    def _changed(self, id_tag: str) -> None:
        for listener in self.listeners:
            listener(id_tag)

    def verdict(self, id_tag: str, now: datetime | None = None) -> Verdict:
        """The tag's status now (an Accepted tag past its expiry date is Expired): a refusal of the
        local list, then one of the upstream's answers in force, then an acceptance of either."""
        now = now or utcnow()
        tag = self.get(id_tag)
        local = None
        if tag is not None:
            status = tag.status
            if status == "Accepted" and tag.expiry_date and parse_iso(tag.expiry_date) <= now:
                status = "Expired"
            local = Verdict(status, tag.expiry_date, tag.parent_id_tag)
        answer = self._answer(id_tag, now)
        upstream = Verdict(answer.status, answer.expiry_date, answer.parent_id_tag) if answer else None
        for verdict in (local, upstream):
            if verdict is not None and not verdict.accepted:
                return verdict
        if local is not None or upstream is not None:
            return local or upstream  # type: ignore[return-value]
        return Verdict("Accepted" if self.config.current.ocpp.accept_unknown_id_tags else "Invalid")

    def get(self, id_tag: str) -> IdTag | None:
        return self.tags.get(id_tag.casefold())

    def token_type(self, id_tag: str) -> str:
        """How to name `id_tag` to a station: the listed tag's type, else an RFID card's."""
        tag = self.get(id_tag)
        return tag.token_type if tag is not None else DEFAULT_TOKEN_TYPE

    def same_owner(self, a: str, b: str) -> bool:
        """Two tags belong together if equal or sharing a parent id tag (a fleet's cards)."""
        if a.casefold() == b.casefold():
            return True
        pa, pb = self.get(a), self.get(b)
        parent_a = pa.parent_id_tag if pa else None
        parent_b = pb.parent_id_tag if pb else None
        return parent_a is not None and parent_a == parent_b
