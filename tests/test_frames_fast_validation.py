"""The compiled schema checks (controller/csms/schemas.py) agree with jsonschema (the library's validator).

For every action of OCPP 1.6 and of OCPP 2.0.1, CALL and CALLRESULT: payloads generated from the
schema (hypothesis: valid ones, and ones with exactly one defect somewhere) and thousands of random
mutations of valid samples (some at the limits: arrays at their maxItems). The compiled check must say
"valid" exactly where the library's jsonschema Draft4Validator does (neither more, which would let
an invalid payload through, nor less, which would send a valid one down the slow path); for the
schemas left to jsonschema (1.6's three `multipleOf: 0.1` ones, checked with Decimal numbers, and
2.0.1's with `minimum`/`maximum`), validate() itself is checked. validate() words the errors in the
version's codes: 1.6's as before, 2.0.1's own (`FormatViolation`, `OccurrenceConstraintViolation`).
"""

from __future__ import annotations

import decimal
import random
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.messages import get_validator

from controller.csms import frames
from controller.csms.frames import CALL, CALLRESULT
from controller.csms.schemas import decimals
from controller.csms.v16 import schemas as schemas16
from controller.csms.v201 import schemas as schemas201

VERSIONS: dict[str, ModuleType] = {"1.6": schemas16, "2.0.1": schemas201}


def _actions(version: str) -> list[tuple[int, str]]:
    module = VERSIONS[version]
    return sorted({(kind, action) for kind in (CALL, CALLRESULT)
                   for action in module.CHARGER_ACTIONS | module.CENTRAL_ACTIONS})


ACTIONS = [pytest.param(version, kind, action, id=f"{version}-{kind}-{action}")
           for version in VERSIONS for kind, action in _actions(version)]

# The schemas the compiler leaves to jsonschema, as it cannot handle one of their keywords: 1.6's
# `multipleOf: 0.1` (validated with Decimal numbers), 2.0.1's `minimum` and `maximum`.
UNCOMPILED = {
    "1.6": schemas16.DECIMAL_SCHEMAS,
    "2.0.1": frozenset({(CALL, "NotifyChargingLimit"), (CALL, "NotifyEVChargingNeeds"),
                        (CALL, "NotifyEVChargingSchedule"), (CALL, "ReportChargingProfiles"),
                        (CALL, "RequestStartTransaction"), (CALL, "SetChargingProfile")}),
}
# What compile_check handles: validation keywords, and annotations without effect on Draft 4.
COMPILED_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "enum", "maxLength", "items", "minItems",
    "maxItems", "$ref", "$schema", "$id", "id", "title", "description", "comment", "definitions", "javaType",
    "format", "default", "additionalItems",
})
# The codes validate() may answer a payload its schema refuses with, per version.
SCHEMA_CODES = {
    "1.6": {"FormationViolation", "ProtocolError", "TypeConstraintViolation", "PropertyConstraintViolation",
            "OccurenceConstraintViolation"},
    "2.0.1": {"FormatViolation", "OccurrenceConstraintViolation", "TypeConstraintViolation",
              "PropertyConstraintViolation"},
}

_PROFILE = {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute", "transactionId": 3,
            "chargingSchedule": {"chargingRateUnit": "A", "duration": 60, "minChargingRate": 6.1,
                                 "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.3, "numberPhases": 3},
                                                            {"startPeriod": 30, "limit": 32}]}}

SAMPLES16 = {
    (2, "MeterValues"): {"connectorId": 1, "transactionId": 5, "meterValue": [
        {"timestamp": "2026-02-06T12:00:00Z", "sampledValue": [
            {"value": "12.5", "context": "Sample.Periodic", "format": "Raw", "measurand": "Energy.Active.Import.Register",
             "phase": "L1", "location": "Outlet", "unit": "kWh"}, {"value": "1"}]}]},
    (2, "BootNotification"): {"chargePointVendor": "V", "chargePointModel": "M", "firmwareVersion": "1"},
    (2, "StatusNotification"): {"connectorId": 1, "errorCode": "NoError", "status": "Available", "info": "x",
                                "timestamp": "2026-02-06T12:00:00Z", "vendorErrorCode": "e", "vendorId": "v"},
    (2, "StartTransaction"): {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "t",
                              "reservationId": 3},
    (2, "StopTransaction"): {"transactionId": 1, "meterStop": 10, "timestamp": "t", "idTag": "T", "reason": "Local",
                             "transactionData": [{"timestamp": "t", "sampledValue": [{"value": "1", "unit": "Wh"}]}]},
    (2, "Heartbeat"): {},
    (2, "Authorize"): {"idTag": "ABC"},
    (2, "DataTransfer"): {"vendorId": "v", "messageId": "m", "data": "d"},
    (3, "BootNotification"): {"status": "Accepted", "currentTime": "t", "interval": 300},
    (3, "StartTransaction"): {"transactionId": 1, "idTagInfo": {"status": "Accepted", "expiryDate": "t",
                                                                "parentIdTag": "P"}},
    (3, "GetConfiguration"): {"configurationKey": [{"key": "k", "readonly": True, "value": "v"}],
                              "unknownKey": ["x"]},
    (2, "SendLocalList"): {"listVersion": 1, "updateType": "Full", "localAuthorizationList": [
        {"idTag": "A", "idTagInfo": {"status": "Accepted"}}]},
    (2, "ChangeAvailability"): {"connectorId": 0, "type": "Operative"},
    # the three schemas with `multipleOf: 0.1`
    (2, "SetChargingProfile"): {"connectorId": 1, "csChargingProfiles": _PROFILE},
    (2, "RemoteStartTransaction"): {"idTag": "A", "connectorId": 1, "chargingProfile": _PROFILE},
    (3, "GetCompositeSchedule"): {"status": "Accepted", "connectorId": 1, "scheduleStart": "t",
                                  "chargingSchedule": _PROFILE["chargingSchedule"]},
}

