"""The actors. Each is thin: it opens a job session and calls a service with the ids it got.

Actors are declared on an explicit broker with the process's database and keys, never on
dramatiq's global broker at import time, so importing this module has no side effects.
"""

from __future__ import annotations

import os
import socket

import dramatiq

from exchange.audit.service import INTEGRATE_ACTOR, integrate
from exchange.db import Database
from exchange.keyring import Keyring
from exchange.ops.service import PROBE_ACTOR, complete_probe

# Lower runs first among messages a worker holds: the log's integration must not queue
# behind a backlog of other jobs, or checkpoints fall behind.
AUDIT_PRIORITY = 0
DEFAULT_PRIORITY = 10


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def declare_actors(broker: dramatiq.Broker, database: Database, keyring: Keyring) -> None:
    def probe(probe_id: str) -> None:
        with database.session(broker=broker) as session:
            complete_probe(session, probe_id=probe_id, worker=worker_identity())

    def integrate_audit_log() -> None:
        with database.session(broker=broker) as session:
            integrate(session, keyring=keyring)

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
