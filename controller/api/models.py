"""The REST API's JSON shapes, each written once: the OpenAPI document's component schemas are
generated from these models (controller/api/openapi.py), so the document cannot drift from them.

Request bodies and query parameters are validated with them, strictly, so errors can name the
field. Responses are rendered as plain dicts by each resource module (a model per object would
cost ~20 us per charger on every list); the tests validate every answer against the document,
and response models forbid extra keys, so a renderer that drifts from its model fails them.
Class names are the component names; docstrings and field descriptions are the documentation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, WithJsonSchema

from controller.api.errors import INT64_MAX
from controller.authorization import STATUSES as ID_TAG_STATUSES
from controller.store.outbox import STATUSES as NOTIFICATION_STATUSES
from controller.timefmt import normalize

Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""ISO 8601 UTC text as the controller writes it (controller/timefmt.py)."""
IdTagText = Annotated[str, Field(min_length=1, max_length=20)]  # OCPP IdToken: CiString20
ExpiryDate = Annotated[Timestamp, AfterValidator(normalize)]
"""An id tag's expiry as sent (any ISO 8601 offset), stored in the canonical UTC form."""
IdTagStatus = Literal["Accepted", "Blocked", "Expired", "Invalid"]
TransactionStatus = Literal["pending", "active", "stopping", "completed", "failed"]
HealthStatus = Literal["ok", "degraded", "failing"]
Phases = list[float | None] | None


# -- requests ------------------------------------------------------------------------------------


class RequestBody(BaseModel):
    """A request body: unknown fields and loose types are refused (422 naming the field)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class RemoteStartRequest(RequestBody):
    connectorId: int = Field(ge=1, le=100, description="The connector to start charging on (must be Preparing)")
    idTag: IdTagText = Field(description="User/RFID identifier")


class IdTagBody(RequestBody):
    """An id tag as a whole (PUT replaces it: a field left out gets its default)."""

    status: IdTagStatus = "Accepted"
    expiryDate: ExpiryDate | None = None
    parentIdTag: IdTagText | None = None


class NewIdTagBody(IdTagBody):
    idTag: IdTagText


def _not_sent_by_default(schema: dict[str, Any]) -> None:
    """A PATCH field's default is "not sent", not a value: it is left out of the document."""
    schema.pop("default", None)


class IdTagPatch(RequestBody):
    """Changes to an id tag: only the fields sent change, a field left out keeps its value, and
    null clears an expiry date or a parent."""

    status: IdTagStatus = Field(None, json_schema_extra=_not_sent_by_default)  # type: ignore[assignment]
    expiryDate: ExpiryDate | None = Field(None, json_schema_extra=_not_sent_by_default)
    parentIdTag: IdTagText | None = Field(None, json_schema_extra=_not_sent_by_default)


class OperationRequest(RootModel[dict[str, Any]]):
    """The OCPP 1.6 request payload of the operation, validated against its schema and forwarded as
    given (key order preserved)."""


# -- query parameters ----------------------------------------------------------------------------


class PageQuery(BaseModel):
    """The paging parameters of every list that pages (lax: query values arrive as text)."""

    model_config = ConfigDict(extra="forbid")
    limit: int = Field(50, ge=1, le=1000, description="Results per page")
    offset: int = Field(0, ge=0, le=INT64_MAX, description="Pagination offset",
                        json_schema_extra={"format": "int64"})


class TransactionQuery(PageQuery):
    chargeBoxId: str | None = Field(None, description="Filter by charger")
    status: TransactionStatus | None = Field(None, description="Filter by status")


class NotificationQuery(PageQuery):
    status: Literal[NOTIFICATION_STATUSES] | None = Field(  # type: ignore[valid-type]
        None, description="Filter by delivery status")
    chargeBoxId: str | None = Field(None, description="Filter by charger")
    type: str | None = Field(None, description="Filter by event type")


# -- responses -----------------------------------------------------------------------------------


class ResponseBody(BaseModel):
    """A response body: documented with additionalProperties false, so an extra key is a bug."""

    model_config = ConfigDict(extra="forbid")


class Pagination(ResponseBody):
    total: int = Field(ge=0, description="How many match in all")
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)


