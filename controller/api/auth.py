"""Who may call the REST API: API keys (X-API-Key) in two kinds, and CORS for browsers.

- Operator keys (`[api] api_keys`) may do everything.
- Read-only keys (`[api] read_only_api_keys`) may GET and HEAD; anything else answers 403.
- CORS is closed unless `[api] cors_allow_origins` lists the origin: then (and only then) a
  preflight is granted and responses carry Access-Control-Allow-Origin for that origin.

Both lists are read from the live config on every request, so a SIGHUP reload applies at once.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Literal

from quart import Request, Response

from controller.api.errors import Problem

if TYPE_CHECKING:
    from controller.config import ApiSection

HEADER = "X-API-Key"
READ_METHODS = frozenset({"GET", "HEAD"})
CORS_METHODS = "GET, HEAD, POST, PUT, DELETE"
CORS_HEADERS = f"{HEADER}, Content-Type"
CORS_EXPOSE = "Retry-After, Allow"
CORS_MAX_AGE_S = 600

Role = Literal["operator", "read-only"]


def _digest(key: bytes) -> bytes:
    # Equal-length digests, so compare_digest's time depends on neither key's length.
    return hashlib.sha256(key).digest()


def role_of(api: ApiSection, given: str) -> Role | None:
    """The role of the key `given`, or None; compares against every key, always all of them."""
    if not given:
        return None
    # Header values arrive as latin-1 text (the raw bytes); keys in the file are UTF-8.
    digest = _digest(given.encode("latin-1", "replace"))
    # Lists, not generators: no short-circuit, so the time taken says nothing about which key matched.
    operator = [hmac.compare_digest(digest, _digest(key.encode())) for key in api.api_keys if key]
    read_only = [hmac.compare_digest(digest, _digest(key.encode())) for key in api.read_only_api_keys if key]
    if any(operator):
        return "operator"
    if any(read_only):
        return "read-only"
    return None


def authorize(api: ApiSection, request: Request) -> Role:
    """Raise 401 for a missing or wrong key and 403 for a read-only key on a method that writes."""
    role = role_of(api, request.headers.get(HEADER, ""))
    if role is None:
        raise Problem(401, "Unauthorized", f"missing or wrong {HEADER} header")
    if role == "read-only" and request.method not in READ_METHODS:
        raise Problem(403, "Forbidden", f"this API key is read-only: {request.method} needs an operator key")
    return role


# -- CORS -----------------------------------------------------------------------------------------


def _allowed_origin(api: ApiSection, request: Request) -> str | None:
    """The request's Origin if it is listed in cors_allow_origins (exact match, scheme and host
    case-insensitive, a trailing slash ignored); None otherwise."""
    origin = request.headers.get("Origin")
    if not origin or not api.cors_allow_origins:
        return None
    wanted = origin.rstrip("/").lower()
    for allowed in api.cors_allow_origins:
        if allowed.rstrip("/").lower() == wanted:
            return origin
    return None


def is_preflight(request: Request) -> bool:
    return (request.method == "OPTIONS" and "Origin" in request.headers
            and "Access-Control-Request-Method" in request.headers)


def preflight(api: ApiSection, request: Request) -> Response:
    """The answer to a CORS preflight: a grant for a listed origin, 403 (and no grant) otherwise."""
    origin = _allowed_origin(api, request)
    if origin is None:
        raise Problem(403, "Forbidden", "cross-origin requests from this origin are not allowed "
                                        "(api.cors_allow_origins)")
    response = Response("", status=204)
    response.headers.update({
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": CORS_METHODS,
        "Access-Control-Allow-Headers": CORS_HEADERS,
        "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
        "Vary": "Origin",
    })
    return response


def add_cors_headers(api: ApiSection, request: Request, response: Response) -> Response:
    """Allow a listed origin to read this response; nothing at all when CORS is closed."""
    if not api.cors_allow_origins or "Access-Control-Allow-Origin" in response.headers:
        return response
    response.vary.add("Origin")  # the answer depends on Origin: caches must not share it
    origin = _allowed_origin(api, request)
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE
    return response
