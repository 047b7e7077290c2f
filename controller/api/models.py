"""Request bodies and query parameters, validated strictly so errors can name the field."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from controller.api.errors import INT64_MAX
from controller.timefmt import normalize

IdTagText = Field(min_length=1, max_length=20)  # OCPP IdToken: CiString20


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RemoteStartBody(_Body):
    connectorId: int = Field(ge=1, le=100)
    idTag: str = IdTagText


class IdTagBody(_Body):
    status: Literal["Accepted", "Blocked", "Expired", "Invalid"] = "Accepted"
    expiryDate: str | None = None
    parentIdTag: str | None = Field(None, min_length=1, max_length=20)

    @field_validator("expiryDate")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        return None if value is None else normalize(value)


class NewIdTagBody(IdTagBody):
    idTag: str = IdTagText


class PageQuery(BaseModel):
    """The paging parameters of every list that pages (lax: query values arrive as text)."""

    model_config = ConfigDict(extra="forbid")
    limit: int = Field(50, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=INT64_MAX)


def page(key: str, items: list[Any], total: int, query: PageQuery, **extra: Any) -> dict[str, Any]:
    """The one pagination envelope: `{key: items, "pagination": {total, limit, offset}, **extra}`."""
    return {key: items, "pagination": {"total": total, "limit": query.limit, "offset": query.offset}, **extra}


class TransactionQuery(PageQuery):
    chargeBoxId: str | None = None
    status: Literal["pending", "active", "stopping", "completed", "failed"] | None = None
