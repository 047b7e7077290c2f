"""What just changed on the site, for whoever watches it live (the dashboard's open pages).

The parts that own the site's state (the charger registry, the transactions, the drivers'
readings and taps) publish a `Change` the moment it happens; each watcher holds a
`Subscription`. Publishing never waits: a subscription holds at most `size` changes, and one
that falls behind loses them all and is told so (`receive` answers None), so it starts over from
a fresh picture. A slow browser, or a hundred of them, never holds up a charger's OCPP traffic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio

T = TypeVar("T")
QUEUE_SIZE = 256


@dataclass(frozen=True, slots=True)
class Change:
    """`kind` names what changed ("connector", "reading", "charger", "transaction", "meter",
    "tap"); `data` holds its plain values."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class Subscription:
    def __init__(self, size: int) -> None:
        self._size = size
        self._queue: deque[Change] = deque()
        self._lost = False
        self._wake = trio.Event()
        self.closed = False

    def offer(self, change: Change) -> None:
        """Queue `change` without waiting; a full queue is emptied and marked lost."""
        if len(self._queue) >= self._size:
            self._queue.clear()
            self._lost = True
        else:
            self._queue.append(change)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    def ready(self) -> bool:
        """Whether `receive` answers at once (changes that arrived together go out together)."""
        return bool(self._queue) or self._lost

    async def receive(self) -> Change | None:
        """The next change, or None when some were dropped (the watcher should start over);
        raises trio.EndOfChannel once the publisher closed."""
        while not self._queue and not self._lost:
            if self.closed:
                raise trio.EndOfChannel
            self._wake = trio.Event()
            await self._wake.wait()
        if self._lost:
            self._lost = False
            return None
        return self._queue.popleft()


class Changes:
    """The site's publisher of changes; nothing is kept when nobody watches."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.closed = False

    def publish(self, kind: str, **data: Any) -> None:
        if not self._subscriptions:
            return
        change = Change(kind, data)
        for subscription in self._subscriptions:
            subscription.offer(change)

    @contextmanager
    def subscribe(self, size: int = QUEUE_SIZE) -> Iterator[Subscription]:
        subscription = Subscription(size)
        if self.closed:
            subscription.close()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    @property
    def watchers(self) -> int:
        return len(self._subscriptions)

    def close(self) -> None:
        """The site is stopping: every subscription ends (watchers reconnect to the next run)."""
        self.closed = True
        for subscription in self._subscriptions:
            subscription.close()

    def relay(self, kind: str, handler: Callable[[T], Awaitable[None]]) -> Callable[[T], Awaitable[None]]:
        """`handler` that first publishes its argument as `kind` (`value`): for the drivers'
        callbacks (a meter's reading, a card's tap), which then go on to their owner."""

        async def publish_then_handle(value: T) -> None:
            self.publish(kind, value=value)
            await handler(value)

        return publish_then_handle