def page(key: str, items: list[Any], total: int, query: PageQuery, **extra: Any) -> dict[str, Any]:
    """The one pagination envelope: `{key: items, "pagination": {total, limit, offset}, **extra}`."""
    return {key: items, "pagination": {"total": total, "limit": query.limit, "offset": query.offset}, **extra}


class Error(BaseModel):
    """Every failure's body (other keys may follow, e.g. `callError`)."""

    error: str = Field(description="Machine-readable code, e.g. ChargerOffline")
    message: str = Field(description="What went wrong, naming the field or resource")


class CallError(ResponseBody):
    code: str
    description: str
    details: dict[str, Any]


class CallErrorResponse(Error):
    """The charger answered the operation with a CALLERROR: its code, description and details."""

    model_config = ConfigDict(extra="forbid")
    error: Literal["CallError"]
    callError: CallError


class HealthCheck(BaseModel):
    """One part of the site; each check adds its own figures next to `status`."""

    model_config = ConfigDict(extra="allow")
    status: HealthStatus


class Health(ResponseBody):
    status: HealthStatus = Field(description="failing (answered with 503) when any check fails")
    chargersOnline: int = Field(ge=0)
    transactionsOpen: int | None = Field(None, ge=0, description="Absent while the database cannot be read")
    checks: dict[str, HealthCheck] = Field(
        description="One entry per part of the site (database, upstream, ocpp, eventLoop, buses...)")


class Connector(ResponseBody):
    connectorId: int = Field(ge=0, description="0 is the charger as a whole")
    status: str | None = Field(description="Latest status as the charger reported it (1.6 ChargePointStatus, "
                                           "2.0.1 ConnectorStatus; in 2.0.1 a connector is an EVSE)")
    errorCode: str | None = Field(description="Latest 1.6 ChargePointErrorCode (2.0.1 reports none)")
    info: str | None
    vendorErrorCode: str | None
    statusUpdatedAt: Timestamp | None
    energyWh: float | None = Field(description="Latest energy register reading")
    powerW: float | None = Field(description="Latest active power")
    meterUpdatedAt: Timestamp | None


class Charger(ResponseBody):
    chargeBoxId: str
    upstreamId: str | None = Field(description="Local-controller mode: the id the central system above the site"
                                               " knows it by; null otherwise")
    registration: Literal["accepted", "pending", "rejected"]
    protocol: Literal["ocpp1.6", "ocpp2.0.1"] = Field(description="The OCPP version it speaks (its last connection)")
    online: bool
    connectedAt: Timestamp | None
    vendor: str | None
    model: str | None
    serialNumber: str | None
    firmwareVersion: str | None
    lastBoot: Timestamp | None
    lastHeartbeat: Timestamp | None
    firmwareStatus: str | None
    diagnosticsStatus: str | None = Field(description="1.6 DiagnosticsStatusNotification")
    logStatus: str | None = Field(description="2.0.1 LogStatusNotification")
    connectors: list[Connector]


class ChargerList(ResponseBody):
    chargers: list[Charger]


class OperationResponse(RootModel[Any]):
    """The charger's CALLRESULT payload, as received (normally an object; a charger that answers
    something else is passed on as is)."""


class RemoteStartResponse(ResponseBody):
    message: Literal["Remote start accepted by charger"]
    transactionId: int = Field(description="The id the charger gets in StartTransaction.conf")
    chargeBoxId: str
    connectorId: int
    status: Literal["pending"]
    note: str


class RemoteStopResponse(ResponseBody):
    message: Literal["Remote stop accepted by charger"]
    transactionId: int
    chargeBoxId: str
    status: Literal["stopping"]
    note: str


class TransactionSummary(ResponseBody):  # the published transactions API, field for field
    """A transaction in a list."""

    id: str = Field(pattern="^txn_[0-9]+$")
    transactionId: int
    chargeBoxId: str
    connectorId: int = Field(ge=0)
    idTag: str
    status: TransactionStatus
    energyDelivered: float | None = Field(description="kWh")
    durationMinutes: int | None = Field(ge=0)
    startTime: Timestamp | None
    stopTime: Timestamp | None


