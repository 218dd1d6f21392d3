"""Tables of the agencies domain."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from exchange.models import UTCDateTime, utcnow


class AgencyKind(StrEnum):
    immigration = "immigration"
    police = "police"
    bp3mi = "bp3mi"
    manpower = "manpower"
    social = "social"
    village = "village"
    operator = "operator"  # the hub's operator: its admin keys administer the whole hub
    other = "other"


class Scope(StrEnum):
    """What an API key may do. Scopes do not imply one another: least privilege by default."""

    submit = "submit"  # push reports
    receive = "receive"  # subscribe, read the inbox, acknowledge
    audit = "audit"  # read the exchange log and evidence
    # Manage the agency's own keys; on the operator agency, manage every agency (hub admin).
    admin = "admin"
    metrics = "metrics"  # scrape /metrics


class Sensitivity(StrEnum):
    """How much harm a field can do, from the schemas' ``x-sensitivity``."""

    public = "public"
    operational = "operational"
    identifying = "identifying"  # name, NIK, passport, phone, exact birth date
    special = "special"  # children, health, victim status: UU PDP "specific" data


DEFAULT_CLEARANCE = frozenset({Sensitivity.public, Sensitivity.operational})


class Agency(SQLModel, table=True):
    __tablename__ = "agency"

    id: str = Field(primary_key=True, max_length=63)
    name: str = Field(max_length=200)
    kind: AgencyKind = Field(sa_column=Column(String(20), nullable=False))
    jurisdiction: str = Field(max_length=13)
    active: bool = Field(default=True)
    require_signed_reports: bool = Field(default=False)
    # A new signing key counts only once a second admin key of the agency approved it.
    require_signing_key_approval: bool = Field(default=False)
    # The x-sensitivity classes of fields the agency may receive, space-separated.
    clearance: str = Field(
        default="public operational",
        sa_column=Column(String(64), nullable=False, server_default="public operational"),
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def clearance_set(self) -> frozenset[Sensitivity]:
        return frozenset(Sensitivity(s) for s in self.clearance.split())


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    # The public part of the token ("exk_<id>_<secret>"): looked up by, safe to log.
    id: str = Field(primary_key=True, max_length=32)
    agency_id: str = Field(
        sa_column=Column(String(63), ForeignKey("agency.id"), nullable=False, index=True)
    )
    label: str = Field(default="", max_length=200)
    secret_hash: str = Field(max_length=64)
    scopes: str = Field(max_length=200)  # space-separated, as in OAuth 2.0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The key of the same agency that made this one, if one did: it ends with its maker.
    created_by: str | None = Field(default=None, max_length=32)
    # The console user who issued it, if a person did (the audit log has the same).
    created_by_user: str | None = Field(default=None, max_length=32)

    @property
    def scope_set(self) -> frozenset[Scope]:
        return frozenset(Scope(s) for s in self.scopes.split())


class SigningKey(SQLModel, table=True):
    """An agency's Ed25519 public key, for signed submissions and signed receipts."""

    __tablename__ = "signing_key"

    id: str = Field(primary_key=True, max_length=64)  # RFC 7638 JWK thumbprint
    agency_id: str = Field(
        sa_column=Column(String(63), ForeignKey("agency.id"), nullable=False, index=True)
    )
    public_key: str = Field(max_length=64)  # base64url, unpadded, 32 raw bytes
    label: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    added_by: str = Field(default="", max_length=200)  # the audit actor that registered it
    # None while it awaits a second admin's approval: until then it verifies nothing.
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    approved_by: str | None = Field(default=None, max_length=200)
