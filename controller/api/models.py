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
from controller.authorization import DEFAULT_TOKEN_TYPE, TOKEN_TYPES
from controller.authorization import STATUSES as ID_TAG_STATUSES
from controller.store.outbox import STATUSES as NOTIFICATION_STATUSES
from controller.timefmt import normalize

Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""ISO 8601 UTC text as the controller writes it (controller/timefmt.py)."""
IdTagText = Annotated[str, Field(min_length=1, max_length=20)]  # OCPP IdToken: CiString20
ExpiryDate = Annotated[Timestamp, AfterValidator(normalize)]
"""An id tag's expiry as sent (any ISO 8601 offset), stored in the canonical UTC form."""
IdTagStatus = Literal["Accepted", "Blocked", "Expired", "Invalid"]
TokenType = Literal[TOKEN_TYPES]  # type: ignore[valid-type]
TOKEN_TYPE_TEXT = ("How an OCPP 2.0.1 station names the token (IdTokenEnumType); tags are matched by value "
                   "alone, the type is what remote starts and local lists send")
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
    tokenType: TokenType = Field(DEFAULT_TOKEN_TYPE, description=TOKEN_TYPE_TEXT)


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
    tokenType: TokenType = Field(None, json_schema_extra=_not_sent_by_default)  # type: ignore[assignment]


class ChargingProfileRequest(RequestBody):
    """An OCPP 1.6 charging profile to store and send (SetChargingProfile's connectorId and
    csChargingProfiles): checked against the 1.6 schema; ids from 2000 and stack levels from 1
    (lower ones are load management's)."""

    connectorId: int = Field(ge=0, le=100, description="0: the charger as a whole")
    csChargingProfiles: dict[str, Any] = Field(description="OCPP 1.6 ChargingProfile")


Location = Annotated[str, Field(min_length=1, max_length=512, description="URI")]
Retries = Annotated[int | None, Field(ge=0, le=1000)]
RetryInterval = Annotated[int | None, Field(ge=0, le=86400, description="Seconds")]


class FirmwareRequest(RequestBody):
    """UpdateFirmware (2.0.1: its firmware location and retrieve time)."""

    location: Location
    retrieveDate: ExpiryDate = Field(description="When the charger may fetch it")
    retries: Retries = None
    retryInterval: RetryInterval = None


class DiagnosticsRequest(RequestBody):
    """GetDiagnostics (2.0.1: GetLog of its DiagnosticsLog)."""

    location: Location = Field(description="Where the charger uploads the file (URI)")
    startTime: ExpiryDate | None = None
    stopTime: ExpiryDate | None = None
    retries: Retries = None
    retryInterval: RetryInterval = None


class TriggerRequest(RequestBody):
    requestedMessage: str = Field(min_length=1, max_length=50, description="1.6: BootNotification, "
                                  "DiagnosticsStatusNotification, FirmwareStatusNotification, Heartbeat, MeterValues, "
                                  "StatusNotification; 2.0.1 adds LogStatusNotification and others")
    connectorId: int | None = Field(None, ge=0, le=100, description="For StatusNotification and MeterValues "
                                                                     "(2.0.1: the EVSE)")


class PasswordRequest(RequestBody):
    password: str | None = Field(None, min_length=16, max_length=40,
                                 description="The new AuthorizationKey; left out, a random one is made")


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


QueryTime = Annotated[str, AfterValidator(normalize), WithJsonSchema({"type": "string", "format": "date-time"})]
"""A time in a query: ISO 8601, with an offset or taken as UTC, compared in its UTC form."""


