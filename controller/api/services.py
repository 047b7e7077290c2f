"""What the REST API works with, handed to it explicitly (controller/site.py builds it).

The API reads nothing else of the site: each resource module's `register` takes the few parts it
uses from here, so what a route can touch is visible in its signature.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.authorization import Authorization
from controller.charger_passwords import ChargerPasswords
from controller.chargers import ChargerRegistry
from controller.charging_profiles import ChargingProfiles
from controller.live_config import LiveConfig
from controller.load_management.manager import LoadManager
from controller.public_charging.api import LIMITS, RateLimiter
from controller.maintenance import Maintenance
from controller.public_charging.sessions import PublicCharging
from controller.reservations import Reservations
from controller.transactions import Transactions
from controller.upstream.delivery import Delivery
from drivers import Hardware


@dataclass(frozen=True)
class Services:
    config: LiveConfig
    """Read `.current` per request: a SIGHUP reload swaps it (keys, CORS origins, /metrics access)."""
    chargers: ChargerRegistry
    transactions: Transactions
    authorization: Authorization
    hardware: Hardware
    tap_results: Mapping[str, dict[str, Any]]
    """Reader id -> its last tap's outcome (controller/tap_to_charge.py keeps it up to date)."""
    delivery: Delivery
    """The upstream outbox's owner: notifications are listed and replayed through it."""
    public_charging: PublicCharging
    load: LoadManager
    """Load management: circuits, shares and overrides."""
    health: Callable[[], Awaitable[dict[str, Any]]]
    """GET /healthz's body (controller/health.py check, bound to the site's parts)."""
    metrics: Callable[[], Awaitable[bytes]]
    """GET /metrics's text (controller/metrics.py render, bound to the site's parts)."""
    reservations: Reservations
    """Connectors held for an id tag: the `reservations` rows' owner."""
    profiles: ChargingProfiles
    """Charging profiles set through the API, as records."""
    maintenance: Maintenance
    """Firmware, diagnostics, triggered messages and their history."""
    passwords: ChargerPasswords
    public_limits: RateLimiter = field(default_factory=lambda: RateLimiter(LIMITS))
    """The driver endpoints' rate limits, one for both listeners that serve them ([api] listen and
    [public_charging] listen): a client gets no more by using both."""
    upstream_links: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None
    """Local-controller mode: each charger's link to the central system (None: not in that mode)."""
