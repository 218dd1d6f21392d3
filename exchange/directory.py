"""The directory's version: one value, drawn afresh (63 random bits) in the same transaction
as every change to the agencies, their API keys and the subscriptions. A process may keep
what it read of them (who an API key is, which agency sends, where a report goes) for as
long as the version stands still, and sees another process's change, a revocation above
all, at its next read of the version: one primary-key read per request or per group of
submissions, where keeping nothing cost a handful of queries each. Random rather than
counted, so that a database restored from a backup never shows an old number for a
directory that has since changed.

Drawn from the session's hooks, not by each service: an ORM flush that changes a watched
row (any column but those :data:`IGNORED`), or a statement that inserts, updates or deletes
in a watched table, marks the transaction, and it draws the new version just before it
commits; so no service can change the directory and forget to say so. Anything that writes
to those tables outside a session (a data migration, a tool on the database itself) must
update ``directory_version`` too.

Our own few lines: SQLAlchemy's identity map lasts one session; a cache shared by the
sessions of a process and invalidated exactly across processes is not something it, or a
library we use, offers.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import BigInteger, Column, event, inspect, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, Session, SQLModel

from exchange.models import table_of

WATCHED = frozenset({"agency", "api_key", "subscription", "subscription_match"})
# Columns that change in the course of work and that nothing kept depends on: the
# throttle's next free slot, set by every throttled delivery.
IGNORED = {"subscription": frozenset({"next_slot_at"})}
VERSION_ROW = 1
_READ = "exchange.directory_version"  # session.info: the version this transaction read
_CHANGED = "exchange.directory_changed"  # session.info: this transaction changed it

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class DirectoryVersion(SQLModel, table=True):
    __tablename__ = "directory_version"

    id: int = Field(primary_key=True)
    version: int = Field(sa_column=Column(BigInteger, nullable=False))


def _changed(session: OrmSession) -> None:
    session.info[_CHANGED] = True


def _watched(row: Any) -> bool:
    return getattr(row, "__tablename__", None) in WATCHED


def _changed_columns_matter(row: Any) -> bool:
    ignored = IGNORED.get(row.__tablename__, frozenset())
    return any(
        attribute.history.has_changes()
        for attribute in inspect(row).attrs
        if attribute.key not in ignored
    )


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    # (after_flush still sees what the flush wrote as new, dirty and deleted, with history)
    if any(_watched(row) for row in (*session.new, *session.deleted)) or any(
        _watched(row) and _changed_columns_matter(row) for row in session.dirty
    ):
        _changed(session)


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in WATCHED:
            _changed(state.session)


@event.listens_for(Session, "before_commit")
def _draw_before_committing(session: Session) -> None:
    """A transaction that changed the directory draws its new version just before it
    commits, once its changes are written: the version row's lock is held for the commit
    alone, not while the transaction goes on to lock other rows. (Other ``before_commit``
    hooks run in the order their modules were imported; the statistics tallies, written
    after this one, are never written by a transaction that changes the directory.)"""
    if session.in_nested_transaction():
        return
    if session.new or session.dirty or session.deleted:
        session.flush()  # (commit flushes after this hook: what it would write counts)
    if session.info.get(_CHANGED):
        table = table_of(DirectoryVersion)
        session.connection().execute(update(table).values(version=secrets.randbits(63)))


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: Any) -> None:
    # The whole transaction, not a savepoint: what it read stays what it reads until then.
    if transaction.parent is None:
        session.info.pop(_READ, None)
        session.info.pop(_CHANGED, None)


_VERSION = select(table_of(DirectoryVersion).c.version).where(
    table_of(DirectoryVersion).c.id == VERSION_ROW
)


def version(session: Session) -> int | None:
    """The directory's version as this transaction sees it, read once per transaction
    (after writing what it changed, as autoflush would). None when this transaction has
    changed the directory itself, even in a savepoint since rolled back: what it reads is
    not yet anyone else's, and must not be kept."""
    if session.new or session.dirty or session.deleted:
        session.flush()
    if session.info.get(_CHANGED):
        return None
    if _READ not in session.info:
        session.info[_READ] = session.connection().execute(_VERSION).scalar_one_or_none()
    read: int | None = session.info[_READ]
    return read


@dataclass
class _Snapshot(Generic[K, V]):
    version: int
    values: dict[K, V] = field(default_factory=dict)


_SELECT_VERSION = "SELECT version FROM directory_version WHERE id = 1"  # VERSION_ROW
# How long a request waits for another thread's read of the version before it reads what
# it needs in its own session instead.
PROBE_WAIT_S = 0.5


class VersionProbe:
    """The directory's version as last committed, read by one statement on a connection
    the probe holds in autocommit mode: what every request asks (about 15 µs on SQLite,
    where a session's read costs a pool checkout and a transaction, about 150 µs).

    None, and the caller reads what it needs in its own session as before, when there is
    nothing to probe (an in-memory database, which no other process sees), after
    :meth:`close`, or while another thread has been reading for longer than
    :data:`PROBE_WAIT_S` (a connection hanging on a dropped network must not hold up
    every request). A connection the database dropped (a restart) is replaced once,
    within the same read."""

    def __init__(self, engine: Engine | None, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._owns_engine = owns_engine
        self._connection: Connection | None = None
        self._lock = threading.Lock()
        self._closed = engine is None

    def read(self) -> int | None:
        if self._closed or not self._lock.acquire(timeout=PROBE_WAIT_S):
            return None
        try:
            if self._closed:
                return None
            if self._connection is not None:
                try:
                    return self._select()
                except DBAPIError as error:
                    self._drop()
                    if not error.connection_invalidated:
                        raise
            return self._select()  # on a new connection; an error here means: away
        except Exception:
            self._drop()
            raise
        finally:
            self._lock.release()

    def _select(self) -> int | None:
        assert self._engine is not None
        if self._connection is None:
            self._connection = self._engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
        # Plain SQL: a constant statement, without compiling (or looking up) one.
        read: int | None = self._connection.exec_driver_sql(_SELECT_VERSION).scalar_one_or_none()
        return read

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()
            if self._owns_engine and self._engine is not None:
                self._engine.dispose()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.invalidate()
            connection.close()


class Kept(Generic[K, V]):
    """Values read from the directory, kept by this process, for each database it talks
    to, while the directory's version stands still. A value is loaded in the caller's
    session after that session read the version, so what is kept under a version is never
    older than it. At most ``limit`` values are kept (the rest are loaded each time), so
    that unknown keys cannot fill the memory."""

    def __init__(self, *, limit: int) -> None:
        self._limit = limit
        self._by_database: WeakKeyDictionary[Any, _Snapshot[K, V]] = WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, session: Session, key: K, load: Callable[[], V | None]) -> V | None:
        """The value for ``key`` as of the version the session's transaction reads; None
        values are not kept."""
        return self.at(session, version(session), key, load)

    def at(
        self, session: Session, current: int | None, key: K, load: Callable[[], V | None]
    ) -> V | None:
        """The value for ``key`` as of ``current`` (read before ``load`` runs, e.g. by a
        :class:`VersionProbe`), kept for the session's database."""
        if current is None:
            return load()
        database = session.get_bind()
        with self._lock:
            snapshot = self._by_database.get(database)
            if snapshot is None or snapshot.version != current:
                snapshot = self._by_database[database] = _Snapshot(current)
            elif key in snapshot.values:
                return snapshot.values[key]
        value = load()
        with self._lock:
            if (
                value is not None
                and self._by_database.get(database) is snapshot
                and len(snapshot.values) < self._limit
            ):
                snapshot.values[key] = value
        return value
