"""Issue 20, daily use of the seller app and the manager's opportunity pages: finishing notes shown again, "Iniciar
contato" that waits for WhatsApp, deadlines by type and priority on the rules page, the manager's opportunity
detail with reassignment, and an opt-out recorded by a person."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from crm.opportunities import create, crm_settings
from models import Customer, CustomerNote, Opportunity, OpportunityEvent, OpportunityStatus, OpportunityType, utcnow
from tests.crm_helpers import customer
from tests.test_crm_pages import _held, app, login, shop  # noqa: F401  (fixtures)


def _finish(client, opportunity_id, note):
    return client.post(f"/vendedor/oportunidades/{opportunity_id}/finalizar", data={"result": "neutral", "note": note})


# --- 8: the finishing note is shown again ----------------------------------------------------------------------

def test_finishing_note_shows_on_history_next_opportunity_and_manager_list(client, session, shop):
    first = _held(session, shop["ana"], "+5511999990001")
    login(client, "ana@loja.example")
    assert _finish(client, first.id, "Prefere ser chamada depois das 18h.").status_code == 303
    customer_id = first.customer_id

    page = client.get(f"/vendedor/clientes/{customer_id}").get_data(as_text=True)
    assert "Observação ao finalizar" in page and "Prefere ser chamada depois das 18h." in page
    assert "Ana" in page  # who wrote it

    second = _held(session, shop["ana"], "+5511999990001")
    assert second.id != first.id
    page = client.get(f"/vendedor/oportunidades/{second.id}").get_data(as_text=True)
    previous = page[page.index('id="previous-notes"'):]
    assert "Prefere ser chamada depois das 18h." in previous and "Neutro" in previous

    client.post("/sair")
    manager = client.application.test_client()
    login(manager, "gerente@loja.example")
    listing = manager.get("/gestao/oportunidades?status=finished").get_data(as_text=True)
    assert "Observação ao finalizar" in listing and "Prefere ser chamada depois das 18h." in listing


# --- 9: "Iniciar contato" waits for WhatsApp -------------------------------------------------------------------

def test_portfolio_contact_moves_to_in_progress_only_when_whatsapp_opens(client, session, shop):
    buyer = customer(session, "+5511999990003", "Davi")
    buyer.owner_seller_id = shop["ana"].id
    session.commit()
    login(client, "ana@loja.example")
    response = client.post(f"/vendedor/clientes/{buyer.id}/contato")
    opened = session.scalar(select(Opportunity).where(Opportunity.customer_id == buyer.id))
    assert response.status_code == 303 and response.location.endswith(f"/vendedor/oportunidades/{opened.id}")
    assert opened.status is OpportunityStatus.ASSIGNED and opened.started_at is None
    page = client.get(response.location).get_data(as_text=True)
    assert "Atribuída" in page and "Iniciar conversa no WhatsApp" in page
    # Clicking "Iniciar contato" again does not start it either, nor make a second opportunity.
    client.post(f"/vendedor/clientes/{buyer.id}/contato")
    session.expire_all()
    assert session.scalar(select(Opportunity.status).where(Opportunity.customer_id == buyer.id)) \
        is OpportunityStatus.ASSIGNED
    assert len(session.scalars(select(Opportunity).where(Opportunity.customer_id == buyer.id)).all()) == 1

    whatsapp = client.post(f"/vendedor/oportunidades/{opened.id}/iniciar", data={"message": "Oi Davi!"})
    assert whatsapp.status_code == 302 and whatsapp.location.startswith("https://wa.me/5511999990003")
    session.expire_all()
    started = session.get(Opportunity, opened.id)
    assert started.status is OpportunityStatus.IN_PROGRESS and started.started_at is not None


# --- 10: deadlines by type and priority, a manager setting ----------------------------------------------------

RULES = {"quarantine_days": "7", "recovery_followup_hours": "24", "attribution_days": "7",
         "suggested_message": "Oi {{ nome }}!"}


def _deadline_form(**changes):
    form = dict(RULES)
    for type_name in ("behavior", "segment", "manual", "contact"):
        for priority, hours in (("high", "4"), ("normal", "24"), ("low", "48")):
            form[f"deadline_{type_name}_{priority}"] = hours
    form.update(changes)
    return form


def test_rules_page_edits_deadlines_and_refuses_bad_values_by_field(client, session, shop):
    login(client, "admin@loja.example")
    page = client.get("/gestao/configuracoes").get_data(as_text=True)
    assert 'id="deadline_manual_high"' in page and "Prazos das oportunidades" in page
    assert 'id="deadline_behavior_high" name="deadline_behavior_high"' in page

    for bad in ("0", "721", "abc", "", "2.5", "9" * 30):
        response = client.post("/gestao/configuracoes", data=_deadline_form(deadline_manual_high=bad))
        body = response.get_data(as_text=True)
        assert response.status_code == 400, bad
        assert 'id="deadline_manual_high-error"' in body and "use um número inteiro de horas entre 1 e 720" in body
    session.expire_all()
    assert crm_settings(session).deadline_hours is None  # nothing saved

    assert client.post("/gestao/configuracoes", data=_deadline_form(deadline_manual_high="2")).status_code == 303
    session.expire_all()
    assert crm_settings(session).deadline_hours["manual"] == {"high": 2, "normal": 24, "low": 48}
    assert 'value="2"' in client.get("/gestao/configuracoes").get_data(as_text=True)

    # The saved rule applies: a high-priority manual opportunity created on a Monday at 12:00 is due at 14:00.
    from tests.crm_helpers import NOON
    made = create(session, customer(session, "+5511999990009"), type=OpportunityType.MANUAL, reason="manual",
                  now=NOON, priority=3).opportunity
    assert made.deadline == NOON + timedelta(hours=2)

    # An older form without the deadlines leaves them as they are.
    assert client.post("/gestao/configuracoes", data={**RULES, "default_deadline_hours": "48"}).status_code == 303
    session.expire_all()
    assert crm_settings(session).deadline_hours["manual"]["high"] == 2


# --- 11: the manager's opportunity detail and reassignment -----------------------------------------------------

def test_manager_opportunity_detail_shows_events_notes_and_reassigns(client, session, shop):
    held = _held(session, shop["ana"], "+5511999990001")
    session.add(CustomerNote(customer_id=held.customer_id, author_id=shop["bia"].id, kind="visita",
                             text="Passou na loja sábado.", created_at=utcnow()))
    session.commit()
    login(client, "gerente@loja.example")
    listing = client.get("/gestao/oportunidades").get_data(as_text=True)
    for name, label in (("status", "Status"), ("tipo", "Tipo"), ("vendedor", "Vendedor")):
        assert f'<label for="filter-{ {"status": "status", "tipo": "type", "vendedor": "seller"}[name]}">{label}</label>' in listing
    assert f'href="/gestao/oportunidades/{held.id}"' in listing

    page = client.get(f"/gestao/oportunidades/{held.id}").get_data(as_text=True)
    assert "Histórico da oportunidade" in page and "Criada" in page and "Atribuída" in page
    assert "Passou na loja sábado." in page
    assert f'href="/clientes/{held.customer_id}"' in page
    assert 'id="reassign-seller"' in page and "Bia" in page

    response = client.post(f"/gestao/oportunidades/{held.id}/reatribuir", data={"seller_id": str(shop["bia"].id)})
    assert response.status_code == 303
    session.expire_all()
    moved = session.get(Opportunity, held.id)
    assert moved.seller_id == shop["bia"].id
    event = session.scalars(select(OpportunityEvent).where(OpportunityEvent.opportunity_id == held.id)
                            .order_by(OpportunityEvent.id.desc())).first()
    assert (event.kind, event.actor_id, event.from_seller_id) == ("reassigned", shop["gerente"].id, shop["ana"].id)
    page = client.get(f"/gestao/oportunidades/{held.id}").get_data(as_text=True)
    assert "Reatribuída" in page and "<td>gerente</td>" in page

    # Capacity: Ana's daily cap set to 0 -> refused with the reason, nothing changes.
    ana = session.get(type(shop["ana"]), shop["ana"].id)
    ana.idle_share = Decimal("0")
    session.commit()
    refused = client.post(f"/gestao/oportunidades/{held.id}/reatribuir", data={"seller_id": str(ana.id)},
                          follow_redirects=True)
    assert "Não foi possível reatribuir" in refused.get_data(as_text=True) and "limitador de sugestões" in \
        refused.get_data(as_text=True)
    for junk in ("", "abc", "-1", "99999999", "1" * 40):
        assert client.post(f"/gestao/oportunidades/{held.id}/reatribuir", data={"seller_id": junk}).status_code == 303
    session.expire_all()
    assert session.get(Opportunity, held.id).seller_id == shop["bia"].id


def test_branch_manager_cannot_open_another_branch_opportunity(client, session, shop):
    from tests.crm_helpers import make_seller, make_store
    rj = make_store(session, "RJ", city="Rio de Janeiro", state="RJ", ddd="21")
    far = make_seller(session, "Rui", rj, ddds=["21"])
    theirs = _held(session, far, "+5521999990001")
    login(client, "gerente@loja.example")
    assert client.get(f"/gestao/oportunidades/{theirs.id}").status_code == 404
    assert client.post(f"/gestao/oportunidades/{theirs.id}/reatribuir",
                       data={"seller_id": str(shop["ana"].id)}).status_code == 404
    mine = _held(session, shop["ana"], "+5511999990002")
    client.post(f"/gestao/oportunidades/{mine.id}/reatribuir", data={"seller_id": str(far.id)})
    session.expire_all()
    assert session.get(Opportunity, mine.id).seller_id == shop["ana"].id  # another branch's seller: refused


# --- 13: an opt-out recorded by a person -----------------------------------------------------------------------

def test_seller_records_an_opt_out_that_stops_automation_and_new_opportunities(client, session, shop, runtime):
    buyer = customer(session, "+5511999990003", "Davi")
    buyer.owner_seller_id = shop["ana"].id
    session.commit()
    login(client, "ana@loja.example")
    page = client.get(f"/vendedor/clientes/{buyer.id}").get_data(as_text=True)
    assert "Registrar opt-out" in page
    response = client.post(f"/vendedor/clientes/{buyer.id}/opt-out", data={"detail": "Pediu por telefone."})
    assert response.status_code == 303
    session.expire_all()
    davi = session.get(Customer, buyer.id)
    assert davi.opted_out_at is not None
    note = session.scalar(select(CustomerNote).where(CustomerNote.customer_id == buyer.id))
    assert note.kind == "optout" and note.author_id == shop["ana"].id and "Pediu por telefone." in note.text
    page = client.get(f"/vendedor/clientes/{buyer.id}").get_data(as_text=True)
    assert 'id="opt-out-status"' in page and "Opt-out registrado por Ana" in page
    assert "Registrar opt-out" not in page and "Iniciar contato" not in page
    # Recorded once: a second post changes nothing.
    client.post(f"/vendedor/clientes/{buyer.id}/opt-out")
    assert len(session.scalars(select(CustomerNote).where(CustomerNote.customer_id == buyer.id)).all()) == 1

    # No new opportunity: neither the seller's contact nor an automatic or manual one.
    client.post(f"/vendedor/clientes/{buyer.id}/contato")
    assert session.scalar(select(Opportunity).where(Opportunity.customer_id == buyer.id)) is None
    for type, reason in ((OpportunityType.BEHAVIOR, "cart_abandoned"), (OpportunityType.MANUAL, "manual")):
        assert create(session, davi, type=type, reason=reason, now=utcnow()).skipped == "opted_out"

    # No automated message: the recoverer judges the customer opted out.
    from recovery import eligibility
    from recovery.config import load_settings
    from models import RecoveryAttempt, AttemptStatus
    attempt = RecoveryAttempt(customer_id=davi.id, status=AttemptStatus.CLAIMED, interaction_at=utcnow(),
                              due_at=utcnow())
    recovery_settings = load_settings(session)
    recovery_settings.enabled = True
    decision = eligibility.judge(session, recovery_settings, davi, attempt, utcnow(),
                                 runtime.settings.store_timezone)
    assert not decision.send and decision.reason == "opted_out"


def test_office_user_records_an_opt_out_from_the_clientes_contact_section(client, session, shop):
    buyer = customer(session, "+5511999990004", "Eva")
    buyer.store_id = shop["sp"].id
    session.commit()
    login(client, "gerente@loja.example")
    page = client.get(f"/clientes/{buyer.id}").get_data(as_text=True)
    contact = page[page.index('id="contato"'):]
    assert "Registrar opt-out" in contact and f'action="/vendedor/clientes/{buyer.id}/opt-out"' in contact
    response = client.post(f"/vendedor/clientes/{buyer.id}/opt-out", data={"voltar": "clientes"})
    assert response.status_code == 303 and response.location.endswith(f"/clientes/{buyer.id}#contato")
    page = client.get(f"/clientes/{buyer.id}").get_data(as_text=True)
    contact = page[page.index('id="contato"'):]
    assert "Pediu para não receber mensagens" in contact and "Opt-out" in contact
    assert "Opt-out registrado por gerente" in contact
    assert "Registrar opt-out" not in contact
