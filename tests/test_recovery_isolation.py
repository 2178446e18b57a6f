"""One shopper's bad data never stops the others: a template that fails for some shoppers fails their attempts only.

An outside test saved a variant that rendered for the sample but raised for a shopper without a cart: the whole
batch failed, RQ's retries failed the same way, and 62 attempts stayed `claimed` with nothing sent.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import AttemptStatus, RecoveryAttempt, RecoverySettings, utcnow
from recovery.config import SettingsInvalid, update_settings
from recovery.jobs import judging_dispatcher
from recovery.stats import recovery_stats
from recovery.tick import run_tick
from recovery.tracker import note_interaction
from tests.channel_helpers import run_jobs
from tests.recovery_helpers import AFTERNOON, enable_recovery, recovery_messages, shopper, with_cart

# Renders for the sample shopper (who has a cart), fails for one without: itens[0] does not exist.
FAILS_WITHOUT_CART = "Oi {{ nome }}! Você esqueceu {{ itens[0].nome }}. Finalize: {{ link_checkout }}"


def _store_template_bypassing_validation(session, template: str) -> None:
    """As a template saved before save-time validation existed would be."""
    row = session.get(RecoverySettings, 1)
    row.template = template
    session.commit()


def test_such_a_template_is_refused_at_save(session):
    enable_recovery(session)
    with pytest.raises(SettingsInvalid) as refused:
        update_settings(session, {"template": FAILS_WITHOUT_CART})
    assert "template" in refused.value.errors


@pytest.mark.parametrize("dispatch", ["inline", "jobs"])
def test_a_template_failing_for_some_shoppers_fails_only_their_attempts(runtime, session, dispatch):
    enable_recovery(session, delay_minutes=10, quiet_start="00:00", quiet_end="00:00")
    _store_template_bypassing_validation(session, FAILS_WITHOUT_CART)
    # The jobs judge at their own clock: the timeline is anchored at the real time.
    now = utcnow()
    wrote = now - timedelta(minutes=11)
    with_carts, without = [], []
    for i in range(62):
        customer = shopper(session, phone=f"+55119{i:08d}", name=f"Cliente {i}", last_inbound=wrote)
        if i % 2:
            with_cart(session, customer, at=wrote)
            with_carts.append(customer.id)
        else:
            without.append(customer.id)
        note_interaction(session, runtime, customer.id, wrote)
    if dispatch == "inline":
        summary = run_tick(session, runtime, now)
        assert summary.sent == len(with_carts) and summary.failed == {"template_error": len(without)}
    else:
        run_tick(session, runtime, now, dispatch=judging_dispatcher(runtime))
        run_jobs(runtime)
    session.expire_all()
    statuses = {a.customer_id: (a.status, a.skip_reason) for a in session.scalars(select(RecoveryAttempt))}
    assert all(statuses[c] == (AttemptStatus.SENT, None) for c in with_carts)
    assert all(statuses[c] == (AttemptStatus.FAILED, "template_error") for c in without)
    assert {m.customer_id for m in recovery_messages(session)} == set(with_carts)
    # No coupon was issued for a failed attempt, and the dashboard says why they were not sent.
    from models import Coupon

    assert {c.customer_id for c in session.scalars(select(Coupon))} == set(with_carts)
    day = now.astimezone(runtime.settings.store_timezone).date()
    totals = recovery_stats(session, start=day, end=day, tz=runtime.settings.store_timezone)["totals"]
    assert totals["errors"] == len(without) and totals["errors_by_reason"] == {"template_error": len(without)}


def test_an_unexpected_error_for_one_shopper_does_not_stop_the_batch(runtime, session, monkeypatch):
    enable_recovery(session, delay_minutes=10, quiet_start="00:00", quiet_end="00:00")
    customers = [shopper(session, phone=f"+55119{i:08d}", name=f"Cliente {i}") for i in range(5)]
    for c in customers:
        with_cart(session, c)
        note_interaction(session, runtime, c.id, AFTERNOON)
    import recovery.send

    real = recovery.send.build_variables
    broken = customers[2].id

    def flaky(**kwargs):
        if kwargs["name"] == "Cliente 2":
            raise ValueError("dado estranho deste cliente")
        return real(**kwargs)

    monkeypatch.setattr(recovery.send, "build_variables", flaky)
    summary = run_tick(session, runtime, AFTERNOON + timedelta(minutes=11))
    assert summary.sent == 4 and summary.failed == {"error": 1}
    attempt = session.scalar(select(RecoveryAttempt).where(RecoveryAttempt.customer_id == broken))
    assert attempt.status is AttemptStatus.FAILED


def test_a_database_outage_is_not_blamed_on_the_shopper(runtime, session, monkeypatch):
    """Infrastructure errors propagate (the batch is retried); no attempt is marked failed for them."""
    from sqlalchemy.exc import OperationalError

    enable_recovery(session, delay_minutes=10, quiet_start="00:00", quiet_end="00:00")
    customer = shopper(session)
    with_cart(session, customer)
    note_interaction(session, runtime, customer.id, AFTERNOON)
    import recovery.send

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(recovery.send.eligibility, "judge", down)
    with pytest.raises(OperationalError):
        run_tick(session, runtime, AFTERNOON + timedelta(minutes=11))
    session.rollback()
    attempt = session.scalar(select(RecoveryAttempt))
    assert attempt.status is AttemptStatus.CLAIMED  # handed out again by the next tick


def test_a_cart_of_two_hundred_products_still_gets_a_message_that_fits(runtime, session):
    from decimal import Decimal

    from models import CartItem

    enable_recovery(session, delay_minutes=10, quiet_start="00:00", quiet_end="00:00")
    customer = shopper(session)
    cart = with_cart(session, customer)
    cart.items = [CartItem(sku=f"SKU-{n}", name=f"Produto número {n}", quantity=1, unit_price=Decimal("10.00"))
                  for n in range(200)]
    cart.recompute_total()
    session.commit()
    note_interaction(session, runtime, customer.id, AFTERNOON)
    summary = run_tick(session, runtime, AFTERNOON + timedelta(minutes=11))
    assert summary.sent == 1, summary.as_json()
    [message] = recovery_messages(session)
    assert "e mais 190 itens" in message.body and len(message.body) < 1600
