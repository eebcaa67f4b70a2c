"""Alembic environment: the URL comes from the caller (``store.upgrade``) or settings."""

from alembic import context

from pipeline.config import get_settings
from pipeline.storage.store import Base, get_engine

config = context.config
url = config.attributes.get("connection_url") or get_settings().db_url

# The app's own engine: it creates the SQLite folder and sets the same pragmas.
with get_engine(url).connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()
