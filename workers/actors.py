"""The actors. Each is thin: it opens a job session and calls a service with the ids it got.

Actors are declared on an explicit broker with the process's database and keys, never on
dramatiq's global broker at import time, so importing this module has no side effects.
"""

from __future__ import annotations

import functools
import os
import socket

import dramatiq

from exchange.audit.service import INTEGRATE_ACTOR, integrate
from exchange.db import Database
from exchange.delivery import service as delivery
from exchange.delivery.desk import DeliveryDesk
from exchange.delivery.models import SEND_ACTOR, SWEEP_ACTOR
from exchange.delivery.setup import connector_context, delivery_policy, sweep_grace
from exchange.keyring import Keyring
from exchange.ops.service import PROBE_ACTOR, complete_probe
from exchange.registry.service import SchemaRegistry
from exchange.settings import Settings

# Deliveries wait on other systems and run on their own worker threads; everything the hub
# needs to stay healthy (the log's integration, the sweeper, probes) runs on a separate,
# small set of threads that no slow recipient can occupy.
DELIVERY_QUEUE = "delivery"
CONTROL_QUEUES = frozenset({"audit", "control", "ops"})
# Lower runs first among messages a worker holds: the log's integration must not queue
# behind a backlog of other jobs, or checkpoints fall behind.
AUDIT_PRIORITY = 0
DEFAULT_PRIORITY = 10


def worker_identity() -> str:
    return f"{_hostname()}:{os.getpid()}"


@functools.cache
def _hostname() -> str:
    return socket.gethostname()


def declare_actors(
    broker: dramatiq.Broker,
    *,
    settings: Settings,
    database: Database,
    keyring: Keyring,
    registry: SchemaRegistry,
) -> None:
    policy = delivery_policy(settings)
    context = connector_context(settings, keyring)
    grace = sweep_grace(settings)

    def probe(probe_id: str) -> None:
        with database.session(broker=broker) as session:
            complete_probe(session, probe_id=probe_id, worker=worker_identity())

    def integrate_audit_log() -> None:
        with database.session(broker=broker) as session:
            integrate(session, keyring=keyring)

    desk = DeliveryDesk(
        lambda: database.session(broker=broker),
        policy=policy,
        registry=registry,
        sealer=keyring.sealer,
        context=context,
        worker=worker_identity(),
    )

    def send(delivery_id: str, dispatch: int | None = None) -> None:
        desk.deliver(delivery_id, dispatch)

    def sweep() -> None:
        with database.session(broker=broker) as session:
            delivery.sweep(session, grace=grace)

    dramatiq.Actor(
        probe,
        broker=broker,
        actor_name=PROBE_ACTOR,
        queue_name="ops",
        priority=DEFAULT_PRIORITY,
        options={"max_retries": 3},
    )
    dramatiq.Actor(
        integrate_audit_log,
        broker=broker,
        actor_name=INTEGRATE_ACTOR,
        queue_name="audit",
        priority=AUDIT_PRIORITY,
        # The next tick retries anyway; a message that waited is stale.
        options={"max_retries": 0, "max_age": 10_000},
    )
    dramatiq.Actor(
        send,
        broker=broker,
        actor_name=SEND_ACTOR,
        queue_name=DELIVERY_QUEUE,
        priority=DEFAULT_PRIORITY,
        # The delivery row carries the state; a failed job (database unreachable) is found
        # again by the sweeper, so dramatiq's own retries are only a quick second chance.
        options={
            "max_retries": 2,
            "min_backoff": 500,
            "max_backoff": 5_000,
            "time_limit": int((settings.delivery_timeout_s + 30) * 1000),
        },
    )
    dramatiq.Actor(
        sweep,
        broker=broker,
        actor_name=SWEEP_ACTOR,
        queue_name="control",
        priority=AUDIT_PRIORITY,
        options={"max_retries": 0, "max_age": int(settings.sweep_interval_s * 5000)},
    )
