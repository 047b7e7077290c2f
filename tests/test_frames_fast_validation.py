"""The compiled schema checks (controller/csms/schemas.py) agree with jsonschema (the library's validator).

For every OCPP 1.6 action, CALL and CALLRESULT: payloads generated from the schema (hypothesis)
and thousands of random mutations of valid samples. The compiled check must say "valid" exactly
where the library's jsonschema Draft4Validator does (neither more, which would let an invalid
payload through, nor less, which would send a valid one down the slow path); for the three
`multipleOf: 0.1` schemas, left to jsonschema with Decimal numbers, validate() itself is checked.
validate() words the errors as before.
"""

from __future__ import annotations

import decimal
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.messages import get_validator

from controller.csms import frames
from controller.csms.schemas import decimals
from controller.csms.v16 import schemas as schemas16

ACTIONS = sorted({(frames.CALL, a) for a in schemas16.CHARGER_ACTIONS | schemas16.CENTRAL_ACTIONS}
                 | {(frames.CALLRESULT, a) for a in schemas16.CHARGER_ACTIONS | schemas16.CENTRAL_ACTIONS})

_PROFILE = {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute", "transactionId": 3,
            "chargingSchedule": {"chargingRateUnit": "A", "duration": 60, "minChargingRate": 6.1,
                                 "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.3, "numberPhases": 3},
                                                            {"startPeriod": 30, "limit": 32}]}}

