"""Shapes every domain's contracts share."""

from __future__ import annotations

import binascii
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from exchange.crypto import b64url, b64url_decode
from exchange.errors import InvalidInput, pointer_token
from exchange.i18n import Text

# The largest integer I-JSON (RFC 7493) carries exactly: what JSON bodies may hold.
IJSON_INTEGER_LIMIT = 2**53 - 1
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


_ROW_ID = re.compile(r"[0-9a-f]{32}")


def keyset_cursor(moment: datetime, row_id: str) -> str:
    """An opaque cursor for pages ordered by (time, id): where the last page ended."""
    return b64url(f"{moment.isoformat()}|{row_id}".encode())


def read_keyset_cursor(token: str, *, message: Text) -> tuple[datetime, str]:
    """The (time in UTC, id) a :func:`keyset_cursor` holds; anything else, a moment without
    its zone or outside UTC's range included, is 422 at the query's ``after``."""
    try:
        moment, _, row_id = b64url_decode(token).decode().partition("|")
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is not None and _ROW_ID.fullmatch(row_id):
            return parsed.astimezone(UTC), row_id
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        pass
    raise InvalidInput.at(message, "/after", location="query")


def links(status: int, **targets: tuple[str, str, dict[str, str]]) -> dict[int | str, Any]:
    """OpenAPI links from one answer to the operations it enables, as ``responses=``: each
    target is (method, path, {parameter: runtime expression}). They tell clients (and the
    stateful fuzzing in the tests) that the id in a 201 is what the next call takes."""
    return {
        status: {
            "links": {
                name: {
                    "operationRef": f"#/paths/{pointer_token(path)}/{method.lower()}",
                    "parameters": parameters,
                }
                for name, (method, path, parameters) in targets.items()
            }
        }
    }


class RowOut(BaseModel):
    """A response shape read from a table row. Every domain's shapes are made the one way,
    ``XOut.of(row)``; a shape that must transform a column (JSON text, a scope set)
    overrides ``of``."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, row: Any) -> Self:
        return cls.model_validate(row)
