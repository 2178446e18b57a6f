"""The real app under gunicorn in a subprocess, for black-box HTTP tests: requests over a socket, the production
server's threads and workers, and its access log captured to a file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from core.settings import PROJECT_ROOT, Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """``gunicorn 'app:create_app()'`` against the test's database, Redis and key prefix.

    ``env`` adds or overrides variables (e.g. Twilio credentials); the instance folder is the suite's, so the
    development secrets (session key, webhook tokens) are the ones the test's Settings hold."""

    def __init__(self, settings: Settings, log_path: Path, *, workers: int = 2, threads: int = 8,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.environ = {
            **os.environ,
            "APP_ENV": settings.app_env,
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url or "",
            "REDIS_KEY_PREFIX": settings.redis_key_prefix,
            "INSTANCE_PATH": str(settings.instance_path),
            "PUBLIC_BASE_URL": self.url,
            **(env or {}),
        }
        self.command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "gthread", "--threads",
                        str(threads), "-b", f"127.0.0.1:{self.port}", "--graceful-timeout", "2", "--no-control-socket",
                        "app:create_app()"]
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Gunicorn":
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.command, cwd=PROJECT_ROOT, env=self.environ, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            try:
                requests.get(self.url + "/healthz", timeout=5)
                return self
            except requests.RequestException:  # not listening yet, or still importing the app
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"gunicorn did not answer within 30 s:\n{self.log()}")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
