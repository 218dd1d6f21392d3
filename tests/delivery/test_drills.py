"""Failure drills. Each sends a batch of reports to webhook subscribers while something
fails, and asserts that every report reached every subscriber exactly once by envelope id:
zero lost, zero duplicated.

- the subscriber answers 500, then recovers;
- the subscriber hangs past the timeout;
- the worker is killed (SIGKILL) in the middle of a delivery;
- Redis is stopped and restarted while reports keep arriving;
- the broker loses every message (only the sweeper can deliver);
- every delivery's message waits overdue in a long queue (an outage): the sweeper sends each
  once more, not once per sweep, and each delivery is attempted once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlmodel import select

from exchange.agencies.models import AgencyKind, Scope
from exchange.app import create_app
from exchange.delivery import service
from exchange.delivery.models import Delivery, DeliveryState
from exchange.delivery.setup import delivery_policy, sweep_grace
from exchange.hub import Hub
from exchange.jobs import pending_jobs
from exchange.models import utcnow
from exchange.settings import Settings
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import deliveries, settle, submit, webhook_subscription
from tests.delivery.receiver import Receiver, running_receiver
from tests.servers import RedisServer, redis_executable, unavailable, wait_until
from workers.broker import RunningWorker, periodic_actors, start_worker

DRILL_DEADLINE_S = 60.0


def assert_exactly_once(receivers: list[Receiver], report_ids: list[str], hub: Hub) -> None:
    """Each receiver holds every report under exactly one envelope id, the id of its
    delivery row. A repeat of an envelope it already has (a worker killed between the
    subscriber's answer and the hub's record of it) is what at-least-once allows and what
    the stable id is for; a second envelope id for the same report would be a duplicate
    delivery, and a missing report a loss."""
    stable_ids = {d.id for d in deliveries(hub)}
    for receiver in receivers:
        envelopes_by_report: dict[str, set[str]] = defaultdict(set)
        for received in receiver.accepted:
            envelopes_by_report[str(received.event.get_subject())].add(received.envelope_id)
        assert sorted(envelopes_by_report) == sorted(report_ids), "a report was lost"
        doubled = {r: ids for r, ids in envelopes_by_report.items() if len(ids) != 1}
        assert doubled == {}, f"delivered under more than one envelope id: {doubled}"
        assert set().union(*envelopes_by_report.values()) <= stable_ids
    settle(hub, DeliveryState.delivered, count=len(stable_ids), deadline_s=DRILL_DEADLINE_S)


def repeats(receiver: Receiver) -> int:
    return len(receiver.accepted) - len(set(receiver.accepted_ids()))


def all_accepted(receivers: list[Receiver], count: int) -> None:
    wait_until(
        lambda: all(len(set(r.accepted_ids())) >= count for r in receivers),
        what=f"{count} envelopes at each receiver",
        deadline_s=DRILL_DEADLINE_S,
    )


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    with running_receiver(Receiver()) as first, running_receiver(Receiver()) as second:
        yield [first, second]


def subscribers(client: TestClient, hub: Hub, receivers: list[Receiver]) -> None:
    for index, receiver in enumerate(receivers):
        headers = bearer(
            issue_key(hub, f"subscriber-{index}", [Scope.receive], kind=AgencyKind.police)
        )
        webhook_subscription(client, headers, receiver)


def submitter(hub: Hub) -> dict[str, str]:
    return bearer(issue_key(hub, "kanim-serang", [Scope.submit], kind=AgencyKind.immigration))


def test_drill_subscriber_fails_with_500_then_recovers(
    client: TestClient, hub: Hub, receivers: list[Receiver]
) -> None:
    receivers[0].behaviour = lambda _id, attempt: (500, {}) if attempt <= 2 else (200, {})
    subscribers(client, hub, receivers)
    sender = submitter(hub)
    report_ids = [submit(client, sender, tlp="GREEN") for _ in range(20)]
    all_accepted(receivers, 20)
    assert_exactly_once(receivers, report_ids, hub)
    assert [repeats(r) for r in receivers] == [0, 0]
    assert sum(receivers[0].requests.values()) == 60  # two failures and a success each


def test_drill_subscriber_times_out(
    client: TestClient, hub: Hub, receivers: list[Receiver]
) -> None:
    receivers[0].behaviour = lambda _id, attempt: None if attempt == 1 else (200, {})
    subscribers(client, hub, receivers)
    sender = submitter(hub)
    report_ids = [submit(client, sender, tlp="GREEN") for _ in range(6)]
    all_accepted(receivers, 6)
    assert_exactly_once(receivers, report_ids, hub)
    assert [repeats(r) for r in receivers] == [0, 0]
    attempts = [d.attempts for d in deliveries(hub)]
    assert sorted(attempts) == [1] * 6 + [2] * 6


# --- drills with Redis and separate worker processes ------------------------------------------


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, so that stopping it harms no other test."""
    executable = redis_executable()
    if executable is None:
        unavailable("redis-server not found")
        raise AssertionError("unreachable")
    server = RedisServer(executable)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_settings(settings: Settings, own_redis: RedisServer) -> Settings:
    return settings.model_copy(update={"broker_url": own_redis.url})


