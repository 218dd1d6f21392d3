"""The database: one engine per process, built at start-up, and the session scope that every
request and every job runs in. The scope commits when the work returns and rolls back when it
raises; nothing below it (services, repositories) ever commits."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlmodel import Session, create_engine

from exchange import jobs
from exchange.directory import VersionProbe

if TYPE_CHECKING:
    from dramatiq import Broker

SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_POOL_TIMEOUT_S = 60


class FirstComeFirstServed:
    """A lock granted in the order it was asked for, with a timeout.

    Our own few lines because neither ``threading.Lock`` nor the queue inside SQLAlchemy's
    pool is fair: a thread that gives the connection back and asks again at once usually
    gets it before a waiter wakes. With one SQLite connection and eight delivery threads
    taking turns on it, a request (a bulk batch) could wait behind them for a minute and
    time out. Queued in order, it waits for the transactions ahead of it only."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held and not self._waiting:
                self._held = True
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(timeout):
            return True  # handed over by release(): the lock is ours
        with self._mutex:
            if turn.is_set():  # handed over just as the wait ended
                return True
            self._waiting.remove(turn)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().set()  # straight to the next in line; still held
            else:
                self._held = False


class FairQueuePool(QueuePool):
    """A pool whose waiters are served in arrival order: they queue at a fair turnstile,
    and only the one at its head waits inside the pool, so a connection given back goes to
    the thread that has waited longest."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turnstile = FirstComeFirstServed()
        # SQLAlchemy names a pool's logger after its class's module; keep this one with the
        # other pools' (sqlalchemy.pool, quiet by default), not under exchange.
        self.logger = logging.getLogger("sqlalchemy.pool")

    def _do_get(self) -> ConnectionPoolEntry:
        if not self._turnstile.acquire(self._timeout):
            raise exc.TimeoutError(f"no database connection within {self._timeout} s")
        try:
            return super()._do_get()
        finally:
            self._turnstile.release()


def normalise_url(url: str) -> URL:
    """The URL with the driver the hub ships (psycopg 3) for PostgreSQL."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def build_engine(url: str) -> Engine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)


SQLITE_READERS = 4


def _sqlite_reader_engine(url: URL, *, pool_size: int = SQLITE_READERS) -> Engine:
    """Connections that only read, beside the one that writes: in WAL mode SQLite readers
    never wait for the writer, so authenticating a request does not queue behind the
    transactions that hold the write connection. Each statement reads in its own implicit
    transaction (no BEGIN IMMEDIATE here), and ``query_only`` refuses any write."""
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=SQLITE_POOL_TIMEOUT_S,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    return engine


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # One connection: SQLite has one writer at a time anyway, and queueing for the pool wakes
    # a waiting thread the moment the writer commits, where SQLite's own busy handler
    # sleeps and retries (tens of milliseconds each under load). The queue is fair
    # (FairQueuePool): requests are not starved by the delivery threads.
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        poolclass=FairQueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=SQLITE_POOL_TIMEOUT_S,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is switched off so that "begin" below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe in WAL
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # A deferred transaction that reads and then writes cannot wait for a concurrent
        # writer (SQLite answers "database is locked" at once); taking the write lock at
        # BEGIN makes concurrent requests queue on busy_timeout instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """The process's engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.engine = build_engine(url)
        self._sessions = sessionmaker(bind=self.engine, class_=Session, expire_on_commit=False)
        parsed = normalise_url(url)
        on_disk = parsed.database not in (None, "", ":memory:")
        # Elsewhere (PostgreSQL, an in-memory SQLite) readers share the engine.
        self._reader_engine = (
            _sqlite_reader_engine(parsed)
            if parsed.get_backend_name() == "sqlite" and on_disk
            else None
        )
        self._readers = (
            sessionmaker(bind=self._reader_engine, class_=Session)
            if self._reader_engine is not None
            else self._sessions
        )
        # Its own connection on SQLite (the pools are small); one of the pool's on
        # PostgreSQL; none for an in-memory database, which no other process sees.
        self.directory = (
            VersionProbe(_sqlite_reader_engine(parsed, pool_size=1), owns_engine=True)
            if self._reader_engine is not None
            else VersionProbe(self.engine if parsed.get_backend_name() == "postgresql" else None)
        )
        event.listen(self._sessions, "after_commit", jobs.send_pending)
        event.listen(self._sessions, "after_transaction_create", jobs.mark_savepoint)
        event.listen(self._sessions, "after_soft_rollback", jobs.drop_rolled_back)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, broker: Broker | None = None) -> Iterator[Session]:
        """A unit of work: commit on return, roll back on error, and only then (after the
        commit) hand the jobs it enqueued to ``broker``."""
        session = self._sessions()
        jobs.attach_broker(session, broker)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads alone, never committed: on SQLite it does not wait for the
        writer (see :func:`_sqlite_reader_engine`)."""
        session = self._readers()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.directory.close()
        self.engine.dispose()
        if self._reader_engine is not None:
            self._reader_engine.dispose()
