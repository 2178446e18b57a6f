"""Tick cost against the number of tracked shoppers: T tracked (10 k, 100 k, 1 M), D of them due (1 k, 10 k).

For each (T, D): the tracker is filled in Redis exactly as `Tracker.note` leaves it, then
* `claim_s`: the Redis side alone, `Tracker.claim_due` in the tick's batches until the D due are taken;
* `tick_s`: a whole scheduled tick (`recovery.tick.run_tick` with the RQ dispatcher of `recovery.jobs.tick`):
  claim, one attempt row per due shopper, release, and the send jobs enqueued.
The claim should not grow with T (O(log T + D)). Redis memory per tracked shopper is reported twice:
`bytes_per_tracked` (MEMORY USAGE of the two keys) and `used_memory_delta_per_tracked` (INFO used_memory growth).
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, insert

from bench.common import bench_env, bench_redis, delete_prefixed, emit, fresh_database, log, make_runtime, \
    new_prefix, workspace
from models import Customer, RecoveryAttempt
from recovery.jobs import judging_dispatcher
from recovery.tick import CLAIM_BATCH, run_tick
from recovery.tracker import Tracker, to_ms

FILL_CHUNK = 20_000
REPEATS = 5


def fill(tracker: Tracker, first_id: int, count: int, due_ms: int, interaction_ms: int) -> None:
    """Shoppers first_id .. first_id + count - 1, all due at ``due_ms``: the layout `Tracker.note` writes."""
    client = tracker.redis
    for start in range(first_id, first_id + count, FILL_CHUNK):
        ids = range(start, min(start + FILL_CHUNK, first_id + count))
        with client.pipeline(transaction=False) as pipe:
            pipe.zadd(tracker.due_key, {str(i): due_ms for i in ids})
            pipe.hset(tracker.last_key, mapping={str(i): interaction_ms for i in ids})
            pipe.execute()


def tracker_bytes(tracker: Tracker) -> int:
    """Exact memory of the tracker's two structures (MEMORY USAGE with every element sampled)."""
    return sum(int(tracker.redis.memory_usage(key, samples=0) or 0) for key in (tracker.due_key, tracker.last_key))


def used_memory(client) -> int:
    """The server's used_memory once the previous run's keys are really gone: UNLINK frees them in the
    background, and counting that as this run's memory would hide the growth."""
    deadline = time.monotonic() + 30
    while True:
        info = client.info("memory")
        if not info.get("lazyfree_pending_objects") or time.monotonic() > deadline:
            return int(info["used_memory"])
        time.sleep(0.05)


def run(quick: bool = False) -> dict:
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    dues = (1_000, 10_000)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = []
    memory: dict[int, float] = {}
    server_memory: dict[int, float] = {}
    with workspace() as (folder, database_url), bench_redis() as redis_url:
        import redis as redis_lib

        client = redis_lib.Redis.from_url(redis_url)
        database = fresh_database(database_url)
        with database.engine.begin() as conn:  # attempt rows need their customers
            conn.execute(insert(Customer), [{"id": i, "phone": f"+5511{i:09d}", "tags": []}
                                            for i in range(1, max(dues) + 1)])
        for tracked in sizes:
            for due in dues:
                prefix = new_prefix()
                runtime = make_runtime(bench_env(folder, database_url, redis_url, prefix), database, client)
                tracker = Tracker(runtime)
                # Due: shoppers 1..D (they exist in the database). Not due: the rest, 30 minutes from now.
                used_before = used_memory(client)
                fill(tracker, 1, due, to_ms(now - timedelta(minutes=1)), to_ms(now - timedelta(minutes=11)))
                fill(tracker, max(dues) + 1, tracked - due, to_ms(now + timedelta(minutes=30)),
                     to_ms(now + timedelta(minutes=20)))
                # Two views of the same figure: the keys' own size, and the whole server's growth (which also
                # counts allocator overhead, but also anything else writing to a shared server meanwhile).
                memory[tracked] = tracker_bytes(tracker) / tracked
                server_memory[tracked] = (used_memory(client) - used_before) / tracked

                samples = []
                for _ in range(REPEATS):  # the median of several claims: one is a few milliseconds
                    started = time.perf_counter()
                    taken = 0
                    while True:
                        claims = tracker.claim_due(now, CLAIM_BATCH)
                        taken += len(claims)
                        if len(claims) < CLAIM_BATCH:
                            break
                    samples.append(time.perf_counter() - started)
                    assert taken == due, (taken, due)
                    client.delete(tracker.claimed_key, tracker.claimed_last_key)
                    fill(tracker, 1, due, to_ms(now - timedelta(minutes=1)), to_ms(now - timedelta(minutes=11)))
                claim_s = statistics.median(samples)

                send = judging_dispatcher(runtime)
                enqueued = 0

                def dispatch(ids: list[int]) -> None:
                    nonlocal enqueued
                    send(ids)
                    enqueued += len(ids)

                with database.session() as session:
                    started = time.perf_counter()
                    summary = run_tick(session, runtime, now, dispatch=dispatch)
                    tick_s = time.perf_counter() - started
                assert summary.claimed == due and enqueued == due, (summary.as_json(), enqueued)
                rows.append({"tracked": tracked, "due": due, "claim_s": round(claim_s, 4), "tick_s": round(tick_s, 3),
                             "due_per_s": round(due / tick_s)})
                log(f"tick: T={tracked:>9,} D={due:>6,} claim {claim_s * 1000:8.1f} ms, whole tick {tick_s:6.2f} s")
                with database.engine.begin() as conn:
                    conn.execute(delete(RecoveryAttempt))
                delete_prefixed(client, prefix)
        database.engine.dispose()

    ratios = {}
    for due in dues:
        by_size = {r["tracked"]: r for r in rows if r["due"] == due}
        smallest, largest = min(by_size), max(by_size)
        ratios[f"claim_{largest // 1000}k_over_{smallest // 1000}k_D{due}"] = round(
            by_size[largest]["claim_s"] / by_size[smallest]["claim_s"], 2)
    return emit("tick", {"database": "sqlite", "redis": redis_url.split("://")[0], "runs": rows,
                         "claim_ratio": ratios,
                         "bytes_per_tracked": {str(k): round(v, 1) for k, v in memory.items()},
                         "used_memory_delta_per_tracked": {str(k): round(v, 1) for k, v in server_memory.items()}})
