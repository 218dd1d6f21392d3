"""Group commit (exchange.writer): units of work queued while the writer is busy are stored
in one transaction; each is answered only after that transaction committed; a unit that
fails is rolled back alone; a failed commit fails every unit of its group; a full queue
refuses at once. On a real SQLite database; a group that PostgreSQL rolls back to break a
deadlock runs again, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from exchange.db import Database
from exchange.errors import NotCommitted, Overloaded
from exchange.writer import GroupWriter
from tests.servers import PostgresServer, wait_until


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'writer.db'}")
    with database.session() as session:
        session.execute(text("CREATE TABLE note (body TEXT NOT NULL)"))
    yield database
    database.dispose()


def notes(database: Database) -> list[str]:
    with database.reading() as session:
        return sorted(session.execute(text("SELECT body FROM note")).scalars())


def writing(body: str) -> Any:
    def work(session: Session) -> str:
        session.execute(text("INSERT INTO note VALUES (:body)"), {"body": body})
        return body

    return work


def commits_of(database: Database) -> list[int]:
    counted: list[int] = []
    event.listen(database.engine, "commit", lambda _connection: counted.append(1))
    return counted


async def queued_behind_a_busy_writer(
    writer: GroupWriter,
    units: list[Any],
    *,
    while_held: Callable[[list[asyncio.Future[Any]]], Any] | None = None,
) -> tuple[list[Any], Any]:
    """Hold the writer in a first unit until the others are queued, so that they form one
    group; returns the outcomes (results or exceptions, the first unit's "held" included)
    and what ``while_held`` saw of the queued units before the writer was let go."""
    holding, release = threading.Event(), threading.Event()

    def hold(session: Session) -> str:
        holding.set()
        release.wait(10)
        return "held"

    first = asyncio.ensure_future(writer.run(hold))
    await asyncio.to_thread(holding.wait, 10)
    rest = [asyncio.ensure_future(writer.run(unit)) for unit in units]
    await asyncio.sleep(0)  # every put is done before the writer is let go
    seen = while_held(rest) if while_held else None
    release.set()
    outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
    return list(outcomes), seen


def test_units_queued_together_commit_in_one_transaction(database: Database) -> None:
    writer = GroupWriter(database.session, capacity=16)
    commits = commits_of(database)
    outcomes, _ = asyncio.run(
        queued_behind_a_busy_writer(writer, [writing(f"note {n}") for n in range(10)])
    )
    writer.close()
    assert outcomes == ["held", *(f"note {n}" for n in range(10))]
    assert len(commits) == 1  # the ten's (the held unit wrote nothing: no transaction)
    assert notes(database) == sorted(f"note {n}" for n in range(10))


def test_a_failing_unit_is_rolled_back_alone(database: Database) -> None:
    writer = GroupWriter(database.session, capacity=16)

    def half_written(session: Session) -> str:
        session.execute(text("INSERT INTO note VALUES ('half')"))
        raise ValueError("a bug after the first insert")

    outcomes, _ = asyncio.run(
        queued_behind_a_busy_writer(writer, [writing("before"), half_written, writing("after")])
    )
    writer.close()
    assert outcomes[1] == "before"
    assert outcomes[3] == "after"
    assert isinstance(outcomes[2], ValueError)
    assert notes(database) == ["after", "before"]  # nothing of the failed unit


def test_a_failed_commit_answers_every_unit_of_the_group_with_the_failure(
    database: Database,
) -> None:
    writer = GroupWriter(database.session, capacity=16)
    failing = {"on": False}

    def fail(_connection: Any) -> None:
        if failing["on"]:
            raise RuntimeError("injected: the commit fails")

    event.listen(database.engine, "commit", fail)

    def arm(session: Session) -> str:
        failing["on"] = True  # the first unit's own transaction commits; the group's fails
        return "held"

    outcomes, _ = asyncio.run(
        queued_behind_a_busy_writer(writer, [arm, writing("a"), writing("b")])
    )
    writer.close()
    assert outcomes[0] == "held"
    assert all(isinstance(outcome, NotCommitted) for outcome in outcomes[1:]), outcomes
    failing["on"] = False
    assert notes(database) == []


def test_a_full_queue_refuses_at_once(database: Database) -> None:
    writer = GroupWriter(database.session, capacity=2)

    def refused_at_once(queued: list[asyncio.Future[Any]]) -> bool:
        return queued[2].done() and isinstance(queued[2].exception(), Overloaded)

    outcomes, refused = asyncio.run(
        queued_behind_a_busy_writer(
            writer, [writing(f"q{n}") for n in range(3)], while_held=refused_at_once
        )
    )
    writer.close()
    assert refused
    assert outcomes[:3] == ["held", "q0", "q1"]
    assert notes(database) == ["q0", "q1"]


class _Deadlocked(Exception):
    """What psycopg raises when PostgreSQL broke a deadlock (its SQLSTATE is what counts)."""

    sqlstate = "40P01"


def deadlock() -> OperationalError:
    return OperationalError("SELECT pg_advisory_xact_lock(1)", {}, _Deadlocked())


def test_a_group_deadlocked_again_is_answered_not_committed_not_database_away(
    database: Database,
) -> None:
    """Run again once, a group can meet a second deadlock. The database is there: its
    requests are told their submission was not stored (send again), not that the database
    is unavailable, and nothing of either run is kept."""
    writer = GroupWriter(database.session, capacity=4)
    runs: list[int] = []

    def deadlocked(session: Session) -> str:
        runs.append(1)
        writing(f"run {len(runs)}")(session)
        raise deadlock()

    with pytest.raises(NotCommitted) as refused:
        asyncio.run(writer.run(deadlocked))
    assert refused.value.headers == {"Retry-After": "1"}  # a 503 says when to come back
    writer.close()
    assert len(runs) == 2
    assert notes(database) == []


def test_a_deadlock_while_units_run_one_by_one_runs_them_again(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second path (rows of a group refused, each unit writing its own rows) is run
    again on a deadlock like the first, not answered 503."""
    refused_once: list[bool] = []

    def refuse_the_group_s_rows(session: Session) -> None:
        if not refused_once:
            refused_once.append(True)
            raise IntegrityError("INSERT INTO note", {}, Exception("injected: refused"))

    monkeypatch.setattr("exchange.writer.write_held_rows", refuse_the_group_s_rows)
    writer = GroupWriter(database.session, capacity=4)
    runs: list[int] = []

    def stored_at_the_third_run(session: Session) -> str:
        runs.append(1)
        writing(f"run {len(runs)}")(session)
        if len(runs) == 2:  # the first run one by one meets a deadlock
            raise deadlock()
        return "stored"

    outcome = asyncio.run(writer.run(stored_at_the_third_run))
    writer.close()
    assert outcome == "stored"
    assert len(runs) == 3  # together (refused), one by one (deadlock), one by one again
    assert notes(database) == ["run 3"]


WAITING_FOR_ADVISORY_LOCK = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = :pid"
)


