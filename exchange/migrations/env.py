"""Alembic environment: migrations run online against the configured URL."""

from __future__ import annotations

from alembic import context

from exchange.db import build_engine
from exchange.tables import metadata

url = context.config.get_main_option("sqlalchemy.url")
assert url is not None
engine = build_engine(url)
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
