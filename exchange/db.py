"""The database: one engine per process, built at start-up, and the session scope that every
request and every job runs in. The scope commits when the work returns and rolls back when it
raises; nothing below it (services, repositories) ever commits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, create_engine

from exchange import jobs

if TYPE_CHECKING:
    from dramatiq import Broker

SQLITE_BUSY_TIMEOUT_MS = 5000


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


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # One connection: SQLite has one writer at a time anyway, and queueing for the pool wakes
    # a waiting thread the moment the writer commits, where SQLite's own busy handler
    # sleeps and retries (tens of milliseconds each under load).
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=1,
        max_overflow=0,
        pool_timeout=60,
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

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
