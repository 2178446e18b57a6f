"""Alembic, driven from code: `flask --app app db upgrade`, `make run` and the test suite use this."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from core.settings import PROJECT_ROOT


# Indexes the migrations create by hand because the ORM cannot declare them for both backends (expressions, and
# PostgreSQL-only trigram indexes): autogenerate must not report them as indexes to drop.
UNMAPPED_INDEXES = frozenset({
    "ix_customers_name_order", "ix_customers_name_trgm", "ix_customers_city_trgm", "ix_customers_email_trgm",
    "ix_customers_phone_trgm", "ix_customer_metrics_last_purchase", "ix_customer_metrics_risk",
    "ix_customer_metrics_band_risk",
})


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
