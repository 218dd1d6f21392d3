"""Held rows (exchange.models.deferred_inserts): written together, yet nothing can tell the
difference — a read sees them, foreign keys hold whatever order they were held in, a
savepoint rolled back takes exactly its own rows, a refused row fails its own unit of the
group writer. On SQLite and PostgreSQL, with the hub's tables."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from exchange.agencies.models import Agency, ApiKey
from exchange.hub import Hub
from exchange.models import deferred_inserts, insert_rows, utcnow
from exchange.writer import GroupWriter


def agency(agency_id: str) -> dict[str, Any]:
    return {
        "id": agency_id,
        "name": agency_id,
        "kind": "police",
        "jurisdiction": "36",
        "active": True,
        "require_signed_reports": False,
        "require_signing_key_approval": False,
        "clearance": "public",
        "created_at": utcnow(),
    }


def api_key(key_id: str, agency_id: str) -> dict[str, Any]:
    return {
        "id": key_id,
        "agency_id": agency_id,
        "label": "",
        "secret_hash": "0" * 64,
        "scopes": "receive",
        "created_at": utcnow(),
        "expires_at": None,
        "revoked_at": None,
        "created_by": None,
        "created_by_user": None,
    }


def one_group(writer: GroupWriter, units: list[Callable[[Session], Any]]) -> list[Any]:
    """Run ``units`` as one group (queued behind a unit that holds the writer until they
    all are): their results, or the errors they raised."""

    async def run() -> list[Any]:
        gate = asyncio.Event()
        loop = asyncio.get_running_loop()

        def hold(_session: Session) -> None:
            asyncio.run_coroutine_threadsafe(gate.wait(), loop).result()

        first = asyncio.ensure_future(writer.run(hold))
        rest = [asyncio.ensure_future(writer.run(unit)) for unit in units]
        await asyncio.sleep(0)  # every unit is queued before the writer is let go
        gate.set()
        await first
        return await asyncio.gather(*rest, return_exceptions=True)

    return asyncio.run(run())


def agencies_named(session: Session, prefix: str) -> list[str]:
    return sorted(session.exec(select(Agency.id).where(col(Agency.id).startswith(prefix))).all())


def test_held_rows_are_written_together_and_seen_by_a_read(hub: Hub) -> None:
    inserts: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO agency"):
            inserts.append(statement)

    event.listen(hub.database.engine, "before_cursor_execute", count)
    with hub.database.session() as session, deferred_inserts(session):
        for n in range(5):
            insert_rows(session, Agency, [agency(f"held-{n}")])
        assert inserts == []  # held, not yet written
        # A key held before its agency: written after it all the same (dependency order).
        insert_rows(session, ApiKey, [api_key("k-held", "held-5")])
        insert_rows(session, Agency, [agency("held-5")])
        assert agencies_named(session, "held-") == [f"held-{n}" for n in range(6)]
    assert len(inserts) == 1  # one statement for the six agencies
    with hub.database.session() as session:
        assert session.get(ApiKey, "k-held") is not None


def test_a_savepoint_rolled_back_takes_its_own_rows_and_no_others(hub: Hub) -> None:
    with hub.database.session() as session, deferred_inserts(session):
        insert_rows(session, Agency, [agency("kept-before")])
        savepoint = session.begin_nested()
        insert_rows(session, Agency, [agency("dropped-inside")])
        assert agencies_named(session, "dropped-") == ["dropped-inside"]  # written...
        insert_rows(session, Agency, [agency("dropped-held")])
        savepoint.rollback()  # ... and taken back, with the one still held
        with session.begin_nested():
            insert_rows(session, Agency, [agency("kept-inside")])
        insert_rows(session, Agency, [agency("kept-after")])
    with hub.database.session() as session:
        assert agencies_named(session, "kept-") == ["kept-after", "kept-before", "kept-inside"]
        assert agencies_named(session, "dropped-") == []


def test_a_rollback_of_the_transaction_drops_what_is_held(hub: Hub) -> None:
    with hub.database.session() as session, deferred_inserts(session):
        insert_rows(session, Agency, [agency("gone-1")])
        session.rollback()
        insert_rows(session, Agency, [agency("after-rollback")])
    with hub.database.session() as session:
        assert agencies_named(session, "gone-") == []
        assert agencies_named(session, "after-") == ["after-rollback"]


def test_a_savepoint_rolled_back_holds_again_the_rows_it_inherited(hub: Hub) -> None:
    """Rows held before a savepoint and written inside it (for a read) are not lost when it
    rolls back: they are held again and written once, whatever the session's class, at
    any depth of savepoints."""
    inserts: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("INSERT INTO agency"):
            inserts.append(len(parameters) if isinstance(parameters, list) else 1)

    event.listen(hub.database.engine, "before_cursor_execute", count)
    with Session(hub.database.engine) as session, deferred_inserts(session):
        insert_rows(session, Agency, [agency("again-outer")])
        outer = session.begin_nested()
        insert_rows(session, Agency, [agency("again-middle")])
        inner = session.begin_nested()
        insert_rows(session, Agency, [agency("gone-inner")])
        assert agencies_named(session, "again-") == ["again-middle", "again-outer"]
        assert inserts == [3]  # all three written, inside the inner savepoint
        inner.rollback()
        assert agencies_named(session, "gone-") == []
        assert agencies_named(session, "again-") == ["again-middle", "again-outer"]
        assert inserts == [3, 2]  # the two it inherited, written again
        outer.rollback()
        assert agencies_named(session, "again-") == ["again-outer"]
        assert inserts == [3, 2, 1]
        session.commit()
    with hub.database.session() as session:
        assert agencies_named(session, "again-") == ["again-outer"]


def test_the_rows_of_a_group_are_written_together(hub: Hub) -> None:
    """Each unit runs in a savepoint of its own, and the rows of all of them are written
    with one statement per table at the group's end."""
    writer = GroupWriter(hub.session, capacity=20)
    inserts: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("INSERT INTO agency"):
            inserts.append(len(parameters) if isinstance(parameters, list) else 1)

    def adding(agency_id: str) -> Any:
        def work(session: Session) -> str:
            insert_rows(session, Agency, [agency(agency_id)])
            return agency_id

        return work

    event.listen(hub.database.engine, "before_cursor_execute", count)
    try:
        answered = one_group(writer, [adding(f"group-{n}") for n in range(8)])
    finally:
        writer.close()
        event.remove(hub.database.engine, "before_cursor_execute", count)
    assert answered == [f"group-{n}" for n in range(8)]
    assert inserts == [8]
    with hub.database.session() as session:
        assert agencies_named(session, "group-") == [f"group-{n}" for n in range(8)]