TS = "2026-02-06T12:00:00Z"
_ID_TOKEN = {"idToken": "CARD-1", "type": "ISO14443", "additionalInfo": [{"additionalIdToken": "x", "type": "t"}]}
_EVSE = {"id": 1, "connectorId": 1}
_METER = [{"timestamp": TS, "sampledValue": [
    {"value": 1234.5, "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register", "phase": "L1",
     "location": "Outlet", "unitOfMeasure": {"unit": "kWh", "multiplier": 0}},
    {"value": 7, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}},
    {"value": 1, "signedMeterValue": {"signedMeterData": "d", "signingMethod": "m", "encodingMethod": "e",
                                      "publicKey": "k"}}]}]
_COMPONENT = {"name": "OCPPCommCtrlr", "instance": "i", "evse": _EVSE}
_VARIABLE = {"name": "HeartbeatInterval", "instance": "i"}
_HASH = {"hashAlgorithm": "SHA256", "issuerNameHash": "n", "issuerKeyHash": "k", "serialNumber": "s",
         "responderURL": "u"}
_CERT_HASH = {"hashAlgorithm": "SHA256", "issuerNameHash": "n", "issuerKeyHash": "k", "serialNumber": "s"}
_ID_TOKEN_INFO = {"status": "Accepted", "cacheExpiryDateTime": TS, "chargingPriority": 0, "language1": "en",
                  "groupIdToken": {"idToken": "FLEET", "type": "Central"}, "evseId": [1],
                  "personalMessage": {"format": "UTF8", "content": "hi"}}


def _event(event_type: str, trigger: str, seq_no: int, info: dict | None = None, **extra) -> dict:
    return {"eventType": event_type, "timestamp": TS, "triggerReason": trigger, "seqNo": seq_no,
            "transactionInfo": {"transactionId": "tx-1", "chargingState": "Charging", **(info or {})},
            "meterValue": _METER, **extra}


