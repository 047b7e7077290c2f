"""What the dashboard's buttons do: each POST calls the same domain method as the REST API's
route for it (the guard has let only operator sessions with the CSRF token through), and answers
JSON `{"message": ...}` the page shows; failures answer the API's JSON errors."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from quart import Blueprint, Response, jsonify, request

from controller.api import models
from controller.api.errors import Problem, int_param, validation_problem
from controller.authorization import IdTag

if TYPE_CHECKING:
    from controller.dashboard import Dashboard

V201 = "ocpp2.0.1"
MAX_IMPORT_ROWS = 2000


async def field(name: str, default: str | None = None) -> str:
    value = (await request.form).get(name, default)
    if value is None or value == "":
        raise Problem(422, "InvalidRequest", f"form field {name!r}: required")
    return value.strip()


async def connector(name: str = "connectorId", minimum: int = 1) -> int:
    text = await field(name)
    try:
        return int_param(name, text, minimum)
    except Problem:
        raise Problem(422, "InvalidRequest", f"form field {name!r}: a connector number from {minimum}") from None


async def choice(name: str, allowed: tuple[str, ...]) -> str:
    value = await field(name)
    if value not in allowed:
        raise Problem(422, "InvalidRequest", f"form field {name!r}: one of {', '.join(allowed)}")
    return value


def done(message: str, **extra: Any) -> Response:
    return jsonify({"message": message, **extra})


def answered(action: str, result: Any) -> Response:
    status = result.get("status") if isinstance(result, dict) else None
    return done(f"{action}: {status or 'answered'}", result=result)


def id_tag_from(data: dict[str, Any]) -> IdTag:
    """An id tag from a form or a CSV row, checked as the API checks a PUT body (422 naming the field)."""
    tag = (data.get("idTag") or "").strip()
    body = {k: v for k in ("status", "expiryDate", "parentIdTag") if (v := (data.get(k) or "").strip())}
    if len(body.get("expiryDate", "")) == 10:  # a date input's day: valid to its end
        body["expiryDate"] += "T23:59:59Z"
    try:
        model = models.NewIdTagBody.model_validate({"idTag": tag, **body})
    except ValidationError as exc:
        raise validation_problem(exc, where="form") from None
    return IdTag(model.idTag, model.status, model.expiryDate, model.parentIdTag)


def register(bp: Blueprint, dash: Dashboard) -> None:
    services = dash.services
    chargers, transactions = services.chargers, services.transactions

    async def operation(charger_id: str, action: str, payload: dict[str, Any]) -> Response:
        return answered(action, await chargers.operation(charger_id, action, payload))

    def protocol(charger_id: str) -> str:
        return chargers.require(charger_id).protocol

    @bp.post("/dashboard/chargers/<charger_id>/approve")
    async def approve(charger_id: str) -> Response:
        await chargers.approve(charger_id)
        return done(f"Charger {charger_id} approved")

    @bp.post("/dashboard/chargers/<charger_id>/reject")
    async def reject(charger_id: str) -> Response:
        await chargers.reject(charger_id)
        return done(f"Charger {charger_id} rejected")

    @bp.post("/dashboard/chargers/<charger_id>/remote-start")
    async def remote_start(charger_id: str) -> Response:
        chargers.require(charger_id)
        started = await transactions.remote_start(charger_id, await connector(), await field("idTag"))
        return done(f"Start accepted: transaction {started['transactionId']}", result=started)

    @bp.post("/dashboard/transactions/<transaction_id>/stop")
    async def remote_stop(transaction_id: str) -> Response:
        stopped = await transactions.remote_stop(int_param("transactionId", transaction_id))
        return done(f"Stop accepted: transaction {stopped['transactionId']}", result=stopped)

    @bp.post("/dashboard/chargers/<charger_id>/unlock")
    async def unlock(charger_id: str) -> Response:
        n = await connector()
        payload = {"evseId": n, "connectorId": 1} if protocol(charger_id) == V201 else {"connectorId": n}
        return await operation(charger_id, "UnlockConnector", payload)

    @bp.post("/dashboard/chargers/<charger_id>/reset")
    async def reset(charger_id: str) -> Response:
        kind = await choice("type", ("Soft", "Hard"))
        if protocol(charger_id) == V201:
            return await operation(charger_id, "Reset", {"type": "Immediate" if kind == "Hard" else "OnIdle"})
        return await operation(charger_id, "Reset", {"type": kind})

    @bp.post("/dashboard/chargers/<charger_id>/availability")
    async def availability(charger_id: str) -> Response:
        n, kind = await connector(minimum=0), await choice("type", ("Operative", "Inoperative"))
        if protocol(charger_id) == V201:
            payload: dict[str, Any] = {"operationalStatus": kind, **({"evse": {"id": n}} if n else {})}
        else:
            payload = {"connectorId": n, "type": kind}
        return await operation(charger_id, "ChangeAvailability", payload)

    @bp.post("/dashboard/chargers/<charger_id>/trigger")
    async def trigger(charger_id: str) -> Response:
        message = await field("requestedMessage")
        n = (await request.form).get("connectorId")
        payload: dict[str, Any] = {"requestedMessage": message}
        if n:
            number = int_param("connectorId", n)
            payload |= {"evse": {"id": number}} if protocol(charger_id) == V201 else {"connectorId": number}
        return await operation(charger_id, "TriggerMessage", payload)

    @bp.post("/dashboard/chargers/<charger_id>/clear-cache")
    async def clear_cache(charger_id: str) -> Response:
        return await operation(charger_id, "ClearCache", {})

    def configuration_keys(charger_id: str) -> None:
        if protocol(charger_id) == V201:
            raise Problem(422, "NotSupported", "an OCPP 2.0.1 station's settings are variables: read and set "
                                               "them with GetVariables and SetVariables through the API")

    @bp.post("/dashboard/chargers/<charger_id>/configuration")
    async def get_configuration(charger_id: str) -> Response:
        configuration_keys(charger_id)
        return await operation(charger_id, "GetConfiguration", {})

    @bp.post("/dashboard/chargers/<charger_id>/configuration/change")
    async def change_configuration(charger_id: str) -> Response:
        configuration_keys(charger_id)
        value = (await request.form).get("value", "")
        return await operation(charger_id, "ChangeConfiguration", {"key": await field("key"), "value": value})

    @bp.post("/dashboard/id-tags")
    async def save_id_tag() -> Response:
        tag = id_tag_from(dict(await request.form))
        await services.authorization.put(tag)
        return done(f"Id tag {tag.id_tag} saved ({tag.status})")

    @bp.post("/dashboard/id-tags/<id_tag>/block")
    async def block_id_tag(id_tag: str) -> Response:
        await services.authorization.change(id_tag, status="Blocked")
        return done(f"Id tag {id_tag} blocked")

    @bp.post("/dashboard/id-tags/import")
    async def import_id_tags() -> Response:
        upload = (await request.files).get("file")
        if upload is None:
            raise Problem(422, "InvalidRequest", "form field 'file': a CSV file with an idTag column")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Problem(422, "InvalidRequest", "form field 'file': not UTF-8 text") from None
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows or "idTag" not in rows[0]:
            raise Problem(422, "InvalidRequest", "form field 'file': the first line must name the columns, "
                                                 "idTag and optionally status, expiryDate, parentIdTag")
        if len(rows) > MAX_IMPORT_ROWS:
            raise Problem(422, "InvalidRequest", f"form field 'file': at most {MAX_IMPORT_ROWS} rows")
        tags = []
        for line, row in enumerate(rows, start=2):
            try:
                tags.append(id_tag_from(row))
            except Problem as problem:  # nothing is imported from a file with a bad line
                raise Problem(422, "InvalidRequest", f"line {line}: {problem.message}") from None
        for tag in tags:
            await services.authorization.put(tag)
        return done(f"{len(tags)} id tags imported")

    @bp.post("/dashboard/notifications/<row_id>/retry")
    async def retry_notification(row_id: str) -> Response:
        row = await services.delivery.replay(int_param("id", row_id))
        if row is None:
            raise Problem(404, "NotFound", f"notification {row_id} not found")
        return done(f"Notification {row_id} will be sent again")
