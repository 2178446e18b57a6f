"""Alembic environment: the engine comes from the caller (models.migrate), never from an ini file."""

from __future__ import annotations

from alembic import context

import models  # noqa: F401  (registers every table)
from catalog.index import alembic_include_name
from models.base import Base

config = context.config
engine = config.attributes["engine"]


def _sqlite_foreign_keys(connection, on: bool) -> None:
    # Batch mode rebuilds a SQLite table by copy, drop and rename; with foreign keys enforced, dropping a table
    # that other rows reference fails. The pragma only works outside a transaction, so it goes to the driver's
    # connection before Alembic begins (and is restored before the connection returns to the pool).
    connection.connection.driver_connection.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _sqlite_foreign_keys(connection, False)
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables the same way on both
            compare_type=True,
            include_name=alembic_include_name,  # what the ORM metadata does not describe
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows with broken foreign keys: {broken[:5]}")
        connection.commit()
    finally:
        if sqlite:
            _sqlite_foreign_keys(connection, True)
