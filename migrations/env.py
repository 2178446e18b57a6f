"""Alembic environment: the engine comes from the caller (models.migrate), never from an ini file."""

from __future__ import annotations

from alembic import context

import models  # noqa: F401  (registers every table)
from models.base import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables the same way on both
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
