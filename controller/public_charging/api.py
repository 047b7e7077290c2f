"""HTTP routes of public charging: the driver's API (no API key: the session token is the
credential), the operator's keyed API and the driver page at /charge/{code}.

The sessions raise domain errors (controller/errors.py); every route here renders them through
`domain_problem` with STATUS_OVERRIDES, the few statuses this API answers differently from the rest.

    register(app, public_charging)

Rate limits are per client address and per endpoint, in a sliding one-minute window on Trio's
clock. The client is the peer of the TCP connection, or behind a reverse proxy listed in
[public_charging] trusted_proxies, the address that proxy puts in X-Forwarded-For.

The driver's routes can also be served on a listener of their own ([public_charging] listen,
controller/api/public_listener.py); both share one RateLimiter.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import deque
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Literal

import trio
from pydantic import BaseModel, ConfigDict, Field, field_validator
from quart import Response, jsonify, request
from quart_trio import QuartTrio

from controller.api import errors, models, openapi
from controller.api.errors import domain_problem
from controller.api.models import PageQuery, Pagination, ResponseBody, Timestamp
from controller.errors import ChargerOffline, ChargerRejected, DomainError, RateLimited
from controller.public_charging.lifecycle import RESOLUTIONS
from controller.public_charging.sessions import PublicCharging
from controller.public_charging.statuses import STATUSES

PREFIX = "/api/v1/public-charging"
PUBLIC_PREFIXES = (PREFIX + "/", "/charge/")
LIMITS = {  # bucket -> requests per minute per client
    "create": 3,
    "get": 30,
    "charger": 30,
    "confirm": 10,
    "stop": 10,
    "cancel": 10,
}
WINDOW_S = 60.0
STATUS_OVERRIDES: dict[type[DomainError], int] = {
    ChargerOffline: 400,   # creating a session on an offline charger: the driver picks another one
    ChargerRejected: 400,  # a stop the charger did not take (ChargerRefused)
}
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$")


class RateLimiter:
    def __init__(self, limits: dict[str, int], window_s: float = WINDOW_S) -> None:
        self.limits = limits
        self.window_s = window_s
        self._hits: dict[tuple[str, str], deque[float]] = {}

    def check(self, bucket: str, client: str) -> None:
        now = trio.current_time()
        hits = self._hits.setdefault((bucket, client), deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limits[bucket]:
            retry = max(1, int(hits[0] + self.window_s - now + 0.999))
            raise RateLimited("rate limit exceeded; try again later", retry_after_s=retry)
        hits.append(now)
        if len(self._hits) > 10_000:  # forget idle clients
            for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window_s]:
                del self._hits[key]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """[public_charging] trusted_proxies, parsed once per value (a reload may change it)."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _among(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """Whose request it is, for rate limits: the TCP peer; behind trusted proxies, the nearest
    address in X-Forwarded-For that is not one of them. Each proxy appends the address it got the
    request from, so the list is read from the right, and only as far as trusted proxies wrote it:
    what a client put in the header itself is never believed."""
    address = peer or "?"
    if not forwarded_for or not _among(address, trusted):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # garbage: the last address a trusted proxy vouched for
        address = hop
        if not _among(hop, trusted):
            return hop
    return address


# -- requests ------------------------------------------------------------------------------------


class PublicSessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=10)
    connector_id: int = Field(ge=1, le=100, strict=True)
    email: str | None = Field(None, max_length=254)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("not an e-mail address")
        return value


class PublicSessionQuery(PageQuery):
    status: Literal[STATUSES] | None = Field(None, description="Filter by status")  # type: ignore[valid-type]


class PublicSessionResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Checked by PublicCharging.resolve, which names the allowed ones in its 422.
    status: str = Field(json_schema_extra={"enum": list(RESOLUTIONS)})


# -- responses (the published public-charging format) ----------------------------------------------


class PublicPricing(ResponseBody):
    currency: str
    price_per_kwh: int
    start_fee: int


class PublicConnector(ResponseBody):
    connector_id: int
    status: str | None


class PublicOperator(ResponseBody):
    name: str = Field(description="[public_charging] operator_name, else the site's name")
    contact: str | None = Field(description="[public_charging] operator_contact: a phone number, an e-mail address")


class PublicChargerInfo(ResponseBody):
    public_code: str
    name: str
    online: bool
    connectors: list[PublicConnector]
    pricing: PublicPricing
    amount_authorized: int
    payment_provider: str
    # Always sent, but not in the published public-charging API: optional, so its example stays valid.
    operator: PublicOperator | None = Field(None, description="Who runs the charger, for the driver to reach")


class PublicCharger(ResponseBody):
    data: PublicChargerInfo


class PublicPayment(ResponseBody):
    """What the driver's page needs to collect the card (stripe: client_secret, publishable_key)."""

    provider: Literal["stripe", "none"]
    payment_intent_id: str | None = None
    client_secret: str | None = None
    publishable_key: str | None = None


