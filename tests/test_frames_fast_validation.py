"""The compiled schema checks in frames.validate agree with jsonschema (the library's validator).

For every OCPP 1.6 schema, valid samples and thousands of random mutations of them: the compiled
check may only say "valid" where jsonschema says valid, and validate() raises the same errors.
"""

from __future__ import annotations

import random

import pytest
from ocpp.messages import get_validator

from controller.csms import frames

ACTIONS = sorted({(frames.CALL, a) for a in frames.CHARGER_ACTIONS | frames.CENTRAL_ACTIONS}
                 | {(frames.CALLRESULT, a) for a in frames.CHARGER_ACTIONS | frames.CENTRAL_ACTIONS})

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
}

WEIRD = [None, True, False, 0, 1, -1, 1.0, 1.5, "", "x", "Accepted", "a" * 600, [], [1], {}, {"a": 1},
         [{}], {"status": "Accepted"}]


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
    return rng.choice(WEIRD)


@pytest.mark.parametrize(("kind", "action"), ACTIONS)
def test_compiled_check_never_accepts_what_jsonschema_rejects(kind: int, action: str) -> None:
    check = frames._fast_check(kind, action)
    if check is None:
        pytest.skip("left to jsonschema")
    validator = get_validator(kind, action, "1.6")
    rng = random.Random(f"{kind}{action}")
    seeds = [SAMPLES.get((kind, action), {}), {}]
    agree = 0
    for n in range(3000):
        payload = _mutate(rng.choice(seeds), rng)
        if rng.random() < 0.3:
            payload = _mutate(payload, rng)
        fast, slow = check(payload), validator.is_valid(payload)
        assert not (fast and not slow), payload
        agree += fast == slow
        if slow and rng.random() < 0.2:
            seeds.append(payload)
    for seed in seeds:
        assert check(seed) == validator.is_valid(seed), seed
    assert agree > 2900  # mutations jsonschema accepts pass the fast path too


def test_sample_payloads_take_the_fast_path() -> None:
    for (kind, action), payload in SAMPLES.items():
        assert frames._fast_check(kind, action)(payload), action


def test_errors_unchanged() -> None:
    bad = dict(SAMPLES[(2, "MeterValues")], extra=1)
    with pytest.raises(frames.OcppError) as exc:
        frames.validate(frames.CALL, "MeterValues", bad)
    assert exc.value.code == "FormationViolation"
    with pytest.raises(frames.OcppError) as exc:
        frames.validate(frames.CALL, "Heartbeat", [])
    assert exc.value.code == "FormationViolation"
    with pytest.raises(frames.OcppError) as exc:
        frames.validate(frames.CALL, "Authorize", {"idTag": "x" * 21})
    assert exc.value.code == "TypeConstraintViolation"
    with pytest.raises(frames.OcppError) as exc:
        frames.validate(frames.CALL, "StatusNotification", {"connectorId": 1, "errorCode": "NoError"})
    assert exc.value.code == "ProtocolError"
