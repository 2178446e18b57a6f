"""What every benchmark needs: a throwaway database and Redis, settings for them, the machine's description."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import redis as redis_lib
from sqlalchemy import MetaData, create_engine, text

from core import embedded_redis
from core.runtime import Runtime
from core.settings import Settings
from models import Database, migrate

LOCAL_REDIS = "redis://127.0.0.1:6379/5"  # db 5: never the database the test suite uses
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"  # never `test`: the suite drops it
FAKE_SID = "AC" + "1" * 32
FAKE_TOKEN = "t" * 32


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def emit(name: str, figures: dict) -> dict:
    line = {"benchmark": name, **figures, "machine": machine()}
    print(json.dumps(line, ensure_ascii=False), flush=True)
    return line


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory_gib, "python": platform.python_version()}


def redis_reachable(url: str) -> bool:
    try:
        return bool(redis_lib.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis_lib.RedisError:
        return False


@contextmanager
def bench_redis(embedded: bool = False) -> Iterator[str]:
    """An embedded server when asked (the `make run` defaults); else REDIS_URL if set; else the local Redis
    server on db 5 when it answers; else an embedded server."""
    if os.environ.get("REDIS_URL") and not embedded:
        yield os.environ["REDIS_URL"]
        return
    if redis_reachable(LOCAL_REDIS) and not embedded:
        yield LOCAL_REDIS
        return
    folder = Path(tempfile.mkdtemp(prefix="bench-redis-", dir="/tmp"))
    try:
        yield f"unix://{embedded_redis.ensure_running(folder)}"
    finally:
        embedded_redis.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def postgres_reachable() -> bool:
    try:
        engine = create_engine(PG_ADMIN, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False


def postgres_bench_url() -> str:
    """The `bench` database on the local PostgreSQL server, created when missing."""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("select 1 from pg_database where datname = 'bench'")):
            conn.execute(text("create database bench"))
    admin.dispose()
    return PG_BENCH


def fresh_database(url: str) -> Database:
    """An empty schema built by the migrations, as production builds it."""
    database = Database(url)
    with database.engine.begin() as conn:
        meta = MetaData()
        meta.reflect(bind=conn)
        meta.drop_all(bind=conn)
    migrate.upgrade(database.engine)
    return database


@contextmanager
def workspace(pg: bool = False) -> Iterator[tuple[Path, str]]:
    """A temporary instance folder and a fresh database URL (SQLite inside it, or PostgreSQL's `bench`)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-", dir="/tmp"))
    try:
        yield folder, (postgres_bench_url() if pg else f"sqlite:///{folder / 'bench.db'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_env(instance: Path, database_url: str, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """Environment for the app and worker processes a benchmark starts."""
    return {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "APP_ENV": "test", "DATABASE_URL": database_url, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix,
        "INSTANCE_PATH": str(instance), "TWILIO_ACCOUNT_SID": FAKE_SID, "TWILIO_AUTH_TOKEN": FAKE_TOKEN,
        **extra,
    }


def make_runtime(env: dict[str, str], database: Database, redis_client: redis_lib.Redis) -> Runtime:
    return Runtime(Settings.from_env(env), database=database, redis_client=redis_client)


def new_prefix() -> str:
    return f"bench{uuid.uuid4().hex[:8]}"


def delete_prefixed(client: redis_lib.Redis, prefix: str) -> None:
    """Remove a benchmark's keys: its own (``prefix*``), RQ's queues and registries named after its queues
    (``rq:*prefix*``), and RQ jobs whose queue was one of them (random job ids carry no prefix)."""
    batch: list[bytes] = []

    def drop(key: bytes) -> None:
        batch.append(key)
        if len(batch) >= 10_000:
            client.unlink(*batch)
            batch.clear()

    for pattern in (f"{prefix}*", f"rq:*{prefix}*"):
        for key in client.scan_iter(match=pattern, count=10_000):
            drop(key)
    for key in client.scan_iter(match="rq:job:*", count=10_000):
        origin = client.hget(key, "origin") if client.type(key) == b"hash" else None
        if origin and origin.decode().startswith(prefix):
            drop(key)
    if batch:
        client.unlink(*batch)


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]
