"""The shapes agency data takes at the edges: HTTP bodies and CLI output."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from exchange.agencies.models import AgencyKind, ApiKey, Scope, Sensitivity
from exchange.contracts import Instant, RowOut

SLUG = re.compile(r"[a-z][a-z0-9-]{2,62}")
JURISDICTION = re.compile(r"\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?")


def _slug(value: str) -> str:
    if not SLUG.fullmatch(value):
        raise PydanticCustomError("slug_format", "not an agency id")
    return value


def _jurisdiction(value: str) -> str:
    if not JURISDICTION.fullmatch(value):
        raise PydanticCustomError("jurisdiction_format", "not a region-code prefix")
    return value


def _scope(value: str) -> Scope:
    try:
        return Scope(value)
    except ValueError:
        known = ", ".join(s.value for s in Scope)
        raise PydanticCustomError(
            "scope_unknown", "unknown scope {scope}", {"scope": value, "known": known}
        ) from None


# The patterns are checked by the validators (for their own messages) and stated in the API
# description, so that a client can tell a valid value before sending it.
AgencyId = Annotated[
    str, AfterValidator(_slug), Field(json_schema_extra={"pattern": f"^{SLUG.pattern}$"})
]
Jurisdiction = Annotated[
    str,
    AfterValidator(_jurisdiction),
    Field(json_schema_extra={"pattern": f"^{JURISDICTION.pattern}$"}),
]
ScopeName = Annotated[str, AfterValidator(_scope)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgencyCreate(_Strict):
    id: AgencyId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: AgencyKind
    jurisdiction: Jurisdiction
    clearance: list[Sensitivity] = Field(
        default=[Sensitivity.public, Sensitivity.operational],
        description="The x-sensitivity classes of fields the agency may receive.",
    )


class AgencyUpdate(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    jurisdiction: Jurisdiction | None = None
    active: bool | None = None
    require_signed_reports: bool | None = None
    require_signing_key_approval: bool | None = Field(
        default=None,
        description="New signing keys verify nothing until a second admin key approves them.",
    )
    clearance: list[Sensitivity] | None = Field(
        default=None,
        description="The x-sensitivity classes of fields the agency may receive: public, "
        "operational, identifying, special.",
    )


class AgencyOut(RowOut):
    id: str
    name: str
    kind: AgencyKind
    jurisdiction: str
    active: bool
    require_signed_reports: bool
    require_signing_key_approval: bool
    clearance: list[str]
    created_at: datetime

    @field_validator("clearance", mode="before")
    @classmethod
    def _classes(cls, value: object) -> object:
        return sorted(value.split()) if isinstance(value, str) else value


class ApiKeyCreate(_Strict):
    scopes: Annotated[list[ScopeName], Field(min_length=1)]
    label: Annotated[str, Field(max_length=200)] = ""
    expires_at: Instant | None = None


class ApiKeyOut(RowOut):
    """A key's metadata. The secret is never part of it."""

    id: str
    agency_id: str
    label: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> Self:
        key: ApiKey = row
        return cls.model_validate(
            {**key.model_dump(exclude={"secret_hash", "scopes"}), "scopes": sorted(key.scope_set)}
        )


class IssuedApiKeyOut(ApiKeyOut):
    """A key just created: the only time the token is shown."""

    token: str

    @classmethod
    def issued(cls, key: ApiKey, token: str) -> IssuedApiKeyOut:
        return cls(**ApiKeyOut.of(key).model_dump(), token=token)


class SigningKeyCreate(_Strict):
    public_key: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            description="Ed25519 public key: 32 raw bytes in base64url or base64, or a PEM.",
        ),
    ]
    label: Annotated[str, Field(max_length=200)] = ""


class SigningKeyOut(RowOut):
    id: str
    agency_id: str
    public_key: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    added_by: str
    approved_at: datetime | None
    approved_by: str | None


class WhoAmI(BaseModel):
    agency: AgencyOut
    key_id: str
    scopes: list[Scope]
