"""Shared fixtures. The same suite runs on the embedded defaults and, with DATABASE_URL / REDIS_URL set,
on real PostgreSQL and Redis servers. No test needs fakeredis.

Isolation: every test gets its own Redis key prefix (keys deleted afterwards) and, through ``db``, a
database transaction rolled back at the end. Tests that need real commits seen by other connections or
processes use ``committed_db``, which empties the tables afterwards.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import pytest
import redis as redis_lib
from sqlalchemy import MetaData
from sqlalchemy.orm import sessionmaker

from core import embedded_redis
from core.runtime import Runtime, set_runtime
from core.settings import Settings
from models import Base, Database
from models import migrate

TEST_ENV_BASE = {"APP_ENV": "test"}


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory) -> Path:
    # Short path: the embedded Redis socket lives here and unix socket paths are limited to ~100 bytes.
    return tmp_path_factory.mktemp("inst")


@pytest.fixture(scope="session")
def database_url(instance_dir) -> str:
    return os.environ.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'test.db'}"


@pytest.fixture(scope="session")
def redis_url(instance_dir) -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    socket_path = embedded_redis.ensure_running(instance_dir)
    return f"unix://{socket_path}"


@pytest.fixture(scope="session", autouse=True)
def _stop_embedded_redis(instance_dir):
    yield
    if not os.environ.get("REDIS_URL"):
        embedded_redis.stop(instance_dir)


def _drop_everything(database: Database) -> None:
    with database.engine.begin() as conn:
        meta = MetaData()
        meta.reflect(bind=conn)
        meta.drop_all(bind=conn)


@pytest.fixture(scope="session")
def migrated_database(database_url) -> Database:
    """The schema built the way production builds it: Alembic, down and up again to test both directions."""
    database = Database(database_url)
    _drop_everything(database)
    migrate.upgrade(database.engine)
    migrate.downgrade(database.engine, "base")
    migrate.upgrade(database.engine)
    yield database
    database.engine.dispose()


def make_settings(instance_dir: Path, database_url: str, redis_url: str, **overrides: str) -> Settings:
    env = {**TEST_ENV_BASE, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "REDIS_KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}", **overrides}
    return Settings.from_env(env, instance_path=instance_dir)


@pytest.fixture
def settings(instance_dir, database_url, redis_url) -> Settings:
    return make_settings(instance_dir, database_url, redis_url)


@pytest.fixture
def redis_client(redis_url) -> redis_lib.Redis:
    return redis_lib.Redis.from_url(redis_url)


def delete_prefixed(client: redis_lib.Redis, prefix: str) -> None:
    """Delete a test's Redis keys: its own namespace and its RQ queues."""
    for pattern in (f"{prefix}:*", f"rq:*{prefix}*"):
        batch = list(client.scan_iter(match=pattern, count=1000))
        if batch:
            client.delete(*batch)


def redis_url_of(client: redis_lib.Redis) -> str:
    """The URL another process needs to reach the same Redis as ``client``."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


@pytest.fixture
def db(migrated_database):
    """A Database whose sessions all join one outer transaction that is rolled back after the test."""
    connection = migrated_database.engine.connect()
    outer = connection.begin()
    isolated = Database.__new__(Database)
    isolated.url = migrated_database.url
    isolated.engine = migrated_database.engine
    isolated.sessionmaker = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield isolated
    outer.rollback()
    connection.close()


@pytest.fixture
def committed_db(migrated_database):
    """Real commits (other connections and processes see them); every table emptied afterwards."""
    yield migrated_database
    with migrated_database.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def session(db):
    with db.session() as s:
        yield s


@contextlib.contextmanager
def installed_runtime(settings: Settings, db, redis_client):
    """A Runtime over the test's database and Redis, installed as the process runtime (jobs, views use it);
    uninstalled and its Redis keys deleted afterwards."""
    rt = Runtime(settings, database=db, redis_client=redis_client)
    set_runtime(rt)
    try:
        yield rt
    finally:
        set_runtime(None)
        delete_prefixed(redis_client, settings.redis_key_prefix)


@pytest.fixture
def runtime(settings, db, redis_client):
    with installed_runtime(settings, db, redis_client) as rt:
        yield rt


@pytest.fixture
def app(runtime):
    from app import create_app

    application = create_app({"RUNTIME": runtime, "TESTING": True})
    yield application


@pytest.fixture
def client(app):
    return app.test_client()


# --- CI strictness: a skipped test is a failure in CI (CI_STRICT, or CI=true) ----------------------------

def pytest_sessionfinish(session, exitstatus):
    from tests.browser_helpers import in_ci

    if not in_ci():
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; in CI a skip is a failure", red=True)
        session.exitstatus = 1


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so a fixture can tell that its test failed (screenshots)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
