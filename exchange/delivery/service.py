"""Delivering routed reports: claim a due delivery, attempt it through a fresh connector,
record what came of it, retry on the schedule, and find lost work again (the sweeper); and
for recipients, listing, replay and recovery. Acknowledgements and receipts are in
``receipts.py``, the pull inbox in ``inbox.py``.

One attempt is two units of work with the connector call between them, so that no database
lock or connection is held while a remote system takes its time: :func:`claim_all` marks
deliveries in flight (with a hold that lapses if the worker dies), :func:`attempt` talks to
the recipient with no session open, :func:`record_all` stores the outcomes. Each unit serves
many deliveries at once: ``desk.py`` gathers those of a process's delivery threads.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import BindParameter, bindparam, func, or_
from sqlmodel import Session, col, select

from connectors.base import (
    ConnectorContext,
    Delivered,
    Envelope,
    PermanentFailure,
    RetryableFailure,
)
from connectors.registry import factory
from exchange.agencies.models import Agency
from exchange.audit import service as audit
from exchange.delivery.envelope import build_envelope, build_test_envelope
from exchange.delivery.models import (
    DUE_STATES,
    ERROR_LENGTH,
    INBOX,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    enqueue_send,
    starting_state,
)
from exchange.errors import Conflict, NotFound
from exchange.i18n import t
from exchange.models import UTCDateTime, advisory_key, hold_advisory_lock, insert_rows, utcnow
from exchange.protection import service as protection
from exchange.protection import vault
from exchange.protection.sealing import Sealer
from exchange.protection.vault import ReportPurged
from exchange.registry.service import SchemaRegistry
from exchange.reports.models import Report
from exchange.routing import service as routing
from exchange.routing.models import Subscription

# A worker's hold on an in-flight delivery lasts this many connector timeouts: enough to
# finish the attempt and record it; after it lapses the sweeper hands the delivery to
# another worker (the holder died).
HOLD_TIMEOUTS = 2
JITTER = 0.2
SWEEP_BATCH = 1000
# However overdue a delivery is, the sweeper sends it again at least this often (its message
# may have been lost again); before, it waits as long as the delivery was overdue.
RESWEEP_CAP = timedelta(minutes=1)
SLOT_WAIT_S = 1.0


class DeliveryNotFound(NotFound):
    """Raised when a delivery id names no delivery of the caller's agency."""

    code = "delivery_not_found"


