"""A report's deliveries are first attempted together: the worker that takes the first of
them claims the others waiting for their first attempt with it, decrypts the report once and
calls the recipients at the same time (over real HTTP on loopback); one delivery that cannot
be claimed does not hold up the others, nor a slow recipient the others' records."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from exchange.delivery.models import DeliveryAttempt, DeliveryState
from exchange.hub import Hub
from exchange.protection.sealing import Sealer
from exchange.routing import service as routing
from exchange.settings import Settings
from tests.delivery.conftest import (
    deliveries,
    fast_settings,
    settle,
    submit,
    webhook_subscription,
)
from tests.delivery.receiver import Receiver, running_receiver
from tests.servers import wait_until

RECIPIENTS = 3


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # One worker thread: the messages are taken one at a time, so the first delivery's
    # worker is the one that claims the others (with two, the second message may be taken
    # at the same moment, and its delivery attempted apart: allowed, but not this test).
    return fast_settings(database_url, tmp_path, worker_threads=1)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    with ExitStack() as stack:
        yield [stack.enter_context(running_receiver(Receiver())) for _ in range(RECIPIENTS)]


def test_a_reports_deliveries_are_decrypted_once_and_sent_at_the_same_time(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receivers: list[Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each receiver answers only once all three requests have arrived: attempts made one
    # after another would each wait out the barrier and be answered 503.
    everyone = threading.Barrier(RECIPIENTS, timeout=10)

    def when_all_arrived(_envelope_id: str, _number: int) -> tuple[int, dict[str, str]]:
        try:
            everyone.wait()
        except threading.BrokenBarrierError:
            return 503, {}
        return 200, {}

    for receiver in receivers:
        receiver.behaviour = when_all_arrived
        webhook_subscription(client, polda, receiver)
    opened: list[str] = []
    unseal = Sealer.unseal

    def counting(sealer: Sealer, sealed: bytes, *, purpose: str) -> bytes:
        if purpose.startswith("report-data-key:"):
            opened.append(purpose)
        return unseal(sealer, sealed, purpose=purpose)

    monkeypatch.setattr(Sealer, "unseal", counting)

    report_id = submit(client, village)
    settle(hub, DeliveryState.delivered, count=RECIPIENTS, report_id=report_id)
    assert [len(receiver.accepted) for receiver in receivers] == [1] * RECIPIENTS
    assert not everyone.broken
    assert opened == [f"report-data-key:{report_id}"]  # once, for three recipients
    with hub.session() as session:
        attempts = session.exec(select(DeliveryAttempt)).all()
    assert (
        sorted((a.number, a.outcome, a.status_code) for a in attempts)
        == [(1, "delivered", 200)] * RECIPIENTS
    )


def test_a_delivery_that_cannot_be_claimed_does_not_hold_up_the_others(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receivers: list[Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = [webhook_subscription(client, polda, receiver) for receiver in receivers]
    broken = created[1]["id"]
    open_config = routing.open_config

    def failing_for_one(subscription: Any, sealer: Sealer) -> Any:
        if subscription.id == broken:
            raise ValueError("a config that no longer opens")
        return open_config(subscription, sealer)

    monkeypatch.setattr(routing, "open_config", failing_for_one)

    report_id = submit(client, village)
    settle(hub, DeliveryState.delivered, count=RECIPIENTS - 1, report_id=report_id)
    wait_until(
        lambda: len(receivers[0].accepted) == len(receivers[2].accepted) == 1,
        what="the two good deliveries",
        deadline_s=20,
    )
    assert receivers[1].accepted == []
    (stuck,) = [d for d in deliveries(hub, report_id=report_id) if d.subscription_id == broken]
    assert stuck.state == DeliveryState.pending  # still due: the sweeper sends it again
    assert stuck.attempts == 0
