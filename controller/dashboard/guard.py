"""Who may see and do what on the dashboard.

- Every page needs a session (controller/dashboard/sessions.py); without one, pages redirect to
  the sign-in page and the live stream answers 401.
- Every POST must come from our own pages: a cross-site request (the browser's `Sec-Fetch-Site`,
  or an `Origin` naming another host) is refused, and, but for signing in, it must carry the
  session's CSRF token (`X-CSRF-Token` header or `csrf` form field).
- A read-only session may sign out, nothing else: the buttons are not shown, and the server
  refuses their requests whatever sends them.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from quart import Blueprint, Response, g, redirect, render_template, request, url_for

from controller.api.errors import Problem
from controller.dashboard.sessions import COOKIE, TTL_S

if TYPE_CHECKING:
    from controller.dashboard import Dashboard

log = logging.getLogger("evedge.dashboard")
SIGN_IN = "/dashboard/sign-in"
SAME_SITE = ("same-origin", "none")  # Sec-Fetch-Site values of our own pages (and a typed URL)


def cross_site() -> bool:
    """Whether a request comes from another site's page (what a CSRF attack looks like)."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in SAME_SITE:
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    if origin == "null":
        return True
    return urlsplit(origin).netloc.lower() != request.host.lower()


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never `//elsewhere`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def register(bp: Blueprint, dash: Dashboard) -> None:
    live = dash.services.config

    @bp.before_request
    async def _check() -> Response | None:
        g.session = None
        if request.path.startswith("/dashboard/static/"):
            return None
        if request.method == "POST" and cross_site():
            log.info("dashboard %s %s refused: cross-site request from %s", request.method, request.path,
                     request.headers.get("Origin") or request.headers.get("Sec-Fetch-Site"))
            raise Problem(403, "CrossSiteRequest", "requests from another site's page are refused")
        if request.path == SIGN_IN:
            return None
        g.session = await dash.sessions.find(live.current.api, request.cookies.get(COOKIE))
        if g.session is None:
            if request.method == "GET" and not request.path.endswith("/events"):
                return redirect(f"{SIGN_IN}?next={request.full_path.rstrip('?')}", 303)
            raise Problem(401, "SignedOut", "sign in again: this session has ended")
        if request.method == "POST":
            given = request.headers.get("X-CSRF-Token") or (await request.form).get("csrf", "")
            if not hmac.compare_digest(given.encode(), g.session.csrf.encode()):
                raise Problem(403, "CsrfTokenMissing", "the request did not carry this session's CSRF token; "
                                                       "reload the page")
            if not g.session.operator and request.path != "/dashboard/sign-out":
                raise Problem(403, "Forbidden", "this session's API key is read-only: it needs an operator key")
        return None

    @bp.after_request
    async def _headers(response: Response) -> Response:
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
        return response

    @bp.get(SIGN_IN)
    async def sign_in_page() -> str:
        return await render_template("dashboard/sign_in.html", next=safe_next(request.args.get("next")), error=None)

    @bp.post(SIGN_IN)
    async def sign_in() -> Response | tuple[str, int]:
        form = await request.form
        target = safe_next(form.get("next"))
        session = await dash.sessions.sign_in(live.current.api, form.get("key", "").strip())
        if session is None:
            log.info("dashboard sign-in from %s refused: wrong API key", request.remote_addr)
            return await render_template("dashboard/sign_in.html", next=target,
                                         error="That API key is not valid. Use a key from [api] api_keys "
                                               "or read_only_api_keys in the config file."), 401
        response = redirect(target, 303)
        response.set_cookie(COOKIE, session.token, max_age=TTL_S, path="/", httponly=True, samesite="Strict",
                            secure=request.scheme == "https")
        log.info("dashboard sign-in from %s (%s)", request.remote_addr, session.role)
        return response

    @bp.post("/dashboard/sign-out")
    async def sign_out() -> Response:
        await dash.sessions.sign_out(g.session.token)
        response = redirect(url_for("dashboard.sign_in_page"), 303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict")
        return response

