"""The broker, set explicitly from settings: dramatiq's in-memory ``StubBroker`` for
``memory://`` (worker threads run inside the serving process) or a ``RedisBroker`` for
``redis://`` (separate ``exchange worker`` processes)."""

from __future__ import annotations

import functools
import gc
import logging
import signal
import threading
from types import FrameType

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import TimeLimit, default_middleware

from exchange.audit.service import INTEGRATE_ACTOR
from exchange.db import Database
from exchange.delivery.models import SWEEP_ACTOR
from exchange.keyring import Keyring
from exchange.registry.service import SchemaRegistry
from exchange.settings import Settings
from workers.actors import CONTROL_QUEUES, DELIVERY_QUEUE, declare_actors
from workers.ticker import Ticker

REDIS_NAMESPACE = "exchange"


class _ProcessTimeLimit(TimeLimit):
    """dramatiq's time limits, one watchdog for every in-memory broker of the process. Its
    thread starts with the first broker that boots and never stops, so a watchdog per
    broker would leave one thread behind for each hub built (hundreds in a test run, each
    waking every second)."""

    def __init__(self) -> None:
        super().__init__()
        self._started = False
        self._starting = threading.Lock()

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        with self._starting:
            if not self._started:
                super().after_process_boot(broker)  # type: ignore[no-untyped-call]
                self._started = True


@functools.cache
def _process_time_limit() -> TimeLimit:
    return _ProcessTimeLimit()


def build_broker(
    settings: Settings, database: Database, keyring: Keyring, registry: SchemaRegistry
) -> dramatiq.Broker:
    broker: dramatiq.Broker
    if settings.embedded_broker:
        broker = StubBroker(
            middleware=[
                _process_time_limit() if kind is TimeLimit else kind()
                for kind in default_middleware
            ]
        )
        broker.emit_after("process_boot")
    else:
        client = redis.Redis.from_url(
            settings.broker_url,
            socket_connect_timeout=2,
            socket_timeout=10,
            health_check_interval=30,
        )
        broker = RedisBroker(client=client, namespace=REDIS_NAMESPACE)  # type: ignore[no-untyped-call]
    declare_actors(broker, settings=settings, database=database, keyring=keyring, registry=registry)
    return broker


def ping_broker(broker: dramatiq.Broker) -> None:
    """Raise if the broker cannot be reached. The in-memory broker always can."""
    if isinstance(broker, RedisBroker):
        broker.client.ping()


# The longest an idle consumer waits between polls of the broker (dramatiq's Redis consumer
# polls, backing off up to this), and how long an idle worker thread waits before checking
# whether it should stop. dramatiq's default of 1 s adds up to a second to a delivery's
# latency and two to every shutdown; 20 ms costs a few cheap Redis calls a second.
IDLE_POLL_MS = 20


def periodic_actors(settings: Settings) -> dict[str, float]:
    """The periodic jobs and their intervals in seconds."""
    return {INTEGRATE_ACTOR: settings.audit_interval_s, SWEEP_ACTOR: settings.sweep_interval_s}


# Threads for the control queues (audit integration, sweeper, probes): their jobs are short
# and never wait on a recipient.
CONTROL_THREADS = 2


class _SecondWorkerNotice(logging.Filter):
    """dramatiq warns when a second worker joins a broker ("adding a middleware of the same
    type twice"); each worker's middleware only adds consumers for its own queues, so two
    are what we mean, and the warning would only alarm operators at every start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "_WorkerMiddleware" not in record.getMessage()


SECOND_WORKER_NOTICE = _SecondWorkerNotice()


class RunningWorker:
    """Two dramatiq workers on one broker, each with its own threads: one for deliveries,
    one for the control queues, so that recipients slow to answer can take every delivery
    thread and still never delay the audit log or the sweeper. And the ticker that feeds
    the periodic jobs."""

    def __init__(self, broker: dramatiq.Broker, *, threads: int, periodic: dict[str, float]):
        # One filter object: adding it again to the same logger is a no-op.
        logging.getLogger(f"dramatiq.broker.{type(broker).__name__}").addFilter(
            SECOND_WORKER_NOTICE
        )
        self.workers = [
            dramatiq.Worker(
                broker, queues=queues, worker_threads=count, worker_timeout=IDLE_POLL_MS
            )
            for queues, count in (
                ({DELIVERY_QUEUE}, threads),
                (set(CONTROL_QUEUES), CONTROL_THREADS),
            )
        ]
        for worker in self.workers:
            worker.start()
        self.ticker = Ticker(broker, intervals=periodic).start()

    def stop(self) -> None:
        self.ticker.stop()
        for worker in self.workers:
            worker.stop()


def start_worker(
    broker: dramatiq.Broker, *, threads: int, periodic: dict[str, float]
) -> RunningWorker:
    return RunningWorker(broker, threads=threads, periodic=periodic)


def run_until_signalled(
    broker: dramatiq.Broker, *, threads: int, periodic: dict[str, float]
) -> None:
    """Run a worker in this process until SIGINT or SIGTERM, then let running jobs finish."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    worker = start_worker(broker, threads=threads, periodic=periodic)
    # As a serving API process does (exchange.app): what start-up built lives as long as
    # the process, and the collector's full collections need not walk it.
    gc.collect()
    gc.freeze()
    try:
        stop.wait()
    finally:
        worker.stop()
        broker.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
