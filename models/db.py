"""Engine and session factory. Plain SQLAlchemy: the core takes a Session argument, it never imports Flask."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool


def make_engine(url: str, *, pooled: bool = True) -> Engine:
    """An engine with the per-backend settings this project relies on.

    SQLite: foreign keys on, WAL so the web app and workers can read while one writes, a busy timeout
    instead of immediate 'database is locked', and pysqlite's implicit transactions replaced by explicit
    BEGIN so savepoints (and per-test rollback) work. Connections are pooled like any other database's:
    opening one (pragmas) and closing the last one (a WAL checkpoint) was a quarter of an inbound webhook's
    time (cProfile, bench/webhook.py).
    """
    if url.startswith("sqlite"):
        pool = {} if pooled else {"poolclass": NullPool}
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # IMMEDIATE takes the write lock up front: two writers queue on busy_timeout instead of
            # deadlocking when both upgrade a read lock.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if pooled:
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    return create_engine(url, poolclass=NullPool)


class Database:
    """An engine and its session factory; one per process (forked children dispose the inherited pool)."""

    def __init__(self, url: str, *, pooled: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url, pooled=pooled)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def session(self) -> Session:
        return self.sessionmaker()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    def dispose_after_fork(self) -> None:
        # A forked child must not reuse sockets of the parent's pool.
        self.engine.dispose(close=False)
