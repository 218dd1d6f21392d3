"""Pieces every domain's models share."""

from __future__ import annotations

import functools
import hashlib
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Insert, Table, event, insert, text
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
    held: _HeldRows | None = session.info.get(_HELD)
    if held is None:
        session.execute(_insert_into(table_of(model)), list(rows))
    else:
        if not session.in_transaction():
            session.begin()  # so that a rollback, which drops the held rows, is seen
        table = table_of(model)
        held.rows.extend((table, row) for row in rows)


@functools.cache
def _insert_into(table: Table) -> Insert:
    """One INSERT per table, built once: every submission writes to a dozen tables, and
    building the statement (with its cache key) anew each time cost more than running it."""
    return insert(table)


_HELD = "exchange.held_rows"  # the rows insert_rows collected (_HeldRows)
_WRITING = "exchange.writing_held_rows"
_REFUSED = "exchange.held_rows_refused"  # the error the database answered held rows with


@dataclass
class _HeldRows:
    """The rows of a transaction in the order they were held; those before ``written``
    are in the database. Rows written inside a savepoint are kept until no savepoint is
    open: if it rolls back, those it inherited are held again (see ``marks``)."""

    rows: list[tuple[Table, Mapping[str, Any]]] = field(default_factory=list)
    written: int = 0
    # Each savepoint: where things stood when it began.
    # Weak keys: a savepoint released long ago leaves nothing behind.
    marks: weakref.WeakKeyDictionary[SessionTransaction, _Mark] = field(
        default_factory=weakref.WeakKeyDictionary
    )


@dataclass(frozen=True)
class _Mark:
    """Where a savepoint began: how many rows were held, how many of them written, and the
    refusal of an earlier write, if any (its rollback cannot undo that write, so it must
    not forget that refusal either)."""

    rows: int
    written: int
    refused: Exception | None


@contextmanager
def deferred_inserts(session: Session) -> Iterator[None]:
    """Hold the rows of :func:`insert_rows` and write them together: one ``executemany``
    per table for a whole bulk batch or group of submissions, where each call was a
    statement of its own before (executing them was a third of a bulk line's time).

    Nothing else can tell the difference. The held rows are written, tables in dependency
    order (foreign keys), before anything else is executed through the session (a read
    sees them), before the ORM flushes, before the commit, and at the end of the block. A
    savepoint rolled back takes exactly its own rows, held or written, and no others:
    rows held before it began and written inside it (for a read) are held again, to be
    written with the next write. So a savepoint costs no write of its own, and the rows
    of many savepoints in turn (the group writer's units) are written together. What
    changes is when the database would refuse a row: at the next write rather than at the
    insert, failing the statement that writes them (callers check everything before
    they insert); :func:`raise_refusal` tells whoever must fail for it."""
    if _HELD in session.info:
        raise RuntimeError("rows are already held in this session")
    session.info[_HELD] = _HeldRows()
    try:
        yield
        write_held_rows(session)
        raise_refusal(session)
    finally:
        session.info.pop(_HELD, None)
        session.info.pop(_REFUSED, None)


def raise_refusal(session: Session) -> None:
    """Raise the error the database answered held rows with, if it did, even when the
    statement that wrote them (a read's) was answered and its error caught: on SQLite,
    where a failed statement leaves the transaction going, going on would commit part of
    what was held and answer as if it all were stored. A savepoint rolled back forgets
    the refusal along with the rows."""
    refused = session.info.get(_REFUSED)
    if refused is not None:
        raise refused


