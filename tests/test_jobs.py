"""Jobs reach the broker only after commit, and the probe actor proves the whole path:
in-process on the memory broker, and through a real Redis server to a worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dramatiq.brokers.stub import StubBroker
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from exchange.app import create_app
from exchange.db import Database
from exchange.hub import Hub
from exchange.jobs import enqueue_after_commit
from exchange.ops.models import Probe
from exchange.ops.service import complete_probe, request_probe
from exchange.settings import Settings
from tests.conftest import bearer, hub_admin_key
from tests.servers import RedisServer, wait_until
from workers.actors import worker_identity
from workers.broker import periodic_actors, start_worker


@pytest.fixture
def quiet_broker(settings: Settings) -> Iterator[tuple[Database, StubBroker]]:
    """A memory broker with no worker, so enqueued messages stay visible in its queue."""
    hub = Hub.start(settings)
    assert isinstance(hub.broker, StubBroker)
    yield hub.database, hub.broker
    hub.close()


def queued(broker: StubBroker) -> int:
    return broker.queues["ops"].qsize() if "ops" in broker.queues else 0


def test_message_is_sent_only_after_commit(quiet_broker: tuple[Database, StubBroker]) -> None:
    database, broker = quiet_broker
    with database.session(broker=broker) as session:
        probe = request_probe(session, requested_by="hub")
        assert queued(broker) == 0, "sent before the transaction committed"
    assert queued(broker) == 1
    message = broker.queues["ops"].get_nowait()
    assert message.startswith(b"{")
    assert probe.id.encode() in message


def test_message_is_dropped_on_rollback(quiet_broker: tuple[Database, StubBroker]) -> None:
    database, broker = quiet_broker

    def fail_after_enqueueing() -> None:
        with database.session(broker=broker) as session:
            request_probe(session, requested_by="hub")
            raise RuntimeError("failure after enqueue")

    with pytest.raises(RuntimeError, match="after enqueue"):
        fail_after_enqueueing()
    assert queued(broker) == 0
    with database.session(broker=broker) as session:
        assert session.exec(select(Probe)).all() == []


def test_unknown_actor_fails_inside_the_transaction(
    quiet_broker: tuple[Database, StubBroker],
) -> None:
    database, broker = quiet_broker
    with pytest.raises(Exception, match="no-such-actor"), database.session(broker=broker) as s:
        enqueue_after_commit(s, "no-such-actor", x=1)


def test_session_without_broker_cannot_enqueue(settings: Settings) -> None:
    database = Database(settings.database_url)
    try:
        with pytest.raises(RuntimeError, match="no broker"), database.session() as session:
            request_probe(session, requested_by="hub")
    finally:
        database.dispose()


def test_completing_a_probe_twice_keeps_the_first_answer(
    quiet_broker: tuple[Database, StubBroker],
) -> None:
    database, broker = quiet_broker
    with database.session(broker=broker) as session:
        probe_id = request_probe(session, requested_by="hub").id
    with database.session(broker=broker) as session:
        first = complete_probe(session, probe_id=probe_id, worker="worker-a")
        first_at = first.completed_at
    with database.session(broker=broker) as session:
        again = complete_probe(session, probe_id=probe_id, worker="worker-b")
    assert (again.completed_by, again.completed_at) == ("worker-a", first_at)


def test_probe_runs_on_the_in_process_worker(client: TestClient, admin_token: str) -> None:
    created = client.post("/v1/ops/probes", headers=bearer(admin_token))
    assert created.status_code == 202
    assert created.json()["completed_at"] is None
    hub = client.app.state.hub  # type: ignore[attr-defined]
    hub.broker.join("ops")  # returns once the worker has acknowledged the message
    answered = client.get(f"/v1/ops/probes/{created.json()['id']}", headers=bearer(admin_token))
    assert answered.json()["completed_by"] == worker_identity()


def test_unknown_probe_is_404(client: TestClient, admin_token: str) -> None:
    response = client.get("/v1/ops/probes/doesnotexist", headers=bearer(admin_token))
    assert response.status_code == 404


@pytest.mark.redis
def test_probe_through_real_redis_to_a_worker(
    settings: Settings, redis_server: RedisServer
) -> None:
    redis_settings = settings.model_copy(update={"broker_url": redis_server.url})
    app = create_app(redis_settings)
    with TestClient(app) as api:
        assert app.state.worker is None, "redis mode must not run jobs in the API process"
        admin_token = hub_admin_key(app.state.hub)
        created = api.post("/v1/ops/probes", headers=bearer(admin_token)).json()

        # A separate worker with its own engine and broker, as `exchange worker` builds them.
        worker_hub = Hub.start(redis_settings)
        worker = start_worker(
            worker_hub.broker, threads=1, periodic=periodic_actors(redis_settings)
        )
        try:

            def answered() -> bool:
                probe = api.get(f"/v1/ops/probes/{created['id']}", headers=bearer(admin_token))
                return probe.json()["completed_at"] is not None

            wait_until(answered, what="the probe answered through Redis", deadline_s=20)
        finally:
            worker.stop()
            worker_hub.close()


def test_a_savepoint_rolled_back_drops_only_its_own_jobs(
    quiet_broker: tuple[Database, StubBroker],
) -> None:
    database, broker = quiet_broker
    with database.session(broker=broker) as session:
        kept = request_probe(session, requested_by="hub")
        savepoint = session.begin_nested()
        request_probe(session, requested_by="hub")
        savepoint.rollback()  # as a bulk line refused inside its savepoint
        with session.begin_nested():
            also_kept = request_probe(session, requested_by="hub")
    assert queued(broker) == 2
    messages = [broker.queues["ops"].get_nowait() for _ in range(2)]
    assert kept.id.encode() in messages[0]
    assert also_kept.id.encode() in messages[1]


def test_a_released_savepoint_does_not_send_its_jobs_before_the_commit(
    quiet_broker: tuple[Database, StubBroker],
) -> None:
    """SQLAlchemy runs the commit hooks when a savepoint is released; the jobs must still
    wait for the transaction (each submission of a group commit has its savepoint)."""
    database, broker = quiet_broker
    with database.session(broker=broker) as session:
        with session.begin_nested():
            request_probe(session, requested_by="hub")
        assert queued(broker) == 0, "sent when the savepoint was released"
        with session.begin_nested():
            request_probe(session, requested_by="hub")
        assert queued(broker) == 0
    assert queued(broker) == 2


def test_a_failed_flush_in_a_savepoint_keeps_the_jobs_before_it(
    quiet_broker: tuple[Database, StubBroker],
) -> None:
    """A flush that fails inside a savepoint (an idempotency record colliding with a
    concurrent request's) rolls back the flush's own inner transaction first: that is not
    the whole transaction, and the jobs queued before the savepoint still go out."""
    database, broker = quiet_broker
    with database.session(broker=broker) as session:
        kept = request_probe(session, requested_by="hub")
        savepoint = session.begin_nested()
        request_probe(session, requested_by="hub")
        session.expunge(kept)
        session.add(Probe(id=kept.id, requested_by="hub"))  # the same key: refused
        with pytest.raises(IntegrityError):
            session.flush()
        savepoint.rollback()
    assert queued(broker) == 1
    assert kept.id.encode() in broker.queues["ops"].get_nowait()
