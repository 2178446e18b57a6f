"""`make run`: migrate, seed an empty database, then run web + worker + scheduler until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from core import embedded_redis
from core.settings import Settings, SettingsError


def _flask(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", *args]


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    started_redis = False
    if settings.redis_url is None:
        started_redis = not settings.embedded_redis_socket.exists()
        socket_path = embedded_redis.ensure_running(settings.instance_path)
        print(f"embedded Redis on {socket_path}")

    subprocess.run(_flask("db", "upgrade"), check=True)
    if subprocess.run(_flask("demo", "is-empty")).returncode == 0:
        subprocess.run(_flask("demo", "seed"), check=True)

    host, port = "127.0.0.1", os.environ.get("PORT", "5000")
    processes = {
        "web": subprocess.Popen(_flask("run", "--host", host, "--port", port, "--no-reload")),
        "worker": subprocess.Popen([sys.executable, "worker.py"]),
        "scheduler": subprocess.Popen([sys.executable, "worker.py", "--scheduler"]),
    }
    print(f"running: http://{host}:{port}  (simulator: /simulator, health: /healthz). Ctrl-C stops everything.")

    stopping = False

    def _stop(_signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    exit_code = 0
    try:
        while not stopping:
            for name, proc in processes.items():
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping the others", file=sys.stderr)
                    exit_code = proc.returncode or 1
                    stopping = True
                    break
            time.sleep(0.5)
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        if started_redis:
            embedded_redis.stop(settings.instance_path)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
