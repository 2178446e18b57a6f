"""Opportunities from the bot's handoff and from the recoverer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot.engine import respond
from crm.opportunities import crm_settings, move
from crm.sources import follow_up_unconverted, on_shopper_message
from models import (
    AttemptStatus, Customer, HandoffRequest, HandoffStatus, Opportunity, OpportunityResult, OpportunityStatus,
    RecoveryAttempt, Role, User,
)
from models.demo import seed
from recovery import eligibility
from recovery.config import load_settings
from tests.crm_helpers import make_order

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=timezone.utc)


@pytest.fixture
def shop(session):
    seed(session)
    session.commit()
    return session


@pytest.fixture
def ana(shop):
    customer = Customer(phone="+5521999990001", name="Ana Souza", ddd="21", city="Rio de Janeiro", state="RJ", tags=[])
    shop.add(customer)
    shop.commit()
    return customer


def _chat(runtime, session, customer, text):
    replies = respond(session, runtime.redis, runtime.keys, runtime.settings, customer, text, now=NOW)
    session.commit()
    return "\n".join(replies)


def _sent_attempt(session, customer, sent_at):
    attempt = RecoveryAttempt(customer_id=customer.id, interaction_at=sent_at - timedelta(minutes=10),
                              due_at=sent_at, status=AttemptStatus.SENT, sent_at=sent_at, variant="A")
    session.add(attempt)
    session.flush()
    return attempt


def test_asking_for_a_person_is_assigned_at_once_to_a_nearby_seller_and_pauses_recovery(runtime, shop, ana):
    assert "vai falar com você" in _chat(runtime, shop, ana, "falar com vendedor")
    opportunity = shop.scalar(select(Opportunity).where(Opportunity.customer_id == ana.id))
    assert opportunity.reason == "asked_for_person" and opportunity.priority == 3
    assert opportunity.status is OpportunityStatus.ASSIGNED
    seller = shop.get(User, opportunity.seller_id)
    assert seller.role is Role.SELLER and "21" in seller.region_ddds
    handoff = shop.scalar(select(HandoffRequest).where(HandoffRequest.customer_id == ana.id))
    assert handoff.status is HandoffStatus.ASSIGNED and opportunity.handoff_id == handoff.id

    settings = load_settings(shop)
    attempt = RecoveryAttempt(customer_id=ana.id, interaction_at=NOW, due_at=NOW, status=AttemptStatus.CLAIMED)
    shop.add(attempt)
    shop.flush()
    decision = eligibility.judge(shop, settings, ana, attempt, NOW + timedelta(minutes=15), runtime.settings.store_timezone)
    assert decision.reason == eligibility.HANDOFF

    move(shop, opportunity, OpportunityStatus.IN_PROGRESS, NOW, actor=seller)
    move(shop, opportunity, OpportunityStatus.FINISHED, NOW, actor=seller, result=OpportunityResult.POSITIVE)
    shop.refresh(handoff)
    assert handoff.status is HandoffStatus.CLOSED  # the seller let go: recovery may speak again
    decision = eligibility.judge(shop, settings, ana, attempt, NOW + timedelta(minutes=15), runtime.settings.store_timezone)
    assert decision.reason != eligibility.HANDOFF


def test_a_second_request_joins_the_open_opportunity(runtime, shop, ana):
    _chat(runtime, shop, ana, "atendente")
    _chat(runtime, shop, ana, "quero falar com uma pessoa")
    assert len(shop.scalars(select(Opportunity)).all()) == 1


def test_a_reply_to_a_recovery_message_becomes_one_opportunity(shop, ana):
    attempt = _sent_attempt(shop, ana, NOW - timedelta(hours=2))
    first = on_shopper_message(shop, ana, NOW)
    assert first is not None and first.reason == "recovery_replied" and first.source_ref == f"recovery-{attempt.id}"
    move(shop, first, OpportunityStatus.FINISHED, NOW, result=OpportunityResult.NEUTRAL)
    assert on_shopper_message(shop, ana, NOW + timedelta(minutes=5)) is None  # that message already fired


def test_no_opportunity_for_a_reply_long_after_the_recovery_message(shop, ana):
    _sent_attempt(shop, ana, NOW - timedelta(hours=30))
    assert on_shopper_message(shop, ana, NOW) is None


def test_unconverted_recovery_messages_become_opportunities_after_the_configured_hours(shop, ana):
    crm_settings(shop).recovery_followup_hours = 24
    bought = Customer(phone="+5521999990002", name="Bia", ddd="21", tags=[])
    shop.add(bought)
    shop.flush()
    waiting = _sent_attempt(shop, ana, NOW - timedelta(hours=25))
    _sent_attempt(shop, bought, NOW - timedelta(hours=25))
    make_order(shop, bought, "o-1", "99.90", NOW - timedelta(hours=20))
    too_recent = Customer(phone="+5521999990003", tags=[])
    shop.add(too_recent)
    shop.flush()
    _sent_attempt(shop, too_recent, NOW - timedelta(hours=2))

    assert follow_up_unconverted(shop, NOW) == 1
    created = shop.scalar(select(Opportunity).where(Opportunity.source_ref == f"recovery-{waiting.id}"))
    assert created.reason == "recovery_not_converted" and created.customer_id == ana.id
    assert follow_up_unconverted(shop, NOW + timedelta(minutes=5)) == 0  # idempotent

    crm_settings(shop).recovery_followup_hours = 0
    assert follow_up_unconverted(shop, NOW + timedelta(days=1)) == 0  # switched off
