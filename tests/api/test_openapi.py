"""The OpenAPI document stays true: every route of the app is documented and vice versa.

(Response bodies are checked against it by every test that uses the `api` client: see
tests/support.py, OpenApiChecker.)
"""

from __future__ import annotations

import re

import jsonschema
import pytest

from controller.api import openapi
from controller.api.app import create_app, openapi_document
from controller.site import Site
from tests.support import API_KEY, make_config

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _template(rule: str) -> str:
    """Werkzeug `/a/<x>/<int:y>` -> a placeholder form `/a/{}/{}` for comparing with OpenAPI paths."""
    return re.sub(r"<[^>]+>", "{}", rule)


def _openapi_template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


@pytest.fixture
def app_and_document(tmp_path):
    site = Site(make_config(tmp_path))
    try:
        app = create_app(site.api_services)
        yield app, openapi_document()
    finally:
        site.store.close()


def test_every_route_is_documented_and_every_documented_route_exists(app_and_document):
    app, document = app_and_document
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        routes.setdefault(_template(rule.rule), set()).update(set(rule.methods) - IGNORED_METHODS)
    documented: dict[str, set[str]] = {}
    for path, item in document["paths"].items():
        methods = {m.upper() for m in item if m in ("get", "put", "post", "delete", "patch")}
        documented.setdefault(_openapi_template(path), set()).update(methods)
    assert routes == documented


def test_path_parameters_are_declared(app_and_document):
    _, document = app_and_document
    for path, item in document["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, f"{method.upper()} {path}: path parameters {declared} != {names}"


def test_document_is_valid_openapi_31_shape(app_and_document):
    _, document = app_and_document
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert document["security"] == [{"ApiKey": []}]
    operation_ids = []
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', str(document).replace("'", '"')))
    assert refs <= set(document["components"]["schemas"]), refs - set(document["components"]["schemas"])
    for path, item in document["paths"].items():
        for method, op in item.items():
            operation_ids.append(op["operationId"])
            assert op["responses"], f"{method} {path}"
            for status, response in op["responses"].items():
                assert status == "default" or re.fullmatch(r"[1-5][0-9][0-9]", status)
                assert response["description"]
                for media in response.get("content", {}).values():
                    jsonschema.Draft202012Validator.check_schema(media["schema"])
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    for name, schema in document["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_seed_examples_validate():
    document = openapi_document()
    components = document["components"]

    def check(name, instance):
        jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": components}).validate(instance)

    check("RemoteStartResponse", {"message": "Remote start accepted by charger", "transactionId": 12345,
                                  "chargeBoxId": "CHARGER-001", "connectorId": 1, "status": "pending",
                                  "note": "Transaction will start when vehicle is connected and ready"})
    check("RemoteStopResponse", {"message": "Remote stop accepted by charger", "transactionId": 12345,
                                 "chargeBoxId": "CHARGER-001", "status": "stopping",
                                 "note": "Transaction will stop shortly. Final details available after "
                                         "StopTransaction is received."})
    detail = {"id": "txn_123", "transactionId": 12345, "chargeBoxId": "CHARGER-001", "connectorId": 1,
              "idTag": "USER123", "status": "completed", "meterStart": 1000, "meterStop": 15000,
              "energyDelivered": 14.0, "durationMinutes": 45, "startTime": "2026-02-06T12:00:00.000Z",
              "stopTime": "2026-02-06T12:45:00.000Z", "stopReason": "Local", "remoteStarted": True}
    check("Transaction", detail)
    summary = {k: detail[k] for k in ("id", "transactionId", "chargeBoxId", "connectorId", "idTag", "status",
                                      "energyDelivered", "durationMinutes", "startTime", "stopTime")}
    check("TransactionList", {"transactions": [summary], "pagination": {"total": 1, "limit": 50, "offset": 0}})
    check("RemoteStartRequest", {"connectorId": 1, "idTag": "USER123"})
    with pytest.raises(jsonschema.ValidationError):
        check("Error", {"message": "no code"})


def test_document_is_built_from_the_sections_alone():
    """The same document every time, whatever was imported: building it changes no section."""
    from controller.api.app import SECTIONS

    first = openapi.build_document(SECTIONS)
    assert openapi.build_document(SECTIONS) == first
    assert first["paths"].keys() == {path for section in SECTIONS for path in section.paths}


async def test_served_document_is_public_and_complete(site, api):
    response = await api.get("/api/v1/openapi.json", headers={"X-API-Key": ""})
    assert response.status_code == 200
    served = response.json()
    assert served["paths"].keys() == openapi_document()["paths"].keys()
    assert API_KEY not in response.text


def test_the_checker_catches_undocumented_answers():
    from tests.support import OpenApiChecker

    checker = OpenApiChecker()
    checker.check("GET", "/api/v1/id-tags/X", 404, b'{"error": "IdTagNotFound", "message": "m"}')
    with pytest.raises(AssertionError):
        checker.check("GET", "/api/v1/id-tags/X", 200, b'{"idTag": "X"}')  # missing required fields
    with pytest.raises(AssertionError):
        checker.check("GET", "/api/v1/id-tags/X", 201, b"{}")  # status not documented
    with pytest.raises(AssertionError):
        checker.check("GET", "/api/v1/undocumented", 200, b"{}")
    with pytest.raises(AssertionError):
        checker.check("POST", "/api/v1/transactions/1/stop", 202, b'{"message": "x"}')
