"""The hub's configuration: one pydantic-settings class, read from ``EXCHANGE_*`` variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, IPvAnyNetwork, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/exchange.db"
DEFAULT_BROKER_URL = "memory://"
DEFAULT_KEY_DIR = Path("./var/keys")

# Passwords that ship in examples and images; a production database must not use one.
_WELL_KNOWN_PASSWORDS = frozenset(
    {"", "postgres", "password", "exchange", "changeme", "change-me", "secret", "admin"}
)


class Environment(StrEnum):
    dev = "dev"
    production = "production"


class Settings(BaseSettings):
    """Everything an operator can set. Every field maps to ``EXCHANGE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", extra="ignore")

    env: Environment = Field(
        default=Environment.dev,
        description="`dev` (embedded defaults allowed, keys generated on demand) or `production`.",
    )
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: `sqlite:///path` or `postgresql://user:pass@host/db`.",
    )
    broker_url: str = Field(
        default=DEFAULT_BROKER_URL,
        description="`memory://` (worker threads inside the API process) or `redis://host:port/db`.",
    )
    key_dir: Path = Field(
        default=DEFAULT_KEY_DIR,
        description="Directory holding the hub's private keys (mode 0700, files 0600).",
    )
    schemas_dir: Path | None = Field(
        default=None,
        description="Directory of report schemas (default: the ones shipped with the hub).",
    )
    log_origin: str = Field(
        default="exchange.local/log",
        description="Origin line of the audit log's checkpoints (C2SP tlog-checkpoint).",
    )
    max_concurrent_requests: Annotated[int, Field(gt=0)] = Field(
        default=16,
        description="Requests one API process works on at once; more wait in a queue "
        "(the liveness check never does; readiness and metrics have places of their own).",
    )
    max_queued_requests: Annotated[int, Field(ge=0)] = Field(
        default=64,
        description="Requests that may wait for one of those places; past them a request "
        "is answered 503 with Retry-After at once, so an overloaded hub keeps its pace and "
        "clients back off instead of timing out.",
    )
    max_requests_per_client: Annotated[int, Field(gt=0)] = Field(
        default=8,
        description="Of those places, at work and waiting, how many one client address may "
        "hold; more are answered 503 at once. Clients behind one proxy or NAT share its "
        "address: raise it there.",
    )
    max_queue_wait_s: Annotated[float, Field(gt=0, le=60)] = Field(
        default=2.0,
        description="How long a request may wait for a place before it is answered 503.",
    )
    max_request_bytes: Annotated[int, Field(gt=0)] = Field(
        default=1_048_576, description="Largest request body accepted, in bytes."
    )
    statistics_area: str = Field(
        default="36",
        pattern=r"^[0-9]{2}(\.[0-9]{2})?$",
        description=(
            "The province or regency statistics and the map show unless asked for another."
        ),
    )
    max_upload_bytes: Annotated[int, Field(gt=0)] = Field(
        default=8 * 1_048_576,
        description="Largest file a hub admin uploads through the console (the region directory).",
    )
    max_bulk_bytes: Annotated[int, Field(gt=0)] = Field(
        default=256 * 1_048_576,
        description="Largest body of a bulk (NDJSON) submission; each line is held to the "
        "request limit.",
    )
    worker_threads: Annotated[int, Field(gt=0)] = Field(
        default=16,
        description="Delivery threads per worker process (and in-process in memory mode); the "
        "audit log and the sweeper have two threads of their own.",
    )
    audit_interval_s: Annotated[float, Field(gt=0, le=60)] = Field(
        default=0.25,
        description="How often workers append new audit events and sign a checkpoint.",
    )
    delivery_schedule_s: list[Annotated[float, Field(ge=0)]] = Field(
        default=[0, 5, 300, 1800, 7200, 18000, 36000, 36000],
        min_length=1,
        description="Delay before each delivery attempt, in seconds (JSON list); each is "
        "jittered by ±20 %. After the last attempt fails a delivery is dead.",
    )
    delivery_timeout_s: Annotated[float, Field(gt=0, le=120)] = Field(
        default=15, description="How long a connector may take to deliver one envelope."
    )
    requests_per_minute_per_key: Annotated[int, Field(gt=0)] = Field(
        default=6_000,
        description="Requests of any kind one API key may make in a minute; more are "
        "answered 429 with Retry-After.",
    )
    submissions_per_minute_per_key: Annotated[int, Field(gt=0)] = Field(
        default=12_000,
        description="Reports one API key may submit in a minute (bulk lines count one each); "
        "more are answered 429 with Retry-After.",
    )
    console_idle_timeout_s: Annotated[int, Field(gt=0)] = Field(
        default=1800, description="A console session ends after this many seconds unused."
    )
    console_absolute_timeout_s: Annotated[int, Field(gt=0)] = Field(
        default=43_200, description="A console session ends this many seconds after sign-in."
    )
    console_logins_per_minute_per_address: Annotated[int, Field(gt=0)] = Field(
        default=20,
        description="Console sign-in attempts one network address may make in a minute.",
    )
    lookups_per_minute_per_key: Annotated[int, Field(gt=0)] = Field(
        default=30,
        description="Person lookups (`POST /v1/persons:lookup`) one API key may make in a "
        "minute: enough for a counter, too few to walk the NIK space.",
    )
    lookups_per_minute_per_agency: Annotated[int, Field(gt=0)] = Field(
        default=120,
        description="Person lookups all the keys of one agency may make in a minute.",
    )
    backfill_max_reports: Annotated[int, Field(gt=0, le=100_000)] = Field(
        default=5_000,
        description="Reports a new subscription's backfill delivers at most (the newest of "
        "the period); the answer says when there were more.",
    )
    max_subscriptions_per_agency: Annotated[int, Field(gt=0)] = Field(
        default=100, description="Live subscriptions one agency may hold."
    )
    delivery_max_in_flight_per_subscription: Annotated[int, Field(gt=0)] = Field(
        default=8,
        description="Attempts that may be under way at once for one subscription, across "
        "all workers; more wait for a slot.",
    )
    delivery_max_in_flight_per_agency: Annotated[int, Field(gt=0)] = Field(
        default=8,
        description="Attempts that may be under way at once for one recipient agency, across "
        "all workers: a slow recipient cannot take every delivery thread.",
    )
    delivery_backoff_floor_s: Annotated[float, Field(ge=0)] = Field(
        default=60,
        description="Least delay before retrying after a timeout or a 429 (Too Many Requests).",
    )
    sweep_interval_s: Annotated[float, Field(gt=0, le=600)] = Field(
        default=2,
        description="How often workers look for deliveries that are due but whose message "
        "never arrived (lost by the broker, or a worker died mid-delivery).",
    )
    webhook_allow_networks: list[IPvAnyNetwork] = Field(
        default=[],
        description="Private, loopback or link-local networks webhooks may reach (JSON list "
        "of CIDRs); all others of those are refused. Plain `http://` is allowed only to these.",
    )
    filedrop_root: Path | None = Field(
        default=None,
        description="Directory under which `filedrop` subscriptions may write; unset, the "
        "`filedrop` connector is refused.",
    )
    smtp_url: str | None = Field(
        default=None,
        description="`smtp://host:port` (or `smtps://`, with `user:password@`) for the `email` "
        "connector; unset, the `email` connector is refused.",
    )
    smtp_sender: str = Field(
        default="exchange-hub@localhost", description="From address of email notices."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The hub's address as recipients reach it (links in email notices).",
    )
    log_level: str = Field(default="INFO", description="Python logging level name.")
    log_json: bool = Field(default=True, description="One JSON object per log line.")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("EXCHANGE_DATABASE_URL must start with sqlite:// or postgresql://")
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"memory", "redis", "rediss"}:
            raise ValueError("EXCHANGE_BROKER_URL must be memory:// or redis://host:port/db")
        return value

    @property
    def embedded_broker(self) -> bool:
        """True when jobs run on worker threads inside the serving process."""
        return urlsplit(self.broker_url).scheme == "memory"

    def production_problems(self) -> list[str]:
        """What stops this configuration from running in production, each saying what to set.

        Key files are checked by the keyring when it loads; these are the settings alone.
        """
        if self.env is not Environment.production:
            return []
        problems: list[str] = []
        if self.database_url == DEFAULT_DATABASE_URL:
            problems.append("EXCHANGE_DATABASE_URL is the development default; set it explicitly")
        password = urlsplit(self.database_url).password
        if urlsplit(self.database_url).scheme.startswith("postgres") and (
            password is None or password.lower() in _WELL_KNOWN_PASSWORDS
        ):
            problems.append(
                "EXCHANGE_DATABASE_URL has no password or a well-known one; set a strong password"
            )
        if self.key_dir == DEFAULT_KEY_DIR:
            problems.append(
                "EXCHANGE_KEY_DIR is the development default; point it at the hub's key volume"
            )
        return problems
