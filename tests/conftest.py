"""Fixtures shared by the whole suite.

Every test that touches the database runs twice, on SQLite and on PostgreSQL (``database_url``
is parametrised); each run gets a fresh database cloned from a migrated template, so tests
see exactly the schema the migrations build.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import limits.storage.memory
import limits.strategies
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from exchange import migrations, ratelimit
from exchange.agencies import service as agencies
from exchange.agencies.models import DEFAULT_CLEARANCE, AgencyKind, Scope, Sensitivity
from exchange.app import create_app
from exchange.crypto import b64url, raw_public_bytes
from exchange.hub import Hub
from exchange.settings import Settings
from tests.servers import (
    PostgresServer,
    RedisServer,
    postgres_bin_dir,
    redis_executable,
    unavailable,
)

TEMPLATE_DATABASE = "exchange_template"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
        raise AssertionError("unreachable")
    base = Path(tempfile.mkdtemp(prefix="exchange-pg-"))
    server = PostgresServer(bin_dir, base)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresServer) -> str:
    migrations.upgrade(postgres.create_database(TEMPLATE_DATABASE))
    return TEMPLATE_DATABASE


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "hub.db"
    migrations.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
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


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "hub.db")
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield server.create_database(name, template=request.getfixturevalue("postgres_template"))
    with psycopg.connect(server.url(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)'.encode())


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        broker_url="memory://",
        key_dir=tmp_path / "keys",
        log_json=False,
        worker_threads=2,
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def hub(app: FastAPI) -> Hub:
    running: Hub = app.state.hub
    return running


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The ``exchange`` command on the test's database and keys."""
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("EXCHANGE_KEY_DIR", str(settings.key_dir))
    monkeypatch.setenv("EXCHANGE_LOG_JSON", "false")
    monkeypatch.setenv("EXCHANGE_BROKER_URL", "memory://")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield CliRunner()
    root.handlers[:], root.level = handlers, level  # the CLI configures logging for itself


def issue_key(
    hub: Hub,
    agency_id: str,
    scopes: Iterable[Scope],
    *,
    kind: AgencyKind = AgencyKind.other,
    jurisdiction: str = "36",
    clearance: Iterable[Sensitivity] = DEFAULT_CLEARANCE,
) -> str:
    """A token for ``agency_id`` (registered on first use) holding ``scopes``."""
    with hub.session() as session:
        try:
            agencies.get_agency(session, agency_id)
        except agencies.AgencyNotFound:
            agencies.create_agency(
                session,
                agency_id=agency_id,
                name=agency_id,
                kind=kind,
                jurisdiction=jurisdiction,
                clearance=clearance,
                actor="test",
            )
        return agencies.create_api_key(
            session, agency_id=agency_id, scopes=scopes, actor="test"
        ).token


def signing_key(hub: Hub, agency_id: str) -> Ed25519PrivateKey:
    """A new Ed25519 key, registered as a signing key of ``agency_id`` (which exists)."""
    key = Ed25519PrivateKey.generate()
    with hub.session() as session:
        agencies.add_signing_key(
            session,
            agency_id=agency_id,
            public_key=b64url(raw_public_bytes(key.public_key())),
            actor="test",
        )
    return key


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def hub_admin_key(hub: Hub, scopes: Iterable[Scope] = (Scope.admin,)) -> str:
    """A key of the operator agency ``hub``: with ``admin`` it administers the whole hub."""
    return issue_key(hub, "hub", scopes, kind=AgencyKind.operator)


@pytest.fixture
def mid_window_rate_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-memory rate limit counters' clock moved to the middle of a minute. Their
    sliding window is estimated from two fixed windows of a minute each, so across a
    window's edge one more use may pass; a test that counts exactly to its limit would
    fail when it happens to run over an edge. Shifted by under a minute, and the same
    clock for the counters and for Retry-After."""
    offset = 30 - time.time() % 60

    class Clock:
        @staticmethod
        def time() -> float:
            return time.time() + offset

    for module in (limits.storage.memory, limits.strategies, ratelimit):
        monkeypatch.setattr(module, "time", Clock)


@pytest.fixture
def admin_token(hub: Hub) -> str:
    return hub_admin_key(hub)