SAMPLES = {
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

WEIRD = [None, True, False, 0, 1, -1, 1.0, 1.5, 0.1, 0.3, 16.35, -7.2, 2**63, 1e20, "", "x", "Accepted",
         "a" * 600, [], [1], {}, {"a": 1}, [{}], {"status": "Accepted"}]


def jsonschema_is_valid(kind: int, action: str, payload) -> bool | None:
    """jsonschema's verdict, as frames.validate asks for it; None where jsonschema cannot decide.

    (A `multipleOf: 0.1` check on a number of 10**27 or more overflows Decimal's 28 digits:
    jsonschema raises decimal.InvalidOperation, and so does validate() for those three schemas.)
    """
    if (kind, action) in schemas16.DECIMAL_SCHEMAS:
        validator = get_validator(kind, action, "1.6", parse_float=decimal.Decimal)
        payload = decimals(payload)
    else:
        validator = get_validator(kind, action, "1.6")
    try:
        return validator.is_valid(payload)
    except decimal.InvalidOperation:
        return None


def _check(kind: int, action: str):
    """The compiled check; for a schema left to jsonschema, validate()'s verdict."""
    check = schemas16.VALIDATOR.compiled(kind, action)
    if check is not None:
        return check

    def through_validate(payload) -> bool:
        try:
            schemas16.validate(kind, action, payload)
        except frames.OcppError:
            return False
        return True

    return through_validate


def _schema(kind: int, action: str) -> dict:
    if (kind, action) in schemas16.DECIMAL_SCHEMAS:
        return get_validator(kind, action, "1.6", parse_float=decimal.Decimal).schema
    return get_validator(kind, action, "1.6").schema


def test_every_schema_is_compiled_but_the_decimal_ones() -> None:
    uncompiled = {(kind, action) for kind, action in ACTIONS if schemas16.VALIDATOR.compiled(kind, action) is None}
    assert uncompiled == schemas16.DECIMAL_SCHEMAS


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
        else:
            value.append(rng.choice(WEIRD))
        return value
    if isinstance(value, str) and rng.random() < 0.5:
        return value + "x" * rng.choice([1, 20, 100, 600])
    if isinstance(value, (int, float)) and not isinstance(value, bool) and rng.random() < 0.5:
        value = rng.choice([value + 0.05, value + 0.1, value * 10, -value, float(value), value / 7])
        # as orjson decodes it: an integer beyond 64 bits comes as a float
        return value if isinstance(value, float) or -2**63 <= value < 2**64 else float(value)
    return rng.choice(WEIRD)


@pytest.mark.parametrize(("kind", "action"), ACTIONS)
def test_compiled_check_agrees_with_jsonschema_on_mutations(kind: int, action: str) -> None:
    check = _check(kind, action)
    rng = random.Random(f"{kind}{action}")
    seeds = [SAMPLES.get((kind, action), {}), {}]
    verdicts = {True: 0, False: 0}
    for n in range(3000):
        payload = _mutate(rng.choice(seeds), rng)
        if rng.random() < 0.3:
            payload = _mutate(payload, rng)
        slow = jsonschema_is_valid(kind, action, payload)
        if slow is None:
            continue
        assert check(payload) == slow, payload
        verdicts[slow] += 1
        if slow and rng.random() < 0.2:
            seeds.append(payload)
    for seed in seeds:
        assert check(seed) == jsonschema_is_valid(kind, action, seed), seed
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


def _from_schema(node: dict, valid: bool) -> st.SearchStrategy:
    """Values for `node`: valid ones, or (valid=False) mostly valid ones with invalid parts.

    The invalid parts are the edges where a compiled check could disagree with jsonschema: bools
    and integral floats for integers, floats off the 0.1 grid, strings at and past maxLength,
    enum look-alikes, missing and extra keys, empty arrays, any JSON in place of a value.
    """
    kind = node.get("type")
    tenths = st.integers(-10**7, 10**7).map(lambda n: n / 10)  # floats on the 0.1 grid
    if "enum" in node:
        good = st.sampled_from(node["enum"])
        bad = st.sampled_from(node["enum"]).map(str.lower) | st.text(max_size=10)
    elif kind == "string":
        limit = node.get("maxLength", 40)
        good = st.integers(0, limit).map(lambda n: "é" * n) | st.text(max_size=min(limit, 30))
        bad = st.integers(limit + 1, limit + 3).map(lambda n: "x" * n)
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
        item = _from_schema(node.get("items", {}), valid)
        good = st.lists(item, min_size=node.get("minItems", 0), max_size=3)
        bad = st.lists(item, max_size=1) | item.map(lambda v: {"0": v})
    elif kind == "object":
        props = node.get("properties", {})
        required = [k for k in node.get("required", []) if k in props]
        good = st.fixed_dictionaries({k: _from_schema(props[k], valid) for k in required},
                                     optional={k: _from_schema(v, valid) for k, v in props.items()
                                               if k not in required})
        bad = (st.tuples(good, st.sampled_from([*props, "extra"]), _json).map(lambda t: {**t[0], t[1]: t[2]})
               | good.map(lambda d: dict(list(d.items())[1:])))
    else:
        good = bad = _json
    return good if valid else st.one_of(good, good, good, good, good, good, bad, _json)


def _generated(kind: int, action: str) -> st.SearchStrategy:
    schema = _schema(kind, action)
    return _from_schema(schema, valid=True) | _from_schema(schema, valid=False)


@pytest.mark.parametrize(("kind", "action"), ACTIONS)
def test_compiled_check_agrees_with_jsonschema_on_generated_payloads(kind: int, action: str) -> None:
    check = _check(kind, action)

    @settings(max_examples=150, deadline=None, database=None)
    @given(_generated(kind, action))
    def agree(payload) -> None:
        slow = jsonschema_is_valid(kind, action, payload)
        if slow is not None:
            assert check(payload) == slow

    agree()


def test_sample_payloads_take_the_fast_path() -> None:
    for (kind, action), payload in SAMPLES.items():
        assert _check(kind, action)(payload), action
        assert jsonschema_is_valid(kind, action, payload), action
        if (kind, action) not in schemas16.DECIMAL_SCHEMAS:
            assert schemas16.VALIDATOR.compiled(kind, action)(payload), action


def test_draft4_types_bools_and_integral_floats() -> None:
    check = _check(frames.CALL, "StartTransaction")
    ok = {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "t"}
    assert check(ok)
    for meter_start in (True, 0.0, 1.0, "0", None):  # Draft 4: neither bools nor 1.0 are integers
        assert not check({**ok, "meterStart": meter_start})
        assert not jsonschema_is_valid(frames.CALL, "StartTransaction", {**ok, "meterStart": meter_start})
    check = _check(frames.CALLRESULT, "GetCompositeSchedule")
    schedule = SAMPLES[(3, "GetCompositeSchedule")]
    periods = schedule["chargingSchedule"]["chargingSchedulePeriod"]
    for limit, valid in ((16.3, True), (0.3, True), (7, True), (16.35, False), (True, False), (-0.1, True)):
        payload = {**schedule, "chargingSchedule": {**schedule["chargingSchedule"],
                                                    "chargingSchedulePeriod": [{**periods[0], "limit": limit}]}}
        assert check(payload) is valid, limit
        assert jsonschema_is_valid(frames.CALLRESULT, "GetCompositeSchedule", payload) is valid, limit


def test_formats_are_not_checked_as_by_the_library() -> None:
    # the library's Draft4Validator has no format checker: "date-time" and "uri" are any string
    assert _check(frames.CALL, "MeterValues")({"connectorId": 1, "meterValue": [
        {"timestamp": "not a date", "sampledValue": [{"value": "1"}]}]})
    assert _check(frames.CALL, "UpdateFirmware")({"location": "not a uri", "retrieveDate": "yesterday"})


def test_the_librarys_decimal_validators_stay_decimal() -> None:
    # the ocpp library caches one validator per schema whatever parse_float, and validates these
    # actions with Decimal itself: validating them must not have cached a float version
    for kind, action in schemas16.DECIMAL_SCHEMAS:
        schemas16.VALIDATOR.compiled(kind, action)
        _check(kind, action)(SAMPLES[(kind, action)])
        schema = get_validator(kind, action, "1.6", parse_float=decimal.Decimal).schema
        assert "Decimal('0.1')" in repr(schema), action


def test_errors_unchanged() -> None:
    bad = dict(SAMPLES[(2, "MeterValues")], extra=1)
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
