"""Alembic environment: the URL comes from the caller (``store.upgrade``) or settings."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from pipeline.config import get_settings
from pipeline.store import Base

config = context.config
url = config.attributes.get("connection_url") or get_settings().db_url

connectable = engine_from_config({"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()
