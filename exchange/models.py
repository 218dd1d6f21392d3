"""Pieces every domain's models share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Table, insert
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored with its zone where the database can (PostgreSQL) and as UTC where
    it cannot (SQLite), read back as an aware UTC datetime on both."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def insert_rows(session: Session, model: type[SQLModel], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert plain rows of ``model``'s table at once, in one statement (``executemany`` for
    several), bypassing the ORM's unit of work. For the hot paths (a submission writes a
    dozen rows): building and flushing ORM objects costs several times what the database
    does with the rows. Every column without a server default must be given."""
    if rows:
        session.execute(insert(table_of(model)), list(rows))


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model (SQLModel sets it without declaring it)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table
