"""The process-wide services: settings, database, Redis, key namespace. Built lazily, never at import.

Web requests, RQ jobs and CLI commands all reach the same things through one Runtime per process.
"""

from __future__ import annotations

import os
import threading
from functools import cached_property

import redis

from core.redis import Keys, connect
from core.settings import Settings
from models.db import Database


class Runtime:
    def __init__(self, settings: Settings, *, database: Database | None = None, redis_client: redis.Redis | None = None):
        self.settings = settings
        self.keys = Keys(settings.redis_key_prefix)
        if database is not None:
            self.__dict__["db"] = database
        if redis_client is not None:
            self.__dict__["redis"] = redis_client

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database_url)

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.settings)

    def after_fork(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose_after_fork()
        if "redis" in self.__dict__:
            self.redis.connection_pool.reset()


_lock = threading.Lock()
_current: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    """Install the runtime jobs use in this process (the worker at start, tests per test)."""
    global _current
    with _lock:
        _current = runtime


def get_runtime() -> Runtime:
    """The runtime for RQ jobs; built from the environment the first time a job runs in a process."""
    global _current
    with _lock:
        if _current is None:
            _current = Runtime(Settings.from_env())
        return _current


def _reset_in_child() -> None:
    if _current is not None:
        _current.after_fork()


os.register_at_fork(after_in_child=_reset_in_child)
