"""The tracker, the tick and the send-time checks, against real Redis and the real database."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from core.queues import queues_for
from models import (
    AttemptStatus, Coupon, HandoffRequest, Message, MessageStatus, Order, OrderStatus, TemplateStatus,
)
from recovery import eligibility
from recovery.tick import run_tick
from recovery.tracker import Tracker, note_interaction
from tests.recovery_helpers import (
    AFTERNOON, approved_template, attempts, enable_recovery, map_template, minutes, recovery_messages, sent_recovery_messages, shopper, with_cart,
)


NO_QUIET_HOURS = {"quiet_start": "00:00", "quiet_end": "00:00"}


def tick(session, runtime, now):
    return run_tick(session, runtime, now)


# --- tracker ---------------------------------------------------------------------------------------------

def test_newer_interaction_pushes_due_time_later_and_older_is_ignored(runtime, session):
    enable_recovery(session)
    tracker = Tracker(runtime)
    note_interaction(session, runtime, 7, AFTERNOON)
    assert tracker.due_at(7) == AFTERNOON + minutes(10)
    note_interaction(session, runtime, 7, AFTERNOON + minutes(4))
    assert tracker.due_at(7) == AFTERNOON + minutes(14)
    note_interaction(session, runtime, 7, AFTERNOON + minutes(1))  # late delivery of an older event
    assert tracker.due_at(7) == AFTERNOON + minutes(14)
    assert tracker.size() == 1


def test_claim_takes_only_the_due_range_once(runtime):
    tracker = Tracker(runtime)
    for i in range(1, 21):
        tracker.note(i, AFTERNOON, AFTERNOON + minutes(i))
    first = tracker.claim_due(AFTERNOON + minutes(10), limit=100)
    assert sorted(c.customer_id for c in first) == list(range(1, 11))
    assert tracker.claim_due(AFTERNOON + minutes(10), limit=100) == []
    batch = tracker.claim_due(AFTERNOON + minutes(20), limit=4)
    assert [c.customer_id for c in batch] == [11, 12, 13, 14]
    assert tracker.size() == 6


def test_a_dead_ticks_claims_come_back(runtime):
    tracker = Tracker(runtime)
    tracker.note(1, AFTERNOON, AFTERNOON + minutes(10))
    tracker.note(2, AFTERNOON, AFTERNOON + minutes(10))
    claimed = tracker.claim_due(AFTERNOON + minutes(11), limit=10)
    assert len(claimed) == 2 and tracker.size() == 0
    tracker.note(2, AFTERNOON + minutes(12), AFTERNOON + minutes(22))  # shopper 2 came back meanwhile
    assert tracker.reclaim_stale(timedelta(minutes=10)) == 0  # a live tick's claims stay claimed
    assert tracker.reclaim_stale(timedelta(0)) == 2
    assert tracker.due_at(1) == AFTERNOON + minutes(10)
    assert tracker.due_at(2) == AFTERNOON + minutes(22)  # the newer interaction wins


# --- the tick ---------------------------------------------------------------------------------------------

def test_due_shopper_gets_one_message_with_cart_and_coupon(runtime, session):
    rule = enable_recovery(session)
    ana = shopper(session)
    with_cart(session, ana)
    note_interaction(session, runtime, ana.id, AFTERNOON)

    early = tick(session, runtime, AFTERNOON + minutes(9))
    assert early.claimed == 0 and recovery_messages(session) == []

    summary = tick(session, runtime, AFTERNOON + minutes(10))
    assert summary.claimed == 1 and summary.sent == 1
    (message,) = recovery_messages(session)
    coupon = session.scalar(select(Coupon))
    assert message.automated and message.idempotency_key == f"recovery-{attempts(session)[0].id}"
    assert "Ana" in message.body and "2x Camiseta Básica Branca" in message.body
    assert "R$\xa0119,80" in message.body
    assert coupon.code in message.body and coupon.rule_id == rule.id
    assert coupon.expires_at == AFTERNOON + minutes(10) + timedelta(hours=24)
    assert "25/11/2026 às 15:10" in message.body  # validity in the store's time zone
    assert "https://loja.example/checkout/c-" in message.body

    again = tick(session, runtime, AFTERNOON + minutes(30))
    assert again.claimed == 0 and len(recovery_messages(session)) == 1


def test_tick_summary_cli_prints_one_json_line(app, runtime, session):
    enable_recovery(session)
    ana = shopper(session)
    note_interaction(session, runtime, ana.id, AFTERNOON)
    result = app.test_cli_runner().invoke(args=["recovery", "tick", "--now", "2026-11-24T15:10:00-03:00"])
    assert result.exit_code == 0, result.output
    (line,) = [l for l in result.output.splitlines() if l.startswith("{")]
    assert json.loads(line) == {"attempts": 1, "claimed": 1, "deferred": 0, "failed": {}, "requeued": 0, "sent": 1,
                                "skipped": {}}
    bad = app.test_cli_runner().invoke(args=["recovery", "tick", "--now", "ontem"])
    assert bad.exit_code != 0 and "--now" in bad.output


@pytest.mark.parametrize("setup,reason", [
    (lambda s, c: setattr(c, "opted_out_at", AFTERNOON + minutes(1)), eligibility.OPTED_OUT),
    (lambda s, c: s.add(Order(external_id="o-1", customer_id=c.id, status=OrderStatus.PAID, total=Decimal("10"),
                              placed_at=AFTERNOON + minutes(5))), eligibility.PURCHASED),
    (lambda s, c: s.add(HandoffRequest(customer_id=c.id)), eligibility.HANDOFF),
    (lambda s, c: setattr(c, "phone", "+5500000000000"), eligibility.INVALID_NUMBER),
    (lambda s, c: setattr(c, "last_inbound_at", AFTERNOON - timedelta(hours=30)), eligibility.NO_TEMPLATE),
])
def test_every_refusal_is_recorded_with_its_reason(runtime, session, setup, reason):
    enable_recovery(session)
    ana = shopper(session)
    note_interaction(session, runtime, ana.id, AFTERNOON)
    setup(session, ana)
    session.commit()
    summary = tick(session, runtime, AFTERNOON + minutes(10))
    assert summary.skipped == {reason: 1}
    (attempt,) = attempts(session)
    assert attempt.status is AttemptStatus.SKIPPED and attempt.skip_reason == reason
    assert recovery_messages(session) == []


def test_cancelled_order_does_not_count_as_a_purchase(runtime, session):
    enable_recovery(session)
    ana = shopper(session)
    session.add(Order(external_id="o-1", customer_id=ana.id, status=OrderStatus.CANCELLED, total=Decimal("10"),
                      placed_at=AFTERNOON + minutes(5)))
    session.commit()
    note_interaction(session, runtime, ana.id, AFTERNOON)
    assert tick(session, runtime, AFTERNOON + minutes(10)).sent == 1


def test_disabled_recoverer_sends_nothing(runtime, session):
    enable_recovery(session, enabled=False)
    ana = shopper(session)
    note_interaction(session, runtime, ana.id, AFTERNOON)
    assert tick(session, runtime, AFTERNOON + minutes(10)).skipped == {eligibility.DISABLED: 1}


def test_frequency_limit_blocks_a_second_abandonment(runtime, session):
    enable_recovery(session, frequency_count=2, frequency_unit="days")
    ana = shopper(session)
    note_interaction(session, runtime, ana.id, AFTERNOON)
    assert tick(session, runtime, AFTERNOON + minutes(10)).sent == 1
    ana.last_inbound_at = AFTERNOON + timedelta(hours=5)
    session.commit()
    note_interaction(session, runtime, ana.id, AFTERNOON + timedelta(hours=5))
    later = tick(session, runtime, AFTERNOON + timedelta(hours=5, minutes=10))
    assert later.skipped == {eligibility.FREQUENCY: 1}
    assert len(recovery_messages(session)) == 1


def test_recent_coupon_use_pauses_recovery(runtime, session):
    enable_recovery(session, frequency_count=1, frequency_unit="hours", coupon_use_pause_days=30)
    ana = shopper(session)
    note_interaction(session, runtime, ana.id, AFTERNOON)
    tick(session, runtime, AFTERNOON + minutes(10))
    coupon = session.scalar(select(Coupon))
    coupon.redeemed_at = AFTERNOON + minutes(20)
    ana.last_inbound_at = AFTERNOON + timedelta(hours=3)
    session.commit()
    note_interaction(session, runtime, ana.id, AFTERNOON + timedelta(hours=3))
    assert tick(session, runtime, AFTERNOON + timedelta(hours=3, minutes=10)).skipped == {eligibility.COUPON_PAUSE: 1}


def test_quiet_hours_defer_to_the_morning_not_drop(runtime, session):
    enable_recovery(session)
    night = datetime(2026, 11, 25, 0, 30, tzinfo=timezone.utc)  # 21:30 in São Paulo
    ana = shopper(session, last_inbound=night)
    note_interaction(session, runtime, ana.id, night)
    summary = tick(session, runtime, night + minutes(10))
    assert summary.deferred == 1 and recovery_messages(session) == []
    morning = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)  # 09:00 in São Paulo
    assert Tracker(runtime).due_at(ana.id) == morning
    assert tick(session, runtime, morning - minutes(1)).claimed == 0
    assert tick(session, runtime, morning).sent == 1
    (attempt,) = attempts(session)
    assert attempt.status is AttemptStatus.SENT and attempt.interaction_at == night


def test_entries_past_the_maximum_age_are_dropped_with_a_reason(runtime, session):
    enable_recovery(session, max_age_hours=23)
    ana = shopper(session)
    note_interaction(session, runtime, ana.id, AFTERNOON)
    summary = tick(session, runtime, AFTERNOON + timedelta(hours=23, minutes=1))
    assert summary.skipped == {eligibility.EXPIRED: 1} and recovery_messages(session) == []


def test_outside_the_window_the_mapped_template_is_used(runtime, session):
    enable_recovery(session)
    template = approved_template(session)
    map_template(session, template)
    ana = shopper(session, last_inbound=None)  # only a cart event: the shopper never wrote to us
    with_cart(session, ana)
    note_interaction(session, runtime, ana.id, AFTERNOON)
    assert tick(session, runtime, AFTERNOON + minutes(10)).sent == 1
    (message,) = recovery_messages(session)
    coupon = session.scalar(select(Coupon))
    assert message.sent_as == "template" and message.content_sid == template.external_id
    assert message.content_variables["1"] == "Ana" and message.content_variables["3"] == coupon.code
    assert message.content_variables["2"] == "2x Camiseta Básica Branca (R$\xa0119,80)" or \
        message.content_variables["2"].startswith("2x Camiseta Básica Branca")
    assert message.content_variables["5"].startswith("https://")
    assert message.body.startswith("Oi, Ana! Seus itens na Loja Demo estão esperando: 2x Camiseta")
    assert message.status is MessageStatus.PENDING


def test_outside_the_window_without_a_mapped_template_is_skipped_with_its_own_reason(runtime, session):
    enable_recovery(session)
    ana = shopper(session, last_inbound=None)
    with_cart(session, ana)
    note_interaction(session, runtime, ana.id, AFTERNOON)
    summary = tick(session, runtime, AFTERNOON + minutes(10))
    assert summary.skipped == {eligibility.NO_TEMPLATE: 1} and recovery_messages(session) == []
    assert session.scalar(select(Coupon)) is None  # no coupon issued for a message that cannot go


def test_outside_the_window_a_template_no_longer_approved_is_skipped(runtime, session):
    enable_recovery(session)
    template = approved_template(session)
    map_template(session, template)
    template.status = TemplateStatus.PAUSED
    session.commit()
    ana = shopper(session, last_inbound=None)
    with_cart(session, ana)
    note_interaction(session, runtime, ana.id, AFTERNOON)
    assert tick(session, runtime, AFTERNOON + minutes(10)).skipped == {eligibility.TEMPLATE_NOT_APPROVED: 1}


def test_inside_the_window_the_free_form_text_goes_and_the_template_is_only_the_fallback(runtime, session):
    enable_recovery(session)
    map_template(session, approved_template(session))
    ana = shopper(session)
    with_cart(session, ana)
    note_interaction(session, runtime, ana.id, AFTERNOON)
    tick(session, runtime, AFTERNOON + minutes(10))
    (message,) = recovery_messages(session)
    assert message.sent_as == "text" and message.body.startswith("Oi, Ana! Vimos que")
    assert message.template_id is not None and message.content_variables["1"] == "Ana"


def test_variant_b_uses_its_own_template(runtime, session):
    enable_recovery(session, variant_b_template="Variante B para {{ nome }}", variant_b_percent=100)
    template_a = approved_template(session)
    template_b = approved_template(session, body="B: {{1}}, volte: {{2}}", external_id="HX" + "2" * 32, name="b")
    map_template(session, template_a)
    map_template(session, template_b, {"1": "nome", "2": "link"}, variant="B")
    ana = shopper(session, last_inbound=None)
    with_cart(session, ana)
    note_interaction(session, runtime, ana.id, AFTERNOON)
    tick(session, runtime, AFTERNOON + minutes(10))
    (message,) = recovery_messages(session)
    assert message.template_id == template_b.id and message.body.startswith("B: Ana, volte: https://")


def test_ab_split_is_stable_and_uses_variant_b_texts(runtime, session):
    enable_recovery(session, variant_b_template="Variante B para {{ nome }}", variant_b_percent=50)
    customers = [shopper(session, phone=f"+55119999900{i:02d}", name=f"Cliente {i}") for i in range(40)]
    for c in customers:
        note_interaction(session, runtime, c.id, AFTERNOON)
    tick(session, runtime, AFTERNOON + minutes(10))
    variants = {a.customer_id: a.variant for a in attempts(session)}
    assert set(variants.values()) == {"A", "B"}
    for message in recovery_messages(session):
        assert message.body.startswith("Variante B") == (variants[message.customer_id] == "B")


def test_opt_out_after_queueing_blocks_delivery(runtime, session):
    enable_recovery(session)
    ana = shopper(session)
    note_interaction(session, runtime, ana.id, AFTERNOON)
    tick(session, runtime, AFTERNOON + minutes(10))
    ana.opted_out_at = AFTERNOON + minutes(11)
    session.commit()
    SimpleWorker(queues_for(runtime), connection=runtime.redis).work(burst=True)
    session.expire_all()
    (message,) = recovery_messages(session)
    assert message.status is MessageStatus.BLOCKED and message.error_reason == "opted_out"
    assert sent_recovery_messages(session) == []


def test_scheduled_tick_sends_through_jobs(runtime, session):
    from recovery.jobs import tick as scheduled_tick

    enable_recovery(session, **NO_QUIET_HOURS)  # runs on the real clock
    ana = shopper(session, last_inbound=datetime.now(timezone.utc))
    note_interaction(session, runtime, ana.id, datetime.now(timezone.utc) - minutes(11))
    summary = scheduled_tick()
    assert summary["claimed"] == 1 and summary["sent"] == 0  # judged by the send job, not the scheduler
    SimpleWorker(queues_for(runtime), connection=runtime.redis).work(burst=True)
    session.expire_all()
    (message,) = recovery_messages(session)
    assert message.status is MessageStatus.OUTBOX


def test_rebuild_restores_pending_and_not_what_was_sent(app, runtime, session):
    enable_recovery(session, **NO_QUIET_HOURS)  # runs on the real clock
    now = datetime.now(timezone.utc)
    ana, bia, caio = (shopper(session, phone=p, last_inbound=now - minutes(30))
                      for p in ("+5511999990001", "+5511999990002", "+5511999990003"))
    for c, at in ((ana, now - minutes(30)), (bia, now - minutes(3)), (caio, now - minutes(30))):
        session.add(Message(customer_id=c.id, direction="inbound", kind="shopper", body="oi",
                            status=MessageStatus.RECEIVED, created_at=at))
        session.commit()
        note_interaction(session, runtime, c.id, at)
    tick(session, runtime, now)  # ana and caio sent; bia not due yet
    caio.opted_out_at = now
    session.commit()
    assert len(recovery_messages(session)) == 2

    runtime.redis.delete(*runtime.redis.keys(f"{runtime.keys.prefix}:rec:*"))  # Redis lost everything
    result = app.test_cli_runner().invoke(args=["recovery", "rebuild"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["tracked"] == 1
    tracker = Tracker(runtime)
    assert tracker.due_at(ana.id) is None and tracker.due_at(caio.id) is None
    assert tracker.due_at(bia.id) is not None
    tick(session, runtime, now + minutes(10))
    assert len(recovery_messages(session)) == 3
    assert len(recovery_messages(session, bia.id)) == 1


def test_scheduled_tick_judges_on_the_low_queue_so_deliveries_go_first(runtime, session):
    """A big tick queues many judging batches; the messages the first batch queues must not wait behind the rest."""
    from rq import Queue

    from recovery.jobs import JUDGING_QUEUE, tick as scheduled_tick
    from recovery.tick import SEND_BATCH

    enable_recovery(session, **NO_QUIET_HOURS)
    now = datetime.now(timezone.utc)
    for i in range(SEND_BATCH + 1):  # two judging batches
        customer = shopper(session, phone=f"+55119{i:08d}", last_inbound=now)
        note_interaction(session, runtime, customer.id, now - minutes(11))
    assert scheduled_tick()["claimed"] == SEND_BATCH + 1
    judging = Queue(runtime.keys.queue(JUDGING_QUEUE), connection=runtime.redis)
    assert JUDGING_QUEUE == "low" and [len(j.args[0]) for j in judging.jobs] == [SEND_BATCH, 1]

    # One job at a time, as a worker takes them: the first batch, then one of its deliveries, not the next batch.
    deliveries = Queue(runtime.keys.queue("default"), connection=runtime.redis)
    worker = SimpleWorker(queues_for(runtime), connection=runtime.redis)
    worker.work(burst=True, max_jobs=1)
    assert len(judging) == 1 and deliveries.count == SEND_BATCH
    worker.work(burst=True, max_jobs=1)
    assert len(judging) == 1 and deliveries.count == SEND_BATCH - 1
