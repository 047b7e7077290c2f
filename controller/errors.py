"""Domain errors: what went wrong, in the controller's own words, with no HTTP or OCPP in them.

The domain (transactions, chargers, authorization, tap-to-charge, public charging) raises these;
each edge renders them its own way: the REST API maps each class to a status in one table
(controller/api/errors.py), tap-to-charge turns them into a tap's outcome. `code` is a stable
machine word (`ChargerOffline`, `ConnectorNotPlugged`) that logs see and the API passes on (it words
a few its own way: controller/api/errors.py `API_CODES`).
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: an expected failure, with a machine `code` and a sentence for people."""

    code = "Error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(DomainError):
    """No such thing (charger, transaction, id tag, session, ...)."""

    def __init__(self, what: str, key: object, message: str | None = None) -> None:
        super().__init__(message or f"{what.lower()} {key} not found", f"{what}NotFound")
        self.what = what


class Invalid(DomainError):
    """A request that can never succeed as it is (a connector the charger does not have, ...)."""

    code = "InvalidRequest"


class UnsupportedOperation(DomainError):
    """An operation the charger's protocol does not have (or that a central system cannot send):
    the request is wrong for this charger whatever its state."""

    code = "OperationNotSupported"


class Conflict(DomainError):
    """The request does not fit the present state (a session that is not charging, ...)."""

    code = "Conflict"


class ChargerOffline(Conflict):
    """The charger has no open connection: nothing was sent."""

    code = "ChargerOffline"

    def __init__(self, charger_id: str, message: str | None = None) -> None:
        super().__init__(message or f"charger {charger_id} is not connected")
        self.charger_id = charger_id


class ConnectorNotReady(Conflict):
    """The connector's state does not allow a start: not plugged in (`need_plug`), or not free."""

    def __init__(self, connector_id: int, status: str | None, need_plug: bool) -> None:
        shown = status or "in an unknown state"
        if need_plug:
            super().__init__(f"connector {connector_id} is {shown}: no car is plugged in and waiting",
                             "ConnectorNotPlugged")
        else:
            super().__init__(f"connector {connector_id} is {shown}: neither free nor plugged in", "ConnectorNotFree")
        self.connector_id = connector_id
        self.status = status
        self.need_plug = need_plug


class ConnectorReserved(Conflict):
    """A reservation holds the connector for another id tag: no start for this one."""

    code = "ConnectorReserved"

    def __init__(self, connector_id: int, reservation_id: int) -> None:
        super().__init__(f"connector {connector_id} is reserved for another id tag (reservation {reservation_id})")
        self.connector_id = connector_id
        self.reservation_id = reservation_id


class ReservationRefused(Conflict):
    """The charger answered a reservation with something other than Accepted (kept as its status)."""

    code = "ReservationRefused"

    def __init__(self, reservation_id: int, answer: str) -> None:
        super().__init__(f"the charger answered {answer}: reservation {reservation_id} is not in force")
        self.reservation_id = reservation_id
        self.answer = answer


class ChargerRejected(Conflict):
    """The charger answered and said no (or answered with an error)."""

    code = "ChargerRejected"


class NotInTransaction(Conflict):
    """The transaction is not running, so it cannot be stopped."""

    code = "NotInTransaction"


class AnswerLost(DomainError):
    """A call went out to a charger but no answer came back: the charger may have received it and
    may act on it, so the caller must not assume it did not."""


class ChargerTimeout(AnswerLost):
    code = "ChargerTimeout"


class ChargerDisconnected(AnswerLost):
    """The connection closed after the call went out, before the answer."""

    code = "ChargerOffline"


class ChargerCallError(DomainError):
    """The charger answered an operator's raw operation with an error (its code and words)."""

    code = "CallError"

    def __init__(self, error_code: str, description: str, details: dict | None = None) -> None:
        super().__init__(f"charger answered {error_code}: {description}")
        self.error_code = error_code
        self.description = description
        self.details = details or {}


class StorageUnavailable(DomainError):
    """A write the database refused (disk full, read-only, I/O error): nothing of it is stored."""

    code = "DatabaseUnavailable"


class RateLimited(DomainError):
    """Too many requests of one kind; try again after `retry_after_s`."""

    code = "TooManyRequests"

    def __init__(self, message: str, code: str | None = None, retry_after_s: int = 60) -> None:
        super().__init__(message, code)
        self.retry_after_s = retry_after_s


class ProviderUnavailable(DomainError):
    """A service the request depends on (a payment provider) cannot be reached or failed."""

    code = "ProviderUnavailable"
