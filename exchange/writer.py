"""Group commit: the submissions of many concurrent requests stored in one transaction.

Every submission ends in a write, and a process has one writer at a time anyway (SQLite's
one write connection; on PostgreSQL, one transaction per request is one WAL flush per
request). So submissions do not each open a transaction: they queue their unit of work
here, and one thread per process takes everything queued, runs each unit in a savepoint of
one transaction, commits once, and only then answers each request. A 2xx still means
stored: a unit's result is handed back after the commit that made it durable, and when
that commit fails every unit of the group gets the failure (a 503), never a result. A
unit that raises is rolled back to its savepoint and gets its own error; the others go on.

The rows the units insert are held and written together at the end of the group, one
statement per table (exchange.models.deferred_inserts): per unit, the savepoint's two
statements are all it costs, where writing its own rows cost a dozen. Units check
everything before they insert, so the database refusing a row is a bug or a race; if it
ever refuses the group's rows, whose they were cannot be told, and the group runs again
with each unit writing its own rows at its end. Then what a unit counts outside the
database (a key's submissions this minute, a rejection's tally) is counted twice for that
group, and a key near its limit may be answered 429: the price of a path that should never
be taken. The same goes for a group PostgreSQL rolls back to break a deadlock with another
process's transaction: nothing of it was kept, and it runs again once.

Our own few lines: group commit sits between the request and the session, which no
library we use offers (SQLAlchemy and dramatiq each see one unit of work at a time).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from exchange.errors import DATABASE_AWAY, NotCommitted, Overloaded
from exchange.i18n import t
from exchange.models import deferred_inserts, raise_refusal, write_held_rows

logger = logging.getLogger(__name__)

T = TypeVar("T")
# A transaction takes units until they weigh this much (a submission weighs 1, a bulk
# batch its lines): on SQLite it holds the one write lock, which other processes wait for
# (busy_timeout), so a group is no longer than the longest unit alone.
MAX_GROUP_WEIGHT = 500
RETRY_AFTER_S = 1


@dataclass
class _Unit:
    work: Callable[[Session], Any]
    weight: int
    future: Future[Any] = field(default_factory=Future)


class GroupWriter:
    """One thread that runs queued units of work, many to a transaction (see the module).
    At most ``capacity`` units wait; past that a unit is refused at once with
    :class:`Overloaded` (503, Retry-After) rather than left to time out."""

    def __init__(
        self, sessions: Callable[[], AbstractContextManager[Session]], *, capacity: int
    ) -> None:
        self._sessions = sessions
        self._queue: queue.Queue[_Unit | None] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._closed = False
        self._carried: _Unit | None = None  # taken from the queue, too heavy for the last group

    async def run(self, work: Callable[[Session], T], *, weight: int = 1) -> T:
        """``work(session)``'s result once its transaction has committed. ``weight``: how
        many submissions the unit stores (a bulk batch's lines)."""
        unit = _Unit(work, weight)
        try:
            if self._closed:
                raise queue.Full  # shutting down: the client sends it again elsewhere
            self._start()
            self._queue.put_nowait(unit)
        except queue.Full:
            raise Overloaded(
                t("request.overloaded", seconds=RETRY_AFTER_S),
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        result: T = await asyncio.wrap_future(unit.future)
        return result

    def close(self) -> None:
        """Finish what is queued, then stop the thread; later units are refused."""
        self._closed = True
        with self._starting:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(None)  # the thread drains the queue, so there will be room
            thread.join()

    def _start(self) -> None:
        # Started with the first unit, not at start-up: a process that never takes a
        # submission (a CLI command, a test that builds a hub) runs no thread.
        with self._starting:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="group-writer", daemon=True
                )
                self._thread.start()

    def _serve(self) -> None:
        while True:
            first, self._carried = self._carried or self._queue.get(), None
            if first is None:
                return
            group, weight, stopping = [first], first.weight, False
            while weight < MAX_GROUP_WEIGHT:
                try:
                    unit = self._queue.get_nowait()
                except queue.Empty:
                    break
                if unit is None:
                    stopping = True
                    break
                if weight + unit.weight > MAX_GROUP_WEIGHT:
                    self._carried = unit  # it starts the next group
                    break
                group.append(unit)
                weight += unit.weight
            self._commit(group)
            if stopping:  # (never with a carried unit: the stop marker came after it)
                return

    def _commit(self, group: list[_Unit]) -> None:
        # A unit whose request went away before its turn (the client hung up) is not run.
        group = [unit for unit in group if unit.future.set_running_or_notify_cancel()]
        try:
            try:
                done = self._store_again_on_deadlock(group, together=True)
            except _RowsRefused as refused:
                # The database refused rows of the group, written together: whose cannot be
                # told, so the group runs again, each unit's rows written at its own end.
                logger.warning(
                    "rows of a group were refused; its units run again one by one",
                    extra={"error": type(refused.__cause__).__name__, "units": len(group)},
                )
                done = self._store_again_on_deadlock(group, together=False)
        except BaseException as failure:
            broken_again = _rolled_back_for_another(failure)
            logger.warning(
                "a group of submissions was not committed",
                extra={
                    "error": type(failure).__name__,
                    "units": len(group),
                    **({"sqlstate": _sqlstate(failure)} if broken_again else {}),
                },
            )
            # A database that is away is said to be (503, come back after Retry-After); a
            # group rolled back again to break a deadlock was not stored, the database is
            # there: its units are told so and send again.
            refusal: Exception = (
                failure
                if isinstance(failure, DATABASE_AWAY) and not broken_again
                else NotCommitted(
                    t("request.not_committed"), headers={"Retry-After": str(RETRY_AFTER_S)}
                )
            )
            for unit in group:
                unit.future.set_exception(refusal)
            if not isinstance(failure, Exception):
                raise  # the thread is being stopped; the next unit starts another
            return
        for unit, succeeded, value in done:
            if succeeded:
                unit.future.set_result(value)
            else:
                unit.future.set_exception(value)

    def _store_again_on_deadlock(
        self, group: list[_Unit], *, together: bool
    ) -> list[tuple[_Unit, bool, Any]]:
        """:meth:`_store`, run again once if PostgreSQL rolled the transaction back for
        another's sake (a deadlock with another process's group, two new idempotency keys
        taken in opposite orders): nothing of it was kept, and the other can now finish."""
        try:
            return self._store(group, together=together)
        except OperationalError as error:
            if not _rolled_back_for_another(error):
                raise
            logger.warning(
                "a group of submissions was rolled back to break a deadlock; it runs again",
                extra={"sqlstate": _sqlstate(error), "units": len(group)},
            )
            return self._store(group, together=together)

    def _store(self, group: list[_Unit], *, together: bool) -> list[tuple[_Unit, bool, Any]]:
        """Run the units in one transaction, each in a savepoint (one that raises is rolled
        back alone), and commit. ``together``: the rows of every unit are held and written
        at once at the end (:class:`_RowsRefused` if the database refuses them); otherwise
        each unit's rows are written at its end, inside its savepoint, so that a refusal is
        its own."""
        done: list[tuple[_Unit, bool, Any]] = []
        with self._sessions() as session, _holding(session, together):
            for unit in group:
                try:
                    with session.begin_nested(), _holding(session, not together):
                        result = unit.work(session)
                        raise_refusal(session)  # of rows written inside it, for a read
                except DATABASE_AWAY:
                    raise  # the transaction is gone: the whole group fails
                except Exception as error:
                    done.append((unit, False, error))
                else:  # released: the unit is part of the transaction
                    done.append((unit, True, result))
            if together:
                try:
                    write_held_rows(session)
                    raise_refusal(session)
                except DATABASE_AWAY:
                    raise
                except Exception as error:
                    raise _RowsRefused from error
        return done


# SQLSTATEs of a transaction PostgreSQL rolled back for another's sake, which can succeed
# when run again: deadlock_detected, serialization_failure.
RUN_AGAIN = frozenset({"40P01", "40001"})


def _sqlstate(error: BaseException) -> str | None:
    return getattr(getattr(error, "orig", None), "sqlstate", None)


def _rolled_back_for_another(error: BaseException) -> bool:
    return isinstance(error, OperationalError) and _sqlstate(error) in RUN_AGAIN


class _RowsRefused(Exception):
    """The rows of a group, written together, were refused by the database."""


def _holding(session: Session, hold: bool) -> AbstractContextManager[None]:
    return deferred_inserts(session) if hold else nullcontext()