@pytest.fixture
def postgres_database(postgres: PostgresServer) -> Iterator[Database]:
    name = f"writer_{uuid.uuid4().hex[:12]}"
    database = Database(postgres.create_database(name))
    with database.session() as session:
        session.execute(text("CREATE TABLE note (body TEXT NOT NULL)"))
    yield database
    database.dispose()
    with psycopg.connect(postgres.url(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)'.encode())


def test_a_group_rolled_back_to_break_a_deadlock_runs_again(
    postgres: PostgresServer, postgres_database: Database
) -> None:
    """Two transactions waiting for each other's locks (two processes storing two new
    idempotency keys in opposite orders): PostgreSQL rolls one back. When it is the
    group's, nothing of it was kept and the other transaction can finish, so the group runs
    again once and its requests are answered, not told to come back (503)."""
    writer = GroupWriter(postgres_database.session, capacity=4)
    first, second = 1_000_001, 1_000_002  # advisory lock keys
    holding_first = threading.Event()
    runs: list[int] = []
    other_done: list[bool] = []

    with psycopg.connect(postgres.url(postgres_database.engine.url.database or "")) as other:
        other_pid = other.info.backend_pid

        def take_both(session: Session) -> str:
            runs.append(1)
            writing(f"run {len(runs)}")(session)
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": first})
            if len(runs) == 1:
                holding_first.set()
                # The other side waits for the first lock before this one asks for the
                # second, so that the cycle is there when this side checks for one (after
                # its deadlock_timeout, 1 s).
                wait_until(
                    lambda: (
                        session.execute(WAITING_FOR_ADVISORY_LOCK, {"pid": other_pid}).scalar_one()
                        > 0
                    ),
                    what="the other side waiting for the first lock",
                    deadline_s=30,
                )
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": second})
            return "stored"

        # The other side waits long before it checks for a deadlock, so the check that
        # finds it, and the rollback, are the group's.
        other.execute("SET deadlock_timeout = '60s'")
        other.execute("SELECT pg_advisory_xact_lock(%s)", (second,))

        def other_side() -> None:
            holding_first.wait(timeout=30)
            other.execute("SELECT pg_advisory_xact_lock(%s)", (first,))  # the deadlock
            other.commit()
            other_done.append(True)

        thread = threading.Thread(target=other_side)
        thread.start()
        try:
            outcome = asyncio.run(writer.run(take_both))
        finally:
            thread.join(timeout=60)
            writer.close()
    assert other_done == [True]  # the other transaction finished, unharmed
    assert outcome == "stored"
    assert len(runs) == 2  # rolled back once, then run again
    assert notes(postgres_database) == ["run 2"]  # nothing of the first run was kept
