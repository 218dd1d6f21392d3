"""Background jobs are enqueued only after the work that asked for them has committed.

A service calls :func:`enqueue_after_commit`; the message waits on the session and goes to the
broker from the session's ``after_commit`` hook, or is dropped by ``after_rollback``. A worker
therefore never sees an id whose row is not yet (or never will be) in the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from dramatiq import Broker

logger = logging.getLogger(__name__)

_BROKER = "exchange.broker"
_PENDING = "exchange.pending_jobs"

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


def drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
