"""Property tests of the two Twilio webhooks: whatever a (correctly signed) form holds, never a 5xx, and the
database agrees with the answer. Unsigned forms are always 403."""

from __future__ import annotations

import re
import string

from hypothesis import HealthCheck, event, example, given, settings as hsettings, strategies as st
from sqlalchemy import select

from channel.status import FAILURE_STATUSES
from models import Customer, Direction, Message, MessageStatus
from models.messaging import STATUS_RANK
from tests.channel_helpers import (
    INBOUND_PATH, STATUS_PATH, count, make_customer, new_sid, post_signed, signature,
)

FUZZ = hsettings(max_examples=150, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

KNOWN_FIELDS = {"MessageSid", "SmsMessageSid", "From", "To", "Body", "NumMedia", "ProfileName", "WaId"}
FIXED_SID = "SM" + "0" * 32  # shows up in many examples: redeliveries with different contents

chars = st.characters(codec="utf-8")
any_text = st.text(chars, max_size=40)


def missing_or(*strategies):
    return st.one_of(st.none(), *strategies)


sids = missing_or(
    any_text,
    st.uuids().map(lambda u: "SM" + u.hex),
    st.uuids().map(lambda u: "MM" + u.hex),
    st.just(FIXED_SID),
    st.sampled_from(["SM", "SM" + "a" * 15, "SM" + "a" * 63, " SM" + "b" * 32 + " \n", "sm" + "c" * 32,
                     "SM" + "d" * 30 + "-_", "SM" + "é" * 32]),
)
phones = missing_or(
    any_text,
    st.from_regex(r"\Awhatsapp:\+55[1-9][1-9]9[0-9]{8}\Z"),
    st.from_regex(r"\A(whatsapp:)?\+?[0-9 ()\-]{0,20}\Z"),
    st.sampled_from(["whatsapp:+5511999990001", "whatsapp:5521988887777", "whatsapp:+12125551234",
                     "whatsapp:+447911123456", "whatsapp:", "whatsapp:+", "+55", "whatsapp:+5511999990001\x00",
                     "whatsapp:+٥٥١١٩٩٩٩٩٠٠٠١", "tel:+5511999990001", "whatsapp:+5511999990001, +5521988887777"]),
)
bodies = missing_or(any_text, st.text(chars, min_size=4000, max_size=4200),
                    st.sampled_from(["SAIR", "VOLTAR", "parar", "", " ", "\x00", "😀" * 3]))


num_media = missing_or(
    st.integers(-3, 15).map(str),
    st.text(string.digits + " +-.", max_size=5),
    any_text,
    st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=3),  # '²', '①', '٣'...
    st.sampled_from(["0", "01", " 1 ", "10", "1e1", "0x1", "٣", "²", "1" * 5000]),
)
extra_fields = st.dictionaries(st.text(chars, min_size=1, max_size=15).filter(lambda k: k not in KNOWN_FIELDS),
                               any_text, max_size=3)


valid_sids = st.one_of(st.uuids().map(lambda u: "SM" + u.hex), st.just(FIXED_SID))
valid_phones = st.one_of(st.from_regex(r"\Awhatsapp:\+55[1-9][1-9]9[0-9]{8}\Z"),
                         st.sampled_from(["whatsapp:+12125551234", "whatsapp:+447911123456", "whatsapp:5521988887777"]))
valid_num_media = st.integers(0, 10).map(str)


@st.composite
def inbound_forms(draw):
    """Each field is usually plausible and sometimes garbage or missing, so both answers are well explored."""
    form = {}
    for name, plausible, garbage in (
        ("MessageSid", valid_sids, sids),
        ("From", valid_phones, phones),
        ("Body", bodies, bodies),
        ("NumMedia", valid_num_media, num_media),
        ("ProfileName", missing_or(any_text), st.text(chars, min_size=100, max_size=300)),
        ("To", st.just("whatsapp:+14155238886"), missing_or(any_text)),
        ("WaId", st.from_regex(r"\A[0-9]{8,15}\Z"), missing_or(any_text)),
    ):
        value = draw(plausible if draw(st.integers(0, 9)) < 7 else garbage)
        if value is not None:
            form[name] = value
    if draw(st.booleans()) and "MessageSid" in form:
        form["SmsMessageSid"] = form["MessageSid"]
    elif draw(st.integers(0, 9)) == 0:
        form["SmsMessageSid"] = draw(sids) or ""
    form.update(draw(extra_fields))
    return form


def _expected_sid(form):
    return (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()


@FUZZ
@given(form=inbound_forms())
@example(form={})
@example(form={"MessageSid": FIXED_SID, "From": "whatsapp:+5511999990001", "Body": "Oi"})
@example(form={"MessageSid": FIXED_SID, "From": "whatsapp:+5521988887777", "Body": "SAIR"})
@example(form={"MessageSid": new_sid(), "From": "whatsapp:+5511999990001", "NumMedia": "٣"})
def test_signed_inbound_form_is_200_or_400_and_the_database_agrees(client, settings, session, form):
    messages_before, customers_before = count(session, Message), count(session, Customer)
    response = post_signed(client, settings, INBOUND_PATH, form)
    assert response.status_code in (200, 400), (response.status_code, response.data[:300])
    event(f"inbound {response.status_code} {response.get_json()['field'] if response.status_code == 400 else ''}")
    if response.status_code == 400:
        assert response.get_json()["field"] in {"MessageSid", "From", "NumMedia"}
        assert count(session, Message) == messages_before
        assert count(session, Customer) == customers_before
        return
    assert response.mimetype == "text/xml"
    sid = _expected_sid(form)
    assert re.fullmatch(r"[A-Z]{2}[0-9A-Za-z]{16,62}", sid)
    stored = list(session.scalars(select(Message).where(Message.provider_sid == sid)))
    assert len(stored) == 1
    assert stored[0].direction is Direction.INBOUND and stored[0].status is MessageStatus.RECEIVED
    assert 0 <= stored[0].media_count <= 10
    assert re.fullmatch(r"\+[1-9][0-9]{6,14}", stored[0].customer.phone)
    assert count(session, Message) - messages_before in (0, 1)
    assert count(session, Customer) - customers_before in (0, 1)


@FUZZ
@given(value=st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=3))
@example(value="²")
def test_num_media_of_any_unicode_digits_is_never_500(client, settings, value):
    """Regression: str.isdigit() accepted '²' and int() then raised (500)."""
    form = {"MessageSid": new_sid(), "From": "whatsapp:+5511999990001", "Body": "", "NumMedia": value}
    assert post_signed(client, settings, INBOUND_PATH, form).status_code in (200, 400)