def write_held_rows(session: Session | OrmSession) -> None:
    """Write the rows :func:`deferred_inserts` holds, one statement per table."""
    held: _HeldRows | None = session.info.get(_HELD)
    if held is None or held.written == len(held.rows) or session.info.get(_WRITING):
        return
    by_table: dict[Table, list[Mapping[str, Any]]] = {}
    for table, row in held.rows[held.written :]:
        by_table.setdefault(table, []).append(row)
    held.written = len(held.rows)
    if not session.in_nested_transaction():  # no savepoint can roll back and hold them again
        held.rows.clear()
        held.written = 0
        held.marks.clear()
    session.info[_WRITING] = True
    try:
        for table in sorted(by_table, key=_DEPENDENCY_ORDER.__getitem__):
            session.execute(_insert_into(table), by_table[table])
    except Exception as error:
        # Written on behalf of a read, the rows' refusal reaches whoever read, who may
        # catch it; the block fails all the same (raise_refusal), unless the savepoint or
        # transaction they belonged to is rolled back.
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


READS = "exchange.reads"
"""Execution option: the tables whose held rows a statement must see, when it says so. Held
rows are written before it only if some are rows of those tables (a statement that does not
say is taken to read everything). A caller that looked at the held rows itself
(:func:`held_rows_of`) says none, and its read costs no write of the rows of the units
before it."""


def held_rows_of(session: Session, model: type[SQLModel]) -> list[Mapping[str, Any]]:
    """The rows of ``model``'s table held and not yet written: what a read through the
    session sees besides the database."""
    held: _HeldRows | None = session.info.get(_HELD)
    if held is None:
        return []
    table = table_of(model)
    return [row for of, row in held.rows[held.written :] if of is table]


@event.listens_for(Session, "do_orm_execute")
def _write_before_executing(state: ORMExecuteState) -> None:
    if _may_read_held_rows(state):
        write_held_rows(state.session)


def _may_read_held_rows(state: ORMExecuteState) -> bool:
    reads: frozenset[str] | None = state.execution_options.get(READS)
    held: _HeldRows | None = state.session.info.get(_HELD)
    if reads is None or held is None:
        return True
    return any(table.name in reads for table, _ in held.rows[held.written :])


@event.listens_for(Session, "before_flush")
def _write_before_flushing(session: Session, _context: Any, _instances: Any) -> None:
    write_held_rows(session)


@event.listens_for(Session, "before_commit")
def _write_before_committing(session: Session) -> None:
    # Also called when a savepoint is released: its rows stay held with its parent's.
    if not session.in_nested_transaction():
        write_held_rows(session)


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    # The SAVEPOINT itself is emitted with the savepoint's first statement: every row
    # written from here on is written inside it.
    held: _HeldRows | None = session.info.get(_HELD)
    if transaction.nested and held is not None:
        held.marks[transaction] = _Mark(len(held.rows), held.written, session.info.get(_REFUSED))


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back_rows(session: Session, previous: SessionTransaction) -> None:
    if not (previous.nested or previous.parent is None):
        return  # a failed flush's inner transaction: what encloses it rolls back next
    held: _HeldRows | None = session.info.get(_HELD)
    if held is None:
        return
    mark = held.marks.pop(previous, None) if previous.nested else None
    if mark is None:  # the transaction itself: everything goes
        held.rows.clear()
        held.written = 0
        held.marks.clear()
        session.info.pop(_REFUSED, None)
        return
    del held.rows[mark.rows :]  # the savepoint's own rows, held or written
    held.written = min(mark.written, held.written)  # those it inherited are held again
    if mark.refused is None:
        session.info.pop(_REFUSED, None)  # a refusal inside it went with what it wrote
    else:
        session.info[_REFUSED] = mark.refused


def advisory_key(purpose: str, name: str) -> int:
    """A 63-bit PostgreSQL advisory lock key for ``name`` in ``purpose``'s space."""
    digest = hashlib.sha256(f"exchange-{purpose}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def hold_advisory_lock(session: Session, key: int) -> None:
    """Wait for PostgreSQL's advisory lock ``key`` and hold it until the transaction ends.
    The statement reads no table, so held rows need not be written before it."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(:key)"),
        {"key": key},
        execution_options={READS: frozenset()},
    )


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model (SQLModel sets it without declaring it)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table
