"""JSON errors for every failure, so API clients never have to parse an HTML page."""

from __future__ import annotations

from pydantic import ValidationError
from typing import TypeVar

from pydantic import BaseModel
from quart import Quart, jsonify, request
from werkzeug.exceptions import HTTPException

from controller.errors import Problem

_CODES = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed",
          413: "PayloadTooLarge", 415: "UnsupportedMediaType"}


def problem_response(status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: object):
    response = jsonify({"error": code, "message": message, **extra})
    response.status_code = status
    response.headers.update(headers or {})
    return response


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


async def json_body(model: type[M]) -> M:
    """The request's JSON object as `model`: 400 if it is no object, 422 naming a bad field."""
    data = await request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise Problem(400, "BadRequest", "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def install(app: Quart) -> None:
    @app.errorhandler(Problem)
    async def _problem(exc: Problem):
        return problem_response(exc.status, exc.code, exc.message, exc.headers)

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