@FUZZ
@given(form=inbound_forms(), header=st.one_of(st.none(), st.text(st.characters(codec="ascii", exclude_categories=["Cc"]),
                                                                  max_size=40)))
def test_unsigned_or_badly_signed_inbound_form_is_always_403(client, settings, session, form, header):
    messages_before, customers_before = count(session, Message), count(session, Customer)
    headers = {} if header is None else {"X-Twilio-Signature": header}
    response = client.post(INBOUND_PATH, data=form, headers=headers)
    assert response.status_code == 403
    assert count(session, Message) == messages_before and count(session, Customer) == customers_before


@FUZZ
@given(form=inbound_forms(), key=st.sampled_from(["Body", "From", "MessageSid", "NumMedia", "Injected"]),
       value=any_text)
def test_any_change_after_signing_is_403(client, settings, session, form, key, value):
    good = signature(settings, INBOUND_PATH, form)
    tampered = {**form, key: value}
    if tampered == form:
        return
    messages_before = count(session, Message)
    response = client.post(INBOUND_PATH, data=tampered, headers={"X-Twilio-Signature": good})
    # Twilio's algorithm concatenates name+value pairs, so a few tamperings collide by design; anything else is 403.
    if response.status_code != 403:
        from twilio.request_validator import RequestValidator

        assert RequestValidator(settings.webhook_auth_token).compute_signature(
            settings.public_base_url + INBOUND_PATH, tampered) == good
    else:
        assert count(session, Message) == messages_before


# --- status callbacks --------------------------------------------------------------------------------

TRACKED = ["accepted", "queued", "sending", "sent", "delivered", "read", "failed", "undelivered"]
UNTRACKED = ["scheduled", "canceled", "partially_delivered", "receiving", "received"]
INTERNAL = {"pending", "unknown"}
statuses = st.one_of(st.sampled_from(TRACKED), st.sampled_from(TRACKED).map(str.upper), st.sampled_from(UNTRACKED),
                     st.sampled_from(sorted(INTERNAL)), any_text)


def _furthest(start, sequence):
    """The documented rule: progress only moves forward; failure is final and wins over progress short of delivery."""
    current = start
    for raw in sequence:
        value = raw.strip().lower()
        if value not in TRACKED or current in FAILURE_STATUSES:
            continue
        new = MessageStatus(value)
        if new in FAILURE_STATUSES:
            if STATUS_RANK[current] < STATUS_RANK[MessageStatus.DELIVERED]:
                current = new
        elif STATUS_RANK[new] > STATUS_RANK[current]:
            current = new
    return current


@FUZZ
@given(sequence=st.lists(statuses, min_size=1, max_size=8),
       error_code=st.one_of(st.none(), st.sampled_from(["30008", "63016", "21610", ""]), st.from_regex(r"\A[0-9]{1,6}\Z")))
def test_status_callbacks_in_any_order_end_at_the_furthest_status(client, settings, session, sequence, error_code):
    customer = session.scalar(select(Customer).where(Customer.phone == "+5511999990001")) or make_customer(session)
    sid = new_sid()
    message = Message(customer_id=customer.id, direction=Direction.OUTBOUND, kind="bot", body="x", provider_sid=sid,
                      status=MessageStatus.QUEUED)
    session.add(message)
    session.commit()
    seen = []
    for raw in sequence:
        form = {"MessageSid": sid, "MessageStatus": raw}
        if error_code is not None:
            form["ErrorCode"] = error_code
        response = post_signed(client, settings, STATUS_PATH, form)
        assert response.status_code in (200, 204, 400), (raw, response.status_code)
        value = raw.strip().lower()
        valid = value in TRACKED + UNTRACKED
        if value not in INTERNAL:  # the project's own statuses may be refused or ignored: never applied
            assert (response.status_code == 400) == (not valid), raw
        if valid:
            seen.append(raw)
    session.expire_all()
    stored = session.get(Message, message.id)
    assert stored.status is _furthest(MessageStatus.QUEUED, seen)
    if stored.status in FAILURE_STATUSES:
        assert stored.error_code == (error_code or None)
    else:
        assert stored.error_code is None


@FUZZ
@given(form=st.dictionaries(st.sampled_from(["MessageSid", "MessageStatus", "ErrorCode", "AccountSid", "X"]),
                            st.one_of(any_text, st.sampled_from(TRACKED + UNTRACKED)), max_size=5))
def test_signed_random_status_callback_is_never_5xx(client, settings, form):
    response = post_signed(client, settings, STATUS_PATH, form)
    assert response.status_code in (200, 204, 400)
