"""Deliveries in batches: the ``delivery.send`` actor's threads claim and record through one
desk per process, which runs what they hand in together, many claims and records to a
transaction.

Each delivery thread does what one attempt needs: it hands in its message and waits for its
claim, attempts the delivery itself (so the attempts of a batch are under way together, no
database connection held), then hands in the outcome and waits until it is recorded. So
dramatiq still acknowledges a message only after its work is done, and nothing about a
delivery changes but how many others share its transaction. The desk runs, in one
transaction, first the outcomes handed in (their attempts no longer count against a slot),
then the claims, with one read of the rows, one count of the attempts under way and one
decrypt per report (``service.claim_all``, ``service.record_all``); the rows it inserts
are written one statement per table (``exchange.models.deferred_inserts``). Per delivery,
that is about half the statements and none of the transactions of claiming and recording
it alone, which is what binds a worker: the Python each statement costs.

A batch whose transaction fails (the database refused, or PostgreSQL broke a deadlock) runs
again one item to a transaction, so that an item's failure is its own.

Our own few lines (:class:`Combiner`): the threads are dramatiq's, each holding one message,
and no library we use batches the work of threads that must each wait for their own result.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlmodel import Session

from connectors.base import ConnectorContext
from exchange.delivery import service
from exchange.delivery.models import Delivery
from exchange.delivery.service import Attempted, Claim, DeliveryPolicy, Wanted
from exchange.models import deferred_inserts
from exchange.protection.sealing import Sealer
from exchange.registry.service import SchemaRegistry

logger = logging.getLogger(__name__)

# How long a waiting thread may take to notice it was interrupted (see Combiner.submit).
WAIT_SLICE_S = 0.5

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Ticket(Generic[Item, Result]):
    item: Item
    # Set when the ticket has its result or error, or when its thread is to run the next
    # batch (still not ``done`` then).
    woken: threading.Event = field(default_factory=threading.Event)
    result: Result | None = None
    error: BaseException | None = None
    done: bool = False


class Combiner(Generic[Item, Result]):
    """Items handed in by many threads, run in batches by one of those threads at a time
    (flat combining). A thread that hands in an item while no batch runs runs one: every
    item waiting, its own among them. Items handed in meanwhile wait; when the batch is
    done, the thread of the first of them runs the next. No thread runs a batch without its
    own item in it, so none is kept from its own work for more than one batch.

    ``run`` returns one result per item, in order, or raises for the whole batch: then each
    item of a larger batch runs again alone, and gets its own result or error. A thread
    interrupted while it runs a batch (dramatiq's time limit raises in it) leaves the other
    items to the next batch."""

    def __init__(self, run: Callable[[list[Item]], Sequence[Result]]) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._waiting: list[_Ticket[Item, Result]] = []
        self._running = False

    def submit(self, item: Item) -> Result:
        ticket: _Ticket[Item, Result] = _Ticket(item)
        with self._lock:
            self._waiting.append(ticket)
            leads, self._running = not self._running, True
        try:
            if not leads:
                # In slices, not one wait: an exception raised in this thread from outside
                # (dramatiq's time limit) lands only between bytecodes, so a thread waiting
                # behind a batch stuck on the database would otherwise never give up.
                while not ticket.woken.wait(WAIT_SLICE_S):
                    pass
            if not ticket.done:  # it runs the next batch, which holds its item
                self._run_batch(ticket)
        except BaseException:  # interrupted (dramatiq's time limit, a shutdown)
            self._abandon(ticket)
            raise
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]

    def _run_batch(self, own: _Ticket[Item, Result]) -> None:
        batch: list[_Ticket[Item, Result]] = []
        try:
            with self._lock:
                batch, self._waiting = self._waiting, []
            self._settle(batch)
        finally:
            # Interrupted while running them (its transaction rolled back): the others'
            # items wait again, first in line, for the next batch.
            unsettled = [t for t in batch if not t.done and t is not own]
            if not own.done:  # its thread is raising: nothing is left for it to pass on
                self._finish(own, error=RuntimeError("the batch was interrupted"))
            with self._lock:
                self._waiting[:0] = unsettled
                self._pass_on()

    def _settle(self, batch: list[_Ticket[Item, Result]]) -> None:
        try:
            results = self._run([ticket.item for ticket in batch])
        except Exception as error:
            if len(batch) == 1:
                self._finish(batch[0], error=error)
                return
            logger.warning("a batch failed; each of its items runs alone", exc_info=True)
            for ticket in batch:
                try:
                    (result,) = self._run([ticket.item])
                except Exception as alone:
                    self._finish(ticket, error=alone)
                else:
                    self._finish(ticket, result=result)
            return
        for ticket, result in zip(batch, results, strict=True):
            self._finish(ticket, result=result)

    def _abandon(self, ticket: _Ticket[Item, Result]) -> None:
        """A thread gives up: if its item still waits, it is not run (if a batch has taken
        it already, it runs, and its result goes unread), and if the thread had just been
        told to run the next batch, the next waiting thread is told instead."""
        with self._lock:
            if ticket in self._waiting:
                self._waiting.remove(ticket)
            if ticket.woken.is_set() and not ticket.done:
                self._pass_on()

    def _pass_on(self) -> None:
        """With the lock held: wake the first waiting thread to run the next batch, or
        note that none runs."""
        if self._waiting:
            self._waiting[0].woken.set()
        else:
            self._running = False

    @staticmethod
    def _finish(
        ticket: _Ticket[Item, Result],
        *,
        result: Result | None = None,
        error: BaseException | None = None,
    ) -> None:
        ticket.result, ticket.error, ticket.done = result, error, True
        ticket.woken.set()


class DeliveryDesk:
    """Claims and records the deliveries of one process in batches (see the module)."""

    def __init__(
        self,
        sessions: Callable[[], AbstractContextManager[Session]],
        *,
        policy: DeliveryPolicy,
        registry: SchemaRegistry,
        sealer: Sealer,
        context: ConnectorContext,
        worker: str,
    ) -> None:
        self.sessions = sessions
        self.policy = policy
        self.registry = registry
        self.sealer = sealer
        self.context = context
        self.worker = worker
        self.rng = random.Random()  # noqa: S311 - jitter; one batch runs at a time
        self._combiner: Combiner[Wanted | Attempted, Claim | Delivery | None] = Combiner(self._run)

    def deliver(self, delivery_id: str, dispatch: int | None = None) -> Delivery | None:
        """Claim, attempt and record one delivery. None when it was not due or the message
        superseded."""
        taken = self._combiner.submit(Wanted(delivery_id, dispatch))
        if taken is None:
            return None
        assert isinstance(taken, Claim)
        result = service.attempt(taken, context=self.context)
        recorded = self._combiner.submit(Attempted(taken, result))
        assert isinstance(recorded, Delivery)
        return recorded

    def _run(self, items: list[Wanted | Attempted]) -> list[Claim | Delivery | None]:
        attempted = [item for item in items if isinstance(item, Attempted)]
        wanted = [item for item in items if isinstance(item, Wanted)]
        with self.sessions() as session, deferred_inserts(session):
            service.hold_all(
                session,
                [item.claim.delivery_id for item in attempted]
                + [item.delivery_id for item in wanted],
            )
            recorded = service.record_all(
                session, attempted, policy=self.policy, worker=self.worker, rng=self.rng
            )
            claimed = service.claim_all(
                session, wanted, policy=self.policy, registry=self.registry, sealer=self.sealer
            )
        recorded_in_turn, claimed_in_turn = iter(recorded), iter(claimed)
        return [
            next(recorded_in_turn) if isinstance(item, Attempted) else next(claimed_in_turn)
            for item in items
        ]
