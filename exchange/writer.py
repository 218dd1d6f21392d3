"""Group commit: the submissions of many concurrent requests stored in one transaction.

Every submission ends in a write, and a process has one writer at a time anyway (SQLite's
one write connection; on PostgreSQL, one transaction per request is one WAL flush per
request). So submissions do not each open a transaction: they queue their unit of work
here, and one thread per process takes everything queued, runs each unit in a savepoint of
one transaction, commits once, and only then answers each request. A 2xx still means
stored: a unit's result is handed back after the commit that made it durable, and when
that commit fails every unit of the group gets the failure (a 503), never a result. A
unit that raises is rolled back to its savepoint and gets its own error; the others go on.

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
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlmodel import Session

from exchange.errors import DATABASE_AWAY, NotCommitted, Overloaded
from exchange.i18n import t
from exchange.models import deferred_inserts

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
        done: list[tuple[_Unit, bool, Any]] = []
        try:
            with self._sessions() as session:
                for unit in group:
                    try:
                        with session.begin_nested(), deferred_inserts(session):
                            # The unit's rows are written together at its end, inside its
                            # savepoint: a refusal is the unit's own.
                            result = unit.work(session)
                    except DATABASE_AWAY:
                        raise  # the transaction is gone: the whole group fails below
                    except Exception as error:
                        done.append((unit, False, error))
                    else:  # released: the unit is part of the transaction
                        done.append((unit, True, result))
        except BaseException as failure:
            logger.warning(
                "a group of submissions was not committed",
                extra={"error": type(failure).__name__, "units": len(group)},
            )
            refusal: Exception = (
                failure
                if isinstance(failure, DATABASE_AWAY)
                else NotCommitted(t("request.not_committed"))
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