def test_a_refused_row_fails_its_own_unit_of_the_group(hub: Hub) -> None:
    """A duplicate key refuses the rows of the whole group, written together; the group
    runs again with each unit's rows written at its end, and the duplicate fails its own
    unit alone: the units before and after it are stored."""
    writer = GroupWriter(hub.session, capacity=10)

    def adding(agency_id: str, *, twice: bool = False) -> Any:
        def work(session: Session) -> str:
            insert_rows(session, Agency, [agency(agency_id)])
            if twice:  # refused only when the unit's held rows are written, at its end
                insert_rows(session, Agency, [agency(agency_id)])
            return agency_id

        return work

    try:
        first, refused, last = one_group(
            writer, [adding("unit-1"), adding("unit-2", twice=True), adding("unit-3")]
        )
    finally:
        writer.close()
    assert (first, last) == ("unit-1", "unit-3")
    assert isinstance(refused, IntegrityError)
    with hub.database.session() as session:
        assert agencies_named(session, "unit-") == ["unit-1", "unit-3"]


def test_a_refusal_caught_by_a_reader_still_fails_the_unit(hub: Hub) -> None:
    """Held rows written on behalf of a read: their refusal reaches the read, whose caller
    may take it for its own (a submission takes an IntegrityError for an idempotency
    collision and answers with the stored result). The unit fails all the same; on
    SQLite, where a failed statement leaves the transaction going, it would otherwise
    commit part of the rows and answer as if all were stored."""
    with hub.database.session() as session:
        insert_rows(session, Agency, [agency("taken")])
        insert_rows(session, ApiKey, [api_key("k-taken", "taken")])
    writer = GroupWriter(hub.session, capacity=10)

    def swallowing(session: Session) -> str:
        insert_rows(session, Agency, [agency("partial-1")])  # written first, accepted
        insert_rows(session, ApiKey, [api_key("k-taken", "taken")])  # refused: id exists
        try:
            agencies_named(session, "taken")  # the read writes the held rows first
        except IntegrityError:
            session.info["swallowed"] = True
        return "answered as stored"

    async def run() -> list[Any]:
        units = [swallowing, lambda session: "next"]
        return await asyncio.gather(*(writer.run(u) for u in units), return_exceptions=True)

    try:
        refused, following = asyncio.run(run())
    finally:
        writer.close()
    assert isinstance(refused, IntegrityError)
    assert following == "next"
    with hub.database.session() as session:
        assert agencies_named(session, "partial-") == []  # nothing of the unit stayed


