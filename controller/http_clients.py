"""What the controller's outgoing HTTP clients share (upstream delivery, the upstream's card
decisions, the payment provider)."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls() -> ssl.SSLContext:
    """The trust store the clients verify servers against (httpx's own default, honouring
    SSL_CERT_FILE), loaded once per process: loading it costs ~20 ms of CPU per client here,
    several times that on a Pi, and every client would load the same file."""
    return httpx.create_ssl_context()
