"""RQ queues, and enqueueing that waits for the database commit.

Three queues, in priority order: ``high`` (inbound messages and replies to a live chat), ``default``
(recovery sends and other business-initiated messages), ``low`` (maintenance).
"""

from __future__ import annotations

from typing import Any, Callable

from rq import Queue
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


def enqueue_after_commit(session: Session, runtime: Runtime, name: str, func: Callable | str, *args: Any, **kwargs: Any) -> None:
    """Enqueue once ``session``'s transaction commits; never if it rolls back.

    A fast worker must not pick up a job that reads a row the producer has not committed yet.
    """

    def _enqueue(_session: Session) -> None:
        queue(runtime, name).enqueue(func, *args, **kwargs)

    event.listen(session, "after_commit", _enqueue, once=True)
