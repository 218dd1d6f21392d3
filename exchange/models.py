"""Pieces every domain's models share."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Table, event, insert
from sqlalchemy.orm import ORMExecuteState, SessionTransaction
from sqlalchemy.orm import Session as OrmSession
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
    does with the rows. Every column without a server default must be given.

    Inside :func:`deferred_inserts` the rows are only collected (see there)."""
    if not rows:
        return
    held: list[tuple[Table, Mapping[str, Any]]] | None = session.info.get(_HELD)
    if held is None:
        session.execute(insert(table_of(model)), list(rows))
    else:
        if not session.in_transaction():
            session.begin()  # so that a rollback, which drops the held rows, is seen
        table = table_of(model)
        held.extend((table, row) for row in rows)


_HELD = "exchange.held_rows"  # the rows insert_rows collected, in order
_WRITING = "exchange.writing_held_rows"
_REFUSED = "exchange.held_rows_refused"  # the error the database answered held rows with


@contextmanager
def deferred_inserts(session: Session) -> Iterator[None]:
    """Hold the rows of :func:`insert_rows` and write them together: one ``executemany``
    per table for a whole bulk batch, where each call was a statement of its own before
    (executing them was a third of a bulk line's time).

    Nothing else can tell the difference. The held rows are written, tables in dependency
    order (foreign keys), before anything else is executed through the session (a read
    sees them), before the ORM flushes, before the commit, before a savepoint begins, and
    at the end of the block. So the rows held at any moment all belong to the innermost
    transaction or savepoint, and a rollback drops them all. What changes is when the
    database would refuse a row: at the next write rather than at the insert, failing
    the statement that writes them (callers check everything before they insert)."""
    if _HELD in session.info:
        raise RuntimeError("rows are already held in this session")
    session.info[_HELD] = []
    try:
        yield
        write_held_rows(session)
        refused = session.info.get(_REFUSED)
        if refused is not None:
            raise refused
    finally:
        session.info.pop(_HELD, None)
        session.info.pop(_REFUSED, None)


def write_held_rows(session: Session | OrmSession) -> None:
    """Write the rows :func:`deferred_inserts` holds, one statement per table."""
    held: list[tuple[Table, Mapping[str, Any]]] | None = session.info.get(_HELD)
    if not held or session.info.get(_WRITING):
        return
    by_table: dict[Table, list[Mapping[str, Any]]] = {}
    for table, row in held:
        by_table.setdefault(table, []).append(row)
    held.clear()
    session.info[_WRITING] = True
    try:
        for table in sorted(by_table, key=_DEPENDENCY_ORDER.__getitem__):
            session.execute(insert(table), by_table[table])
    except Exception as error:
        # Written on behalf of a read, the rows' refusal reaches whoever read, who may
        # handle it as its own (an idempotency collision); the block fails all the same,
        # unless the savepoint or transaction they belonged to is rolled back.
        session.info[_REFUSED] = error
        raise
    finally:
        session.info.pop(_WRITING, None)


class _DependencyOrder(dict[Table, int]):
    """Each table's place in an order where a table comes after those it refers to,
    computed once every model is imported (at the first write)."""

    def __missing__(self, table: Table) -> int:
        self.update({t: rank for rank, t in enumerate(SQLModel.metadata.sorted_tables)})
        return self[table]


_DEPENDENCY_ORDER = _DependencyOrder()


@event.listens_for(Session, "do_orm_execute")
def _write_before_executing(state: ORMExecuteState) -> None:
    write_held_rows(state.session)


@event.listens_for(Session, "before_flush")
def _write_before_flushing(session: Session, _context: Any, _instances: Any) -> None:
    write_held_rows(session)


@event.listens_for(Session, "before_commit")
def _write_before_committing(session: Session) -> None:
    # Also called when a savepoint is released: its rows stay held with its parent's.
    if not session.in_nested_transaction():
        write_held_rows(session)


class HubSession(Session):
    """The hub's sessions (exchange.db): a savepoint writes the held rows first, so that
    they are not written inside it and lost with it (see :func:`deferred_inserts`)."""

    def begin_nested(self) -> SessionTransaction:
        write_held_rows(self)
        return super().begin_nested()


@event.listens_for(Session, "after_transaction_create")
def _no_rows_held_into_a_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested and session.info.get(_HELD):
        raise RuntimeError("rows are held: begin savepoints with HubSession.begin_nested")


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back_rows(session: Session, previous: SessionTransaction) -> None:
    if not (previous.nested or previous.parent is None):
        return  # a failed flush's inner transaction: what encloses it rolls back next
    held = session.info.get(_HELD)
    if held is not None:
        held.clear()  # they all belonged to what was rolled back (see deferred_inserts)
        session.info.pop(_REFUSED, None)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model (SQLModel sets it without declaring it)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table
