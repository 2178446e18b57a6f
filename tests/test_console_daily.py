"""The console for daily use (issue 20): deferred attempts in the funnel, outbox mode said plainly, destructive
actions asked once with what will happen, and period days typed as dd/mm/aaaa."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import texts
from core.inputs import InputError, format_typed_day, parse_typed_day
from models import (
    AttemptStatus, BotText, Coupon, CouponKind, CouponRule, Customer, Opportunity, OpportunityStatus,
    OpportunityType, RecoveryAttempt, Store, User, utcnow,
)
from recovery.config import update_settings
from tests.crm_helpers import customer, make_seller
from tests.test_console_pages import app, login, people, text  # noqa: F401  (CSRF-free app, office users)


# --- dd/mm/aaaa ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed,expected", [
    ("31/01/2026", date(2026, 1, 31)), ("1/2/2026", date(2026, 2, 1)), (" 05/11/2026 ", date(2026, 11, 5)),
    ("05-11-2026", date(2026, 11, 5)), ("05.11.2026", date(2026, 11, 5)), ("05112026", date(2026, 11, 5)),
    ("2026-11-05", date(2026, 11, 5)), ("", None), (None, None),
])
def test_a_typed_day_is_read_as_dd_mm_aaaa_or_iso(typed, expected):
    assert parse_typed_day(typed, "de") == expected


@pytest.mark.parametrize("typed,message", [
    ("31/02/2026", "a data 31/02/2026 não existe no calendário"),
    ("11/31/2026", "a data 11/31/2026 não existe no calendário"),
    ("01/01/1999", "use uma data entre 01/01/2000 e 31/12/2100"),
    ("ontem", "use o formato dd/mm/aaaa, por exemplo 31/01/2026"),
    ("12/2026", "use o formato dd/mm/aaaa, por exemplo 31/01/2026"),
    ("１２/０１/２０２６", "use o formato dd/mm/aaaa, por exemplo 31/01/2026"),
    ("2026-13-40", "data inválida"),
])
def test_a_day_that_cannot_be_read_says_why_in_portuguese(typed, message):
    with pytest.raises(InputError) as refused:
        parse_typed_day(typed, "ate")
    assert refused.value.field == "ate" and refused.value.message == message


def test_the_form_shows_days_as_it_reads_them():
    day = date(2026, 3, 7)
    assert format_typed_day(day) == "07/03/2026" and parse_typed_day(format_typed_day(day), "de") == day


def test_the_period_form_is_text_with_the_format_and_accepts_typed_and_iso_days(client, people):  # noqa: F811
    login(client, "dona")
    page = text(client.get("/console/?de=10/11/2026&ate=11112026"))
    form = page.split('class="card period"')[1].split("</form>")[0]
    assert 'type="date"' not in form and form.count('placeholder="dd/mm/aaaa"') == 2
    assert form.count('inputmode="numeric"') == 2 and "(dd/mm/aaaa)" in form
    assert 'value="10/11/2026"' in form and 'value="11/11/2026"' in form
    bookmarked = text(client.get("/console/?de=2026-11-10&ate=2026-11-11"))
    assert 'value="10/11/2026"' in bookmarked and 'value="11/11/2026"' in bookmarked


@pytest.mark.parametrize("url", ["/console/", "/gestao/resultados"])
def test_a_bad_day_is_a_400_with_the_fields_error_never_a_500(client, people, url):  # noqa: F811
    login(client, "dona")
    refused = client.get(f"{url}?de=31/02/2026&ate=15/03/2026")
    page = text(refused)
    assert refused.status_code == 400 and "Período inválido" in page
    assert 'id="de-error">a data 31/02/2026 não existe no calendário<' in page
    assert 'id="de"' in page and 'value="31/02/2026"' in page and 'aria-invalid="true"' in page
    assert 'id="ate-error"' not in page
    backwards = text(client.get(f"{url}?de=15/03/2026&ate=01/03/2026"))
    assert 'id="ate-error">a data final deve ser igual ou posterior à inicial<' in backwards
    too_long = text(client.get(f"{url}?de=01/01/2024&ate=01/01/2026"))
    assert "o período pode ter no máximo 366 dias" in too_long


def test_the_sellers_results_read_typed_days_too(client, session, people):  # noqa: F811
    login(client, "ana")
    assert 'value="01/11/2026"' in text(client.get("/vendedor/resultados?de=01/11/2026&ate=30/11/2026"))
    assert client.get("/vendedor/resultados?de=99/99/2026").status_code == 400


# --- the funnel: deferred attempts, outbox mode ---------------------------------------------------------------


def _attempts(session):
    """Today: six came due; three sent, three put off by quiet hours until tomorrow 08:00 and 08:30 local."""
    now = utcnow()
    tomorrow_8 = (now + timedelta(days=1)).replace(hour=11, minute=0, second=0, microsecond=0)  # 08:00 in SP
    for i in range(6):
        shopper = customer(session, f"+55119888800{i:02d}", f"Cliente {i}")
        deferred = i >= 3
        session.add(RecoveryAttempt(
            customer_id=shopper.id, interaction_at=now - timedelta(hours=1, minutes=i), created_at=now,
            due_at=tomorrow_8 + timedelta(minutes=30 * (i - 3)) if deferred else now,
            status=AttemptStatus.DEFERRED if deferred else AttemptStatus.SKIPPED,
            skip_reason="quiet_hours" if deferred else "frequency"))
    session.commit()
    return tomorrow_8


def _funnel(page: str) -> dict[str, str]:
    table = page.split('id="funil"')[1].split("</table>")[0]
    return {step: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cells)).strip()
            for step, cells in re.findall(r'<tr data-step="([\w-]+)"[^>]*>(.*?)</tr>', table, re.S)}


def test_deferred_attempts_are_their_own_funnel_step_with_the_next_send_time(client, session, people):  # noqa: F811
    tomorrow_8 = _attempts(session)
    login(client, "dona")
    page = text(client.get("/console/"))
    steps = _funnel(page)
    assert list(steps)[:4] == ["tracked", "due", "deferred", "deferred-detail"]
    assert steps["due"].startswith("Prazo vencido 6")
    assert steps["deferred"] == "Adiadas 3 50,0% de prazo vencido"
    local = tomorrow_8.astimezone(ZoneInfo("America/Sao_Paulo"))
    assert steps["deferred-detail"].startswith("Horário de silêncio: 3.")
    assert f"Próximo envio previsto: <strong>{local:%d/%m/%Y} 08:00</strong>" in page  # the earliest of the three
    assert steps["sent"].startswith("Enviadas 0 0,0% de prazo vencido")


def test_the_stats_api_adds_the_deferred_attempts_and_keeps_its_fields(runtime, session, people):  # noqa: F811
    from recovery.stats import recovery_stats

    tomorrow_8 = _attempts(session)
    today = utcnow().astimezone(runtime.settings.store_timezone).date()
    stats = recovery_stats(session, start=today, end=today, tz=runtime.settings.store_timezone)
    assert stats["deferred"] == {"count": 3, "by_reason": {"quiet_hours": 3}, "next_at": tomorrow_8.isoformat()}
    assert stats["totals"]["deferred"] == 3 and stats["totals"]["attempts"] == 6
    assert {"from", "to", "timezone", "totals", "by_day", "by_variant", "coupons", "coupon_problems",
            "paths"} <= set(stats)


def test_outbox_mode_says_delivery_and_reading_cannot_be_measured(client, session, people):  # noqa: F811
    login(client, "dona")
    page = text(client.get("/console/"))  # the tests run without provider credentials: outbox mode
    assert "Entrega e leitura não podem ser medidas" in page
    steps = _funnel(page)
    assert steps["delivered"] == "Entregues não medido no modo de teste"
    assert steps["read"] == "Lidas não medido no modo de teste"
    assert "% de enviadas" not in page.split('id="funil"')[1].split("</table>")[0]


def test_with_a_provider_delivery_and_reading_are_counted(runtime, client, session, people, monkeypatch):  # noqa: F811
    rt = runtime
    monkeypatch.setattr(rt, "settings", dataclasses.replace(rt.settings, twilio_account_sid="AC" + "0" * 32,
                                                            twilio_auth_token="segredo"))
    assert not rt.settings.outbox_mode
    login(client, "dona")
    page = text(client.get("/console/"))
    steps = _funnel(page)
    assert "Entrega e leitura não podem ser medidas" not in page
    assert steps["delivered"].startswith("Entregues 0") and steps["read"].startswith("Lidas 0")


# --- asked once: deactivating a seller, restoring a bot text, disabling a coupon rule ----------------------------


@pytest.fixture
def portfolio(session, people):  # noqa: F811
    """Ana (São Paulo) with two customers and two open opportunities; Bia, a colleague who can receive them."""
    bia = make_seller(session, "Bia", session.get(Store, people["ana"].store_id))
    for i, status in enumerate((OpportunityStatus.ASSIGNED, OpportunityStatus.IN_PROGRESS)):
        buyer = customer(session, f"+55119777700{i:02d}", f"Compradora {i}")
        buyer.owner_seller_id = people["ana"].id
        session.add(Opportunity(customer_id=buyer.id, type=OpportunityType.MANUAL, reason="manual", status=status,
                                seller_id=people["ana"].id, deadline=utcnow() + timedelta(days=1)))
    session.commit()
    return {"ana": people["ana"], "bia": bia}


def test_deactivating_a_seller_asks_first_with_the_real_counts(client, session, portfolio):
    ana, bia = portfolio["ana"], portfolio["bia"]
    login(client, "dona")
    asked = client.post(f"/gestao/vendedores/{ana.id}/status", data={"action": "deactivate", "to": str(bia.id)})
    page = text(asked)
    assert asked.status_code == 200 and "Inativar Ana?" in page
    assert "2 clientes da carteira e 2 oportunidades abertas serão redistribuídos para Bia." in page
    assert 'name="confirmar" value="1"' in page and 'name="to" value="%d"' % bia.id in page
    session.expire_all()
    assert session.get(User, ana.id).active  # nothing happened yet

    done = client.post(f"/gestao/vendedores/{ana.id}/status",
                       data={"action": "deactivate", "to": str(bia.id), "confirmar": "1"})
    assert done.status_code == 303
    session.expire_all()
    assert not session.get(User, ana.id).active
    assert set(session.scalars(select(Customer.owner_seller_id).where(Customer.phone.like("+55119777700%")))) == {bia.id}


def test_the_question_says_where_the_work_goes_and_a_bad_destination_is_refused_first(client, session, portfolio):
    ana = portfolio["ana"]
    login(client, "dona")
    even = text(client.post(f"/gestao/vendedores/{ana.id}/status", data={"action": "deactivate", "to": "even"}))
    assert "serão redistribuídos entre os vendedores ativos da loja, de forma equilibrada (Bia)." in even
    back = text(client.post(f"/gestao/vendedores/{ana.id}/status", data={"action": "deactivate", "to": "none"}))
    assert "de volta à fila de atribuição" in back
    wrong = client.post(f"/gestao/vendedores/{ana.id}/status", data={"action": "deactivate", "to": "²"})
    assert wrong.status_code == 303  # back to the seller's page with the error, no question asked
    session.expire_all()
    assert session.get(User, ana.id).active
    seller_page = text(client.get(f"/gestao/vendedores/{ana.id}"))
    assert "Inativar vendedor…" in seller_page and "pede confirmação" in seller_page


def test_activating_again_needs_no_question(client, session, portfolio):
    ana = portfolio["ana"]
    ana.active = False
    session.commit()
    login(client, "dona")
    assert client.post(f"/gestao/vendedores/{ana.id}/status", data={"action": "activate"}).status_code == 303
    session.expire_all()
    assert session.get(User, ana.id).active


def test_restoring_a_bot_text_asks_first(client, session, people):  # noqa: F811
    login(client, "dona")
    assert client.post("/console/robo/textos/greeting", data={"body": "Oi {{ nome }}!\n{{ menu }}"}).status_code == 303
    asked = client.post("/console/robo/textos/greeting/restaurar")
    page = text(asked)
    assert asked.status_code == 200 and "Restaurar o texto original?" in page
    assert f"O texto personalizado de “{texts.description('greeting')}” é apagado" in page
    assert 'action="/console/robo/textos/greeting/restaurar"' in page and 'name="confirmar" value="1"' in page
    session.expire_all()
    assert session.get(BotText, "greeting") is not None
    assert client.post("/console/robo/textos/greeting/restaurar", data={"confirmar": "1"}).status_code == 303
    session.expire_all()
    assert session.get(BotText, "greeting") is None
    assert client.post("/console/robo/textos/nao_existe/restaurar").status_code == 404


def test_disabling_a_coupon_rule_asks_first_with_the_codes_that_stop_working(client, session, people):  # noqa: F811
    rule = CouponRule(name="Dez por cento", kind=CouponKind.PERCENT, value=10, min_order=0, active=True)
    session.add(rule)
    session.flush()
    update_settings(session, {"coupon_rule_id": rule.id})
    now = utcnow()
    for i, (expires, redeemed) in enumerate(((1, None), (2, None), (3, now), (-1, None))):
        buyer = customer(session, f"+55119666600{i:02d}")
        session.add(Coupon(code=f"VOLTA-TESTE{i}", rule_id=rule.id, customer_id=buyer.id, issued_at=now,
                           expires_at=now + timedelta(days=expires), redeemed_at=redeemed))
    session.commit()
    login(client, "dona")
    asked = client.post(f"/console/cupons/{rule.id}/status", data={"active": "0"})
    page = text(asked)
    assert asked.status_code == 200 and "Desativar a regra “Dez por cento”?" in page
    assert "2 cupons já enviados e ainda não usados deixam de valer" in page  # not the used nor the expired one
    assert "A recuperação usa esta regra na variante A" in page
    session.expire_all()
    assert session.get(CouponRule, rule.id).active
    assert client.post(f"/console/cupons/{rule.id}/status", data={"active": "0", "confirmar": "1"}).status_code == 303
    session.expire_all()
    assert not session.get(CouponRule, rule.id).active
    # Reactivating is not destructive: no question.
    assert client.post(f"/console/cupons/{rule.id}/status", data={"active": "1"}).status_code == 303
    session.expire_all()
    assert session.get(CouponRule, rule.id).active
    assert "Desativar…" in text(client.get("/console/cupons"))
