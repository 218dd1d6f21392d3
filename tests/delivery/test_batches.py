"""Deliveries in batches: what ``claim_all`` and ``record_all`` do for many deliveries in one
transaction (on both databases), and the ``Combiner`` that gathers the delivery threads'
work into batches.

The deliveries here are routed while the broker cannot be reached (its port is closed), so
no worker takes them and each test claims them itself."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dramatiq.middleware.threading import raise_thread_exception
from fastapi.testclient import TestClient
from sqlmodel import col, select

from connectors.base import Delivered, PermanentFailure, RetryableFailure
from exchange.audit.models import AuditEvent
from exchange.delivery.desk import Combiner, DeliveryDesk
from exchange.delivery.models import Delivery, DeliveryAttempt, DeliveryState
from exchange.delivery.service import (
    Attempted,
    AttemptResult,
    Claim,
    DeliveryPolicy,
    Wanted,
    claim_all,
    record_all,
)
from exchange.hub import Hub
from exchange.jobs import pending_jobs
from exchange.models import deferred_inserts, utcnow
from exchange.protection import vault
from exchange.routing.models import Subscription
from exchange.settings import Settings
from tests.delivery.conftest import deliveries, fast_settings, submit, subscribe
from tests.delivery.receiver import Receiver, running_receiver
from tests.servers import free_port, wait_until

ROOMY = DeliveryPolicy(
    schedule_s=(0.1, 0.2), max_in_flight_per_subscription=10, max_in_flight_per_agency=10
)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return fast_settings(database_url, tmp_path, broker_url=f"redis://127.0.0.1:{free_port()}")


def webhooks(client: TestClient, headers: dict[str, str], count: int) -> list[str]:
    """``count`` webhook subscriptions (never called here), their ids."""
    return [
        subscribe(client, headers, connector="webhook", config={"url": f"http://127.0.0.1:{n}/"})[
            "id"
        ]
        for n in range(9001, 9001 + count)
    ]


def route_to_police(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    *,
    subscriptions: int,
    reports: int,
) -> list[Delivery]:
    """The deliveries of ``reports`` reports to ``subscriptions`` webhooks of the police, in
    the order they were routed."""
    webhooks(client, polda, subscriptions)
    for _ in range(reports):
        submit(client, village)
    return sorted(deliveries(hub), key=lambda d: (d.created_at, d.subscription_id))


def claim(hub: Hub, wanted: list[Wanted], policy: DeliveryPolicy = ROOMY) -> list[Claim | None]:
    with hub.session() as session:
        return claim_all(
            session, wanted, policy=policy, registry=hub.registry, sealer=hub.keyring.sealer
        )


def test_a_batch_takes_each_due_delivery_once_and_decrypts_each_report_once(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_id = sorted(
        route_to_police(client, hub, village, polda, subscriptions=2, reports=2), key=lambda d: d.id
    )
    reports = {d.report_id for d in by_id}
    assert len(by_id) == 4
    unlocked: Counter[str] = Counter()
    unlock = vault.unlock

    def counting_unlock(session: Any, *, report_id: str, **rest: Any) -> bytes:
        unlocked[report_id] += 1
        return unlock(session, report_id=report_id, **rest)

    monkeypatch.setattr(vault, "unlock", counting_unlock)
    first = by_id[0]
    wanted = [
        Wanted(first.id, dispatch=first.dispatch - 1),  # superseded: dropped, not taken
        *(Wanted(d.id, dispatch=d.dispatch) for d in by_id),
        Wanted(first.id, dispatch=first.dispatch),  # a second copy of a message
        Wanted("no-such-delivery"),
    ]

    taken = claim(hub, wanted)

    assert taken[0] is None
    assert [c.delivery_id if c else None for c in taken[1:5]] == [d.id for d in by_id]
    assert taken[5:] == [None, None]
    assert unlocked == Counter(dict.fromkeys(reports, 1))
    for claimed, delivery in zip(taken[1:5], by_id, strict=True):
        assert claimed is not None
        assert claimed.envelope.attributes["subject"] == delivery.report_id
        assert claimed.envelope.attributes["recipient"] == "polda-banten"
    assert {d.state for d in deliveries(hub)} == {DeliveryState.in_flight}
    assert {d.attempts for d in deliveries(hub)} == {1}


def test_a_batch_hands_out_no_more_slots_than_the_policy_allows(
    client: TestClient, hub: Hub, village: dict[str, str], polda: dict[str, str]
) -> None:
    """Within one batch the slots it took count, and in the next the database's count."""
    owed = route_to_police(client, hub, village, polda, subscriptions=2, reports=3)
    policy = DeliveryPolicy(
        schedule_s=(0.1,), max_in_flight_per_subscription=2, max_in_flight_per_agency=3
    )
    before = utcnow()

    taken = claim(hub, [Wanted(d.id, dispatch=d.dispatch) for d in owed], policy)

    claimed = [c.delivery_id for c in taken if c is not None]
    assert len(claimed) == 3  # the agency's limit
    per_subscription = Counter(d.subscription_id for d in owed if d.id in claimed)
    assert max(per_subscription.values()) <= 2
    waiting = [d for d in deliveries(hub) if d.id not in claimed]
    assert len(waiting) == 3
    for delivery in waiting:  # rescheduled for a slot: a second later, a new message
        assert delivery.state == DeliveryState.pending
        assert delivery.due_at is not None
        assert delivery.due_at > before
        assert delivery.dispatch == 2

    again = claim(hub, [Wanted(d.id) for d in waiting], policy)
    assert again == [None, None, None]  # not due again before their second


