"""Background jobs are enqueued only after the work that asked for them has committed.

A service calls :func:`enqueue_after_commit`; the message waits on the session and goes to the
broker from the session's ``after_commit`` hook, or is dropped when the transaction that
queued it rolls back. A worker therefore never sees an id whose row is not yet (or never will
be) in the database.

A savepoint (``session.begin_nested()``) that rolls back drops only the jobs queued since it
began: a bulk line refused inside its savepoint must not take the jobs of the lines accepted
before it down with it.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, SessionTransaction

if TYPE_CHECKING:
    from dramatiq import Broker

logger = logging.getLogger(__name__)

_BROKER = "exchange.broker"
_PENDING = "exchange.pending_jobs"
_SAVEPOINT_MARKS = "exchange.savepoint_marks"

JobArgument = str | int


@dataclass(frozen=True)
class PendingJob:
    actor_name: str
    kwargs: dict[str, JobArgument]
    delay_ms: int | None = None


def attach_broker(session: Session, broker: Broker | None) -> None:
    session.info[_BROKER] = broker


def enqueue_after_commit(
    session: Session, actor_name: str, *, delay_ms: int | None = None, **kwargs: JobArgument
) -> None:
    """Ask for ``actor_name(**kwargs)`` to run once this session commits (and, with
    ``delay_ms``, not before that many milliseconds after).

    Arguments are ids and small values, never payloads: the job reads what it needs from
    the database, which is the source of truth.
    """
    broker: Broker | None = session.info.get(_BROKER)
    if broker is None:
        raise RuntimeError("this session has no broker; open it with Database.session(broker=)")
    broker.get_actor(actor_name)  # fails now, inside the transaction, on an unknown actor
    session.info.setdefault(_PENDING, []).append(PendingJob(actor_name, dict(kwargs), delay_ms))


def pending_jobs(session: Session) -> list[PendingJob]:
    return list(session.info.get(_PENDING, []))


def send_pending(session: Session) -> None:
    # SQLAlchemy runs the commit hooks when a savepoint is released too: the jobs wait for
    # the transaction itself, or a worker could be sent an id it cannot see yet.
    if session.in_nested_transaction():
        return
    broker: Broker | None = session.info.get(_BROKER)
    for job in session.info.pop(_PENDING, []):
        assert broker is not None
        try:
            broker.get_actor(job.actor_name).send_with_options(
                kwargs=job.kwargs, delay=job.delay_ms
            )
        except Exception:
            # The commit stands and what the job was for is in the database; the job itself
            # is lost until something enqueues it again: the delivery sweeper finds due
            # deliveries by themselves; a probe stays unanswered, which is what it is for.
            logger.exception("could not enqueue job", extra={"actor": job.actor_name})


def mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    """Remember how many jobs were queued when a savepoint began (``after_transaction_create``)."""
    if transaction.nested:
        # Weak keys: a savepoint released long ago leaves no entry behind in a long session.
        marks = session.info.setdefault(_SAVEPOINT_MARKS, weakref.WeakKeyDictionary())
        marks[transaction] = len(session.info.get(_PENDING, ()))


def drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    """Forget the jobs of what was rolled back (``after_soft_rollback``): those queued since
    the savepoint began, or all of them when the whole transaction rolled back."""
    if not (previous_transaction.nested or previous_transaction.parent is None):
        # The inner transaction of a failed flush: the savepoint or the transaction that
        # encloses it is rolled back next, and says how much goes.
        return
    marks = session.info.get(_SAVEPOINT_MARKS, {})
    mark = marks.get(previous_transaction) if previous_transaction.nested else None
    if mark is None:
        drop_pending(session)
    else:
        del session.info.get(_PENDING, [])[mark:]


def drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
