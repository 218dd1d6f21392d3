"""Tables of the accounts domain."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Integer, LargeBinary, String
from sqlmodel import Field, SQLModel

from exchange.agencies.models import Scope
from exchange.models import UTCDateTime, utcnow


class Role(StrEnum):
    """What a user does in its agency; each role acts with one API scope's rights."""

    reporter = "reporter"  # sends reports, sees where they went
    receiver = "receiver"  # the alert desk: reads and acknowledges what is routed
    auditor = "auditor"  # reads the exchange log and evidence
    agency_admin = "agency-admin"  # the agency's users, keys and subscriptions
    hub_admin = "hub-admin"  # the operator's administrators: every agency


ROLE_SCOPES: dict[Role, Scope] = {
    Role.reporter: Scope.submit,
    Role.receiver: Scope.receive,
    Role.auditor: Scope.audit,
    Role.agency_admin: Scope.admin,
    Role.hub_admin: Scope.admin,
}


class User(SQLModel, table=True):
    """A named officer of one agency."""

    __tablename__ = "console_user"

    id: str = Field(primary_key=True, max_length=32)
    agency_id: str = Field(
        sa_column=Column(String(63), ForeignKey("agency.id"), nullable=False, index=True)
    )
    username: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    display_name: str = Field(max_length=200)
    # E.164; the number a text-message intake knows the user by (unique: one user a number).
    phone: str | None = Field(
        default=None, sa_column=Column(String(20), nullable=True, unique=True)
    )
    roles: str = Field(max_length=200)  # space-separated Role values
    password_hash: str = Field(max_length=200)  # argon2id, PHC string
    password_must_change: bool = Field(default=True)  # a one-time password was issued
    # The TOTP secret, sealed like every secret at rest; None until enrolled.
    totp_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    totp_confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    totp_last_step: int | None = Field(
        default=None, sa_column=Column(Integer, nullable=True)
    )  # a code is good once
    failed_logins: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reset_token_hash: str | None = Field(default=None, max_length=64)
    reset_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def role_set(self) -> frozenset[Role]:
        return frozenset(Role(r) for r in self.roles.split())


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; the table only its hash."""

    __tablename__ = "console_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(
        sa_column=Column(String(32), ForeignKey("console_user.id"), nullable=False, index=True)
    )
    csrf_token: str = Field(max_length=64)
    second_factor: bool = Field(default=False)  # TOTP checked in this session
    # Until when the session may do what needs a fresh second factor (issue a key, reset a
    # password...): a few minutes after each code typed, then a code again.
    confirmed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