@pytest.fixture
def api(redis_settings: Settings) -> Iterator[TestClient]:
    """The API alone: in Redis mode it runs no jobs itself."""
    with TestClient(create_app(redis_settings), raise_server_exceptions=False) as api_client:
        yield api_client


class WorkerThreads:
    """A worker as ``exchange worker`` builds it, on threads of the test process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hub: Hub | None = None
        self.worker: RunningWorker | None = None

    def start(self) -> None:
        self.hub = Hub.start(self.settings)
        self.worker = start_worker(
            self.hub.broker, threads=4, periodic=periodic_actors(self.settings)
        )

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.hub is not None:
            self.hub.close()


@pytest.fixture
def worker_threads(redis_settings: Settings) -> Iterator[WorkerThreads]:
    worker = WorkerThreads(redis_settings)
    yield worker
    worker.stop()


def worker_environment(settings: Settings) -> dict[str, str]:
    values: dict[str, Any] = {
        "DATABASE_URL": settings.database_url,
        "BROKER_URL": settings.broker_url,
        "KEY_DIR": str(settings.key_dir),
        "LOG_JSON": "true",
        "DELIVERY_SCHEDULE_S": json.dumps(settings.delivery_schedule_s),
        "DELIVERY_TIMEOUT_S": str(settings.delivery_timeout_s),
        "DELIVERY_BACKOFF_FLOOR_S": str(settings.delivery_backoff_floor_s),
        "SWEEP_INTERVAL_S": str(settings.sweep_interval_s),
        "WEBHOOK_ALLOW_NETWORKS": json.dumps([str(n) for n in settings.webhook_allow_networks]),
    }
    return {**os.environ, **{f"EXCHANGE_{k}": v for k, v in values.items()}}


def spawn_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "exchange", "worker", "--threads", "2"],
        env=worker_environment(settings),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.redis
def test_drill_worker_killed_mid_delivery(
    api: TestClient, redis_settings: Settings, receivers: list[Receiver], tmp_path: Path
) -> None:
    hub: Hub = api.app.state.hub  # type: ignore[attr-defined]
    arrived = threading.Event()

    def hang_first(_id: str, attempt: int) -> tuple[int, dict[str, str]] | None:
        if attempt == 1 and not arrived.is_set():
            arrived.set()
            return None  # the worker holding this delivery is killed meanwhile
        return 200, {}

    receivers[0].behaviour = hang_first
    subscribers(api, hub, receivers)
    sender = submitter(hub)
    log = tmp_path / "workers.log"
    first = spawn_worker(redis_settings, log)
    try:
        report_ids = [submit(api, sender, tlp="GREEN") for _ in range(5)]
        assert arrived.wait(DRILL_DEADLINE_S), log.read_text(errors="replace")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        report_ids += [submit(api, sender, tlp="GREEN") for _ in range(5)]
        second = spawn_worker(redis_settings, log)
        try:
            all_accepted(receivers, 10)
            assert_exactly_once(receivers, report_ids, hub)
        finally:
            second.terminate()
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()


@pytest.mark.redis
def test_drill_redis_restarted_while_reports_arrive(
    api: TestClient,
    redis_settings: Settings,
    own_redis: RedisServer,
    receivers: list[Receiver],
    worker_threads: WorkerThreads,
) -> None:
    hub: Hub = api.app.state.hub  # type: ignore[attr-defined]
    subscribers(api, hub, receivers)
    sender = submitter(hub)
    worker_threads.start()
    report_ids = [submit(api, sender, tlp="GREEN") for _ in range(5)]
    own_redis.stop()
    report_ids += [submit(api, sender, tlp="GREEN") for _ in range(5)]  # accepted all the same
    own_redis.start()
    report_ids += [submit(api, sender, tlp="GREEN") for _ in range(5)]
    all_accepted(receivers, 15)
    assert_exactly_once(receivers, report_ids, hub)


@pytest.mark.redis
def test_drill_broker_loses_every_message(
    api: TestClient,
    redis_settings: Settings,
    receivers: list[Receiver],
    worker_threads: WorkerThreads,
) -> None:
    hub: Hub = api.app.state.hub  # type: ignore[attr-defined]
    subscribers(api, hub, receivers)
    sender = submitter(hub)
    report_ids = [submit(api, sender, tlp="GREEN") for _ in range(10)]
    broker_redis = redis.Redis.from_url(redis_settings.broker_url)
    assert broker_redis.dbsize() > 0  # the messages were there ...
    broker_redis.flushall()  # ... and are gone
    worker_threads.start()
    all_accepted(receivers, 10)
    assert_exactly_once(receivers, report_ids, hub)


def delivery_queue_length(settings: Settings) -> int:
    """Messages waiting in the Redis delivery queue, ready or delayed."""
    client = redis.Redis.from_url(settings.broker_url)
    return int(client.llen("exchange:delivery")) + int(client.zcard("exchange:delivery.DQ"))


@pytest.mark.redis
def test_drill_sweeper_sends_a_delivery_stuck_in_a_long_queue_once_more_not_every_sweep(
    api: TestClient,
    redis_settings: Settings,
    receivers: list[Receiver],
    worker_threads: WorkerThreads,
) -> None:
    """After an outage every delivery is overdue while its message still waits in the queue.
    The sweeper cannot tell a waiting message from a lost one, so it sends each delivery
    once more; it must not send it again at every sweep (that flooded the queue with
    hundreds of thousands of messages). Its copy carries the same dispatch number, so the
    waiting message keeps its place and whichever comes first is attempted; the other
    finds the delivery taken and is dropped. A message from before the delivery was last
    rescheduled (an older number) is dropped unattempted, whatever the delivery's state."""
    hub: Hub = api.app.state.hub  # type: ignore[attr-defined]
    subscribers(api, hub, receivers)
    sender = submitter(hub)
    report_ids = [submit(api, sender, tlp="GREEN") for _ in range(10)]
    owed = len(report_ids) * len(receivers)
    assert delivery_queue_length(redis_settings) == owed
    overdue = timedelta(seconds=60)
    with hub.session() as session:
        for row in session.exec(select(Delivery)):
            row.due_at = utcnow() - overdue
            session.add(row)

    grace = sweep_grace(redis_settings)
    sent = []
    for _ in range(5):
        with hub.session() as session:
            sent.append(service.sweep(session, grace=grace))
    assert sent == [owed, 0, 0, 0, 0]
    assert delivery_queue_length(redis_settings) == 2 * owed
    swept = deliveries(hub)
    assert {row.dispatch for row in swept} == {1}  # the routed message keeps its place
    for row in swept:
        assert row.resweep_at is not None
        assert row.due_at is not None
        assert row.resweep_at - row.due_at >= 2 * overdue - timedelta(seconds=5)

    with hub.session() as session:
        superseded = service.claim(
            session,
            delivery_id=swept[0].id,
            dispatch=0,
            policy=delivery_policy(redis_settings),
            registry=hub.registry,
            sealer=hub.keyring.sealer,
        )
        assert superseded is None
        assert pending_jobs(session) == []

    worker_threads.start()
    all_accepted(receivers, len(report_ids))
    assert_exactly_once(receivers, report_ids, hub)
    assert [row.attempts for row in deliveries(hub)] == [1] * owed
    wait_until(
        lambda: delivery_queue_length(redis_settings) == 0,
        what="the superseded messages dropped",
        deadline_s=DRILL_DEADLINE_S,
    )
