"""The shapes of console users for the CLI and the console."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from exchange.accounts.models import User
from exchange.contracts import RowOut


class UserOut(RowOut):
    """A user as an administrator sees it: never its password, its TOTP secret or a reset
    token."""

    id: str
    agency_id: str
    username: str
    display_name: str
    roles: list[str]
    phone: str | None = Field(description="For reporting by text message (E.164).")
    second_factor: bool = Field(description="A TOTP authenticator is enrolled and confirmed.")
    disabled: bool
    locked_until: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> UserOut:
        assert isinstance(row, User)
        return cls(
            id=row.id,
            agency_id=row.agency_id,
            username=row.username,
            phone=row.phone,
            display_name=row.display_name,
            roles=row.roles.split(),
            second_factor=row.totp_confirmed_at is not None,
            disabled=row.disabled_at is not None,
            locked_until=row.locked_until,
            created_at=row.created_at,
        )
