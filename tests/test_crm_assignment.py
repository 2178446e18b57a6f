"""Assignment: portfolio owner first, then DDD, city, state, branch and brand, within capacity and the daily
cap, least loaded first; quarantine; the periodic retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from crm.assignment import assign, assign_backlog, daily_cap, local_midnight
from crm.opportunities import create, crm_settings, move
from models import Opportunity, OpportunityEvent, OpportunityResult, OpportunityStatus, OpportunityType
from tests.crm_helpers import NOON, TZ, customer, make_seller, make_store


@pytest.fixture
def stores(session):
    return {
        "sp": make_store(session, "SP", city="São Paulo", state="SP", ddd="11"),
        "cps": make_store(session, "CPS", city="Campinas", state="SP", ddd="19"),
        "rj": make_store(session, "RJ", city="Rio de Janeiro", state="RJ", ddd="21"),
    }


def _opportunity(session, phone, *, type=OpportunityType.MANUAL, reason="manual", now=NOON, **kwargs):
    return create(session, customer(session, phone), type=type, reason=reason, now=now, **kwargs).opportunity


def _assign(session, opportunity, now=NOON):
    return assign(session, opportunity, now, TZ)


def test_daily_cap_follows_hours_idle_share_and_conversation_time(session, stores):
    seller = make_seller(session, "Ana", stores["sp"], hours="8", idle="0.30", minutes=15)
    assert daily_cap(seller) == 9  # 8 h * 60 * 0.30 / 15 = 9.6
    seller.avg_conversation_minutes = 0
    assert daily_cap(seller) == 0


def test_location_tiers_ddd_then_city_then_state_then_store_then_brand(session, stores):
    by_ddd = make_seller(session, "Dora", stores["rj"], ddds=["19"])
    by_city = make_seller(session, "Caio", stores["cps"], ddds=["99"])
    by_state = make_seller(session, "Sara", stores["sp"], ddds=["11"])
    phone = "+5519999990001"  # Campinas, SP
    assert _assign(session, _opportunity(session, phone)) == by_ddd

    by_ddd.active = False
    second = _opportunity(session, "+5519999990002")
    assert _assign(session, second) == by_city

    by_city.active = False
    assert _assign(session, _opportunity(session, "+5519999990003")) == by_state

    by_state.active = False
    branch_seller = make_seller(session, "Rita", stores["rj"], ddds=["21"])
    someone = customer(session, "+5571999990001")  # Salvador: nobody serves BA
    someone.store_id = stores["rj"].id
    assert _assign(session, create(session, someone, type=OpportunityType.MANUAL, reason="manual",
                                   now=NOON).opportunity) == branch_seller
    # No branch and nobody nearer: the whole brand.
    assert _assign(session, _opportunity(session, "+5571999990002")) == branch_seller


def test_portfolio_owner_gets_the_customer_whatever_the_location(session, stores):
    near = make_seller(session, "Perto", stores["sp"], ddds=["11"])
    owner = make_seller(session, "Dona", stores["rj"], ddds=["21"])
    buyer = customer(session, "+5511999990001")
    buyer.owner_seller_id = owner.id
    opportunity = create(session, buyer, type=OpportunityType.MANUAL, reason="manual", now=NOON).opportunity
    assert _assign(session, opportunity) == owner
    assert near.last_assigned_at is None


def test_inactive_owner_falls_back_to_location(session, stores):
    near = make_seller(session, "Perto", stores["sp"], ddds=["11"])
    owner = make_seller(session, "Saiu", stores["rj"], ddds=["21"], active=False)
    buyer = customer(session, "+5511999990001")
    buyer.owner_seller_id = owner.id
    opportunity = create(session, buyer, type=OpportunityType.MANUAL, reason="manual", now=NOON).opportunity
    # Nobody active owns the customer: location decides, and the new seller takes them into the portfolio.
    assert _assign(session, opportunity) == near
    assert buyer.owner_seller_id == near.id


def test_least_loaded_wins_and_ties_go_to_the_one_assigned_longest_ago(session, stores):
    first = make_seller(session, "Um", stores["sp"], ddds=["11"])
    second = make_seller(session, "Dois", stores["sp"], ddds=["11"])
    picks = [_assign(session, _opportunity(session, f"+55119999900{i:02d}"), NOON + timedelta(minutes=i))
             for i in range(4)]
    assert picks == [first, second, first, second]  # alternating: fewest open, then oldest assignment


def test_capacity_and_daily_cap_move_work_to_the_next_tier_then_backlog(session, stores):
    full = make_seller(session, "Cheia", stores["sp"], ddds=["11"], max_portfolio=1)
    capped = make_seller(session, "Limite", stores["cps"], ddds=["19"], hours="1", idle="0.5", minutes=15)  # cap 2
    assert daily_cap(capped) == 2
    results = [_assign(session, _opportunity(session, f"+55119999900{i:02d}")) for i in range(4)]
    assert results == [full, capped, capped, None]
    waiting = session.scalar(select(Opportunity).where(Opportunity.status == OpportunityStatus.BACKLOG))
    assert waiting is not None and waiting.seller_id is None


def test_daily_cap_resets_at_local_midnight(session, stores):
    seller = make_seller(session, "Noite", stores["sp"], ddds=["11"], hours="1", idle="0.25", minutes=15)  # cap 1
    late = NOON.replace(hour=2, minute=50)  # 23:50 the day before, in São Paulo
    assert _assign(session, _opportunity(session, "+5511999990001", now=late), late) == seller
    assert _assign(session, _opportunity(session, "+5511999990002", now=late), late) is None
    after_midnight = late + timedelta(minutes=20)  # 00:10 local
    assert local_midnight(after_midnight, TZ) == after_midnight.replace(hour=3, minute=0)
    backlog = assign_backlog_in_session(session, after_midnight)
    assert backlog == [seller.id]


def assign_backlog_in_session(session, now):
    waiting = session.scalars(select(Opportunity).where(Opportunity.status == OpportunityStatus.BACKLOG)).all()
    return [seller.id for seller in (assign(session, o, now, TZ) for o in waiting) if seller]


def test_quarantine_blocks_automatic_suggestions_but_not_a_request_for_a_person(session, stores):
    seller = make_seller(session, "Ana", stores["sp"], ddds=["11"])
    crm_settings(session).quarantine_days = 7
    buyer = customer(session, "+5511999990001")
    first = create(session, buyer, type=OpportunityType.BEHAVIOR, reason="cart_abandoned", now=NOON).opportunity
    _assign(session, first)
    move(session, first, OpportunityStatus.IN_PROGRESS, NOON, actor=seller)
    move(session, first, OpportunityStatus.FINISHED, NOON, actor=seller, result=OpportunityResult.NEUTRAL)

    three_days_later = NOON + timedelta(days=3)
    blocked = create(session, buyer, type=OpportunityType.SEGMENT, reason="campaign", campaign="Natal",
                     now=three_days_later)
    assert blocked.opportunity is None and blocked.skipped == "quarantine"
    asked = create(session, buyer, type=OpportunityType.BEHAVIOR, reason="asked_for_person", now=three_days_later)
    assert asked.created
    move(session, asked.opportunity, OpportunityStatus.FINISHED, three_days_later, result=OpportunityResult.NEUTRAL)
    later = create(session, buyer, type=OpportunityType.BEHAVIOR, reason="cart_abandoned",
                   now=NOON + timedelta(days=8))
    assert later.created


def test_opted_out_customer_gets_no_new_opportunity_unless_they_ask_for_a_person(session, stores):
    buyer = customer(session, "+5511999990001")
    buyer.opted_out_at = NOON
    made = create(session, buyer, type=OpportunityType.BEHAVIOR, reason="cart_abandoned", now=NOON)
    assert made.opportunity is None and made.skipped == "opted_out"
    for type, reason in ((OpportunityType.MANUAL, "manual"), (OpportunityType.SEGMENT, "campaign"),
                         (OpportunityType.CONTACT, "seller_contact")):
        refused = create(session, buyer, type=type, reason=reason, now=NOON)
        assert refused.opportunity is None and refused.skipped == "opted_out"
    # The shopper's own request for a person still reaches a seller.
    assert create(session, buyer, type=OpportunityType.BEHAVIOR, reason="asked_for_person", now=NOON).created


# --- deadlines by type and priority ---------------------------------------------------------------------------

def test_deadlines_follow_type_and_priority_counted_in_opening_hours(session, stores):
    crm_settings(session).deadline_hours = {"manual": {"high": 2, "normal": 30, "low": 100},
                                            "behavior": {"high": 3}}
    high = _opportunity(session, "+5511999990001", priority=3)
    assert high.deadline == NOON + timedelta(hours=2)  # Monday 12:00 + 2 open hours = 14:00
    # Monday 20:30 with 2 h: the default hours close at 21:00 and open Tuesday at 9:00 -> Tuesday 10:30.
    late = _opportunity(session, "+5511999990002", priority=3, now=NOON + timedelta(hours=8, minutes=30))
    assert late.deadline.astimezone(TZ).strftime("%a %H:%M") == "Tue 10:30"
    behavior = _opportunity(session, "+5511999990003", type=OpportunityType.BEHAVIOR, reason="cart_abandoned",
                            priority=3)
    assert behavior.deadline == NOON + timedelta(hours=3)
    # A cell not saved falls back to the default rule (behavior, normal: 8 open hours -> Monday 20:00).
    normal = _opportunity(session, "+5511999990004", type=OpportunityType.BEHAVIOR, reason="cart_abandoned")
    assert normal.deadline.astimezone(TZ).strftime("%a %H:%M") == "Mon 20:00"
    # A second source with a higher priority brings the nearer deadline of its own rule.
    merged = create(session, normal.customer, type=OpportunityType.MANUAL, reason="manual", now=NOON,
                    priority=3).opportunity
    assert merged.id == normal.id and merged.priority == 3 and merged.deadline == NOON + timedelta(hours=2)


def test_a_shopper_asking_for_a_person_is_due_in_minutes_not_days(session, stores):
    from crm.sources import from_handoff
    from models import HandoffRequest, HandoffStatus

    buyer = customer(session, "+5511999990005")
    request = HandoffRequest(customer_id=buyer.id, reason="asked_for_person", status=HandoffStatus.OPEN,
                             created_at=NOON)
    session.add(request)
    session.flush()
    opportunity = from_handoff(session, buyer, request, NOON, TZ)
    assert opportunity.deadline == NOON + timedelta(minutes=30)  # handoff_response_minutes, in opening hours


# --- a manager's reassignment --------------------------------------------------------------------------------

def test_reassignment_respects_the_target_capacity_and_records_who_did_it(session, stores):
    from crm.assignment import NoCapacity, reassign
    from tests.crm_helpers import make_user
    from models import Role

    ana = make_seller(session, "Ana", stores["sp"], ddds=["11"])
    full = make_seller(session, "Cris", stores["sp"], ddds=["11"], hours="1", idle="0.25", minutes=15)  # cap 1
    tiny = make_seller(session, "Duda", stores["sp"], ddds=["11"], max_portfolio=0)
    boss = make_user(session, "Gil", Role.MANAGER, stores["sp"])
    first = _opportunity(session, "+5511999990010")
    assert _assign(session, first).id == ana.id
    reassign(session, first, full.id, NOON, TZ, actor=boss)
    event = session.scalars(select(OpportunityEvent).where(OpportunityEvent.opportunity_id == first.id)
                            .order_by(OpportunityEvent.id.desc())).first()
    assert (event.kind, event.actor_id, event.from_seller_id, event.to_seller_id) == (
        "reassigned", boss.id, ana.id, full.id)
    assert first.seller_id == full.id and first.status is OpportunityStatus.ASSIGNED
    second = _opportunity(session, "+5511999990011")
    assert _assign(session, second).id == ana.id
    with pytest.raises(NoCapacity, match="1 de 1"):
        reassign(session, second, full.id, NOON, TZ, actor=boss)  # Cris's daily cap is used up
    with pytest.raises(NoCapacity, match="carteira"):
        reassign(session, second, tiny.id, NOON, TZ, actor=boss)
    assert second.seller_id == ana.id


def test_one_open_opportunity_per_customer_keeps_the_higher_priority(session, stores):
    buyer = customer(session, "+5511999990001")
    first = create(session, buyer, type=OpportunityType.MANUAL, reason="manual", now=NOON, priority=1)
    second = create(session, buyer, type=OpportunityType.BEHAVIOR, reason="cart_abandoned", now=NOON, priority=3)
    assert not second.created and second.opportunity.id == first.opportunity.id
    assert first.opportunity.priority == 3
    assert session.scalar(select(func.count()).select_from(Opportunity)) == 1
    kinds = [e.kind for e in first.opportunity.events]
    assert kinds == ["created", "merged"]


def test_every_change_is_an_event_with_who_when_from_and_to(session, stores):
    seller = make_seller(session, "Ana", stores["sp"], ddds=["11"])
    opportunity = _opportunity(session, "+5511999990001")
    _assign(session, opportunity)
    move(session, opportunity, OpportunityStatus.IN_PROGRESS, NOON + timedelta(minutes=5), actor=seller)
    move(session, opportunity, OpportunityStatus.FINISHED, NOON + timedelta(minutes=9), actor=seller,
         result=OpportunityResult.POSITIVE, note="comprou na loja")
    events = session.scalars(select(OpportunityEvent).where(OpportunityEvent.opportunity_id == opportunity.id)
                             .order_by(OpportunityEvent.id)).all()
    assert [(e.kind, e.from_status, e.to_status) for e in events] == [
        ("created", None, "backlog"), ("assigned", "backlog", "assigned"),
        ("status", "assigned", "in_progress"), ("status", "in_progress", "finished")]
    assert events[2].actor_id == seller.id and events[1].actor_id is None and events[1].to_seller_id == seller.id
    assert opportunity.result is OpportunityResult.POSITIVE and opportunity.result_note == "comprou na loja"


def test_finishing_needs_a_result_and_finished_is_final(session, stores):
    make_seller(session, "Ana", stores["sp"], ddds=["11"])
    opportunity = _opportunity(session, "+5511999990001")
    _assign(session, opportunity)
    from crm.opportunities import OpportunityError

    with pytest.raises(OpportunityError) as missing:
        move(session, opportunity, OpportunityStatus.FINISHED, NOON)
    assert missing.value.field == "result"
    move(session, opportunity, OpportunityStatus.FINISHED, NOON, result=OpportunityResult.NEGATIVE)
    with pytest.raises(OpportunityError):
        move(session, opportunity, OpportunityStatus.IN_PROGRESS, NOON)


def test_periodic_retry_assigns_the_backlog_once_a_seller_has_room(committed_db, settings):
    with committed_db.transaction() as session:
        store = make_store(session, "SP", city="São Paulo", state="SP", ddd="11")
        waiting = [_opportunity(session, f"+55119999900{i:02d}").id for i in range(3)]
    assert assign_backlog(committed_db, NOON, TZ) == {"considered": 3, "assigned": 0, "backlog": 3}
    with committed_db.transaction() as session:
        seller = make_seller(session, "Nova", session.merge(store), ddds=["11"])
        seller_id = seller.id
    assert assign_backlog(committed_db, NOON, TZ)["assigned"] == 3
    assert assign_backlog(committed_db, NOON, TZ) == {"considered": 0, "assigned": 0, "backlog": 0}
    with committed_db.session() as session:
        held = session.scalars(select(Opportunity.seller_id).where(Opportunity.id.in_(waiting))).all()
        assert held == [seller_id] * 3