SAMPLES201 = {
    # what a station sends
    (2, "BootNotification"): [{"reason": "PowerUp", "chargingStation": {
        "model": "m", "vendorName": "v", "serialNumber": "s", "firmwareVersion": "1",
        "modem": {"iccid": "i", "imsi": "i"}}, "customData": {"vendorId": "acme", "anything": [1]}}],
    (2, "StatusNotification"): [{"timestamp": TS, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}],
    (2, "Authorize"): [{"idToken": _ID_TOKEN, "certificate": "c", "iso15118CertificateHashData": [_HASH] * 4}],
    (2, "TransactionEvent"): [
        _event("Started", "Authorized", 0, {"remoteStartId": 9}, idToken=_ID_TOKEN, evse=_EVSE, offline=False,
               numberOfPhasesUsed=3, cableMaxCurrent=32, reservationId=4),
        _event("Updated", "MeterValuePeriodic", 1),
        _event("Ended", "StopAuthorized", 2, {"stoppedReason": "EVDisconnected", "timeSpentCharging": 60},
               idToken={"idToken": "CARD-1", "type": "ISO14443"}),
    ],
    (2, "MeterValues"): [{"evseId": 1, "meterValue": _METER}],
    (2, "Heartbeat"): [{}],
    (2, "NotifyReport"): [{"requestId": 1, "generatedAt": TS, "seqNo": 0, "tbc": False, "reportData": [
        {"component": _COMPONENT, "variable": _VARIABLE,
         "variableAttribute": [{"type": "Actual", "value": "300", "mutability": "ReadWrite", "persistent": True,
                                "constant": False}, {"type": "Target"}, {"type": "MinSet"}, {"type": "MaxSet"}],
         "variableCharacteristics": {"unit": "s", "dataType": "integer", "minLimit": 0, "maxLimit": 3600.5,
                                     "valuesList": "a,b", "supportsMonitoring": False}}]}],
    (2, "FirmwareStatusNotification"): [{"status": "Installed", "requestId": 1}],
    (2, "LogStatusNotification"): [{"status": "Uploaded", "requestId": 1}],
    (2, "DataTransfer"): [{"vendorId": "acme", "messageId": "m", "data": {"any": ["json", 1]}}],
    (2, "SecurityEventNotification"): [{"type": "FirmwareUpdated", "timestamp": TS, "techInfo": "t"}],
    (2, "NotifyEvent"): [{"generatedAt": TS, "seqNo": 0, "tbc": False, "eventData": [
        {"eventId": 1, "timestamp": TS, "trigger": "Alerting", "cause": 0, "actualValue": "v", "techCode": "c",
         "techInfo": "i", "cleared": True, "transactionId": "tx-1", "variableMonitoringId": 2,
         "eventNotificationType": "HardWiredNotification", "component": _COMPONENT, "variable": _VARIABLE}]}],
    (2, "ReservationStatusUpdate"): [{"reservationId": 1, "reservationUpdateStatus": "Expired"}],
    (2, "ClearedChargingLimit"): [{"chargingLimitSource": "EMS", "evseId": 1}],
    (2, "NotifyEVChargingNeeds"): [{"evseId": 1, "maxScheduleTuples": 3, "chargingNeeds": {
        "requestedEnergyTransfer": "DC", "departureTime": TS, "dcChargingParameters": {
            "evMaxCurrent": 100, "evMaxVoltage": 400, "stateOfCharge": 0, "fullSoC": 100, "bulkSoC": 80}}}],
    # what we send a station
    (2, "RequestStartTransaction"): [{"idToken": {"idToken": "REMOTE-1", "type": "ISO14443"}, "remoteStartId": 1,
                                      "evseId": 1}],
    (2, "RequestStopTransaction"): [{"transactionId": "tx-1"}],
    (2, "UnlockConnector"): [{"evseId": 1, "connectorId": 1}],
    (2, "GetVariables"): [{"getVariableData": [{"component": _COMPONENT, "variable": _VARIABLE,
                                                "attributeType": "Actual"}]}],
    (2, "SetVariables"): [{"setVariableData": [{"component": _COMPONENT, "variable": _VARIABLE,
                                                "attributeValue": "300", "attributeType": "Actual"}]}],
    (2, "Reset"): [{"type": "Immediate", "evseId": 1}],
    (2, "ChangeAvailability"): [{"operationalStatus": "Inoperative", "evse": _EVSE}],
    (2, "TriggerMessage"): [{"requestedMessage": "StatusNotification", "evse": _EVSE}],
    (2, "GetBaseReport"): [{"requestId": 1, "reportBase": "FullInventory"}],
    # (arrays at their maxItems: one item more is invalid)
    (2, "GetReport"): [{"requestId": 1, "componentCriteria": ["Active", "Available", "Enabled", "Problem"],
                        "componentVariable": [{"component": _COMPONENT, "variable": _VARIABLE}]}],
    (2, "GetMonitoringReport"): [{"requestId": 1, "monitoringCriteria": ["ThresholdMonitoring", "DeltaMonitoring",
                                                                         "PeriodicMonitoring"]}],
    (2, "GetChargingProfiles"): [{"requestId": 1, "evseId": 1, "chargingProfile": {
        "chargingProfilePurpose": "TxProfile", "stackLevel": 0, "chargingProfileId": [1, 2],
        "chargingLimitSource": ["EMS", "Other", "SO", "CSO"]}}],
    # our answers
    (3, "BootNotification"): [{"status": "Accepted", "currentTime": TS, "interval": 300,
                               "statusInfo": {"reasonCode": "r", "additionalInfo": "a"}}],
    (3, "Heartbeat"): [{"currentTime": TS}],
    (3, "StatusNotification"): [{}],
    (3, "Authorize"): [{"idTokenInfo": _ID_TOKEN_INFO, "certificateStatus": "Accepted"}],
    (3, "TransactionEvent"): [{"idTokenInfo": _ID_TOKEN_INFO, "totalCost": 1.5, "chargingPriority": 0,
                               "updatedPersonalMessage": {"format": "ASCII", "content": "c", "language": "en"}},
                              {}],
    (3, "MeterValues"): [{}],
    (3, "DataTransfer"): [{"status": "UnknownVendorId", "data": None}],
    (3, "FirmwareStatusNotification"): [{}],
    (3, "LogStatusNotification"): [{}],
    (3, "NotifyReport"): [{}],
    (3, "NotifyEvent"): [{}],
    (3, "SecurityEventNotification"): [{}],
    (3, "NotifyEVChargingNeeds"): [{"status": "Rejected"}],
    # a station's answers to ours
    (3, "RequestStartTransaction"): [{"status": "Accepted", "transactionId": "tx-1"}],
    (3, "RequestStopTransaction"): [{"status": "Rejected", "statusInfo": {"reasonCode": "r"}}],
    (3, "UnlockConnector"): [{"status": "Unlocked"}],
    (3, "GetVariables"): [{"getVariableResult": [{"attributeStatus": "Accepted", "attributeValue": "300",
                                                  "attributeType": "Actual", "component": _COMPONENT,
                                                  "variable": _VARIABLE}]}],
    (3, "GetInstalledCertificateIds"): [{"status": "Accepted", "certificateHashDataChain": [
        {"certificateType": "V2GCertificateChain", "certificateHashData": _CERT_HASH,
         "childCertificateHashData": [_CERT_HASH] * 4}]}],
    (3, "SetVariables"): [{"setVariableResult": [{"attributeStatus": "RebootRequired", "component": _COMPONENT,
                                                  "variable": _VARIABLE}]}],
}
STATION_SENDS = {"BootNotification", "StatusNotification", "Authorize", "TransactionEvent", "MeterValues",
                 "Heartbeat", "NotifyReport", "FirmwareStatusNotification", "LogStatusNotification", "DataTransfer",
                 "SecurityEventNotification", "NotifyEvent"}

