"""The running hub's parts, built once per process at start-up (never at import)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dramatiq
from sqlmodel import Session

from connectors.base import ConnectorContext
from exchange.audit.failures import SUMMARY_WINDOW_S, RejectionTally
from exchange.db import Database
from exchange.delivery.setup import connector_context
from exchange.errors import ConfigurationError
from exchange.i18n import t
from exchange.keyring import Keyring
from exchange.ratelimit import KeyRateLimit, counters
from exchange.registry.service import SchemaRegistry, checked_registry, default_schemas_dir
from exchange.settings import Environment, Settings
from exchange.writer import GroupWriter
from workers.broker import build_broker

# Test sends a console user may make a minute: each holds a thread for up to the connector's
# timeout, and may send mail.
TEST_SENDS_PER_MINUTE = 10


@dataclass
class Hub:
    settings: Settings
    database: Database
    broker: dramatiq.Broker
    keyring: Keyring
    registry: SchemaRegistry
    submissions: KeyRateLimit
    requests: KeyRateLimit
    lookups: KeyRateLimit
    agency_lookups: KeyRateLimit
    console_logins: KeyRateLimit
    console_test_sends: KeyRateLimit
    writer: GroupWriter
    rejections: RejectionTally = field(
        default_factory=lambda: RejectionTally(window_s=SUMMARY_WINDOW_S)
    )

    @property
    def connector_context(self) -> ConnectorContext:
        return connector_context(self.settings, self.keyring)

    @classmethod
    def start(cls, settings: Settings) -> Hub:
        """Check the configuration, load the keys, and build the engine and the broker.

        Raises :class:`ConfigurationError` naming what to set when production settings are
        unsafe or the keys are missing.
        """
        problems = settings.production_problems()
        if problems:
            raise ConfigurationError(t("config.invalid", problem="; ".join(problems)))
        keyring = Keyring.load(
            settings.key_dir,
            origin=settings.log_origin,
            create_missing=settings.env is Environment.dev,
        )
        registry = checked_registry(settings.schemas_dir or default_schemas_dir())
        database = Database(settings.database_url)
        shared = counters("memory://" if settings.embedded_broker else settings.broker_url)

        def limit(
            namespace: str, per_minute: int, what: str = "request.rate_limited"
        ) -> KeyRateLimit:
            return KeyRateLimit(
                counters=shared, namespace=namespace, per_minute=per_minute, what=what
            )

        broker = build_broker(settings, database, keyring, registry)
        return cls(
            settings=settings,
            database=database,
            broker=broker,
            keyring=keyring,
            registry=registry,
            submissions=limit(
                "exchange-submit", settings.submissions_per_minute_per_key, "report.rate_limited"
            ),
            requests=limit("exchange-requests", settings.requests_per_minute_per_key),
            lookups=limit("exchange-lookup", settings.lookups_per_minute_per_key),
            agency_lookups=limit("exchange-lookup-agency", settings.lookups_per_minute_per_agency),
            console_logins=limit(
                "exchange-console-login", settings.console_logins_per_minute_per_address
            ),
            console_test_sends=limit("exchange-console-test-send", TEST_SENDS_PER_MINUTE),
            # Each request in the lane queues one unit at a time (a bulk, one batch).
            writer=GroupWriter(
                lambda: database.session(broker=broker),
                capacity=settings.max_concurrent_requests,
            ),
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work whose enqueued jobs reach this hub's broker after commit."""
        with self.database.session(broker=self.broker) as session:
            yield session

    def close(self) -> None:
        self.writer.close()
        self.broker.close()
        self.database.dispose()
