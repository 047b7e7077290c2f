"""The OpenAPI 3.1 document of the REST API."""

from __future__ import annotations

from functools import cache


@cache
def openapi_document() -> dict:
    return {"openapi": "3.1.0", "info": {"title": "evedge", "version": "1"}, "paths": {}}
