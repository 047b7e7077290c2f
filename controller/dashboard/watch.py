"""Figures that change without an event of their own, watched for the open pages.

A circuit's measured and allocated currents move with every meter poll and every allocation,
and the upstream outbox with every delivery; neither publishes a change. While a page is open
this task looks once a second (one look for all pages, not one per page) and publishes what
moved as `circuit` and `outbox` changes, which the pages show in place (live.py).
"""

from __future__ import annotations

from typing import Any

import trio

from controller.api.circuits import circuit_to_api
from controller.api.services import Services
from controller.changes import Changes

EVERY_S = 1.0


def circuit_figures(services: Services) -> dict[str, dict[str, Any]]:
    """Each circuit's figures as the overview shows them."""
    load = services.load
    figures = {}
    for circuit in load.config.current.circuits:
        api = circuit_to_api(load, load.view(circuit.id))
        figures[circuit.id] = {"measuredA": api["measuredA"], "allocatedA": api["allocatedA"], "limitA": api["limitA"],
                               "state": "fail-safe: " + api["failsafeReason"] if api["failsafe"] else "ok"}
    return figures


async def watch(services: Services, changes: Changes, every_s: float = EVERY_S) -> None:
    shown: dict[str, Any] = {}
    while True:
        await trio.sleep(every_s)
        if not changes.watchers:
            shown.clear()  # the next page starts from its own fresh picture
            continue
        for circuit_id, figures in circuit_figures(services).items():
            if shown.get(circuit_id) != figures:
                shown[circuit_id] = figures
                changes.publish("circuit", id=circuit_id, **figures)
        if services.config.current.upstream.enabled:
            queue = await services.delivery.queue()
            counts = {"pending": queue.get("pending", 0), "failed": queue.get("failed", 0)}
            if shown.get("outbox") != counts:
                shown["outbox"] = counts
                changes.publish("outbox", **counts)