class TransactionFilterQuery(BaseModel):
    """Which transactions: every filter is optional, and the ones given all apply."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    chargeBoxId: str | None = Field(None, description="Filter by charger")
    status: TransactionStatus | None = Field(None, description="Filter by status")
    idTag: str | None = Field(None, description="Filter by id tag (case-insensitive)")
    from_: QueryTime | None = Field(None, alias="from", description=(
        "Only transactions that started at or after this time (ISO 8601; without an offset, UTC)"))
    to: QueryTime | None = Field(None, description=(
        "Only transactions that started before this time (ISO 8601; without an offset, UTC)"))


class TransactionQuery(PageQuery, TransactionFilterQuery):
    cursor: str | None = Field(None, pattern="^[0-9]{1,19}$", description=(
        "Continue after the page that gave this pagination.nextCursor: stable however many charges "
        "start meanwhile (an offset shifts by one with each)"))


class MeterValueQuery(PageQuery):
    pass


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
    reservationId: int | None = Field(None, description="The reservation in force on it (GET /api/v1/reservations)")


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
    connectionLoops: int = Field(0, ge=0, description="Reconnect loops seen (a charger fault): a new connection "
                                                      "replaced a live one 3 times within 10 s")
    localList: LocalList


class LocalList(ResponseBody):
    """The charger's local authorization list as far as the controller knows it."""

    version: int = Field(description="The list version the charger holds (0: none)")
    state: Literal["unknown", "syncing", "synced", "stale", "failed", "unsupported"] = Field(
        description="unknown: never synced (or [ocpp] local_list = \"off\"); stale: changes wait for the "
                    "charger; failed: it refused the whole list (detail); unsupported: it keeps no local list")
    syncedAt: Timestamp | None
    maxLength: int | None = Field(description="SendLocalListMaxLength: entries per update, as the charger said")
    detail: str | None


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
    reservationId: int | None = Field(None, description="The reservation it used, or the one the charger named")
    closedBy: Literal["charger", "controller"] | None = Field(
        None, description="Who ended it: charger (its stop), controller (the charger started another charge on "
                          "the connector without stopping this one: completed with its last reading, stop reason "
                          "Other); null while open or for a start that failed")
    clockSuspect: bool = Field(False, description="The charger stamped the start or stop far from the"
                               " controller's clock (1970, 2099: its clock gone wrong); booked as sent, and"
                               " the duration is from the controller's own clock")


class TransactionPagination(Pagination):
    # Always sent, but not in the published transactions API: optional, so its example stays valid.
    nextCursor: str | None = Field(None, description="Give as `cursor` for the next page; null on the last page")


class TransactionList(ResponseBody):
    transactions: list[TransactionSummary]
    pagination: TransactionPagination


class MeterValue(ResponseBody):
    """One MeterValues sample of a transaction, as the charger sent it."""

    timestamp: Timestamp = Field(description="When the charger took the sample (its clock)")
    connectorId: int = Field(ge=0, description="The connector (2.0.1: the EVSE)")
    sampledValue: list[dict[str, Any]] = Field(description=(
        "The sampled values as the charger sent them: OCPP 1.6 SampledValue objects (value as text, "
        "measurand, unit, phase...), or 2.0.1 ones (value as a number, unitOfMeasure)"))


class MeterValueList(ResponseBody):
    transactionId: int
    meterValues: list[MeterValue] = Field(description="In the order they arrived (a charger's offline "
                                                      "backlog may arrive after later samples)")
    pagination: Pagination


class IdTag(ResponseBody):
    idTag: str
    status: Literal[ID_TAG_STATUSES]  # type: ignore[valid-type]
    expiryDate: Timestamp | None
    parentIdTag: str | None
    tokenType: TokenType = Field(description=TOKEN_TYPE_TEXT)


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
                                    "Reserved (held for another id tag), "
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


class ChargingProfile(ResponseBody):
    chargingProfileId: int
    connectorId: int
    purpose: str
    stackLevel: int
    status: str = Field(description="The charger's last answer: Accepted, Rejected, NotSupported, or pending "
                                    "(not answered yet: sent when the charger next boots)")
    sentAt: Timestamp | None
    createdAt: Timestamp
    csChargingProfiles: dict[str, Any]


class ChargingProfileList(ResponseBody):
    chargingProfiles: list[ChargingProfile]


class ClearedProfile(ResponseBody):
    chargingProfileId: int
    status: str = Field(description="The charger's answer to ClearChargingProfile (Accepted, Unknown: the "
                                    "record is gone)")


class Report(ResponseBody):
    id: int
    kind: Literal["firmware-request", "firmware", "boot", "diagnostics-request", "diagnostics", "log"]
    status: str = Field(description="A request: the charger's answer (NoAnswer: lost); a report: its status; "
                                    "a boot: the firmware version it booted with")
    detail: dict[str, Any] | None
    at: Timestamp


class FirmwareHistory(ResponseBody):
    chargeBoxId: str
    firmwareVersion: str | None = Field(description="From its last BootNotification")
    firmwareStatus: str | None
    history: list[Report] = Field(description="Newest first: requests, FirmwareStatusNotifications, boots")
    pagination: Pagination


class DiagnosticsHistory(ResponseBody):
    chargeBoxId: str
    diagnosticsStatus: str | None
    logStatus: str | None
    history: list[Report] = Field(description="Newest first: requests, DiagnosticsStatusNotifications "
                                              "(2.0.1 LogStatusNotifications)")
    pagination: Pagination


class TriggerResponse(ResponseBody):
    requestedMessage: str
    status: str = Field(description="The charger's answer: Accepted, Rejected, NotImplemented")


class PasswordResponse(ResponseBody):
    password: str = Field(description="The new key, shown this once (stored hashed)")
    status: str


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
