"""RQ worker (`python worker.py`) or the scheduler (`python worker.py --scheduler`).

Any number of workers may run on any machine that reaches the same Redis and database. Run one scheduler per
deployment; a second one waits on rq-scheduler's lock and does no duplicate work.
"""

from __future__ import annotations

import argparse
import logging
import sys

from core.logging import configure_logging
from core.queues import queues_for
from core.runtime import Runtime, set_runtime
from core.schedule import run_scheduler
from core.settings import Settings, SettingsError


MAINTENANCE_SECONDS = 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scheduler", action="store_true", help="run the periodic-job scheduler instead of a worker")
    parser.add_argument("--burst", action="store_true", help="worker: exit when the queues are empty")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.secret_values())
    runtime = Runtime(settings)
    set_runtime(runtime)

    if args.scheduler:
        run_scheduler(runtime)
        return 0

    from rq import Worker

    # RQ's default maintenance pass runs every 10 minutes; it is also when a worker takes over the scheduled-job
    # lock of a worker that died. Every minute keeps a dead worker's retries from waiting that long.
    worker = Worker(queues_for(runtime), connection=runtime.redis, name=None, maintenance_interval=MAINTENANCE_SECONDS)
    logging.getLogger(__name__).info("worker listening on %s", ", ".join(q.name for q in worker.queues))
    worker.work(burst=args.burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
