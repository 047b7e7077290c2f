"""Errors the controller reports to API clients, with their HTTP status and machine code."""

from __future__ import annotations


class Problem(Exception):
    """An expected failure of a request: rendered as `{"error": code, "message": message}`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class AnswerLost(Problem):
    """A call went out to a charger but no answer came back (timeout, dropped connection): the
    charger may have received it and may act on it, so the caller must not assume it did not."""


def not_found(what: str, key: object) -> Problem:
    return Problem(404, f"{what}NotFound", f"{what.lower()} {key} not found")
