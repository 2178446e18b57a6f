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

    # Jobs run in the worker process itself. RQ's default Worker forks a work-horse per job, and each one paid for
    # imports, ORM configuration, a new database and Twilio connection: 6 sends/s with two workers against 70/s
    # for SimpleWorker (bench/sends.py, py-spy). Our jobs are short, idempotent and time-limited by RQ's signal
    # death penalty; a worker that dies loses its current job to RQ's abandoned-job retry, as a horse would.
    from rq import SimpleWorker

    # The maintenance pass is also when a worker takes over the scheduled-job lock of a worker that died (it
    # expires 61 s after the death); until then nobody enqueues the dead worker's retries. RQ runs it every
    # 10 minutes, and an idle worker only between blocking waits of worker_ttl - 15 s (405 s by default).
    # Both at one minute bound that delay to about two minutes.
    worker = SimpleWorker(queues_for(runtime), connection=runtime.redis, name=None,
                          maintenance_interval=MAINTENANCE_SECONDS, worker_ttl=MAINTENANCE_SECONDS + 15)
    logging.getLogger(__name__).info("worker listening on %s", ", ".join(q.name for q in worker.queues))
    worker.work(burst=args.burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
