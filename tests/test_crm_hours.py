"""The store's opening hours (crm.hours): open/closed, the next opening, deadlines counted in open time, the
pt-BR descriptions, validation; the settings page that edits them, the handoff deadline that follows them; and
the FAQ's example questions on the console form."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.handoff import request_handoff
from crm import hours as h
from crm.opportunities import crm_settings
from crm.users import create_user
from models import FaqEntry, Opportunity
from tests.crm_helpers import customer, make_store

TZ = ZoneInfo("America/Sao_Paulo")
PASSWORD = "uma-senha-bem-longa"
DEFAULT = h.OpeningHours.from_json(h.DEFAULT_HOURS)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in São Paulo, in the week of Monday 2026-11-23 (day 29 is a Sunday, 30 a Monday)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


# --- time arithmetic ------------------------------------------------------------------------------------------

def test_open_and_closed_across_the_night_and_sunday():
    assert h.is_open(DEFAULT, local(28, 9), TZ)  # Saturday opening minute
    assert h.is_open(DEFAULT, local(28, 20, 59), TZ)
    assert not h.is_open(DEFAULT, local(28, 21), TZ)  # closing time is closed
    assert not h.is_open(DEFAULT, local(29, 10), TZ)  # Sunday morning
    assert h.is_open(DEFAULT, local(29, 14, 30), TZ)
    assert not h.is_open(DEFAULT, local(30, 3), TZ)
    # The same instant given in UTC: 12:00 UTC is 09:00 in São Paulo.
    assert h.is_open(DEFAULT, datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc), TZ)
    assert not h.is_open(DEFAULT, datetime(2026, 11, 30, 11, 59, tzinfo=timezone.utc), TZ)


def test_next_opening():
    assert h.next_opening(DEFAULT, local(28, 22), TZ) == local(29, 14)  # Saturday night -> Sunday afternoon
    assert h.next_opening(DEFAULT, local(29, 23), TZ) == local(30, 9)  # Sunday night -> Monday morning
    assert h.next_opening(DEFAULT, local(29, 10), TZ) == local(29, 14)
    assert h.next_opening(DEFAULT, local(30, 10, 15), TZ) == local(30, 10, 15)  # open: now
    opening = h.next_opening(DEFAULT, datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc), TZ)
    assert opening == local(30, 9) and opening.utcoffset() == timedelta(hours=-3)
    closed = h.OpeningHours.from_json({day: [] for day in h.DAYS})
    assert h.next_opening(closed, local(30, 10), TZ) is None and not h.is_open(closed, local(30, 10), TZ)


def test_adding_open_minutes_skips_the_closed_time():
    assert h.add_open_minutes(DEFAULT, local(30, 10), 30, TZ) == local(30, 10, 30)
    assert h.add_open_minutes(DEFAULT, local(30, 20, 50), 30, TZ) == datetime(2026, 12, 1, 9, 20, tzinfo=TZ)
    assert h.add_open_minutes(DEFAULT, local(28, 20, 50), 30, TZ) == local(29, 14, 20)  # Saturday -> Sunday 14h
    assert h.add_open_minutes(DEFAULT, local(29, 23), 30, TZ) == local(30, 9, 30)
    assert h.add_open_minutes(DEFAULT, local(29, 3), 60 * 6 + 30, TZ) == local(30, 9, 30)  # all of Sunday's 6h
    assert h.add_open_minutes(DEFAULT, local(30, 10), 0, TZ) == local(30, 10)
    closed = h.OpeningHours.from_json({})
    assert h.add_open_minutes(closed, local(30, 10), 45, TZ) == local(30, 10, 45)


def test_time_arithmetic_is_real_elapsed_time_across_a_daylight_saving_change():
    # New York springs forward on 2026-03-08 at 02:00 (02:00 EST is 03:00 EDT).
    ny = ZoneInfo("America/New_York")
    always = h.OpeningHours.from_json({day: [["00:00", "23:59"]] for day in h.DAYS})
    start = datetime(2026, 3, 8, 1, 0, tzinfo=ny)
    end = h.add_open_minutes(always, start, 120, ny)
    assert end == datetime(2026, 3, 8, 4, 0, tzinfo=ny)
    assert end.astimezone(timezone.utc) - start.astimezone(timezone.utc) == timedelta(minutes=120)
    mornings = h.OpeningHours.from_json({"sun": [["09:00", "10:00"]]})
    assert h.next_opening(mornings, datetime(2026, 3, 8, 0, 30, tzinfo=ny), ny).utcoffset() == timedelta(hours=-4)


# --- words ----------------------------------------------------------------------------------------------------

def test_describe_groups_consecutive_days():
    assert h.describe(DEFAULT) == "segunda a sábado, das 9h às 21h; domingo, das 14h às 20h"
    split = h.OpeningHours.from_json({
        "mon": [["09:30", "12:00"], ["13:00", "18:00"]], "tue": [["09:30", "12:00"], ["13:00", "18:00"]],
        "wed": [], "thu": [["10:00", "19:00"]], "fri": [["10:00", "19:00"]], "sat": [["10:00", "19:00"]],
        "sun": []})
    assert h.describe(split) == ("segunda e terça, das 9h30 às 12h e das 13h às 18h; quinta a sábado, das 10h às 19h")
    assert h.describe(h.OpeningHours.from_json({"sun": [["01:00", "13:00"]]})) == "domingo, da 1h às 13h"


def _set(session, hours=None, minutes=30):
    settings = crm_settings(session)
    settings.opening_hours = hours
    settings.handoff_response_minutes = minutes
    session.flush()


def test_when_someone_answers(session):
    _set(session)
    assert h.when_someone_answers(session, local(30, 10), TZ) == "em até 30 minutos"
    _set(session, minutes=60)
    assert h.when_someone_answers(session, local(30, 10), TZ) == "em até 1 hora"
    _set(session, minutes=90)
    assert h.when_someone_answers(session, local(30, 10), TZ) == "em até 1h30"
    assert h.when_someone_answers(session, local(29, 10), TZ) == "hoje a partir das 14h"  # Sunday morning
    assert h.when_someone_answers(session, local(29, 23), TZ) == "amanhã (segunda) a partir das 9h"
    assert h.when_someone_answers(session, local(30, 3), TZ) == "hoje a partir das 9h"
    # Closed on Monday and Tuesday: on Sunday night the next person answers on Wednesday.
    _set(session, {**h.DEFAULT_HOURS, "mon": [], "tue": []})
    assert h.when_someone_answers(session, local(29, 23), TZ) == "na quarta a partir das 9h"
    _set(session, {"sat": [["10:30", "12:00"]]})
    assert h.when_someone_answers(session, local(28, 13), TZ) == "no próximo sábado a partir das 10h30"
    assert h.when_someone_answers(session, local(26, 13), TZ) == "no sábado a partir das 10h30"  # Thursday
    _set(session, {day: [] for day in h.DAYS})
    assert h.when_someone_answers(session, local(30, 10), TZ) == "assim que possível"


def test_stored_hours_fall_back_to_the_default(session):
    _set(session, None)
    assert h.store_hours(session) == DEFAULT
    _set(session, {"mon": [["21:00", "09:00"]]})  # written by hand, invalid: the default rather than nothing
    assert h.store_hours(session) == DEFAULT
    _set(session, {"mon": [["8:00", "12:00"]]})
    assert h.store_hours(session).to_json()["mon"] == [["08:00", "12:00"]]


# --- validation -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,field,words", [
    ({"mon": [["9h", "18:00"]]}, "mon", "HH:MM"),
    ({"tue": [["24:00", "23:00"]]}, "tue", "HH:MM"),
    ({"wed": [["18:00", "09:00"]]}, "wed", "depois da abertura"),  # across midnight is refused too
    ({"thu": [["10:00", "10:00"]]}, "thu", "depois da abertura"),
    ({"fri": [["09:00", "13:00"], ["12:00", "18:00"]]}, "fri", "sobrepor"),
    ({"sat": [["08:00", "09:00"], ["10:00", "11:00"], ["12:00", "13:00"], ["14:00", "15:00"]]}, "sat", "3 intervalos"),
    ({"sun": "14:00-20:00"}, "sun", "lista"),
    ({"sun": [["14:00"]]}, "sun", "abertura e fechamento"),
    ({"feriado": []}, "opening_hours", "dia desconhecido"),
    (["09:00", "18:00"], "opening_hours", "dia da semana"),
])
def test_validation_refuses_bad_hours(raw, field, words):
    with pytest.raises(h.HoursInvalid) as refused:
        h.validate(raw)
    assert list(refused.value.errors) == [field] and words in refused.value.errors[field]


def test_validation_normalises():
    clean = h.validate({"mon": [["13:00", "18:00"], ["8:00", "12:00"]], "sun": []})
    assert clean["mon"] == [["08:00", "12:00"], ["13:00", "18:00"]] and clean["tue"] == [] and list(clean) == list(h.DAYS)
    assert h.validate({"mon": [["09:00", "12:00"], ["12:00", "18:00"]]})["mon"] == [["09:00", "12:00"], ["12:00", "18:00"]]
    assert h.validate(h.DEFAULT_HOURS) == h.DEFAULT_HOURS


def _form(**changes) -> dict:
    form = {}
    for day, intervals in h.DEFAULT_HOURS.items():
        form[f"hours_{day}_open"] = "on"
        form[f"hours_{day}_opens"], form[f"hours_{day}_closes"] = intervals[0]
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_parse_form():
    assert h.parse_form(_form()) == h.DEFAULT_HOURS
    parsed = h.parse_form(_form(hours_sun_open=None, hours_mon_opens="8:30"))
    assert parsed["sun"] == [] and parsed["mon"] == [["08:30", "21:00"]]
    with pytest.raises(h.HoursInvalid) as refused:
        h.parse_form(_form(hours_mon_opens="25:00", hours_tue_closes="08:00", hours_wed_opens=""))
    assert refused.value.errors == {
        "hours_mon_opens": "hora inválida; use HH:MM, de 00:00 a 23:59",
        "hours_tue_closes": "o fechamento deve ser depois da abertura (no mesmo dia)",
        "hours_wed_opens": "informe a hora de abertura"}
    # A closed day's times are not looked at.
    assert h.parse_form(_form(hours_thu_open=None, hours_thu_opens="xx"))["thu"] == []


# --- the settings page ----------------------------------------------------------------------------------------

@pytest.fixture
def app(runtime):
    from app import create_app

    return create_app({"RUNTIME": runtime, "TESTING": True, "WTF_CSRF_ENABLED": False})


@pytest.fixture
def admin(session):
    sp = make_store(session, "SP", city="São Paulo", state="SP", ddd="11")
    user = create_user(session, email="admin@loja.example", role="admin", password=PASSWORD, store_id=sp.id)
    session.commit()
    return user


def _login(client, email="admin@loja.example"):
    response = client.post("/entrar", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302


def _rules(**changes) -> dict:
    return {"quarantine_days": "7", "recovery_followup_hours": "24", "attribution_days": "7",
            "default_deadline_hours": "48", "suggested_message": "Oi {{ nome }}!", "handoff_response_minutes": "45",
            **_form(**changes)}


def test_the_rules_page_shows_and_saves_the_hours(client, session, admin):
    _login(client)
    page = client.get("/gestao/configuracoes").get_data(as_text=True)
    assert "Horário de atendimento" in page and "Tempo de resposta de um vendedor (minutos)" in page
    assert "segunda a sábado, das 9h às 21h; domingo, das 14h às 20h" in page
    assert 'name="hours_mon_opens" type="time" value="09:00"' in page
    response = client.post("/gestao/configuracoes", data=_rules(hours_sun_open=None, hours_sat_closes="18:00"))
    assert response.status_code == 303
    session.expire_all()
    settings = crm_settings(session)
    assert settings.handoff_response_minutes == 45
    assert settings.opening_hours["sun"] == [] and settings.opening_hours["sat"] == [["09:00", "18:00"]]
    page = client.get("/gestao/configuracoes").get_data(as_text=True)
    assert "segunda a sexta, das 9h às 21h; sábado, das 9h às 18h" in page
    assert 'name="hours_sun_open" id="hours_sun_open" >' in page  # unchecked


@pytest.mark.parametrize("changes,field,message", [
    ({"hours_mon_opens": "9h"}, "hours_mon_opens", "hora inválida"),
    ({"hours_fri_closes": "08:00"}, "hours_fri_closes", "depois da abertura"),
    ({"hours_tue_closes": ""}, "hours_tue_closes", "informe a hora de fechamento"),
    ({"handoff_response_minutes": "4"}, "handoff_response_minutes", "entre 5 e 1440"),
    ({"handoff_response_minutes": "1441"}, "handoff_response_minutes", "entre 5 e 1440"),
])
def test_the_rules_page_refuses_bad_hours_and_saves_nothing(client, session, admin, changes, field, message):
    _login(client)
    response = client.post("/gestao/configuracoes", data=_rules(quarantine_days="3", hours_sun_open=None, **changes))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'id="{field}-error"' in page and message in page and "nada foi salvo" in page
    session.expire_all()
    settings = crm_settings(session)
    assert (settings.quarantine_days, settings.opening_hours, settings.handoff_response_minutes) == (7, None, 30)


def test_the_rules_page_is_the_brands(client, session, admin):
    create_user(session, email="ana@loja.example", role="seller", password=PASSWORD, store_id=admin.store_id)
    session.commit()
    _login(client, "ana@loja.example")
    assert client.post("/gestao/configuracoes", data=_rules()).status_code == 403
    session.expire_all()
    assert crm_settings(session).handoff_response_minutes == 30


# --- the handoff's deadline -----------------------------------------------------------------------------------

def test_a_handoff_on_sunday_night_is_due_monday_half_past_nine(session):
    crm_settings(session)
    shopper = customer(session, "+5511988887777", "Carla Dias")
    request, created = request_handoff(session, shopper, reason="asked_for_person",
                                       now=local(29, 23).astimezone(timezone.utc), tz=TZ)
    assert created
    opportunity = session.scalar(select(Opportunity).where(Opportunity.handoff_id == request.id))
    assert opportunity.deadline.astimezone(TZ) == local(30, 9, 30)


def test_a_handoff_is_due_after_the_configured_minutes_of_open_time(session):
    _set(session, minutes=90)
    for phone, asked, due in (("+5511988887778", local(30, 10), local(30, 11, 30)),
                              ("+5511988887779", local(30, 20), datetime(2026, 12, 1, 9, 30, tzinfo=TZ))):
        request, _ = request_handoff(session, customer(session, phone), reason="asked_for_person", now=asked, tz=TZ)
        opportunity = session.scalar(select(Opportunity).where(Opportunity.handoff_id == request.id))
        assert opportunity.deadline == due


# --- FAQ example questions ------------------------------------------------------------------------------------

def test_faq_examples_are_saved_and_refused_on_the_console_form(client, session, admin):
    _login(client)
    response = client.post("/console/robo/duvidas/nova", data={
        "title": "Frete", "keywords": "frete", "answer": "Grátis acima de R$ 199.", "active": "on",
        "examples": "vcs entregam em Manaus?\n\n  quanto tempo demora pra chegar?  \r\n"})
    assert response.status_code == 303
    entry = session.scalar(select(FaqEntry).where(FaqEntry.topic == "frete"))
    assert entry.examples == ["vcs entregam em Manaus?", "quanto tempo demora pra chegar?"]
    page = client.get(f"/console/robo/duvidas/{entry.id}").get_data(as_text=True)
    assert "Exemplos de perguntas (uma por linha)" in page
    assert "vcs entregam em Manaus?\nquanto tempo demora pra chegar?</textarea>" in page

    too_many = client.post(f"/console/robo/duvidas/{entry.id}", data={
        "title": "Frete", "answer": "Outra resposta.", "examples": "\n".join(f"pergunta {i}" for i in range(41))})
    too_long = client.post(f"/console/robo/duvidas/{entry.id}", data={
        "title": "Frete", "answer": "Outra resposta.", "examples": "ok\n" + "x" * 201})
    for refused, words in ((too_many, "no máximo 40"), (too_long, "até 200 caracteres")):
        page = refused.get_data(as_text=True)
        assert refused.status_code == 400 and 'id="examples-error"' in page and words in page
    session.expire_all()
    entry = session.get(FaqEntry, entry.id)
    assert entry.answer == "Grátis acima de R$ 199." and len(entry.examples) == 2  # nothing saved
    assert client.post(f"/console/robo/duvidas/{entry.id}", data={
        "title": "Frete", "answer": "Grátis.", "examples": "\n".join(f"pergunta {i}" for i in range(40))
    }).status_code == 303
    session.expire_all()
    assert len(session.get(FaqEntry, entry.id).examples) == 40


def test_the_demo_topics_come_with_example_questions(session):
    from models.demo import seed

    seed(session)
    entries = session.scalars(select(FaqEntry)).all()
    assert entries and all(3 <= len(entry.examples) <= 5 for entry in entries)