SAMPLES: dict[str, dict[tuple[int, str], list[dict]]] = {
    "1.6": {key: [payload] for key, payload in SAMPLES16.items()},
    "2.0.1": SAMPLES201,
}

WEIRD = [None, True, False, 0, 1, -1, 1.0, 1.5, 0.1, 0.3, 16.35, -7.2, 2**63, 1e20, "", "x", "Accepted",
         "a" * 600, [], [1], {}, {"a": 1}, [{}], {"status": "Accepted"}]


def jsonschema_is_valid(version: str, kind: int, action: str, payload) -> bool | None:
    """jsonschema's verdict, as validate() asks for it; None where jsonschema cannot decide.

    (A `multipleOf: 0.1` check on a number of 10**27 or more overflows Decimal's 28 digits:
    jsonschema raises decimal.InvalidOperation, and so does validate() for those three schemas.)
    """
    if (kind, action) in VERSIONS[version].VALIDATOR.decimal_schemas:
        validator = get_validator(kind, action, version, parse_float=decimal.Decimal)
        payload = decimals(payload)
    else:
        validator = get_validator(kind, action, version)
    try:
        return validator.is_valid(payload)
    except decimal.InvalidOperation:
        return None


def _check(version: str, kind: int, action: str):
    """The compiled check; for a schema left to jsonschema, validate()'s verdict."""
    module = VERSIONS[version]
    check = module.VALIDATOR.compiled(kind, action)
    if check is not None:
        return check

    def through_validate(payload) -> bool:
        try:
            module.validate(kind, action, payload)
        except frames.OcppError:
            return False
        return True

    return through_validate


def _schema(version: str, kind: int, action: str) -> dict:
    if (kind, action) in VERSIONS[version].VALIDATOR.decimal_schemas:
        return get_validator(kind, action, version, parse_float=decimal.Decimal).schema
    return get_validator(kind, action, version).schema


def _resolve(node: dict, root: dict) -> dict:
    """A schema node with its `$ref`s followed (both versions refer only within the schema)."""
    while "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _keywords(schema: dict) -> set[str]:
    """The keywords of every node a payload can reach in `schema`."""
    found: set[str] = set()

    def walk(node: dict) -> None:
        found.update(node)
        node = _resolve(node, schema)
        found.update(node)
        for sub in node.get("properties", {}).values():
            walk(sub)
        if isinstance(node.get("items"), dict):
            walk(node["items"])

    walk(schema)
    return found


@pytest.mark.parametrize("version", VERSIONS)
def test_every_schema_is_compiled_but_those_with_keywords_the_compiler_lacks(version: str) -> None:
    validator = VERSIONS[version].VALIDATOR
    uncompiled = {(kind, action) for kind, action in _actions(version) if validator.compiled(kind, action) is None}
    assert uncompiled == UNCOMPILED[version]
    lacking = {(kind, action) for kind, action in _actions(version)
               if _keywords(_schema(version, kind, action)) - COMPILED_KEYWORDS}
    assert lacking == UNCOMPILED[version]
    assert validator.decimal_schemas <= UNCOMPILED[version]