def test_a_batch_gives_no_slot_when_the_database_counts_them_all_taken(
    client: TestClient, hub: Hub, village: dict[str, str], polda: dict[str, str]
) -> None:
    owed = route_to_police(client, hub, village, polda, subscriptions=1, reports=3)
    policy = DeliveryPolicy(schedule_s=(0.1,), max_in_flight_per_subscription=2)
    assert [c is not None for c in claim(hub, [Wanted(d.id) for d in owed[:2]], policy)] == [
        True,
        True,
    ]
    with hub.session() as session:
        assert claim_all(
            session,
            [Wanted(owed[2].id)],
            policy=policy,
            registry=hub.registry,
            sealer=hub.keyring.sealer,
        ) == [None]
        (job,) = pending_jobs(session)  # it comes back for a slot later
        assert job.kwargs["delivery_id"] == owed[2].id


def test_a_batch_spaces_a_throttled_subscription_s_claims(
    client: TestClient, hub: Hub, village: dict[str, str], polda: dict[str, str]
) -> None:
    """One slot a second: the batch takes the first and puts the second at the next slot."""
    subscribe(
        client,
        polda,
        connector="webhook",
        config={"url": "http://127.0.0.1:9001/"},
        throttle_per_s=1,
    )
    for _ in range(2):
        submit(client, village)
    owed = sorted(deliveries(hub), key=lambda d: d.created_at)
    before = utcnow()

    taken = claim(hub, [Wanted(d.id) for d in owed])

    assert [c is not None for c in taken] == [True, False]
    (waiting,) = (d for d in deliveries(hub) if d.id == owed[1].id)
    assert waiting.due_at is not None
    assert waiting.due_at >= before + timedelta(seconds=0.9)


def test_a_batch_records_each_outcome_with_its_own_attempt_number(
    client: TestClient, hub: Hub, village: dict[str, str], polda: dict[str, str]
) -> None:
    owed = route_to_police(client, hub, village, polda, subscriptions=1, reports=3)
    taken = claim(hub, [Wanted(d.id) for d in owed])
    claims = [c for c in taken if c is not None]
    assert len(claims) == 3
    started = utcnow()
    outcomes = [
        Attempted(claims[0], AttemptResult(started, 5, delivered=Delivered(200))),
        Attempted(
            claims[1], AttemptResult(started, 6, failure=RetryableFailure("busy", status_code=503))
        ),
        Attempted(
            claims[2], AttemptResult(started, 7, failure=PermanentFailure("no", status_code=400))
        ),
        # The same claim twice (its hold lapsed and it was taken again): numbered in turn.
        Attempted(claims[0], AttemptResult(started, 8, delivered=Delivered(200))),
    ]

    with hub.session() as session:
        recorded = record_all(session, outcomes, policy=ROOMY, worker="test", rng=random.Random(1))
        assert [d.id for d in recorded] == [c.delivery_id for c in (*claims, claims[0])]

    states = {d.id: d.state for d in deliveries(hub)}
    assert [states[c.delivery_id] for c in claims] == [
        DeliveryState.delivered,
        DeliveryState.retrying,
        DeliveryState.dead,
    ]
    with hub.session() as session:
        attempts = session.exec(select(DeliveryAttempt)).all()
        numbered = sorted((a.delivery_id, a.number, a.duration_ms, a.outcome) for a in attempts)
        actions = Counter(
            session.exec(
                select(AuditEvent.action).where(col(AuditEvent.action).startswith("delivery."))
            ).all()
        )
    assert numbered == sorted(
        [
            (claims[0].delivery_id, 1, 5, "delivered"),
            (claims[1].delivery_id, 1, 6, "retry"),
            (claims[2].delivery_id, 1, 7, "dead"),
            (claims[0].delivery_id, 2, 8, "delivered"),
        ]
    )
    assert actions == Counter({"delivery.delivered": 2, "delivery.retrying": 1, "delivery.dead": 1})


