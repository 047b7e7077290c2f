"""A public session's statuses and the moves between them: the state machine in one table.

TRANSITIONS[status][event] is the status `event` takes a session to from `status`; an event that
is not in a status's row cannot happen there. `move` is the only way a status changes: a
conditional UPDATE that applies only while the session is in a status the event may come from.
Paths that race (the driver's stop, the charger's StopTransaction, a timer) therefore never undo
one another: the later UPDATE matches no row and its caller gets None.

The store keeps its own lists of open, final and hold-releasing statuses for its queries
(controller/store/public_sessions.py); tests/public_charging/test_pc_statuses.py holds them to
this table. docs/public-charging.md draws the same machine.
"""

from __future__ import annotations

import sqlite3
from typing import Protocol

from controller.store import public_sessions as q

TRANSITIONS: dict[str, dict[str, str]] = {
    "created": {
        "paid": "authorized",              # the hold is authorized (at once with provider `none`)
        "payment_failed": "failed",        # no hold could be made, or the payment was canceled
        "expire": "expired",               # not paid within session_expiry_s
        "cancel": "failed",                # by the driver
    },
    "authorized": {
        "start": "starting",               # the connector is ready: the remote start goes out
        "started": "charging",             # the charger's StartTransaction with the session's id tag
        "abandon": "abandoned",            # not charging within start_timeout_s
        "cancel": "failed",
    },
    "starting": {
        "start_not_sent": "authorized",    # charger offline or connector not ready: wait for it again
        "started": "charging",
        "start_rejected": "failed",        # the charger refused the remote start
        "abandon": "abandoned",
        "cancel": "failed",
    },
    "charging": {
        "stop": "stopping",                # the charger accepted the driver's RemoteStopTransaction
        "stopped": "settling",             # StopTransaction: the car, the charger or our stop ended it
    },
    "stopping": {"stopped": "settling"},
    "settling": {
        "capture": "captured",
        "nothing_delivered": "no_charge",  # 0 Wh: the hold is released, nothing is charged
        "capture_refused": "capture_failed",         # the provider said no for good
        "provider_unreachable": "requires_review",   # every capture attempt failed
    },
    "captured": {"refund": "refunded"},    # the operator refunded in the provider's dashboard
    "no_charge": {},
    "expired": {},
    "failed": {},
    "abandoned": {},
    "capture_failed": {"write_off": "written_off", "retry_capture": "settling"},  # the operator
    "requires_review": {"write_off": "written_off", "retry_capture": "settling"},
    "refunded": {},
    "written_off": {},
}

STATUSES = tuple(TRANSITIONS)

OPERATOR_EVENTS = ("refund", "write_off", "retry_capture")
"""The moves the operator makes through the keyed API; it names them by the status they lead to."""


def _moves() -> dict[str, tuple[tuple[str, ...], str]]:
    """event -> (the statuses it may happen in, the status it leads to); one target per event."""
    moves: dict[str, tuple[tuple[str, ...], str]] = {}
    for status, events in TRANSITIONS.items():
        for event, to in events.items():
            sources, target = moves.get(event, ((), to))
            if target != to:
                raise ValueError(f"event {event!r} leads to both {target!r} and {to!r}")
            moves[event] = ((*sources, status), to)
    return moves


MOVES = _moves()


def may(status: str, event: str) -> bool:
    """Whether `event` can happen to a session in `status`."""
    return event in TRANSITIONS[status]


def sources(event: str) -> tuple[str, ...]:
    """The statuses `event` can happen in."""
    return MOVES[event][0]


def target(event: str) -> str:
    """The status `event` leads to."""
    return MOVES[event][1]


def move(conn: sqlite3.Connection, session_id: int, event: str, **fields: object) -> sqlite3.Row | None:
    """Apply `event` (and `fields`) if the session's status allows it: the new row, else None."""
    allowed, to = MOVES[event]
    return q.update(conn, session_id, allowed, status=to, **fields)


class Move(Protocol):
    """`move` run in the store, plus whatever must follow a change (timers, the worker)."""

    async def __call__(self, session_id: int, event: str, **fields: object) -> sqlite3.Row | None: ...