class DeliveryConflict(Conflict):
    """Raised when a delivery is not in a state that allows the action."""

    code = "delivery_state_conflict"


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard the hub tries: the retry schedule and its limits."""

    schedule_s: tuple[float, ...]
    timeout_s: float = 15.0
    backoff_floor_s: float = 60.0
    max_in_flight_per_subscription: int = 2
    max_in_flight_per_agency: int = 4

    def next_delay(
        self, attempts_made: int, failure: RetryableFailure, rng: random.Random
    ) -> float | None:
        """Seconds until the next attempt, or None when the schedule is spent.

        The scheduled delay is jittered ±20 %; a timeout or a 429 waits at least the floor;
        a ``Retry-After`` is honoured within [scheduled, 2 x scheduled].
        """
        if attempts_made >= len(self.schedule_s):
            return None
        scheduled = self.schedule_s[attempts_made] * rng.uniform(1 - JITTER, 1 + JITTER)
        if failure.throttled:
            scheduled = max(scheduled, self.backoff_floor_s)
        if failure.retry_after_s is not None:
            scheduled = min(max(failure.retry_after_s, scheduled), 2 * scheduled)
        return scheduled

    @property
    def hold(self) -> timedelta:
        return timedelta(seconds=self.timeout_s * HOLD_TIMEOUTS)

    def slot_wait(self, rng: random.Random) -> timedelta:
        """How long a delivery waits when its subscription or agency has every attempt slot
        taken: about a second (at most one timeout), jittered so waiters spread out."""
        return timedelta(seconds=min(SLOT_WAIT_S, self.timeout_s) * rng.uniform(0.5, 1.5))


@dataclass(frozen=True)
class Claim:
    """A delivery a worker now holds, with everything the attempt needs."""

    delivery_id: str
    recipient: str
    connector: str
    config: BaseModel
    envelope: Envelope


@dataclass(frozen=True)
class AttemptResult:
    started_at: datetime
    duration_ms: int
    delivered: Delivered | None = None
    failure: RetryableFailure | PermanentFailure | None = None


@dataclass(frozen=True)
class Wanted:
    """A ``delivery.send`` message: attempt this delivery if it is still due and the message
    (numbered ``dispatch``) is not superseded (None: not numbered, a message sent before
    messages were)."""

    delivery_id: str
    dispatch: int | None = None


@dataclass(frozen=True)
class Attempted:
    """A claimed delivery and what came of its attempt, to be recorded."""

    claim: Claim
    result: AttemptResult


# The statements every batch runs, built once with bound parameters: built afresh at each
# call, SQLAlchemy's construction and cache-key work cost more than SQLite's own.
_DELIVERY_IDS: BindParameter[list[str]] = bindparam("delivery_ids", expanding=True)
# Everything the attempts need, in one statement: the deliveries, their subscriptions,
# reports and recipients. Only the delivery rows are locked (FOR UPDATE OF delivery on
# PostgreSQL, in id order so that two batches cannot each hold a row the other waits for;
# SQLite's BEGIN IMMEDIATE already holds the database's write lock), so two workers claim
# a report's deliveries to different subscribers in parallel.
_CLAIMED_ROWS = (
    select(Delivery, Subscription, Report, Agency)
    .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
    .join(Report, col(Report.id) == col(Delivery.report_id))
    .join(Agency, col(Agency.id) == col(Delivery.agency_id))
    .where(col(Delivery.id).in_(_DELIVERY_IDS))
    .order_by(col(Delivery.id))
    .with_for_update(of=Delivery)
)
_LOCKED_DELIVERIES = (
    select(Delivery)
    .where(col(Delivery.id).in_(_DELIVERY_IDS))
    .order_by(col(Delivery.id))
    .with_for_update()
)
_LOCKED_AGENCIES = (
    select(Delivery.agency_id)
    .where(col(Delivery.id).in_(_DELIVERY_IDS))
    .order_by(col(Delivery.id))
    .with_for_update()
)
_ATTEMPTS_MADE = (
    select(DeliveryAttempt.delivery_id, func.count())
    .where(col(DeliveryAttempt.delivery_id).in_(_DELIVERY_IDS))
    .group_by(col(DeliveryAttempt.delivery_id))
)
# Attempts under way (in flight, hold not lapsed) for each subscription of some agencies.
_IN_FLIGHT = (
    select(Delivery.agency_id, Delivery.subscription_id, func.count())
    .where(
        col(Delivery.agency_id).in_(bindparam("agency_ids", expanding=True)),
        col(Delivery.state) == DeliveryState.in_flight,
        col(Delivery.due_at) > bindparam("now", type_=UTCDateTime),
    )
    .group_by(col(Delivery.agency_id), col(Delivery.subscription_id))
)


def _delay_ms(until: datetime, now: datetime) -> int:
    return max(0, int((until - now).total_seconds() * 1000))


def hold_all(session: Session, delivery_ids: Sequence[str]) -> None:
    """Lock, for a transaction that records and claims these deliveries together, first
    their rows in id order, then their agencies' claim turns in agency order. The record
    and claim phases lock the same again (PostgreSQL's locks are reentrant), but by then
    nothing is left to wait for in a different order: a 410's or a throttle's subscription
    lock is only taken holding its agency's turn. Nothing to do on SQLite, whose BEGIN
    IMMEDIATE already serialises every writer."""
    if not delivery_ids or session.get_bind().dialect.name != "postgresql":
        return
    agencies = session.exec(_LOCKED_AGENCIES, params={"delivery_ids": sorted(delivery_ids)}).all()
    _take_claim_turns(session, sorted(set(agencies)))


def _take_claim_turns(session: Session, agency_ids: list[str]) -> None:
    """On PostgreSQL, each agency's claim turn (an advisory lock to the end of the
    transaction), in the order given: sorted, so that two transactions cannot deadlock on
    them."""
    if session.get_bind().dialect.name == "postgresql":
        for agency_id in agency_ids:
            hold_advisory_lock(session, advisory_key("claim", agency_id))


def claim(
    session: Session,
    *,
    delivery_id: str,
    dispatch: int | None = None,
    policy: DeliveryPolicy,
    registry: SchemaRegistry,
    sealer: Sealer,
) -> Claim | None:
    """Take a due delivery for one attempt: :func:`claim_all` for one message."""
    (taken,) = claim_all(
        session, [Wanted(delivery_id, dispatch)], policy=policy, registry=registry, sealer=sealer
    )
    return taken


def claim_all(
    session: Session,
    wanted: Sequence[Wanted],
    *,
    policy: DeliveryPolicy,
    registry: SchemaRegistry,
    sealer: Sealer,
) -> list[Claim | None]:
    """Take each wanted delivery for one attempt, in the order given, or None for one that
    is not due (already delivered, held by another worker, waiting for its time or for a
    slot or its subscription's throttle) or whose message was superseded by a later one.
    One read of the rows, one count of the attempts under way and one decrypt per report
    serve them all; a delivery wanted twice is taken at most once."""
    if not wanted:
        return []
    ids = sorted({message.delivery_id for message in wanted})
    rows = {row[0].id: row for row in session.exec(_CLAIMED_ROWS, params={"delivery_ids": ids})}
    batch = _ClaimBatch(session, policy=policy, registry=registry, sealer=sealer)
    batch.count_attempts_under_way(sorted({row[0].agency_id for row in rows.values()}))
    # The rows changed are flushed together at the end (executemany), not before each
    # read of an envelope's linked reports, which no claim's change can alter.
    with session.no_autoflush:
        return [batch.take(message, rows.get(message.delivery_id)) for message in wanted]


_ClaimedRow = tuple[Delivery, Subscription, Report, Agency]


class _ClaimBatch:
    """What the claims of one transaction share: the time, the attempts under way per
    agency and subscription (counted once, then kept up to date here), the subscriptions
    already locked for their throttle and the reports already decrypted."""

    def __init__(
        self, session: Session, *, policy: DeliveryPolicy, registry: SchemaRegistry, sealer: Sealer
    ) -> None:
        self.session = session
        self.policy = policy
        self.registry = registry
        self.sealer = sealer
        self.now = utcnow()
        self.of_agency: Counter[str] = Counter()
        self.of_subscription: Counter[str] = Counter()
        self.throttle_locked: set[str] = set()
        self.plaintexts: dict[str, bytes | None] = {}  # None: purged

    def count_attempts_under_way(self, agency_ids: list[str]) -> None:
        """Claims for one agency take turns here (on PostgreSQL an advisory lock per
        agency, taken in sorted order after the row locks, as :func:`hold_all` does;
        SQLite's BEGIN IMMEDIATE already serialises every writer), so two workers never
        both take the last slot."""
        if not agency_ids:
            return
        _take_claim_turns(self.session, agency_ids)
        counts = self.session.exec(_IN_FLIGHT, params={"agency_ids": agency_ids, "now": self.now})
        for agency_id, subscription_id, count in counts:
            self.of_agency[agency_id] += count
            self.of_subscription[subscription_id] += count

    def take(self, message: Wanted, row: _ClaimedRow | None) -> Claim | None:
        if row is None:
            return None
        delivery, subscription, report, recipient = row
        now, policy, session = self.now, self.policy, self.session
        if delivery.state not in DUE_STATES:
            return None
        if message.dispatch is not None and message.dispatch != delivery.dispatch:
            return None
        if delivery.due_at is not None and delivery.due_at > now:
            return None
        if not subscription.active:
            reason = f"subscription {subscription.disabled_reason or 'inactive'}"
            _end(session, delivery, reason=reason)
            return None
        if not recipient.active:
            _end(session, delivery, reason="recipient deactivated")
            return None
        if (
            self.of_agency[delivery.agency_id] >= policy.max_in_flight_per_agency
            or self.of_subscription[delivery.subscription_id]
            >= policy.max_in_flight_per_subscription
        ):
            # Wait for a slot without holding a worker: come back a little later.
            delivery.due_at = now + policy.slot_wait(random.Random())  # noqa: S311 - jitter
            enqueue_send(session, delivery, delay_ms=_delay_ms(delivery.due_at, now))
            return None
        if subscription.throttle_per_s:
            # Slots are handed out one at a time: lock the subscription for this transaction.
            if subscription.id not in self.throttle_locked:
                session.refresh(subscription, with_for_update=True)
                self.throttle_locked.add(subscription.id)
            slot = max(now, subscription.next_slot_at or now)
            if slot > now:
                delivery.due_at = slot
                enqueue_send(session, delivery, delay_ms=_delay_ms(slot, now))
                return None
            subscription.next_slot_at = slot + timedelta(seconds=1 / subscription.throttle_per_s)
            session.add(subscription)
        plaintext = self._plaintext(report)
        if plaintext is None:
            _end(session, delivery, reason="report purged")
            return None
        seen = protection.view_of(
            session, report=report, plaintext=plaintext, reader=recipient, registry=self.registry
        )
        envelope = build_envelope(report, delivery, registry=self.registry, seen=seen)
        delivery.state = DeliveryState.in_flight
        delivery.attempts += 1
        delivery.due_at = now + policy.hold
        delivery.resweep_at = None
        delivery.data_hash = str(envelope.attributes["datahash"])
        session.add(delivery)
        self.of_agency[delivery.agency_id] += 1
        self.of_subscription[delivery.subscription_id] += 1
        return Claim(
            delivery_id=delivery.id,
            recipient=delivery.agency_id,
            connector=delivery.connector,
            config=routing.open_config(subscription, self.sealer),
            envelope=envelope,
        )

    def _plaintext(self, report: Report) -> bytes | None:
        if report.id not in self.plaintexts:
            try:
                self.plaintexts[report.id] = vault.unlock(
                    self.session, report_id=report.id, ciphertext=report.payload, sealer=self.sealer
                )
            except ReportPurged:
                self.plaintexts[report.id] = None
        return self.plaintexts[report.id]


def test_claim(
    session: Session, *, subscription: Subscription, sealer: Sealer, actor: str
) -> Claim:
    """A claim on no delivery: a test envelope for ``subscription``, for :func:`attempt` to
    send like any other (no session open meanwhile). Audited here, so the test is on the
    record even when the recipient never answers."""
    envelope_id = f"test-{uuid.uuid4().hex}"
    audit.record(
        session,
        action="subscription.tested",
        subject=f"subscription:{subscription.id}",
        actor=actor,
        details={"envelope": envelope_id},
    )
    return Claim(
        delivery_id=envelope_id,
        recipient=subscription.agency_id,
        connector=subscription.connector,
        config=routing.open_config(subscription, sealer),
        envelope=build_test_envelope(
            subscription.id, subscription.agency_id, envelope_id=envelope_id
        ),
    )


def attempt(claim_: Claim, *, context: ConnectorContext) -> AttemptResult:
    """One call to a connector built for this delivery alone. Needs no database."""
    started_at = utcnow()
    clock = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - clock) * 1000)

    try:
        connector = factory(claim_.connector)(replace(context, recipient=claim_.recipient))
        delivered = connector.deliver(claim_.envelope, claim_.config)
    except (RetryableFailure, PermanentFailure) as failure:
        return AttemptResult(started_at, elapsed(), failure=failure)
    except Exception as error:  # a connector's bug must not lose the delivery: retry it
        bug = RetryableFailure(f"connector error: {type(error).__name__}")
        return AttemptResult(started_at, elapsed(), failure=bug)
    return AttemptResult(started_at, elapsed(), delivered=delivered)


def record_all(
    session: Session,
    attempted: Sequence[Attempted],
    *,
    policy: DeliveryPolicy,
    worker: str,
    rng: random.Random,
) -> list[Delivery]:
    """Store each attempt and move its delivery on: delivered, retrying (its next message
    enqueued with a delay) or dead; a 410 also disables the subscription. One read of the
    rows and one count of the attempts made serve them all; the attempts are written in
    one statement."""
    if not attempted:
        return []
    ids = sorted({done.claim.delivery_id for done in attempted})
    params = {"delivery_ids": ids}
    deliveries = {row.id: row for row in session.exec(_LOCKED_DELIVERIES, params=params)}
    made: Counter[str] = Counter(dict(session.exec(_ATTEMPTS_MADE, params=params).all()))
    attempt_rows = []
    for done in attempted:
        delivery = deliveries[done.claim.delivery_id]
        made[delivery.id] += 1
        attempt_rows.append(
            _move_on(
                session,
                delivery,
                done.result,
                number=made[delivery.id],
                policy=policy,
                worker=worker,
                rng=rng,
            )
        )
    insert_rows(session, DeliveryAttempt, attempt_rows)
    return [deliveries[done.claim.delivery_id] for done in attempted]


def _move_on(
    session: Session,
    delivery: Delivery,
    result: AttemptResult,
    *,
    number: int,
    policy: DeliveryPolicy,
    worker: str,
    rng: random.Random,
) -> dict[str, Any]:
    """Move ``delivery`` on after its attempt ``number``, audit it, and return the
    attempt's row."""
    failure = result.failure
    status = result.delivered.status_code if result.delivered else None
    if failure is not None:
        status = failure.status_code
    details: dict[str, Any] = {
        "delivery": delivery.id,
        "report": delivery.report_id,
        "agency": delivery.agency_id,
        "attempt": number,
        "status_code": status,
    }
    if failure is None:
        outcome = "delivered"
        if delivery.state != DeliveryState.acknowledged:
            delivery.state = DeliveryState.delivered
        delivery.delivered_at = delivery.delivered_at or utcnow()
        delivery.due_at = None
        delivery.last_error = None
        details["data_hash"] = delivery.data_hash
    else:
        delay = (
            policy.next_delay(delivery.attempts, failure, rng)
            if isinstance(failure, RetryableFailure)
            else None
        )
        error = str(failure)[:ERROR_LENGTH]
        details["error"] = error
        if delivery.state == DeliveryState.acknowledged:
            outcome = "delivered"  # the recipient acknowledged it while we waited
        elif delivery.state == DeliveryState.dead:
            outcome = "dead"  # its subscription was deleted while we waited: that stays why
        elif delay is None:
            outcome = "dead"
            delivery.end(error)
        else:
            delivery.last_error = error
            outcome = "retry"
            delivery.state = DeliveryState.retrying
            delivery.due_at = utcnow() + timedelta(seconds=delay)
            details["retry_in_s"] = round(delay, 3)
            enqueue_send(session, delivery, delay_ms=int(delay * 1000))
        if isinstance(failure, PermanentFailure) and failure.gone:
            subscription = session.get(Subscription, delivery.subscription_id)
            assert subscription is not None
            routing.disable_subscription(
                session, subscription=subscription, reason="the receiver answered 410 Gone"
            )
    delivery.last_status = status
    session.add(delivery)
    action = {"delivered": "delivery.delivered", "retry": "delivery.retrying"}.get(
        outcome, "delivery.dead"
    )
    audit.record(
        session, action=action, subject=f"report:{delivery.report_id}", actor="hub", details=details
    )
    return {
        "delivery_id": delivery.id,
        "number": number,
        "started_at": result.started_at,
        "duration_ms": result.duration_ms,
        "outcome": outcome,
        "status_code": status,
        "error": details.get("error"),
        "worker": worker,
    }


def _end(session: Session, delivery: Delivery, *, reason: str) -> None:
    delivery.end(reason)
    session.add(delivery)
    audit.record(
        session,
        action="delivery.dead",
        subject=f"report:{delivery.report_id}",
        actor="hub",
        details={"delivery": delivery.id, "agency": delivery.agency_id, "error": reason},
    )


def sweep(session: Session, *, grace: timedelta, limit: int = SWEEP_BATCH) -> int:
    """Send again every delivery that was due more than ``grace`` ago — its message was lost,
    or the worker holding it died — so that nothing depends on the broker keeping a
    message. Returns how many were sent.

    An overdue delivery's message may only be waiting in a long queue (after an outage,
    thousands are due at once). So the sweeper's copy carries the same dispatch number,
    leaving the waiting message its place in the queue: whichever arrives first is
    attempted, and the attempt (or a wait for a slot) moves the delivery on, so the other
    finds it not due or superseded and is dropped. And the sweeper waits as long as the
    delivery was overdue (at most :data:`RESWEEP_CAP`, at least ``grace``) before sending
    it again, so a backlog costs a handful of dropped copies per delivery, not one per sweep. Rows
    another sweeper or a claim holds are skipped (PostgreSQL; SQLite serialises writers)."""
    now = utcnow()
    due = session.exec(
        select(Delivery)
        .where(
            col(Delivery.state).in_(list(DUE_STATES)),
            col(Delivery.due_at) <= now - grace,
            or_(col(Delivery.resweep_at).is_(None), col(Delivery.resweep_at) <= now),
        )
        .order_by(col(Delivery.due_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for delivery in due:
        assert delivery.due_at is not None
        enqueue_send(session, delivery, superseding=False)
        delivery.resweep_at = now + max(grace, min(now - delivery.due_at, RESWEEP_CAP))
    return len(due)


# --- recipients: listing, replay, recovery -----------------------------------------------------


def get_delivery(session: Session, *, agency_id: str | None, delivery_id: str) -> Delivery:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or (agency_id is not None and delivery.agency_id != agency_id):
        raise DeliveryNotFound(t("delivery.not_found", id=delivery_id))
    return delivery


def list_deliveries(
    session: Session,
    *,
    agency_id: str | None,
    state: DeliveryState | None = None,
    report_id: str | None = None,
    limit: int = 100,
) -> list[Delivery]:
    query = select(Delivery)
    if agency_id is not None:
        query = query.where(Delivery.agency_id == agency_id)
    if state is not None:
        query = query.where(Delivery.state == state)
    if report_id is not None:
        query = query.where(Delivery.report_id == report_id)
    return list(session.exec(query.order_by(col(Delivery.created_at).desc()).limit(limit)))


def attempts_of(session: Session, delivery_id: str) -> list[DeliveryAttempt]:
    return list(
        session.exec(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(col(DeliveryAttempt.number))
        )
    )


def replay(session: Session, *, agency_id: str | None, delivery_id: str, actor: str) -> Delivery:
    """Send a delivery again, with the same envelope id, on a fresh schedule. Due ones
    are already on their way and cannot be replayed."""
    delivery = get_delivery(session, agency_id=agency_id, delivery_id=delivery_id)
    if delivery.state in DUE_STATES:
        raise DeliveryConflict(t("delivery.still_due", id=delivery_id, state=delivery.state))
    subscription = session.get(Subscription, delivery.subscription_id)
    if subscription is None or not subscription.active:
        raise DeliveryConflict(t("delivery.subscription_inactive", id=delivery_id))
    _requeue(session, delivery, actor=actor)
    return delivery


def _requeue(session: Session, delivery: Delivery, *, actor: str) -> None:
    """Deliver again: a pushed delivery from its first attempt; an inbox delivery is put
    back in the inbox at once (as routing placed it), for the next read."""
    previous = delivery.state
    for name, value in starting_state(delivery.connector, utcnow()).items():
        setattr(delivery, name, value)
    audit.record(
        session,
        action="delivery.replayed",
        subject=f"report:{delivery.report_id}",
        actor=actor,
        details={"delivery": delivery.id, "agency": delivery.agency_id, "was": previous},
    )
    if delivery.connector == INBOX:
        session.add(delivery)
    else:
        enqueue_send(session, delivery)


def recover(
    session: Session, *, agency_id: str, since: datetime, until: datetime, actor: str
) -> list[str]:
    """Replay the agency's dead deliveries routed in [since, until) to live subscriptions."""
    dead = session.exec(
        select(Delivery)
        .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
        .where(
            Delivery.agency_id == agency_id,
            Delivery.state == DeliveryState.dead,
            col(Delivery.created_at) >= since,
            col(Delivery.created_at) < until,
            col(Subscription.active).is_(True),
        )
        .order_by(col(Delivery.created_at))
    ).all()
    for delivery in dead:
        _requeue(session, delivery, actor=actor)
    return [d.id for d in dead]