def _mutate(value, rng: random.Random, depth: int = 0):
    if isinstance(value, dict) and value and rng.random() < 0.8:
        value = dict(value)
        key = rng.choice(list(value))
        op = rng.random()
        if op < 0.2:
            del value[key]
        elif op < 0.3:
            value["extraKey"] = 1
        elif op < 0.7:
            value[key] = _mutate(value[key], rng, depth + 1)
        else:
            value[key] = rng.choice(WEIRD)
        return value
    if isinstance(value, list) and value and rng.random() < 0.8:
        value = list(value)
        i = rng.randrange(len(value))
        op = rng.random()
        if op < 0.2:
            del value[i]
        elif op < 0.6:
            value[i] = _mutate(value[i], rng, depth + 1)
        elif op < 0.8:
            value.append(rng.choice(WEIRD))
        else:  # one valid item more: past maxItems for a sample at the limit
            value.append(value[i])
        return value
    if isinstance(value, str) and rng.random() < 0.5:
        return value + "x" * rng.choice([1, 20, 100, 600])
    if isinstance(value, (int, float)) and not isinstance(value, bool) and rng.random() < 0.5:
        value = rng.choice([value + 0.05, value + 0.1, value * 10, -value, float(value), value / 7])
        # as orjson decodes it: an integer beyond 64 bits comes as a float
        return value if isinstance(value, float) or -2**63 <= value < 2**64 else float(value)
    return rng.choice(WEIRD)


def _assert_worded(version: str, kind: int, action: str, payload) -> None:
    """validate() refuses an invalid payload with one of the version's codes and says where."""
    with pytest.raises(frames.OcppError) as exc:
        VERSIONS[version].validate(kind, action, payload)
    assert exc.value.code in SCHEMA_CODES[version], (exc.value.code, payload)
    assert ": " in exc.value.description, exc.value.description


@pytest.mark.parametrize(("version", "kind", "action"), ACTIONS)
def test_compiled_check_agrees_with_jsonschema_on_mutations(version: str, kind: int, action: str) -> None:
    check = _check(version, kind, action)
    rng = random.Random(f"{kind}{action}" if version == "1.6" else f"{version}{kind}{action}")
    seeds = [*SAMPLES[version].get((kind, action), [{}]), {}]
    verdicts = {True: 0, False: 0}
    for n in range(3000):
        payload = _mutate(rng.choice(seeds), rng)
        if rng.random() < 0.3:
            payload = _mutate(payload, rng)
        slow = jsonschema_is_valid(version, kind, action, payload)
        if slow is None:
            continue
        assert check(payload) == slow, payload
        verdicts[slow] += 1
        if slow and rng.random() < 0.2:
            seeds.append(payload)
        if not slow and n % 10 == 0:
            _assert_worded(version, kind, action, payload)
    for seed in seeds:
        assert check(seed) == jsonschema_is_valid(version, kind, action, seed), seed
    assert verdicts[False] > 500  # the mutations do reach invalid payloads


# -- payloads generated from the schema itself --------------------------------------------------

