"""Inbound webhook throughput: the real app and a bare signature-checking Flask endpoint (bench/baseline_app.py),
each under gunicorn with 2 workers, loaded by a separate process (bench/loadgen.py) with N messages signed as
Twilio signs them, C at a time. Reports both throughputs, p50/p99 latencies and their ratio (target: the app at
least half the baseline).

Default: the `make run` defaults, SQLite (migrated, in a temporary folder) and the embedded Redis server. `--pg`:
PostgreSQL's `bench` database and Redis by the usual rule (REDIS_URL, else 127.0.0.1:6379 db 5, else embedded).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from bench.common import FAKE_TOKEN, bench_env, bench_redis, delete_prefixed, emit, fresh_database, log, new_prefix, \
    postgres_reachable, workspace
from core.settings import PROJECT_ROOT
from models import Message

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(target: str, env: dict, port: int, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as errors:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([GUNICORN, "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                                    target], cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors,
                                   start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    raise RuntimeError(f"gunicorn did not start {target}: {log_path.read_text(errors='replace')[-2000:]}")


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def _load(base_url: str, count: int, concurrency: int) -> dict:
    done = subprocess.run([sys.executable, "-m", "bench.loadgen", base_url, FAKE_TOKEN, str(count), str(concurrency)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _warm(base_url: str) -> None:
    # One request per gunicorn worker first, so imports and connection setup are not timed.
    _load(base_url, 8, 2)


def one_backend(pg: bool, count: int, concurrency: int) -> dict:
    with workspace(pg) as (folder, database_url), bench_redis(embedded=not pg) as redis_url:
        database = fresh_database(database_url)
        prefix = new_prefix()
        results = {}
        for name, target in (("baseline", "bench.baseline_app:create_baseline()"), ("app", "app:create_app()")):
            port = free_port()
            base_url = f"http://127.0.0.1:{port}"
            # The signing token is given explicitly (in development the app would read one from instance/).
            env = bench_env(folder, database_url, redis_url, prefix, PUBLIC_BASE_URL=base_url)
            server = _serve(target, env, port, folder / f"gunicorn-{name}.log")
            try:
                _warm(base_url)
                results[name] = _load(base_url, count, concurrency)
            finally:
                _stop(server)
            log(f"webhook {'postgresql' if pg else 'sqlite'} {name}: {results[name]}")
        with database.session() as session:
            stored = session.scalar(select(func.count()).select_from(Message))
        database.engine.dispose()
        import redis as redis_lib

        delete_prefixed(redis_lib.Redis.from_url(redis_url), prefix)
    app, baseline = results["app"], results["baseline"]
    return {"database": "postgresql" if pg else "sqlite", "redis": redis_kind(redis_url), "requests": count,
            "concurrency": concurrency, "app": app, "baseline": baseline,
            "stored_inbound": stored,  # the app's run plus its warm-up: every accepted message was stored
            "ratio": round(app["per_s"] / baseline["per_s"], 2) if baseline["per_s"] else None}


def redis_kind(url: str) -> str:
    return "embedded" if url.startswith("unix://") else "server"


def run(quick: bool = False, pg: bool = False) -> dict:
    count, concurrency = (600, 8) if quick else (4000, 16)
    if pg and not postgres_reachable():
        log("webhook: PostgreSQL is not reachable on 127.0.0.1:5432; skipped")
        return emit("webhook", {"skipped": "PostgreSQL not reachable"})
    return emit("webhook", {"workers": 2, **one_backend(pg, count, concurrency)})
