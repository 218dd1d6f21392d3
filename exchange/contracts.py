"""Shapes every domain's contracts share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime
from pydantic_core import PydanticCustomError

# The largest integer the databases store (BIGINT): query and body integers stop here.
MAX_INT64 = 2**63 - 1


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_out_of_range", "a moment outside the years 1 to 9999 in UTC"
        ) from None


# A moment with its zone, stored and compared in UTC; one that falls outside what UTC can
# hold (9999-12-31T23:59-23:59) is refused, not left to fail in the database.
Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