# Payloads as orjson decodes them (frames, REST bodies): integers within 64 bits (beyond, floats).
_ints = st.integers(min_value=-2**63, max_value=2**64 - 1)
_json = st.recursive(
    st.none() | st.booleans() | _ints | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


class _Payloads:
    """Payloads for one schema, from the schema itself: valid ones, and ones with exactly one defect
    (so that a check the compiler forgot is the only thing wrong with them).

    The defects are the edges where a compiled check could disagree with jsonschema: bools and
    integral floats for integers, floats off the 0.1 grid, numbers just out of bounds, strings past
    maxLength, enum look-alikes, missing and extra keys, arrays too short or too long, any JSON in
    place of a value.
    """

    def __init__(self, root: dict) -> None:
        self.root = root
        self._memo: dict[tuple[int, bool], st.SearchStrategy] = {}

    def valid(self, node: dict) -> st.SearchStrategy:
        return self._strategy(node, True)

    def one_defect(self, node: dict) -> st.SearchStrategy:
        return self._strategy(node, False)

    def _strategy(self, node: dict, valid: bool) -> st.SearchStrategy:
        node = _resolve(node, self.root)
        key = (id(node), valid)
        if key not in self._memo:  # (2.0.1's definitions are shared by many properties)
            self._memo[key] = st.deferred(lambda: self._build(node, valid))
        return self._memo[key]

    def _build(self, node: dict, valid: bool) -> st.SearchStrategy:
        kind = node.get("type")
        tenths = st.integers(-10**7, 10**7).map(lambda n: n / 10)  # floats on the 0.1 grid
        low, high = node.get("minimum"), node.get("maximum")
        inner: list[st.SearchStrategy] = []  # values with the defect further in
        if "enum" in node:
            good = st.sampled_from(node["enum"])
            bad = st.sampled_from(node["enum"]).map(str.lower) | st.text(max_size=10)
        elif kind == "string":
            limit = node.get("maxLength", 40)
            good = st.integers(0, limit).map(lambda n: "é" * n) | st.text(max_size=min(limit, 30))
            bad = st.integers(limit + 1, limit + 3).map(lambda n: "x" * n)
        elif kind in ("integer", "number") and (low is not None or high is not None):
            low_n = int(low) if low is not None else -2**63
            high_n = int(high) if high is not None else 2**63
            good = st.integers(low_n, high_n)
            if kind == "number":
                good |= st.floats(low_n, high_n)
            edges = [*([low_n - 1, low - 0.5] if low is not None else []),
                     *([high_n + 1, high + 0.5] if high is not None else [])]
            bad = st.booleans() | st.sampled_from(edges) | st.integers(low_n, high_n).map(float)
        elif kind == "integer":
            good = st.integers(-2, 2) | _ints
            bad = st.booleans() | st.integers(-2, 2).map(float) | tenths
        elif kind == "number":
            good = _ints | tenths
            if "multipleOf" not in node:
                good |= st.floats(allow_nan=False, allow_infinity=False)
            bad = st.booleans() | st.integers(-10**7, 10**7).map(lambda n: n / 100) | st.floats(allow_nan=False)
        elif kind == "boolean":
            good, bad = st.booleans(), st.sampled_from([0, 1, "true", None])
        elif kind == "array":
            item = self.valid(node.get("items", {}))
            least, most = node.get("minItems", 0), node.get("maxItems", 3)
            good = st.lists(item, min_size=min(least, most), max_size=min(3, most))
            bad = item.map(lambda v: {"0": v})
            if least:
                bad |= st.just([])
            if "maxItems" in node:
                bad |= st.lists(item, min_size=most + 1, max_size=most + 2)
            some = st.lists(item, max_size=min(1, (most - 1) // 2))
            inner.append(st.tuples(some, self.one_defect(node.get("items", {})), some)
                         .map(lambda t: [*t[0], t[1], *t[2]]))
        elif kind == "object":
            props = node.get("properties", {})
            required = [k for k in node.get("required", []) if k in props]

            def with_defect_in(name: str | None) -> st.SearchStrategy:
                return st.fixed_dictionaries(
                    {**{k: self.valid(props[k]) for k in required if k != name},
                     **({name: self.one_defect(props[name])} if name else {})},
                    optional={k: self.valid(v) for k, v in props.items() if k not in required and k != name})

            good = with_defect_in(None)
            bad = (st.tuples(good, st.sampled_from([*props, "extra"]), _json).map(lambda t: {**t[0], t[1]: t[2]})
                   | good.map(lambda d: dict(list(d.items())[1:])))
            inner += [with_defect_in(name) for name in props]
        else:
            good = bad = _json
        return good if valid else st.one_of(bad, _json, *inner)


def _generated(version: str, kind: int, action: str) -> st.SearchStrategy:
    payloads = _Payloads(_schema(version, kind, action))
    return payloads.valid(payloads.root) | payloads.one_defect(payloads.root)


# 2.0.1's schemas are deeper (and twice as many): fewer examples each, for the same time in all.
GENERATED_EXAMPLES = {"1.6": 150, "2.0.1": 60}


@pytest.mark.parametrize(("version", "kind", "action"), ACTIONS)
def test_compiled_check_agrees_with_jsonschema_on_generated_payloads(version: str, kind: int, action: str) -> None:
    check = _check(version, kind, action)

    @settings(max_examples=GENERATED_EXAMPLES[version], deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_generated(version, kind, action))
    def agree(payload) -> None:
        slow = jsonschema_is_valid(version, kind, action, payload)
        if slow is not None:
            assert check(payload) == slow

    agree()


@pytest.mark.parametrize("version", VERSIONS)
def test_sample_payloads_take_the_fast_path(version: str) -> None:
    for (kind, action), payloads in SAMPLES[version].items():
        for payload in payloads:
            assert _check(version, kind, action)(payload), action
            assert jsonschema_is_valid(version, kind, action, payload), action
            if (kind, action) not in UNCOMPILED[version]:
                assert VERSIONS[version].VALIDATOR.compiled(kind, action)(payload), action


def test_the_2_0_1_samples_cover_what_stations_send_and_we_answer() -> None:
    calls = {action for kind, action in SAMPLES201 if kind == CALL}
    assert calls >= STATION_SENDS
    assert calls >= {"RequestStartTransaction", "RequestStopTransaction", "UnlockConnector"}  # remote control
    assert {action for kind, action in SAMPLES201 if kind == CALLRESULT} >= STATION_SENDS
    events = SAMPLES201[(CALL, "TransactionEvent")]
    assert [e["eventType"] for e in events] == ["Started", "Updated", "Ended"]
    assert all(e["meterValue"] for e in events)


# One field of an integer in each version: Draft 4 (the library's validator for both versions, though
# 2.0.1's schemas say draft-06) counts neither bools nor integral floats like 1.0 as integers.
_INTEGER_FIELDS = {
    "1.6": ("StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "t"}, "meterStart"),
    "2.0.1": ("TransactionEvent", {"eventType": "Updated", "timestamp": TS, "triggerReason": "MeterValuePeriodic",
                                   "seqNo": 0, "transactionInfo": {"transactionId": "tx-1"}}, "seqNo"),
}


@pytest.mark.parametrize("version", VERSIONS)
def test_draft4_types_bools_and_integral_floats(version: str) -> None:
    action, ok, field = _INTEGER_FIELDS[version]
    check = _check(version, CALL, action)
    assert check(ok)
    for value in (True, 0.0, 1.0, "0", None):
        assert not check({**ok, field: value}), value
        assert not jsonschema_is_valid(version, CALL, action, {**ok, field: value}), value


def test_draft4_numbers_and_the_decimal_grid_in_1_6() -> None:
    check = _check("1.6", CALLRESULT, "GetCompositeSchedule")
    schedule = SAMPLES16[(3, "GetCompositeSchedule")]
    periods = schedule["chargingSchedule"]["chargingSchedulePeriod"]
    for limit, valid in ((16.3, True), (0.3, True), (7, True), (16.35, False), (True, False), (-0.1, True)):
        payload = {**schedule, "chargingSchedule": {**schedule["chargingSchedule"],
                                                    "chargingSchedulePeriod": [{**periods[0], "limit": limit}]}}
        assert check(payload) is valid, limit
        assert jsonschema_is_valid("1.6", CALLRESULT, "GetCompositeSchedule", payload) is valid, limit


def test_draft4_numbers_and_bounds_in_2_0_1() -> None:
    meter = SAMPLES201[(CALL, "MeterValues")][0]
    check = _check("2.0.1", CALL, "MeterValues")
    for value, valid in ((16.35, True), (7, True), (-1e300, True), (2**64 - 1, True), (True, False), ("1", False)):
        payload = {"evseId": 1, "meterValue": [{**meter["meterValue"][0], "sampledValue": [{"value": value}]}]}
        assert check(payload) is valid, value
        assert jsonschema_is_valid("2.0.1", CALL, "MeterValues", payload) is valid, value
    needs = SAMPLES201[(CALL, "NotifyEVChargingNeeds")][0]
    check = _check("2.0.1", CALL, "NotifyEVChargingNeeds")  # `minimum`/`maximum`: jsonschema decides
    for soc, valid in ((0, True), (100, True), (-1, False), (101, False), (50.0, False), (True, False)):
        dc = {**needs["chargingNeeds"]["dcChargingParameters"], "stateOfCharge": soc}
        payload = {**needs, "chargingNeeds": {**needs["chargingNeeds"], "dcChargingParameters": dc}}
        assert check(payload) is valid, soc
        assert jsonschema_is_valid("2.0.1", CALL, "NotifyEVChargingNeeds", payload) is valid, soc


_FORMATS = {  # the library's Draft4Validator has no format checker: "date-time" and "uri" are any string
    "1.6": [("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": "not a date",
                                                                "sampledValue": [{"value": "1"}]}]}),
            ("UpdateFirmware", {"location": "not a uri", "retrieveDate": "yesterday"})],
    "2.0.1": [("MeterValues", {"evseId": 1, "meterValue": [{"timestamp": "not a date",
                                                             "sampledValue": [{"value": 1}]}]}),
              ("UpdateFirmware", {"requestId": 1, "firmware": {"location": "not a uri",
                                                               "retrieveDateTime": "yesterday"}})],
}


@pytest.mark.parametrize("version", VERSIONS)
def test_formats_are_not_checked_as_by_the_library(version: str) -> None:
    for action, payload in _FORMATS[version]:
        assert _check(version, CALL, action)(payload), action
        assert jsonschema_is_valid(version, CALL, action, payload), action


def test_the_librarys_decimal_validators_stay_decimal() -> None:
    # the ocpp library caches one validator per schema whatever parse_float, and validates these
    # actions with Decimal itself: validating them must not have cached a float version
    for kind, action in schemas16.DECIMAL_SCHEMAS:
        schemas16.VALIDATOR.compiled(kind, action)
        _check("1.6", kind, action)(SAMPLES16[(kind, action)])
        schema = get_validator(kind, action, "1.6", parse_float=decimal.Decimal).schema
        assert "Decimal('0.1')" in repr(schema), action


def test_errors_unchanged() -> None:
    bad = dict(SAMPLES16[(2, "MeterValues")], extra=1)
    with pytest.raises(frames.OcppError) as exc:
        schemas16.validate(frames.CALL, "MeterValues", bad)
    assert exc.value.code == "FormationViolation"
    assert exc.value.description == "payload: Additional properties are not allowed ('extra' was unexpected)"
    with pytest.raises(frames.OcppError) as exc:
        schemas16.validate(frames.CALL, "Heartbeat", [])
    assert exc.value.code == "FormationViolation"
    with pytest.raises(frames.OcppError) as exc:
        schemas16.validate(frames.CALL, "Authorize", {"idTag": "x" * 21})
    assert exc.value.code == "TypeConstraintViolation"
    assert exc.value.description == f"idTag: '{'x' * 21}' is too long"
    with pytest.raises(frames.OcppError) as exc:
        schemas16.validate(frames.CALL, "StatusNotification", {"connectorId": 1, "errorCode": "NoError"})
    assert exc.value.code == "ProtocolError"
    profile = {**_PROFILE, "chargingSchedule": {"chargingRateUnit": "A",
                                                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.35}]}}
    with pytest.raises(frames.OcppError) as exc:
        schemas16.validate(frames.CALL, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile})
    assert exc.value.code == "PropertyConstraintViolation"
    assert exc.value.description.startswith(
        "csChargingProfiles/chargingSchedule/chargingSchedulePeriod/0/limit: Decimal('16.35') is not a multiple of")


