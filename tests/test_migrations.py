"""The migrations build, on SQLite and PostgreSQL, exactly the schema the models describe."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from exchange import migrations
from exchange.db import build_engine
from exchange.tables import metadata
from tests.servers import PostgresServer


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    yield server.create_database(f"empty_{uuid.uuid4().hex[:12]}")


def table_names(url: str) -> set[str]:
    engine = build_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_from_empty_builds_every_table(empty_database_url: str) -> None:
    assert not migrations.is_current(empty_database_url)
    migrations.upgrade(empty_database_url)
    assert table_names(empty_database_url) == set(metadata.tables)
    assert migrations.is_current(empty_database_url)


def test_models_and_migrations_agree(empty_database_url: str) -> None:
    migrations.upgrade(empty_database_url)
    engine = build_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == [], "a model changed without a migration"


def test_downgrade_to_base_and_up_again(empty_database_url: str) -> None:
    migrations.upgrade(empty_database_url)
    command.downgrade(migrations.alembic_config(empty_database_url), "base")
    assert table_names(empty_database_url) == set()
    migrations.upgrade(empty_database_url)
    assert table_names(empty_database_url) == set(metadata.tables)


def test_existing_data_is_carried_into_the_key_and_routing_changes(
    empty_database_url: str,
) -> None:
    """0006: the agency holding admin keys becomes the operator, keys registered before
    approvals stay in force; 0007: existing subscriptions are indexed for routing."""
    migrations.upgrade(empty_database_url, "0005")
    now = "2026-11-01 00:00:00+00:00"
    engine = build_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            for agency, kind in (("hub", "other"), ("polda-banten", "police")):
                connection.execute(
                    text(
                        "INSERT INTO agency (id, name, kind, jurisdiction, active,"
                        " require_signed_reports, clearance, created_at)"
                        " VALUES (:id, :id, :kind, '36', true, false, 'public', :now)"
                    ),
                    {"id": agency, "kind": kind, "now": now},
                )
            connection.execute(
                text(
                    "INSERT INTO api_key (id, agency_id, label, secret_hash, scopes, created_at)"
                    " VALUES ('k1', 'hub', '', 'x', 'admin audit', :now),"
                    " ('k2', 'polda-banten', '', 'x', 'receive', :now)"
                ),
                {"now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO signing_key (id, agency_id, public_key, label, created_at)"
                    " VALUES ('s1', 'polda-banten', 'x', '', :now)"
                ),
                {"now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO subscription (id, agency_id, label, types, regions, indicators,"
                    " connector, config_shown, config_sealed, active, created_at)"
                    " VALUES ('sub1', 'polda-banten', '', '[\"victim-referral\"]',"
                    " '[\"36.03\", \"36\"]', '[]', 'inbox', '{}', :sealed, true, :now)"
                ),
                {"now": now, "sealed": b"x"},
            )
        migrations.upgrade(empty_database_url)
        with engine.connect() as connection:
            kinds = dict(connection.execute(text("SELECT id, kind FROM agency")).all())
            approved = connection.execute(text("SELECT approved_at FROM signing_key")).scalar()
            matches = connection.execute(
                text("SELECT type, region FROM subscription_match ORDER BY region")
            ).all()
    finally:
        engine.dispose()
    assert kinds == {"hub": "operator", "polda-banten": "police"}
    assert approved is not None
    assert [tuple(m) for m in matches] == [("victim-referral", "36"), ("victim-referral", "36.03")]