class Transaction(TransactionSummary):  # the published transactions API, field for field (and more)
    """One transaction in full: the summary plus meter readings and how it ended."""

    meterStart: int | None = Field(description="Wh")
    meterStop: int | None = Field(description="Wh")
    stopReason: str | None
    remoteStarted: bool
    # Always sent, but not in the published transactions API: optional, so its example stays valid.
    mode: Literal["local", "api", "remote"] | None = None
    idTagStatus: str | None = None
    paymentAmount: str | None = None
    ocppTransactionId: str | None = Field(None, description="The charger's own id of the transaction, for "
                                                            "chargers that assign one (OCPP 2.0.1)")


class TransactionList(ResponseBody):
    transactions: list[TransactionSummary]
    pagination: Pagination


class IdTag(ResponseBody):
    idTag: str
    status: Literal[ID_TAG_STATUSES]  # type: ignore[valid-type]
    expiryDate: Timestamp | None
    parentIdTag: str | None


class IdTagList(ResponseBody):
    idTags: list[IdTag]


class Meter(ResponseBody):
    id: str
    model: str
    bus: str
    role: Literal["site", "connector"]
    charger: str | None
    connector: int | None
    online: bool
    lastError: str | None
    energyImportWh: float | None
    energyExportWh: float | None
    powerW: float | None
    voltageV: Phases
    currentA: Phases
    phasePowerW: Phases
    updatedAt: Timestamp | None = Field(description="When the readings were polled (kept while offline)")


class MeterList(ResponseBody):
    meters: list[Meter]


class TapResult(ResponseBody):
    result: str = Field(description="Started, Stopped, Rejected (idTagStatus says why), InProgress, Occupied, "
                                    "NotAssigned, NotReady, Error, or why the charger could not be asked "
                                    "(ChargerOffline, ChargerRejected, ChargerTimeout, ConnectorNotAvailable, ...): "
                                    "controller/tap_to_charge.py OUTCOMES")
    message: str
    idTag: str
    idTagStatus: str | None
    transactionId: int | None
    at: Timestamp


class Reader(ResponseBody):
    id: str
    kind: str
    charger: str | None
    connector: int | None
    connected: bool
    lastError: str | None
    lastTapAt: Timestamp | None
    lastIdTag: str | None
    taps: int = Field(ge=0)
    badFrames: int = Field(ge=0)
    noiseBytes: int = Field(ge=0)
    reconnects: int = Field(ge=0)
    lastTapResult: TapResult | None = Field(description="What the last tap did (null before the first tap)")


class ReaderList(ResponseBody):
    readers: list[Reader]


class Notification(ResponseBody):
    id: int = Field(description="Row id: the delivery order within one charger")
    eventId: str = Field(description="Sent as X-Evedge-Event-Id; stable across retries")
    type: str = Field(description="start | stop_transaction | status | connection")
    chargeBoxId: str
    transactionId: int | None
    status: Literal[NOTIFICATION_STATUSES]  # type: ignore[valid-type]
    attempts: int = Field(ge=0)
    lastStatus: int | None = Field(description="HTTP status of the last attempt (null: no answer)")
    lastError: str | None
    lastAttemptAt: Timestamp | None
    nextAttemptAt: Timestamp | None
    createdAt: Timestamp
    deliveredAt: Timestamp | None
    payload: dict[str, Any] = Field(description="The JSON body POSTed to the upstream")


class NotificationQueue(ResponseBody):
    pending: int = Field(ge=0, description="Queue depth")
    delivered: int = Field(ge=0)
    failed: int = Field(ge=0)
    oldestPendingAgeSeconds: float | None = Field(ge=0)


class NotificationList(ResponseBody):
    notifications: list[Notification]
    pagination: Pagination
    queue: NotificationQueue


class UpstreamLink(ResponseBody):
    """One charger's link to the central system above the site (local-controller mode)."""

    chargeBoxId: str
    upstreamId: str
    connected: bool
    since: Timestamp | None = Field(description="When it connected, or went down; null: not tried yet")
    queued: int = Field(description="Messages waiting for the central system, oldest first")
    forwarded: int = Field(description="Messages the central system answered since the controller started")
    registration: Literal["Accepted", "Pending", "Rejected"] | None = Field(
        description="The central system's answer to the charger's last BootNotification (the charger is"
                    " served locally whatever it is)")
    lastError: str | None


class UpstreamLinks(ResponseBody):
    enabled: bool = Field(description="Whether the site is a local controller ([upstream.ocpp])")
    chargers: list[UpstreamLink]
