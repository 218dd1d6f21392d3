"""The actors. Each is thin: it opens a job session and calls a service with the ids it got.

Actors are declared on an explicit broker with the process's database, never on dramatiq's
global broker at import time, so importing this module has no side effects.
"""

from __future__ import annotations

import os
import socket

import dramatiq

from exchange.db import Database
from exchange.ops.service import PROBE_ACTOR, complete_probe


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def declare_actors(broker: dramatiq.Broker, database: Database) -> None:
    def probe(probe_id: str) -> None:
        with database.session(broker=broker) as session:
            complete_probe(session, probe_id=probe_id, worker=worker_identity())

    dramatiq.Actor(
        probe,
        broker=broker,
        actor_name=PROBE_ACTOR,
        queue_name="ops",
        priority=0,
        options={"max_retries": 3},
    )
