"""RQ worker (`python worker.py`) or the scheduler (`python worker.py --scheduler`).

Any number of workers may run on any machine that reaches the same Redis and database. Run one scheduler per
deployment; a second one takes turns on rq-scheduler's lock and does no duplicate work.

Both ride out Redis outages of any length, including a Redis that restarts empty. RQ's own loop retries only
while it waits for a job; an error anywhere else (finishing a job, maintenance, a time-out) makes it quit,
so a supervising loop here starts a fresh worker, after a backoff, until it is stopped by SIGTERM/SIGINT. A
worker whose registration vanished (Redis restarted empty or was flushed) registers itself again on its next
heartbeat and keeps consuming its queues. One warning per outage, one info line when Redis is back.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time

from rq import SimpleWorker, worker_registration
from rq.exceptions import StopRequested

from core.logging import configure_logging
from core.queues import queues_for
from core.runtime import Runtime, set_runtime
from core.schedule import (BACKOFF_MAX_SECONDS, REDIS_OUTAGE_ERRORS, Backoff, OutageLog, run_scheduler)
from core.settings import Settings, SettingsError

MAINTENANCE_SECONDS = 60

log = logging.getLogger(__name__)


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
    from bot.understanding import warm_up  # the worker runs the conversation engine: its model, trained once

    log.info("intent model ready in %.1f s", warm_up(runtime.db))
    return run_worker(runtime, burst=args.burst)


# Jobs run in the worker process itself. RQ's default Worker forks a work-horse per job, and each one paid for
# imports, ORM configuration, a new database and Twilio connection: 6 sends/s with two workers against 70/s
# for SimpleWorker (bench/sends.py, py-spy). Our jobs are short, idempotent and time-limited by RQ's signal
# death penalty; a worker that dies loses its current job to RQ's abandoned-job retry, as a horse would.
class ProjectWorker(SimpleWorker):
    """SimpleWorker that survives losing Redis's data and reports outages once (``outage``, shared by the
    successive workers of one process)."""

    outage = OutageLog(log, "worker")
    # RQ's wait between reconnection attempts while dequeueing doubles up to this (RQ's default: 60 s).
    max_connection_wait_time = BACKOFF_MAX_SECONDS
    stop_was_requested = False

    def heartbeat(self, timeout=None, pipeline=None):
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline=pipeline)
        with self.connection.pipeline() as pipe:
            super().heartbeat(timeout, pipeline=pipe)
            created = pipe.execute()[0]
        self.outage.recovered()
        if created:
            # HSET created the field, so our hash was gone: Redis restarted empty or was flushed. Without
            # this the worker keeps consuming but is invisible (not in rq:workers, no hash).
            self.register_again()

    def register_again(self) -> None:
        log.warning("worker %s: its registration is gone from Redis (restarted empty, or keys deleted); "
                    "registering again", self.name)
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipe)
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.execute()

    def request_stop(self, signum, frame):
        self.stop_was_requested = True
        super().request_stop(signum, frame)

    def set_shutdown_requested_date(self):
        try:  # called from the signal handler: an outage must not turn a warm shutdown into a crash
            super().set_shutdown_requested_date()
        except REDIS_OUTAGE_ERRORS as exc:
            self.outage.failed(exc)

    def _pubsub_exception_handler(self, exc, pubsub, pubsub_thread):
        # RQ logs an error every 2 s of an outage here, and lets a time-out kill the command channel.
        if isinstance(exc, REDIS_OUTAGE_ERRORS):
            self.outage.failed(exc)
            time.sleep(2.0)
            return
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)

    def teardown(self):
        # RQ's teardown raises on the first Redis error, leaving the pub/sub thread and RQ's scheduler
        # process behind; each step here is attempted on its own.
        steps = [self.register_death, self.unsubscribe]
        if self.scheduler:
            steps.insert(0, self.stop_scheduler)
        for step in steps:
            try:
                step()
            except REDIS_OUTAGE_ERRORS as exc:
                self.outage.failed(exc)
            except Exception:  # noqa: BLE001 - tearing down; the next worker starts clean
                log.debug("worker %s: %s failed during teardown", self.name, step.__name__, exc_info=True)


class _CollapseReconnectLogs(logging.Filter):
    """RQ logs an ERROR line per reconnection attempt while it waits for jobs; fold them into the outage's one
    warning."""

    def __init__(self, outage: OutageLog) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "could not connect to Redis instance" in record.msg:
            args = record.args if isinstance(record.args, tuple) else ()
            self.outage.failed(args[1] if len(args) > 1 and isinstance(args[1], BaseException) else None)
            return False
        return True


def _stop_on_signal(signum, _frame):
    log.info("worker: %s received, stopping", signal.Signals(signum).name)
    raise SystemExit(0)


def run_worker(runtime: Runtime, *, burst: bool = False) -> int:
    """Run RQ workers one after the other until stopped: a worker that quits because of Redis is replaced by a
    new one (new name, fresh registration) once Redis answers, after a backoff."""
    outage = ProjectWorker.outage
    logging.getLogger("rq.worker").addFilter(_CollapseReconnectLogs(outage))
    backoff = Backoff()
    try:
        while True:
            _install_stop_handlers()
            started = time.monotonic()
            worker = None
            try:
                runtime.redis.ping()
                outage.recovered()
                # The maintenance pass is also when a worker takes over the scheduled-job lock of a worker that
                # died (it expires 61 s after the death); until then nobody enqueues the dead worker's retries. RQ
                # runs it every 10 minutes, and an idle worker only between blocking waits of worker_ttl - 15 s
                # (405 s by default). Both at one minute bound that delay to about two minutes.
                worker = ProjectWorker(queues_for(runtime), connection=runtime.redis, name=None,
                                       maintenance_interval=MAINTENANCE_SECONDS,
                                       worker_ttl=MAINTENANCE_SECONDS + 15)
                log.info("worker listening on %s", ", ".join(q.name for q in worker.queues))
                worker.work(burst=burst, with_scheduler=True)
            except StopRequested:
                raise
            except REDIS_OUTAGE_ERRORS as exc:
                outage.failed(exc)
                _discard(worker)
            except Exception:  # noqa: BLE001 - a bug must not stop the queues for good; it is logged each time
                log.exception("worker: unexpected error%s", "" if burst else "; starting a new worker")
                _discard(worker)
                if burst:
                    return 1
            else:
                if burst or worker.stop_was_requested:
                    return 0
                # RQ's loop quit on an error it does not retry (it logged which one): replace the worker.
                log.warning("worker %s quit; starting a new worker", worker.name)
            finally:
                _install_stop_handlers()  # RQ's handlers refer to the worker that just quit
            if time.monotonic() - started > BACKOFF_MAX_SECONDS:
                backoff.reset()  # that worker ran fine for a while: this is a new incident
            time.sleep(backoff.next_delay())
    except StopRequested:  # a stop signal reached RQ's handler of a worker that had already quit
        return 0


def _install_stop_handlers() -> None:
    """Outside work(): stop straight away (work() installs RQ's warm-shutdown handlers)."""
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)


def _discard(worker: ProjectWorker | None) -> None:
    """A worker that raised out of work() (RQ starts its pub/sub thread and scheduler before its own try)."""
    if worker is not None:
        worker.teardown()


if __name__ == "__main__":
    sys.exit(main())
