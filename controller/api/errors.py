"""JSON errors for every failure, so API clients never have to parse an HTML page."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from quart import Quart, jsonify, request
from werkzeug.exceptions import HTTPException

from controller import errors

_CODES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
          413: "PayloadTooLarge", 415: "UnsupportedMediaType"}
_NO_JSON = object()
STORAGE_RETRY_AFTER_S = 30


class Problem(Exception):
    """A failure of an HTTP request as the API renders it: `{"error": code, "message": message}`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


# Every domain error's HTTP status, most specific class first: the one place that maps them.
STATUS: list[tuple[type[errors.DomainError], int]] = [
    (errors.NotFound, 404),
    (errors.Invalid, 422),
    (errors.UnsupportedOperation, 400),
    (errors.ChargerTimeout, 504),
    (errors.ChargerCallError, 502),
    (errors.ProviderUnavailable, 502),
    (errors.StorageUnavailable, 503),
    (errors.RateLimited, 429),
    (errors.DomainError, 409),  # offline, not ready, rejected, lost answers and other conflicts
]


# Domain codes the REST API words its own way (the published transactions API: a remote start needs a Preparing connector).
API_CODES = {"ConnectorNotPlugged": "ConnectorNotPreparing", "ConnectorNotFree": "ConnectorNotAvailable"}
_NOT_READY = {"ConnectorNotPlugged": "not Preparing", "ConnectorNotFree": "not Available or Preparing"}


def _message(exc: errors.DomainError) -> str:
    if isinstance(exc, errors.ConnectorNotReady):
        return f"connector {exc.connector_id} is {exc.status or 'in an unknown state'}, {_NOT_READY[exc.code]}"
    return exc.message


def domain_problem(exc: errors.DomainError, status: dict[type, int] | None = None) -> Problem:
    """The Problem for a domain error; `status` overrides the table for some classes (the public
    charging API has its own codes for a few)."""
    for cls, code in [*(status or {}).items(), *STATUS]:
        if isinstance(exc, cls):
            break
    headers = {}
    if isinstance(exc, errors.StorageUnavailable):
        headers["Retry-After"] = str(STORAGE_RETRY_AFTER_S)
    elif isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    return Problem(code, API_CODES.get(exc.code, exc.code), _message(exc), headers)


def not_found(what: str, key: object) -> Problem:
    return domain_problem(errors.NotFound(what, key))


def problem_response(status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: object):
    response = jsonify({"error": code, "message": message, **extra})
    response.status_code = status
    response.headers.update(headers or {})
    return response


INT64_MAX = 2**63 - 1  # SQLite's INTEGER: a larger id cannot exist, and would not even bind
_INTEGER = re.compile(r"^-?[0-9]{1,19}$")


def int_param(name: str, text: str, minimum: int = 1) -> int:
    """A path parameter that is an id: ASCII digits within `minimum`..INT64_MAX, else 422.

    Not a bare int(): that takes "1_000", " 7" and other scripts' digits, and ids past 2**63
    overflow SQLite (a 500).
    """
    value = int(text) if _INTEGER.match(text) else None
    if value is None or not minimum <= value <= INT64_MAX:
        raise Problem(422, "InvalidRequest",
                      f"path parameter {name!r}: must be an integer from {minimum} to {INT64_MAX}")
    return value


def field_name(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "body"


def validation_problem(exc: ValidationError, where: str = "body") -> Problem:
    first = exc.errors()[0]
    field = field_name(first["loc"])
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "missing":
        message = "required"
    return Problem(422, "InvalidRequest", f"{where} field {field!r}: {message}")


M = TypeVar("M", bound=BaseModel)


async def json_data() -> Any:
    """The request body parsed as JSON whatever its Content-Type; `_NO_JSON` if it is not JSON.

    Not `request.get_json(silent=True)`: that raises (a 500) on a body that is not UTF-8.
    A body over the size limit raises 413 here (MAX_CONTENT_LENGTH).
    """
    raw = await request.get_data(as_text=False)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _NO_JSON


async def json_object() -> dict | None:
    """The request body if it is a JSON object, else None."""
    data = await json_data()
    return data if isinstance(data, dict) else None


async def json_body(model: type[M]) -> M:
    """The request's JSON object as `model`: 400 if it is no object, 422 naming a bad field."""
    data = await json_object()
    if data is None:
        raise Problem(400, "BadRequest", "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def parse_query(model: type[M]) -> M:
    """The request's query string as `model` (every list endpoint's one parser): 422 naming the
    parameter. Lax, unlike bodies: query values arrive as text ("50" is the integer 50)."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise validation_problem(exc, where="query") from None


def install(app: Quart) -> None:
    @app.errorhandler(Problem)
    async def _problem(exc: Problem):
        return problem_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(errors.DomainError)
    async def _domain(exc: errors.DomainError):
        problem = domain_problem(exc)
        extra = {}
        if isinstance(exc, errors.ChargerCallError):
            extra["callError"] = {"code": exc.error_code, "description": exc.description, "details": exc.details}
        return problem_response(problem.status, problem.code, problem.message, problem.headers, **extra)

    @app.errorhandler(HTTPException)
    async def _http(exc: HTTPException):
        status = exc.code or 500
        headers = {}
        if status == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return problem_response(status, _CODES.get(status, "HttpError"), exc.description or "", headers)

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception):
        app.logger.exception("API request failed")
        return problem_response(500, "InternalServerError", "the controller could not process the request")
