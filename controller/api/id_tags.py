"""REST resources for the local id-tag list (what Authorize and card taps are checked against)."""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import models, openapi
from controller.api.errors import Problem, json_body, not_found
from controller.authorization import Authorization, IdTag


def id_tag_to_api(tag: IdTag) -> dict[str, Any]:
    """An id tag as models.IdTag."""
    return {"idTag": tag.id_tag, "status": tag.status, "expiryDate": tag.expiry_date, "parentIdTag": tag.parent_id_tag,
            "tokenType": tag.token_type}


PATCH_FIELDS = {"status": "status", "expiryDate": "expiry_date", "parentIdTag": "parent_id_tag",
                "tokenType": "token_type"}
"""models.IdTagPatch's fields -> IdTag's."""


def register(app: QuartTrio, authorization: Authorization) -> None:
    @app.get("/api/v1/id-tags")
    async def list_id_tags() -> Response:
        tags = sorted(authorization.tags.values(), key=lambda t: t.id_tag)
        return jsonify({"idTags": [id_tag_to_api(t) for t in tags]})

    @app.post("/api/v1/id-tags")
    async def create_id_tag() -> tuple[Response, int]:
        body = await json_body(models.NewIdTagBody)
        if authorization.get(body.idTag) is not None:
            raise Problem(409, "IdTagExists", f"id tag {body.idTag} already exists; PUT to change it")
        tag = IdTag(body.idTag, body.status, body.expiryDate, body.parentIdTag, body.tokenType)
        await authorization.put(tag)
        return jsonify(id_tag_to_api(tag)), 201

    @app.get("/api/v1/id-tags/<id_tag>")
    async def get_id_tag(id_tag: str) -> Response:
        tag = authorization.get(id_tag)
        if tag is None:
            raise not_found("IdTag", id_tag)
        return jsonify(id_tag_to_api(tag))

    @app.put("/api/v1/id-tags/<id_tag>")
    async def put_id_tag(id_tag: str) -> Response:
        body = await json_body(models.IdTagBody)
        if not 1 <= len(id_tag) <= 20:
            raise Problem(422, "InvalidRequest", "path parameter 'idTag': 1 to 20 characters")
        tag = IdTag(id_tag, body.status, body.expiryDate, body.parentIdTag, body.tokenType)
        await authorization.put(tag)
        return jsonify(id_tag_to_api(tag))

    @app.patch("/api/v1/id-tags/<id_tag>")
    async def patch_id_tag(id_tag: str) -> Response:
        body = await json_body(models.IdTagPatch)
        changes = {PATCH_FIELDS[name]: getattr(body, name) for name in body.model_fields_set}
        return jsonify(id_tag_to_api(await authorization.change(id_tag, **changes)))

    @app.delete("/api/v1/id-tags/<id_tag>")
    async def delete_id_tag(id_tag: str) -> tuple[str, int]:
        if not await authorization.delete(id_tag):
            raise not_found("IdTag", id_tag)
        return "", 204


# -- the OpenAPI section -------------------------------------------------------------------------

ID_TAG = openapi.path_param("idTag", {"type": "string", "minLength": 1, "maxLength": 20},
                            "The id tag (case-insensitive)")
_op, _response, _errors = openapi.operation, openapi.response, openapi.errors

SECTION = openapi.Section({
    "/api/v1/id-tags": {
        "get": _op("listIdTags", "Id tags", "The local id-tag list",
                   {"200": _response("Every id tag", models.IdTagList), **_errors()}),
        "post": _op("createIdTag", "Id tags", "Add an id tag",
                    {"201": _response("The new id tag", models.IdTag), **_errors(400, 409, 422)},
                    body=models.NewIdTagBody),
    },
    "/api/v1/id-tags/{idTag}": {
        "get": _op("getIdTag", "Id tags", "One id tag",
                   {"200": _response("The id tag", models.IdTag), **_errors(404)}, parameters=[ID_TAG]),
        "put": _op("putIdTag", "Id tags", "Create or replace an id tag",
                   {"200": _response("The id tag", models.IdTag), **_errors(400, 422)},
                   body=models.IdTagBody, parameters=[ID_TAG],
                   description="Every field is set: one left out gets its default (status Accepted, no expiry, "
                               "no parent, token type ISO14443). To change one field, PATCH."),
        "patch": _op("patchIdTag", "Id tags", "Change some fields of an id tag",
                     {"200": _response("The id tag after the change", models.IdTag), **_errors(400, 404, 422)},
                     body=models.IdTagPatch, parameters=[ID_TAG],
                     description="Only the fields sent change; the others keep their values. null clears "
                                 "expiryDate or parentIdTag. Blocking a card: {\"status\": \"Blocked\"}."),
        "delete": _op("deleteIdTag", "Id tags", "Remove an id tag",
                      {"204": _response("Removed"), **_errors(404)}, parameters=[ID_TAG]),
    },
})