class PublicSessionCharger(ResponseBody):
    public_code: str | None
    name: str
    online: bool


class PublicSession(ResponseBody):
    status: Literal[STATUSES]  # type: ignore[valid-type]
    failure_reason: str | None
    connector_id: int
    connector_status: str | None
    charger: PublicSessionCharger
    pricing: PublicPricing
    amount_authorized: int | None
    energy_kwh: str | None = Field(pattern=r"^[0-9]+\.[0-9]{3}$")
    cost_amount: int | None
    amount_captured: int | None
    tax_amount: int | None
    driver_email: str | None
    created_at: Timestamp | None
    authorized_at: Timestamp | None
    charging_started_at: Timestamp | None
    completed_at: Timestamp | None
    captured_at: Timestamp | None


class PublicSessionAdmin(PublicSession):
    """A public session with what the operator needs to find it at the payment provider."""

    id: int
    charger_id: str
    transaction_id: int | None
    provider: str
    payment_id: str | None
    hold_released: bool


class PublicSessionCreated(ResponseBody):
    session_token: str
    data: PublicSession
    payment: PublicPayment


class PublicSessionEnvelope(ResponseBody):
    data: PublicSession
    payment: PublicPayment | None = Field(None, description="Present while the card is still to be collected")


class PublicSessionList(ResponseBody):
    sessions: list[PublicSessionAdmin]
    pagination: Pagination


def _page_html() -> str:
    return resources.files("controller.public_charging").joinpath("static/charge.html").read_text("utf-8")


View = Callable[..., Awaitable[Any]]


def _answering_problems(view: View) -> View:
    """The view with its domain errors turned into this API's problems: the one place they are mapped."""

    @functools.wraps(view)
    async def answered(*args: Any, **kwargs: Any) -> Any:
        try:
            return await view(*args, **kwargs)
        except DomainError as exc:
            raise domain_problem(exc, STATUS_OVERRIDES) from exc

    return answered


def register(app: QuartTrio, pc: PublicCharging, limiter: RateLimiter | None = None,
             trusted_proxies: Callable[[], tuple[str, ...]] = tuple) -> None:
    """The driver's routes and the operator's (keyed) ones, as the REST API serves them."""
    register_driver(app, pc, limiter or RateLimiter(LIMITS), trusted_proxies)
    register_operator(app, pc)


def _route(app: QuartTrio, method: str, rule: str) -> Callable[[View], View]:
    """Like `@app.get(rule)`, for a view whose domain errors answer with this API's statuses."""
    return lambda view: app.route(rule, methods=[method])(_answering_problems(view))


