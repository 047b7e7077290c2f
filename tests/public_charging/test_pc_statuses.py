"""The session state machine's table (controller/public_charging/statuses.py) and what depends on it."""

from __future__ import annotations

from controller.api.app import openapi_document
from controller.public_charging import lifecycle
from controller.public_charging.statuses import MOVES, OPERATOR_EVENTS, STATUSES, TRANSITIONS, sources, target
from controller.store import public_sessions as q


def test_every_event_leads_to_a_status_of_the_table():
    for events in TRANSITIONS.values():
        assert set(events.values()) <= set(STATUSES)
    assert set(MOVES) == {event for events in TRANSITIONS.values() for event in events}


def test_the_store_lists_agree_with_the_table():
    """The store keeps its own status lists for its queries; they must partition the table's."""
    assert set(q.OPEN) | set(q.FINAL) == set(STATUSES)
    assert not set(q.OPEN) & set(q.FINAL)
    assert set(q.RELEASE) <= set(q.FINAL)
    for status in q.OPEN:  # an open session always has a way on that needs no operator
        assert set(TRANSITIONS[status]) - set(OPERATOR_EVENTS), status
    for status in q.RELEASE:  # a hold is released only where nothing more can happen
        assert TRANSITIONS[status] == {}, status


def test_every_status_is_reachable_from_created():
    seen, todo = {"created"}, ["created"]
    while todo:
        for to in TRANSITIONS[todo.pop()].values():
            if to not in seen:
                seen.add(to)
                todo.append(to)
    assert seen == set(STATUSES)


def test_the_moves_the_code_relies_on():
    assert sources("expire") == ("created",)
    assert sources("abandon") == ("authorized", "starting")
    assert sources("cancel") == ("created", "authorized", "starting")
    assert {target(event): sources(event) for event in OPERATOR_EVENTS} == {
        "refunded": ("captured",),
        "written_off": ("capture_failed", "requires_review"),
        "settling": ("capture_failed", "requires_review"),
    }


def test_timers_and_resolutions_are_moves_of_the_table():
    assert set(lifecycle.DEADLINES) <= set(MOVES)
    assert lifecycle.RESOLUTIONS == {target(event): event for event in OPERATOR_EVENTS}


def test_the_api_documents_the_table():
    schemas = openapi_document()["components"]["schemas"]
    assert schemas["PublicSession"]["properties"]["status"]["enum"] == list(STATUSES)
    assert schemas["PublicSessionResolve"]["properties"]["status"]["enum"] == ["refunded", "written_off", "settling"]