def test_a_unit_whose_read_meets_another_units_refused_rows_is_not_blamed(hub: Hub) -> None:
    """A unit's read writes the rows held before it, another unit's among them; if the
    database refuses those, the reading unit fails at first, but the rows stay held and are
    refused again at the group's end, and the group runs again: the unit that held them
    fails, the reader and the rest are stored."""
    with hub.database.session() as session:
        insert_rows(session, Agency, [agency("existing")])
    writer = GroupWriter(hub.session, capacity=10)

    def duplicating(session: Session) -> str:
        insert_rows(session, Agency, [agency("existing")])  # refused once written
        return "duplicated"

    def reading(session: Session) -> list[str]:
        insert_rows(session, Agency, [agency("blameless-reader")])
        return agencies_named(session, "blameless-")  # writes the duplicate's rows too

    def adding(session: Session) -> str:
        insert_rows(session, Agency, [agency("blameless-after")])
        return "added"

    try:
        refused, read, added = one_group(writer, [duplicating, reading, adding])
    finally:
        writer.close()
    assert isinstance(refused, IntegrityError)
    assert read == ["blameless-reader"]
    assert added == "added"
    with hub.database.session() as session:
        assert agencies_named(session, "blameless-") == ["blameless-after", "blameless-reader"]


def test_a_refusal_outlives_a_later_savepoint_rolled_back(hub: Hub) -> None:
    """A unit's read writes another unit's rows and swallows their refusal, then rolls back
    a savepoint of its own (a bulk line refused): that rollback cannot undo the write it
    came after, so the refusal stands, and the unit that held the rows is not answered as
    if they were stored (on SQLite the failed statement would leave part of them)."""
    with hub.database.session() as session:
        insert_rows(session, Agency, [agency("taken")])
        insert_rows(session, ApiKey, [api_key("k-taken", "taken")])
    writer = GroupWriter(hub.session, capacity=10)

    def holding_a_duplicate(session: Session) -> str:
        insert_rows(session, Agency, [agency("culprit-1")])
        insert_rows(session, ApiKey, [api_key("k-taken", "taken")])  # refused once written
        return "stored"

    def swallowing_then_rolling_back(session: Session) -> str:
        with contextlib.suppress(IntegrityError):
            agencies_named(session, "taken")  # writes the other unit's rows: refused
        try:
            with session.begin_nested():
                raise ValueError("a line refused in its own savepoint")
        except ValueError:
            pass
        return "answered"

    try:
        refused, answered = one_group(writer, [holding_a_duplicate, swallowing_then_rolling_back])
    finally:
        writer.close()
    assert isinstance(refused, IntegrityError)
    assert answered == "answered"
    with hub.database.session() as session:
        assert agencies_named(session, "culprit-") == []
