"""The `[upstream]` section: where notifications go and how hard we try to deliver them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, Strict, field_validator

# Event type -> the config key holding its URL. An event type without a URL is not produced.
URL_KEYS: dict[str, str] = {
    "start": "start_url",
    "stop_transaction": "stop_url",
    "status": "status_url",
    "connection": "connection_url",
}


PROTECTED_KEYS = ("AuthorizationKey", "SecurityProfile", "CentralSystemUrl", "CentralSystemURL", "OcppServerUrl",
                  "OCPPServerURL", "ChargePointId", "ChargeBoxIdentity")
"""Configuration keys of a charger that point it at the site (or secure that link): a central
system above the site must not change them, or the charger would leave the site."""
PROTECTED_VARIABLES = ("SecurityCtrlr.BasicAuthPassword", "SecurityCtrlr.Identity", "SecurityCtrlr.SecurityProfile",
                       "OCPPCommCtrlr.NetworkConfigurationPriority", "NetworkConfiguration")
"""The same for a 2.0.1 station's device model ("Component.Variable", or a whole component)."""
REFUSED_ACTIONS = ("SetNetworkProfile",)
"""Refused unless configured otherwise: a 2.0.1 SetNetworkProfile would point the station elsewhere."""


class UpstreamOcppSection(BaseModel):
    """`[upstream.ocpp]`: the site as a local controller behind an OCPP central system, each
    charger forwarded in the version it speaks, 1.6J or 2.0.1 (docs/local-controller.md). Each
    charger gets its own connection: url + "/" + its upstream id."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    url: str = Field(pattern=r"^wss?://[^\s/?#]+(/[^\s?#]*)?$")
    """ws:// or wss:// URL of the central system, without the charger id."""
    password: str | None = Field(None, min_length=1, max_length=40)
    """Security profile 1 towards the central system (HTTP Basic auth); per charger:
    [[chargers]] upstream_password."""
    ca_file: Annotated[Path, Strict(False)] | None = None
    """Security profile 2: the PEM trust anchor of a wss:// central system (default: the system's
    trust store). Relative to the config file."""
    reconnect_max_s: float = Field(60.0, ge=1, le=3600)
    """Reconnection attempts back off from 1 s, doubling, up to this."""
    call_timeout_s: float = Field(30.0, gt=0, le=600)
    """How long to wait for the central system's answer to a forwarded message."""
    protected_keys: list[str] = Field(default_factory=lambda: list(PROTECTED_KEYS))
    """ChangeConfiguration of these keys (case-insensitive) from the central system is refused."""
    protected_variables: list[str] = Field(default_factory=lambda: list(PROTECTED_VARIABLES))
    """SetVariables of these 2.0.1 variables ("Component.Variable", or "Component" for all of its
    variables; case-insensitive) from the central system is refused."""
    refused_actions: list[str] = Field(default_factory=lambda: list(REFUSED_ACTIONS))
    """Calls from the central system refused outright (e.g. ["SetNetworkProfile", "Reset"]); a list
    given replaces the default."""


class UpstreamSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # as controller/config.py

    start_url: AnyHttpUrl | None = None
    """`start` notifications (the published start-notification format). Unset: not produced."""
    stop_url: AnyHttpUrl | None = None
    """`stop_transaction` notifications (stops, rejected remote stops, unlocks)."""
    status_url: AnyHttpUrl | None = None
    """`status` notifications: a connector's status or error code changed."""
    connection_url: AnyHttpUrl | None = None
    """`connection` notifications: a charger came online or went offline."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with every request, e.g. { "X-Api-Key" = "..." }."""
    timeout_s: float = Field(10.0, gt=0, le=300)
    """The whole exchange (connect, send, answer) must finish within this, or it is retried."""
    signing_secret: str | None = Field(None, min_length=1)
    """When set, every request carries X-Evedge-Signature: sha256=HMAC-SHA256(secret, body) in hex."""
    retry_initial_s: float = Field(2.0, gt=0, le=3600)
    """First retry delay; doubled on every further failure (with jitter) up to `retry_max_s`."""
    retry_max_s: float = Field(600.0, gt=0, le=86400)
    """The backoff cap."""
    retry_after_max_s: float = Field(3600.0, gt=0, le=86400)
    """A Retry-After from the upstream is honoured up to this many seconds."""
    client_error_attempts: int = Field(5, ge=1, le=100)
    """Other 4xx answers (400, 401, 404, ...) are tried this often, then the event is parked as failed."""
    concurrency: int = Field(4, ge=1, le=64)
    """Requests in flight at once (one per charger at most: each charger's events go in order)."""
    delivered_retention_h: float = Field(168.0, ge=0)
    """Delivered events are kept this long for the API, then pruned."""
    failed_retention_h: float = Field(720.0, ge=0)
    """Failed (parked) events are kept this long for an operator to retry, then pruned."""
    max_rows: int = Field(50_000, ge=100)
    """Bound per status: beyond it the oldest pending events are parked as failed ("outbox full")
    and the oldest delivered / failed ones pruned, so a dead upstream cannot fill the disk. Start
    and stop events are never parked or pruned to make room; a connector keeps at most its 20 latest
    undelivered status events."""

    authorize_url: AnyHttpUrl | None = None
    """When a card is presented, asked {"type": "authorize", "chargebox", "connector", "id"};
    answers {"accepted": bool, "expires_at"?: ISO 8601}. Unset: the site decides alone."""
    authorize_timeout_s: float = Field(2.0, gt=0, le=30)
    """An answer later than this is not waited for: the local list and earlier answers decide."""
    ocpp: UpstreamOcppSection | None = None
    """Local-controller mode: forward the chargers' OCPP to a central system above the site."""

    @field_validator("headers")
    @classmethod
    def _plain_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not name or any(c in name for c in " :\r\n") or any(c in text for c in "\r\n"):
                raise ValueError(f"invalid header {name!r}")
        return value

    def url(self, event_type: str) -> str | None:
        value = getattr(self, URL_KEYS[event_type], None) if event_type in URL_KEYS else None
        return str(value) if value is not None else None

    @property
    def enabled(self) -> frozenset[str]:
        return frozenset(t for t in URL_KEYS if self.url(t) is not None)
