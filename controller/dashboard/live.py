"""The dashboard's live stream: one Server-Sent Events stream per open page.

Each change the site publishes (controller/changes.py) becomes one of three messages:

- `set`: {key: value} for the figures a page shows in place (an element with `data-live="key"`
  shows the value; `data-format` says how): connector status, power, energy, meter readings,
  circuits' currents and the outbox's counts (watch.py).
- `refresh`: the page's picture changed shape (a charger came or went, a charge began or ended):
  the page fetches itself again and swaps its live regions.
- `tap`: a card was presented, for the id-tag form's "tap a card to add it".

Changes that arrive together are sent together (later values win), so a page that falls
behind catches up in one message; one that loses changes gets a `refresh`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import trio

from controller.changes import Change, Subscription
from controller.timefmt import iso

KEEPALIVE_S = 15
"""A comment this often keeps proxies from closing a quiet stream and notices a closed page."""
RETRY_MS = 1000
"""How soon the browser reconnects after the stream ends (a controller restart)."""
GATHER_S = 0.01
MIN_INTERVAL_S = 0.15


def connector_key(charger_id: str, connector_id: int, what: str) -> str:
    return f"c/{charger_id}/{connector_id}/{what}"


def meter_key(meter_id: str, what: str) -> str:
    return f"m/{meter_id}/{what}"


def reader_key(reader_id: str, what: str) -> str:
    return f"r/{reader_id}/{what}"


def circuit_key(circuit_id: str, what: str) -> str:
    return f"k/{circuit_id}/{what}"


def _phases(amps: list[float] | None) -> str | None:
    return " / ".join(f"{a:g}" for a in amps) if amps else None


def values_of(change: Change) -> dict[str, Any]:
    """The in-place figures a change moves (none for a change of shape)."""
    d = change.data
    if change.kind == "connector":
        return {connector_key(d["charger"], d["connector"], "status"): d["status"],
                connector_key(d["charger"], d["connector"], "error"): d["errorCode"]}
    if change.kind == "reading":
        return {connector_key(d["charger"], d["connector"], "energy"): d["energyWh"],
                connector_key(d["charger"], d["connector"], "power"): d["powerW"]}
    if change.kind == "meter":
        m = d["value"]
        return {meter_key(m.id, "power"): m.power_w, meter_key(m.id, "energy"): m.energy_import_wh,
                meter_key(m.id, "online"): "online" if m.online else "offline",
                meter_key(m.id, "error"): m.last_error,
                meter_key(m.id, "updated"): iso(m.updated_at) if m.updated_at else None}
    if change.kind == "circuit":
        return {circuit_key(d["id"], "measured"): _phases(d["measuredA"]),
                circuit_key(d["id"], "allocated"): _phases(d["allocatedA"]),
                circuit_key(d["id"], "limit"): d["limitA"], circuit_key(d["id"], "state"): d["state"]}
    if change.kind == "outbox":
        return {"outbox/pending": d["pending"], "outbox/failed": d["failed"]}
    if change.kind == "tap":
        tap = d["value"]
        return {reader_key(tap.reader_id, "tag"): tap.id_tag, reader_key(tap.reader_id, "at"): iso(tap.at)}
    return {}


def reshapes(change: Change) -> bool:
    """Whether the page should fetch itself again: who is there, what is charging, or a fault (an
    alert) changed. A status alone is shown in place: every open page fetching itself at each
    status would cost the chargers' OCPP traffic with many pages open."""
    return change.kind in ("charger", "transaction") or (change.kind == "connector" and change.data["errorChanged"])


def message(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def batch(changes: list[Change | None]) -> bytes:
    """The messages for changes that arrived together (None: some were lost)."""
    values: dict[str, Any] = {}
    refresh = False
    out = []
    for change in changes:
        if change is None:
            refresh = True
            continue
        values.update(values_of(change))
        refresh = refresh or reshapes(change)
        if change.kind == "tap":
            out.append(message("tap", {"reader": change.data["value"].reader_id,
                                       "idTag": change.data["value"].id_tag}))
    if values:
        out.insert(0, message("set", values))
    if refresh:
        out.append(message("refresh", {}))
    return b"".join(out)


async def stream(subscription: Subscription) -> AsyncIterator[bytes]:
    """The bytes of one page's stream until the site stops (the page then reconnects).

    A change waits GATHER_S before it goes out, so the charger's answer that caused it is sent
    first and what comes with it goes in the same message; and a page gets at most one message
    each MIN_INTERVAL_S, so the cost of open pages is bounded however busy the site.
    """
    yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
    sent_at = -MIN_INTERVAL_S
    while True:
        got: list[Change | None] = []
        try:
            with trio.move_on_after(KEEPALIVE_S):
                got.append(await subscription.receive())
            if got:
                await trio.sleep(max(GATHER_S, sent_at + MIN_INTERVAL_S - trio.current_time()))
                while subscription.ready():
                    got.append(await subscription.receive())
        except trio.EndOfChannel:
            return
        sent_at = trio.current_time()
        yield batch(got) if got else b": keepalive\n\n"
