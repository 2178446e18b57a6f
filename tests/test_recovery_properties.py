"""Hypothesis timelines: interactions, orders, opt-outs and (duplicate) ticks at random times.

Checked after every timeline: never two messages for one abandonment; never to an opted-out shopper; never
inside the frequency window; never after a purchase; never in quiet hours; and every due shopper who is
eligible gets exactly one message at the first tick after the due time.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from models import Order, OrderStatus, RecoveryAttempt
from recovery.eligibility import RECENT_PURCHASE_WINDOW, quiet_hours_end
from recovery.config import load_settings
from recovery.tick import run_tick
from recovery.tracker import forget, note_interaction
from tests.recovery_helpers import AFTERNOON, enable_recovery, recovery_messages, shopper

CUSTOMERS = 2
DELAY = 10
FREQUENCY = timedelta(hours=2)

SPAN = 180  # minutes
TICK_EVERY = 15  # the scheduler's period in these timelines; random extra ticks come on top
minute = st.integers(0, SPAN)
shopper_index = st.integers(0, CUSTOMERS - 1)
event = st.one_of(
    st.tuples(st.just("talk"), shopper_index, minute),
    st.tuples(st.just("talk"), shopper_index, minute),  # twice as likely: most activity is talking
    st.tuples(st.just("order"), shopper_index, minute),
    st.tuples(st.just("optout"), shopper_index, minute),
    st.tuples(st.just("optin"), shopper_index, minute),
    st.tuples(st.just("tick"), st.just(0), minute),
    # The same, with the tracker update lost (Redis hiccup, or the event landing between claim and send):
    # the send-time checks against the database must still refuse.
    st.tuples(st.just("order!"), shopper_index, minute),
    st.tuples(st.just("optout!"), shopper_index, minute),
)
ORDER = {"optout": 0, "optout!": 0, "optin": 1, "talk": 2, "order": 3, "order!": 3, "tick": 4}  # same-minute events: ticks see them


def run_timeline(runtime, session, events, start):
    customers = [shopper(session, phone=f"+55119999900{i:02d}", name=f"Cliente {i}", last_inbound=None)
                 for i in range(CUSTOMERS)]
    scheduled = [("tick", 0, m) for m in range(0, SPAN + 2 * TICK_EVERY, TICK_EVERY)]
    log = sorted(((start + timedelta(minutes=m), ORDER[kind], kind, c) for kind, c, m in [*events, *scheduled]))
    opted_out = {i: [] for i in range(CUSTOMERS)}  # (time, bool)
    orders = defaultdict(list)
    expected = []  # (customer index, tick time) where a message must go out
    pending: dict[int, object] = {}
    sent_at: dict[int, list] = defaultdict(list)
    settings_row = load_settings(session)
    tz = runtime.settings.store_timezone
    for number, (when, _, kind, i) in enumerate(log):
        c = customers[i]
        if kind == "talk":
            c.last_inbound_at = when
            session.commit()
            if c.opted_out_at is None:
                note_interaction(session, runtime, c.id, when)
                pending[i] = when
            else:
                forget(runtime, c.id)
        elif kind in ("order", "order!"):
            session.add(Order(external_id=f"o-{number}", customer_id=c.id, status=OrderStatus.PAID,
                              total=Decimal("50.00"), placed_at=when))
            session.commit()
            orders[i].append(when)
            if kind == "order":
                forget(runtime, c.id)
                pending.pop(i, None)
        elif kind in ("optout", "optout!", "optin"):
            c.opted_out_at = None if kind == "optin" else when
            session.commit()
            opted_out[i].append((when, kind != "optin"))
            if kind == "optout":
                forget(runtime, c.id)
                pending.pop(i, None)
        else:
            # Reference model of the first tick at or after the due time.
            for j, interaction in list(pending.items()):
                if interaction + timedelta(minutes=DELAY) > when:
                    continue
                if quiet_hours_end(settings_row, when, tz) is not None:
                    continue  # deferred: only the safety properties are checked for it
                pending.pop(j)
                # Any order of these three-hour timelines is within the week before the interaction or after it,
                # and nobody starts a cart here: a purchase rules the shopper out (recovery.eligibility).
                if customers[j].opted_out_at is not None or orders[j]:
                    continue
                in_window = customers[j].last_inbound_at and when - customers[j].last_inbound_at < timedelta(hours=24)
                recent = any(when - t < FREQUENCY for t in sent_at[j])
                if in_window and not recent:
                    expected.append((j, when))
                    sent_at[j].append(when)
            run_tick(session, runtime, when)
            run_tick(session, runtime, when)  # a duplicate tick at the same instant
    return customers, opted_out, orders, expected


def check_safety(session, customers, opted_out, orders, tz, settings_row):
    index = {c.id: i for i, c in enumerate(customers)}
    messages = recovery_messages(session)
    per_attempt = defaultdict(int)
    for attempt in session.scalars(select(RecoveryAttempt).where(RecoveryAttempt.message_id.is_not(None))):
        per_attempt[(attempt.customer_id, attempt.interaction_at)] += 1
    assert all(n == 1 for n in per_attempt.values()), "two messages for one abandonment"
    assert len({m.idempotency_key for m in messages}) == len(messages)
    by_customer = defaultdict(list)
    for m in messages:
        by_customer[m.customer_id].append(m.created_at)
        i = index[m.customer_id]
        state = [out for t, out in opted_out[i] if t <= m.created_at]
        assert not (state and state[-1]), "message to an opted-out shopper"
        assert quiet_hours_end(settings_row, m.created_at, tz) is None, "message in quiet hours"
        attempt = session.scalar(select(RecoveryAttempt).where(RecoveryAttempt.message_id == m.id))
        assert not any(attempt.interaction_at - RECENT_PURCHASE_WINDOW <= t <= m.created_at for t in orders[i]), \
            "message after a purchase, or to a shopper who had just bought"
    for times in by_customer.values():
        times.sort()
        assert all(b - a >= FREQUENCY for a, b in zip(times, times[1:])), "inside the frequency window"
    return by_customer


PROPERTY_SETTINGS = settings(max_examples=100, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(events=st.lists(event, min_size=1, max_size=25))
def test_timelines_without_quiet_hours(runtime, db, events):
    with db.session() as session:
        try:
            enable_recovery(session, frequency_count=2, frequency_unit="hours", delay_minutes=DELAY,
                            quiet_start="00:00", quiet_end="00:00", coupon_use_pause_days=0)
            customers, opted_out, orders, expected = run_timeline(runtime, session, events, AFTERNOON)
            by_customer = check_safety(session, customers, opted_out, orders, runtime.settings.store_timezone,
                                       load_settings(session))
            got = sorted((customers.index(next(c for c in customers if c.id == cid)), t)
                         for cid, times in by_customer.items() for t in times)
            assert got == sorted(expected), "an eligible due shopper was not sent exactly one message on time"
        finally:
            session.rollback()
            _reset(session, runtime)


@PROPERTY_SETTINGS
@given(events=st.lists(event, min_size=1, max_size=25))
def test_timelines_across_quiet_hours(runtime, db, events):
    # Starts 19:00 in São Paulo: the ten hours cover the 21:00-09:00 quiet period.
    evening = AFTERNOON + timedelta(hours=4)
    with db.session() as session:
        try:
            enable_recovery(session, frequency_count=2, frequency_unit="hours", delay_minutes=DELAY,
                            coupon_use_pause_days=0)
            customers, opted_out, orders, _ = run_timeline(runtime, session, events, evening)
            check_safety(session, customers, opted_out, orders, runtime.settings.store_timezone,
                         load_settings(session))
        finally:
            session.rollback()
            _reset(session, runtime)


def _reset(session, runtime):
    """Hypothesis reuses the function's fixtures across examples: empty what one example wrote."""
    from models import Base

    for table in reversed(Base.metadata.sorted_tables):
        session.execute(table.delete())
    session.commit()
    keys = list(runtime.redis.scan_iter(match=f"{runtime.keys.prefix}:*"))
    if keys:
        runtime.redis.delete(*keys)
    from recovery.config import invalidate_delay_cache

    invalidate_delay_cache()
