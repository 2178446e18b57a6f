"""RQ queues, and enqueueing that waits for the database commit.

Three queues, in priority order: ``high`` (inbound messages and replies to a live chat), ``default``
(recovery sends and other business-initiated messages), ``low`` (maintenance, and judging recovery batches,
so the messages a batch queues leave before the next batch is judged).
"""

from __future__ import annotations

from typing import Any, Callable

from rq import Queue
from rq.exceptions import DuplicateJobError
from sqlalchemy import event
from sqlalchemy.orm import Session

from core.runtime import Runtime

QUEUE_NAMES = ("high", "default", "low")


def queue(runtime: Runtime, name: str = "default") -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(runtime.keys.queue(name), connection=runtime.redis)


def queues_for(runtime: Runtime) -> list[Queue]:
    return [queue(runtime, name) for name in QUEUE_NAMES]


_PENDING = "jobs_after_commit"


def enqueue_after_commit(session: Session, runtime: Runtime, name: str, func: Callable | str, *args: Any, **kwargs: Any) -> None:
    """Enqueue once ``session``'s transaction commits; never if it rolls back.

    A fast worker must not pick up a job that reads a row the producer has not committed yet.
    """
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _flush_pending)
        event.listen(session, "after_transaction_end", _drop_pending)
    pending.append((runtime, name, func, args, kwargs))


def _flush_pending(session: Session) -> None:
    pending = session.info.get(_PENDING) or []
    jobs, pending[:] = list(pending), []
    for runtime, name, func, args, kwargs in jobs:
        try:
            queue(runtime, name).enqueue(func, *args, **kwargs)
        except DuplicateJobError:
            pass  # a unique job with this id is already queued, running or recently done


def _drop_pending(session: Session, transaction) -> None:
    # The outermost transaction ended without a commit (after_commit already emptied the list otherwise).
    if transaction.parent is None and session.info.get(_PENDING):
        session.info[_PENDING].clear()


def enqueue_unique(runtime: Runtime, name: str, func: Callable | str, *args: Any, job_id: str,
                   after_commit_of: Session | None = None, **kwargs: Any) -> None:
    """Enqueue under a fixed job id, once: while a job with that id exists (queued, running, scheduled for a
    retry, or recently finished), asking again does nothing. With ``after_commit_of``, only after that
    session commits."""
    kwargs.update(job_id=job_id, unique=True)
    if after_commit_of is not None:
        enqueue_after_commit(after_commit_of, runtime, name, func, *args, **kwargs)
        return
    try:
        queue(runtime, name).enqueue(func, *args, **kwargs)
    except DuplicateJobError:
        pass
