"""OCPP 1.6 actions and payload validation (the schemas the `ocpp` library ships)."""

from __future__ import annotations

from typing import Any

from controller.csms.frames import CENTRAL_ACTIONS, CHARGER_ACTIONS, validate

__all__ = ["CENTRAL_ACTIONS", "CHARGER_ACTIONS", "DIALECT", "validate"]


class _Dialect:
    """What the RPC session needs of OCPP 1.6."""

    charger_actions = CHARGER_ACTIONS
    known_actions = CHARGER_ACTIONS | CENTRAL_ACTIONS

    @staticmethod
    def validate(kind: int, action: str, payload: Any) -> None:
        validate(kind, action, payload)

    @staticmethod
    def frame_error_code(code: str) -> str:
        return code  # the framing speaks 1.6's words


DIALECT = _Dialect()