def test_a_batch_with_two_410s_for_one_subscription_disables_it_once(
    client: TestClient, hub: Hub, village: dict[str, str], polda: dict[str, str]
) -> None:
    """As the desk records them: the rows held and written together at the end."""
    owed = route_to_police(client, hub, village, polda, subscriptions=1, reports=2)
    claims = [c for c in claim(hub, [Wanted(d.id) for d in owed]) if c is not None]
    gone = PermanentFailure("gone", status_code=410, gone=True)
    with hub.session() as session, deferred_inserts(session):
        record_all(
            session,
            [Attempted(c, AttemptResult(utcnow(), 1, failure=gone)) for c in claims],
            policy=ROOMY,
            worker="test",
            rng=random.Random(1),
        )
    with hub.session() as session:
        disabled = session.exec(
            select(AuditEvent).where(AuditEvent.action == "subscription.disabled")
        ).all()
        (subscription,) = session.exec(select(Subscription)).all()
    assert len(claims) == 2
    assert len(disabled) == 1
    assert not subscription.active
    assert {d.state for d in deliveries(hub)} == {DeliveryState.dead}


# --- the combiner ------------------------------------------------------------------------------


def test_items_handed_in_while_a_batch_runs_make_the_next_batch_together() -> None:
    batches: list[list[int]] = []
    first_running = threading.Event()
    let_first_finish = threading.Event()

    def run(items: list[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            first_running.set()
            assert let_first_finish.wait(30)
        return [item * 10 for item in items]

    combiner: Combiner[int, int] = Combiner(run)
    results: dict[int, int] = {}

    def hand_in(item: int) -> None:
        results[item] = combiner.submit(item)

    threads = [threading.Thread(target=hand_in, args=(1,))]
    threads[0].start()
    assert first_running.wait(30)
    threads += [threading.Thread(target=hand_in, args=(item,)) for item in (2, 3, 4)]
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: len(combiner._waiting) == 3, what="three items waiting", deadline_s=30)
    let_first_finish.set()
    for thread in threads:
        thread.join(30)

    assert batches[0] == [1]
    assert sorted(batches[1]) == [2, 3, 4]
    assert len(batches) == 2
    assert results == {1: 10, 2: 20, 3: 30, 4: 40}


def test_a_failed_batch_runs_again_one_item_at_a_time() -> None:
    calls: list[list[str]] = []
    gate = threading.Event()

    def run(items: list[str]) -> list[str]:
        calls.append(list(items))
        if items == ["hold"]:  # the first batch, while the others are handed in
            assert gate.wait(30)
        if "bad" in items:
            raise ValueError("refused")
        return [item.upper() for item in items]

    combiner: Combiner[str, str] = Combiner(run)
    outcomes: dict[str, object] = {}

    def hand_in(item: str) -> None:
        try:
            outcomes[item] = combiner.submit(item)
        except ValueError as error:
            outcomes[item] = error

    holder = threading.Thread(target=hand_in, args=("hold",))
    holder.start()
    wait_until(lambda: combiner._running, what="a batch running", deadline_s=30)
    others = [threading.Thread(target=hand_in, args=(item,)) for item in ("a", "bad", "b")]
    for thread in others:
        thread.start()
    wait_until(lambda: len(combiner._waiting) == 3, what="three items waiting", deadline_s=30)
    gate.set()
    for thread in [holder, *others]:
        thread.join(30)

    assert outcomes["hold"] == "HOLD"
    assert outcomes["a"] == "A"
    assert outcomes["b"] == "B"
    assert isinstance(outcomes["bad"], ValueError)
    assert sorted(map(sorted, calls[1:])) == sorted([["a", "b", "bad"], ["a"], ["bad"], ["b"]])


class Stopped(BaseException):
    """What dramatiq's time limit raises in a thread: not an Exception."""


def test_a_thread_interrupted_while_running_a_batch_leaves_the_others_to_the_next() -> None:
    """dramatiq's time limit raises in the thread that runs a batch: its own item fails,
    and the other items of that batch (its transaction rolled back) run in the next."""
    runs: list[list[int]] = []
    others_waiting = threading.Event()

    def run(items: list[int]) -> list[int]:
        runs.append(list(items))
        if len(runs) == 1:  # the first batch holds on until two more items wait
            assert others_waiting.wait(30)
        if len(runs) == 2:  # the second, those two, is interrupted
            raise Stopped
        return [item * 10 for item in items]

    combiner: Combiner[int, int] = Combiner(run)
    results: dict[int, object] = {}

    def hand_in(item: int) -> None:
        try:
            results[item] = combiner.submit(item)
        except Stopped as stopped:
            results[item] = stopped

    first = threading.Thread(target=hand_in, args=(1,))
    first.start()
    wait_until(lambda: len(runs) == 1, what="the first batch running", deadline_s=30)
    others = [threading.Thread(target=hand_in, args=(item,)) for item in (2, 3)]
    for thread in others:
        thread.start()
    wait_until(lambda: len(combiner._waiting) == 2, what="two items waiting", deadline_s=30)
    others_waiting.set()
    for thread in [first, *others]:
        thread.join(30)

    assert results[1] == 10
    assert sorted(runs[1]) == [2, 3]
    interrupted = runs[1][0]  # the thread that ran the batch: the first item in it
    survivor = runs[1][1]
    assert isinstance(results[interrupted], Stopped)
    assert results[survivor] == survivor * 10
    assert runs[2:] == [[survivor]]
    assert combiner.submit(4) == 40  # and the combiner is free again
    assert not combiner._running


def test_dramatiq_s_time_limit_reaches_a_thread_waiting_behind_a_stuck_batch() -> None:
    """A batch stuck (on the database, say) must not hold the threads waiting behind it past
    their time limit: dramatiq's exception reaches a waiting thread, which gives up without
    its item being run, and the batch, once unstuck, finishes as before."""
    unstuck = threading.Event()
    runs: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        runs.append(list(items))
        assert unstuck.wait(60)
        return [item * 10 for item in items]

    combiner: Combiner[int, int] = Combiner(run)
    results: dict[int, object] = {}

    def hand_in(item: int) -> None:
        try:
            results[item] = combiner.submit(item)
        except Stopped as stopped:
            results[item] = stopped

    stuck = threading.Thread(target=hand_in, args=(1,))
    stuck.start()
    wait_until(lambda: len(runs) == 1, what="the first batch running", deadline_s=30)
    waiting = threading.Thread(target=hand_in, args=(2,))
    waiting.start()
    wait_until(lambda: len(combiner._waiting) == 1, what="an item waiting", deadline_s=30)
    assert waiting.ident is not None
    raise_thread_exception(waiting.ident, Stopped)  # what dramatiq's TimeLimit does
    waiting.join(30)
    assert not waiting.is_alive(), "the waiting thread never noticed its time limit"
    assert isinstance(results[2], Stopped)
    assert combiner._waiting == []

    unstuck.set()
    stuck.join(30)
    assert results[1] == 10
    assert runs == [[1]]  # the abandoned item was never run
    assert combiner.submit(3) == 30
    assert not combiner._running


def test_the_desk_delivers_each_once_for_many_threads_at_once(
    client: TestClient, hub: Hub, village: dict[str, str], polda: dict[str, str]
) -> None:
    """Through the desk as the actor uses it: every delivery attempted and recorded once."""
    with running_receiver(Receiver()) as receiver:
        created = subscribe(client, polda, connector="webhook", config={"url": receiver.url})
        receiver.secret = created["secrets"]["secret"]
        report_ids = [submit(client, village) for _ in range(6)]
        desk = DeliveryDesk(
            hub.session,
            policy=ROOMY,
            registry=hub.registry,
            sealer=hub.keyring.sealer,
            context=hub.connector_context,
            worker="test",
        )
        owed = deliveries(hub)
        threads = [threading.Thread(target=desk.deliver, args=(d.id, d.dispatch)) for d in owed]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(e.event.get_subject() for e in receiver.accepted) == sorted(report_ids)
    assert {d.state for d in deliveries(hub)} == {DeliveryState.delivered}
    with hub.session() as session:
        assert len(session.exec(select(DeliveryAttempt)).all()) == 6
    assert all(d.due_at is None for d in deliveries(hub))
