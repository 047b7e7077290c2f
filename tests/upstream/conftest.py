"""Fixtures for the upstream tests: a real HTTP receiver, a store, a delivery worker."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from controller.store import Store
from controller.store.outbox import OutboxEvent
from controller.upstream.config import UpstreamSection
from controller.upstream.delivery import Delivery
from tests.upstream.receiver import Receiver



def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "upstream(**options): [upstream] options for tests/upstream/test_flows.py")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "data")
    yield store
    store.close()


def _nothing(conn) -> None:
    return None


async def queue_events(store: Store, *events: OutboxEvent) -> None:
    await store.write(_nothing, events=events)


def event(charger_id: str, n: int, kind: str = "status", transaction_id: int | None = None) -> OutboxEvent:
    return OutboxEvent(kind, charger_id, {"type": kind, "chargebox": charger_id, "n": n}, transaction_id)


@asynccontextmanager
async def running_delivery(store: Store, **options) -> AsyncIterator[Delivery]:
    """A delivery worker on `store`, wired like Site wires it; `seed` makes its jitter repeatable."""
    seed = options.pop("seed", 1)
    config = UpstreamSection.model_validate(options)
    delivery = Delivery(config, store, rng=random.Random(seed))
    store.after_write = delivery.after_write
    async with trio.open_nursery() as nursery:
        await nursery.start(delivery.run)
        yield delivery
        nursery.cancel_scope.cancel()


def urls(receiver: Receiver) -> dict[str, str]:
    return {key: receiver.url(f"/{key}") for key in ("start_url", "stop_url", "status_url", "connection_url")}
