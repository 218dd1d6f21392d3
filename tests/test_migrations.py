"""The migrations build, on SQLite and PostgreSQL, exactly the schema the models describe."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

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