def _event_without(**changes) -> dict:
    return {**SAMPLES201[(CALL, "TransactionEvent")][1], **changes}


@pytest.mark.parametrize(("kind", "action", "payload", "code", "description"), [
    (CALL, "MeterValues", {**SAMPLES201[(CALL, "MeterValues")][0], "extra": 1}, "FormatViolation",
     "payload: Additional properties are not allowed ('extra' was unexpected)"),
    (CALL, "TransactionEvent", _event_without(transactionInfo={"transactionId": "t", "x": 1}), "FormatViolation",
     "transactionInfo: Additional properties are not allowed ('x' was unexpected)"),
    (CALL, "Heartbeat", [], "FormatViolation", "payload: [] is not of type 'object'"),
    (CALL, "StatusNotification", {"timestamp": TS, "evseId": 1, "connectorId": 1}, "OccurrenceConstraintViolation",
     "payload: 'connectorStatus' is a required property"),
    (CALL, "TransactionEvent", _event_without(transactionInfo={}), "OccurrenceConstraintViolation",
     "transactionInfo: 'transactionId' is a required property"),
    (CALL, "MeterValues", {"evseId": 1, "meterValue": []}, "OccurrenceConstraintViolation",
     "meterValue: [] should be non-empty"),
    (CALLRESULT, "Authorize", {"idTokenInfo": {"status": "Accepted", "evseId": []}}, "OccurrenceConstraintViolation",
     "idTokenInfo/evseId: [] should be non-empty"),
    (CALL, "Authorize", {"idToken": {"idToken": "x" * 37, "type": "ISO14443"}}, "TypeConstraintViolation",
     f"idToken/idToken: '{'x' * 37}' is too long"),
    (CALL, "TransactionEvent", _event_without(seqNo="1"), "TypeConstraintViolation",
     "seqNo: '1' is not of type 'integer'"),
    (CALL, "StatusNotification", {"timestamp": TS, "evseId": 1, "connectorId": 1, "connectorStatus": "Preparing"},
     "PropertyConstraintViolation",
     "connectorStatus: 'Preparing' is not one of ['Available', 'Occupied', 'Reserved', 'Unavailable', 'Faulted']"),
    (CALL, "NotifyEVChargingNeeds", {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC",
                                     "dcChargingParameters": {"evMaxCurrent": 1, "evMaxVoltage": 1, "bulkSoC": -1}}},
     "PropertyConstraintViolation", "chargingNeeds/dcChargingParameters/bulkSoC: -1 is less than the minimum of 0.0"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 30 and " " not in v else None)
def test_2_0_1_errors_carry_2_0_1_codes(kind: int, action: str, payload, code: str, description: str) -> None:
    with pytest.raises(frames.OcppError) as exc:
        schemas201.validate(kind, action, payload)
    assert (exc.value.code, exc.value.description) == (code, description)