def register_driver(app: QuartTrio, pc: PublicCharging, limiter: RateLimiter,
                    trusted_proxies: Callable[[], tuple[str, ...]]) -> None:
    """The driver page and the driver's API (no key: the session token is the credential).
    `trusted_proxies()`: the config's trusted_proxies now (read per request: a reload changes it)."""
    page = _page_html()
    route = functools.partial(_route, app)

    def limit(bucket: str) -> None:
        client = client_address(request.remote_addr, request.headers.get("X-Forwarded-For"),
                                networks(tuple(trusted_proxies())))
        limiter.check(bucket, client)

    def envelope(data: dict, payment: dict | None) -> dict:
        out: dict = {"data": data}
        if payment is not None:
            out["payment"] = payment
        return out

    @route("GET", f"{PREFIX}/chargers/<code>")
    async def public_charger(code: str) -> Response:
        limit("charger")
        return jsonify({"data": pc.charger_info(code)})

    @route("POST", f"{PREFIX}/sessions")
    async def public_create() -> tuple[Response, int]:
        limit("create")
        parsed = await errors.json_body(PublicSessionCreate)
        token, data, payment = await pc.create(parsed.code, parsed.connector_id, parsed.email)
        return jsonify({"session_token": token, "data": data, "payment": payment}), 201

    @route("GET", f"{PREFIX}/sessions/<token>")
    async def public_get(token: str) -> Response:
        limit("get")
        data, payment = await pc.get(token)
        return jsonify(envelope(data, payment))

    @route("POST", f"{PREFIX}/sessions/<token>/confirm")
    async def public_confirm(token: str) -> Response:
        limit("confirm")
        return jsonify({"data": await pc.confirm(token)})

    @route("POST", f"{PREFIX}/sessions/<token>/stop")
    async def public_stop(token: str) -> Response:
        limit("stop")
        return jsonify({"data": await pc.stop(token)})

    @route("POST", f"{PREFIX}/sessions/<token>/cancel")
    async def public_cancel(token: str) -> Response:
        limit("cancel")
        return jsonify({"data": await pc.cancel(token)})

    @route("GET", "/charge/<code>")
    async def driver_page(code: str) -> Response:
        response = Response(page, content_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def register_operator(app: QuartTrio, pc: PublicCharging) -> None:
    """The operator's keyed routes: sessions, and resolving the ones that need a person."""
    route = functools.partial(_route, app)

    @route("GET", "/api/v1/public-sessions")
    async def admin_list() -> Response:
        query = errors.parse_query(PublicSessionQuery)
        found = await pc.admin_page(query.status, query.limit, query.offset)
        # the API's one envelope (the domain's page carries the same three figures)
        return jsonify(models.page("sessions", found["sessions"], found["pagination"]["total"], query))

    def session_id(text: str) -> int:
        return errors.int_param("sessionId", text)

    @route("GET", "/api/v1/public-sessions/<sid>")
    async def admin_get(sid: str) -> Response:
        return jsonify(await pc.admin_get(session_id(sid)))

    @route("POST", "/api/v1/public-sessions/<sid>/resolve")
    async def admin_resolve(sid: str) -> Response:
        parsed = await errors.json_body(PublicSessionResolve)
        return jsonify(await pc.resolve(session_id(sid), parsed.status))


# -- the OpenAPI section -------------------------------------------------------------------------

TOKEN = openapi.path_param("token", {"type": "string"}, "The session token returned when the session was created")
CODE = openapi.path_param("code", {"type": "string", "maxLength": 10}, "The charger's public code (case-insensitive)")
SESSION_ID = openapi.path_param("sessionId", openapi.ID_SCHEMA, "The public session's id")


def _public_errors(*statuses: int) -> dict[str, Any]:
    """The driver's endpoints take no key (no 401) and are rate limited (429)."""
    return openapi.errors(*statuses, 429, keyed=False)


_op, _resp = openapi.operation, openapi.response
_session = _resp("The session", PublicSessionEnvelope)

SECTION = openapi.Section({
    f"{PREFIX}/chargers/{{code}}": {"get": _op(
        "getPublicCharger", "Public charging", "A public charger: connectors, price",
        {"200": _resp("The charger", PublicCharger), **_public_errors(404)},
        parameters=[CODE], public=True)},
    f"{PREFIX}/sessions": {"post": _op(
        "createPublicSession", "Public charging", "Start a pay-by-phone session and create the card hold",
        {"201": _resp("The session, its token and the payment context", PublicSessionCreated),
         **_public_errors(400, 404, 409, 422, 502)},
        body=PublicSessionCreate, public=True,
        description="404 unknown code or public charging off; 400 charger offline; 422 unknown connector; "
                    "409 connector unavailable; 429 rate limit (3/min per client) or per-charger cap.")},
    f"{PREFIX}/sessions/{{token}}": {"get": _op(
        "getPublicSession", "Public charging", "Poll a session (30/min)",
        {"200": _session, **_public_errors(404)}, parameters=[TOKEN], public=True)},
    f"{PREFIX}/sessions/{{token}}/confirm": {"post": _op(
        "confirmPublicSession", "Public charging", "Reconcile the payment after the driver paid (10/min)",
        {"200": _session, **_public_errors(404, 502)}, parameters=[TOKEN], public=True)},
    f"{PREFIX}/sessions/{{token}}/stop": {"post": _op(
        "stopPublicSession", "Public charging", "Ask the charger to stop (10/min)",
        {"200": _session, **_public_errors(400, 404, 409)}, parameters=[TOKEN], public=True)},
    f"{PREFIX}/sessions/{{token}}/cancel": {"post": _op(
        "cancelPublicSession", "Public charging", "Cancel before charging and release the hold (10/min)",
        {"200": _session, **_public_errors(404, 409)}, parameters=[TOKEN], public=True)},
    "/charge/{code}": {"get": _op(
        "driverPage", "Public charging", "The driver's mobile page (HTML)",
        {"200": _resp("HTML page", {"type": "string"}, media="text/html")},
        parameters=[CODE], public=True)},
    "/api/v1/public-sessions": {"get": _op(
        "listPublicSessions", "Public charging", "Public sessions, newest first (operator)",
        {"200": _resp("A page of sessions", PublicSessionList), **openapi.errors(422)},
        query=PublicSessionQuery)},
    "/api/v1/public-sessions/{sessionId}": {"get": _op(
        "getPublicSessionAdmin", "Public charging", "One public session with its payment ids (operator)",
        {"200": _resp("The session", PublicSessionAdmin), **openapi.errors(404, 422)},
        parameters=[SESSION_ID])},
    "/api/v1/public-sessions/{sessionId}/resolve": {"post": _op(
        "resolvePublicSession", "Public charging",
        "Mark refunded (from captured), written_off, or settling again to retry the capture",
        {"200": _resp("The session", PublicSessionAdmin), **openapi.errors(400, 404, 409, 422)},
        body=PublicSessionResolve, parameters=[SESSION_ID])},
})
