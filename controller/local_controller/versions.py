"""What differs between OCPP versions towards the central system above the site, in one record.

Each version the site forwards (`ocpp16.py`, `ocpp201.py`) fills an `UpstreamVersion`: the
subprotocol and schemas its link speaks, which calls of a charger go up, how the charger is
introduced and a queued message put in the central system's terms, what an answer says of a card,
and how the central system's calls are booked. The forwarder, the links and the commands read only
this record, so a version is one table, not conditions spread through them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from controller.authorization import IdTag
from controller.csms.rpc import Dialect
from controller.upstream.config import UpstreamOcppSection

if TYPE_CHECKING:
    from controller.local_controller.commands import UpstreamCommands
    from controller.local_controller.transaction_ids import TransactionIds

Booked = Callable[["UpstreamCommands", dict], Awaitable[dict]]
"""A central-system call the site answers itself (a remote start booked as ours, a limit kept as
a bound): the site's commands and the payload; the answer for the central system."""


async def as_queued(row: dict, payload: dict, ids: TransactionIds) -> dict | None:
    """A queued message goes up as the charger sent it."""
    return payload


async def nothing_to_record(charger_id: str, row: dict, answer: dict, ids: TransactionIds) -> None:
    """The central system's answer names nothing the site must keep."""


def no_transaction(action: str, payload: dict, answer: dict | None) -> int | None:
    return None


@dataclass(frozen=True)
class UpstreamVersion:
    subprotocol: str
    """The WebSocket subprotocol of the link, the same the charger speaks to the site."""
    dialect: Dialect
    """Towards the central system the site is the charger: its calls are the version's central actions."""
    forwarded: frozenset[str]
    """What a charger says that the central system hears (never its Heartbeats: ours keep the link)."""
    card: Callable[[dict, dict], IdTag | None]
    """(a forwarded call, the central system's answer) -> its word on the card, None when it gives
    none worth keeping."""
    kept: Callable[[str, dict, UpstreamOcppSection], str | None]
    """Why the site refuses this call of the central system (a setting that leads the charger to
    the site), None to go on."""
    introduction: Callable[[dict], dict]
    """The charger's last BootNotification, in whichever version it sent it, as this version's: what
    the link introduces it with when no boot of this version is queued (messages queued before the
    charger changed version go up in the version they were sent in, after such a boot)."""
    booked: dict[str, Booked] = field(default_factory=dict)
    queued_after_answer: frozenset[str] = frozenset()
    """Calls whose queued row needs the site's answer (the transaction id it gave): a commit of
    their own after the handler's."""
    transaction_of: Callable[[str, dict, dict | None], int | None] = no_transaction
    """(action, payload, the site's answer if queued after it) -> our transaction id the message concerns."""
    outgoing: Callable[[dict, dict, TransactionIds], Awaitable[dict | None]] = as_queued
    """(queued row, its payload, the ids) -> the payload in the central system's terms; None: not sent."""
    answered: Callable[[str, dict, dict, TransactionIds], Awaitable[None]] = nothing_to_record
    """(charger, queued row, the central system's answer, the ids): what the site keeps of the answer."""
