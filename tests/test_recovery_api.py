"""The recoverer's JSON API: settings (roles, validation, partial update), stats parameters, coupon validation."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from crm.users import create_user, issue_api_token
from models import Coupon, CouponKind, CouponRule, Customer, RecoverySettings, utcnow
from recovery.config import FIELDS, load_settings

SETTINGS = "/api/recovery/settings"
STATS = "/api/recovery/stats"
VALIDATE = "/api/coupons/validate"
PHONE = "+5511999990001"


def token_for(session, role: str) -> str:
    email = f"{role}@loja.example"
    create_user(session, email=email, role=role, password="uma-senha-bem-longa")
    token = issue_api_token(session, email)
    session.commit()
    return token


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def manager(session) -> dict:
    return auth(token_for(session, "manager"))


# --- settings: authentication and roles --------------------------------------------------------------------

@pytest.mark.parametrize("method", ["get", "put"])
def test_settings_without_a_valid_token_is_401(client, session, method):
    call = getattr(client, method)
    for headers in ({}, {"Authorization": "Bearer wat_nope"}, {"Authorization": "Basic abc"}):
        response = call(SETTINGS, json={"delay_minutes": 20}, headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"] == "Unauthorized"
    assert session.get(RecoverySettings, 1) is None


@pytest.mark.parametrize("role", ["seller", "backoffice"])
def test_settings_are_forbidden_to_other_roles(client, session, role):
    headers = auth(token_for(session, role))
    assert client.get(SETTINGS, headers=headers).status_code == 403
    assert client.put(SETTINGS, json={"delay_minutes": 20}, headers=headers).status_code == 403
    assert session.get(RecoverySettings, 1) is None


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_admin_and_manager_read_the_settings(client, session, role):
    response = client.get(SETTINGS, headers=auth(token_for(session, role)))
    assert response.status_code == 200
    body = response.get_json()
    assert body["delay_minutes"] == 10 and body["enabled"] is False and body["frequency_unit"] == "days"
    assert body["attribution_days"] == 7 and "{{ nome }}" in body["template"]


# --- settings: updates -------------------------------------------------------------------------------------

def test_partial_update_changes_only_the_given_fields(client, session, manager):
    response = client.put(SETTINGS, json={"delay_minutes": 15}, headers=manager)
    assert response.status_code == 200
    body = response.get_json()
    assert body["delay_minutes"] == 15 and body["enabled"] is False and body["quiet_start"] == "21:00"

    response = client.put(SETTINGS, json={"enabled": True, "quiet_start": "22:30"}, headers=manager)
    body = response.get_json()
    assert body["delay_minutes"] == 15 and body["enabled"] is True and body["quiet_start"] == "22:30"
    assert client.get(SETTINGS, headers=manager).get_json() == body
    session.expire_all()
    assert load_settings(session).delay_minutes == 15


@pytest.mark.parametrize("delay", [4, 61, -1, "abc", None, True])
def test_out_of_range_delay_is_400_and_nothing_changes(client, session, manager, delay):
    client.put(SETTINGS, json={"delay_minutes": 20}, headers=manager)
    response = client.put(SETTINGS, json={"delay_minutes": delay, "enabled": True}, headers=manager)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid settings"
    assert list(body["fields"]) == ["delay_minutes"]
    after = client.get(SETTINGS, headers=manager).get_json()
    assert after["delay_minutes"] == 20 and after["enabled"] is False


def test_range_message_is_in_portuguese(client, manager):
    fields = client.put(SETTINGS, json={"delay_minutes": 61}, headers=manager).get_json()["fields"]
    assert fields == {"delay_minutes": "deve estar entre 5 e 60"}


def test_a_template_with_an_unknown_variable_is_refused_with_the_message(client, session, manager):
    response = client.put(SETTINGS, json={"template": "Oi {{ nme }}!"}, headers=manager)
    assert response.status_code == 400
    fields = response.get_json()["fields"]
    assert list(fields) == ["template"]
    assert "nme" in fields["template"] and "variável desconhecida" in fields["template"]
    assert session.get(RecoverySettings, 1) is None


@pytest.mark.parametrize("template", ["{{ 1/0 }}", "{% for i in range(10**9) %}x{% endfor %}"])
def test_a_template_that_crashes_is_a_field_error_not_a_500(client, session, manager, template):
    response = client.put(SETTINGS, json={"template": template, "delay_minutes": 30}, headers=manager)
    assert response.status_code == 400
    assert "template" in response.get_json()["fields"]
    assert session.get(RecoverySettings, 1) is None


def test_a_valid_template_is_saved(client, manager):
    template = "Oi, {{ nome }}! Seu carrinho na {{ loja }} espera por você: {{ link_checkout }}"
    response = client.put(SETTINGS, json={"template": template}, headers=manager)
    assert response.status_code == 200 and response.get_json()["template"] == template


def test_unknown_fields_and_several_errors_are_all_named(client, session, manager):
    response = client.put(SETTINGS, json={"delay": 10, "quiet_end": "25:00", "frequency_unit": "weeks"},
                          headers=manager)
    assert set(response.get_json()["fields"]) == {"delay", "quiet_end", "frequency_unit"}
    assert session.get(RecoverySettings, 1) is None


@pytest.mark.parametrize("data", [b"[]", b'"x"', b"{oops", b"", b"\xff"])
def test_a_body_that_is_not_a_json_object_is_400(client, manager, data):
    response = client.put(SETTINGS, data=data, headers={**manager, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert "body" in response.get_json()["fields"]


def test_coupon_rule_must_exist_and_be_active(client, session, manager):
    rule = CouponRule(name="off", kind=CouponKind.FIXED, value=Decimal("20"), active=False)
    session.add(rule)
    session.commit()
    fields = client.put(SETTINGS, json={"coupon_rule_id": rule.id}, headers=manager).get_json()["fields"]
    assert fields == {"coupon_rule_id": "regra de cupom desativada"}
    fields = client.put(SETTINGS, json={"coupon_rule_id": 99999}, headers=manager).get_json()["fields"]
    assert fields == {"coupon_rule_id": "regra de cupom não encontrada"}


# --- stats: access and parameters -------------------------------------------------------------------------

def test_stats_roles(client, session):
    assert client.get(STATS).status_code == 401
    assert client.get(STATS, headers=auth(token_for(session, "seller"))).status_code == 403
    for role in ("admin", "manager", "backoffice"):
        assert client.get(STATS, headers=auth(token_for(session, role))).status_code == 200


def test_stats_default_to_the_last_30_days(client, session, runtime):
    body = client.get(STATS, headers=auth(token_for(session, "backoffice"))).get_json()
    today = utcnow().astimezone(runtime.settings.store_timezone).date()
    assert body["to"] == today.isoformat()
    assert body["from"] == (today - timedelta(days=29)).isoformat()
    assert len(body["by_day"]) == 30
    assert body["totals"]["sent"] == 0 and body["totals"]["recovered_revenue"] == "0.00"


def test_stats_with_only_to_or_only_from(client, session, runtime):
    headers = auth(token_for(session, "admin"))
    body = client.get(STATS, query_string={"to": "2026-03-31"}, headers=headers).get_json()
    assert (body["from"], body["to"]) == ("2026-03-02", "2026-03-31")
    today = utcnow().astimezone(runtime.settings.store_timezone).date()
    body = client.get(STATS, query_string={"from": (today - timedelta(days=3)).isoformat()}, headers=headers).get_json()
    assert body["to"] == today.isoformat() and len(body["by_day"]) == 4


@pytest.mark.parametrize("params,field", [
    ({"from": "2026-13-01"}, "from"),
    ({"from": "ontem"}, "from"),
    ({"from": "2026-1-1", "to": "2026-01-31"}, "from"),
    ({"to": "2026-02-30"}, "to"),
    ({"to": "2026-02-03\n"}, "to"),
    ({"from": "2026-02-01T00:00:00", "to": "2026-02-02"}, "from"),
    ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
    ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),
    ({"to": "0001-01-01"}, "to"),  # found by schemathesis: the default `from` overflowed into a 500
    ({"from": "9999-12-31", "to": "9999-12-31"}, "from"),
])
def test_bad_stats_parameters_are_400_naming_the_parameter(client, session, params, field):
    response = client.get(STATS, query_string=params, headers=auth(token_for(session, "manager")))
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid parameters" and field in body["fields"]


def test_a_366_day_range_is_allowed(client, session):
    response = client.get(STATS, query_string={"from": "2024-01-01", "to": "2024-12-31"},
                          headers=auth(token_for(session, "manager")))
    assert response.status_code == 200 and len(response.get_json()["by_day"]) == 366


# --- coupon validation -------------------------------------------------------------------------------------

@pytest.fixture
def coupon(session) -> Coupon:
    customer = Customer(phone=PHONE, name="Ana", tags=[])
    rule = CouponRule(name="Recuperador 10%", kind=CouponKind.PERCENT, value=Decimal("10"), min_order=Decimal("0"))
    session.add_all([customer, rule])
    session.flush()
    coupon = Coupon(code="VOLTA-ABCDEFGHJK", rule_id=rule.id, customer_id=customer.id,
                    issued_at=utcnow() - timedelta(hours=1), expires_at=utcnow() + timedelta(hours=23))
    session.add(coupon)
    session.commit()
    return coupon


def validate(client, code="VOLTA-ABCDEFGHJK", phone=PHONE, cart_total="159.80", ip="10.0.0.1"):
    return client.post(VALIDATE, json={"code": code, "phone": phone, "cart_total": cart_total},
                       environ_base={"REMOTE_ADDR": ip})


def test_a_valid_coupon(client, coupon):
    response = validate(client)
    assert response.status_code == 200
    assert response.get_json() == {"valid": True, "discount": "15.98", "reason": "ok", "message": "10% de desconto",
                                   "free_shipping": False}


def test_code_and_phone_are_normalised(client, coupon):
    body = validate(client, code=" volta-abcdefghjk ", phone="whatsapp:+55 11 99999-0001").get_json()
    assert body["valid"] is True


def test_wrong_phone_looks_like_an_unknown_code(client, coupon):
    wrong = validate(client, phone="+5521988887777").get_json()
    unknown = validate(client, code="VOLTA-ZZZZZZZZZZ").get_json()
    assert wrong == unknown == {"valid": False, "discount": "0.00", "reason": "not_found",
                                "message": "cupom não encontrado", "free_shipping": False}


def test_expired_coupon(client, session, coupon):
    coupon.expires_at = utcnow() - timedelta(minutes=1)
    session.commit()
    body = validate(client).get_json()
    assert body["reason"] == "expired" and body["message"] == "cupom expirado"


def test_already_redeemed_coupon(client, session, coupon):
    coupon.redeemed_at = utcnow() - timedelta(minutes=5)
    session.commit()
    body = validate(client).get_json()
    assert body["valid"] is False and body["reason"] == "already_used" and body["message"] == "cupom já utilizado"


def test_minimum_order(client, session, coupon):
    coupon.rule.min_order = Decimal("200.00")
    session.commit()
    body = validate(client, cart_total="199.99").get_json()
    assert body["valid"] is False and body["reason"] == "below_minimum"
    assert "pedido mínimo" in body["message"] and "200,00" in body["message"]
    assert validate(client, cart_total="200.00").get_json()["valid"] is True


def test_the_rule_as_it_stands_now_applies(client, session, coupon):
    coupon.rule.value = Decimal("20")
    session.commit()
    assert validate(client).get_json()["discount"] == "31.96"
    coupon.rule.kind = CouponKind.FIXED
    coupon.rule.value = Decimal("25")
    session.commit()
    assert validate(client).get_json()["discount"] == "25.00"
    coupon.rule.kind = CouponKind.FREE_SHIPPING
    session.commit()
    assert validate(client).get_json() == {"valid": True, "discount": "0.00", "reason": "ok",
                                           "message": "frete grátis", "free_shipping": True}


def test_deactivated_rule(client, session, coupon):
    coupon.rule.active = False
    session.commit()
    body = validate(client).get_json()
    assert body["valid"] is False and body["reason"] == "disabled" and body["message"] == "cupom desativado pela loja"


@pytest.mark.parametrize("body,field", [
    ({"phone": PHONE, "cart_total": "10.00"}, "code"),
    ({"code": "", "phone": PHONE, "cart_total": "10.00"}, "code"),
    ({"code": 12, "phone": PHONE, "cart_total": "10.00"}, "code"),
    ({"code": "X" * 65, "phone": PHONE, "cart_total": "10.00"}, "code"),
    ({"code": "VOLTA-A", "cart_total": "10.00"}, "phone"),
    ({"code": "VOLTA-A", "phone": "123", "cart_total": "10.00"}, "phone"),
    ({"code": "VOLTA-A", "phone": 5511999990001, "cart_total": "10.00"}, "phone"),
    ({"code": "VOLTA-A", "phone": PHONE}, "cart_total"),
    ({"code": "VOLTA-A", "phone": PHONE, "cart_total": 10.0}, "cart_total"),
    ({"code": "VOLTA-A", "phone": PHONE, "cart_total": "-1.00"}, "cart_total"),
    ({"code": "VOLTA-A", "phone": PHONE, "cart_total": "10,00"}, "cart_total"),
    ({"code": "VOLTA-A", "phone": PHONE, "cart_total": "NaN"}, "cart_total"),
    ({"code": "VOLTA-A", "phone": PHONE, "cart_total": "10.00\n"}, "cart_total"),
    ({"code": "VOLTA-A", "phone": PHONE + " " * 40 + "x", "cart_total": "10.00"}, "phone"),
    (["VOLTA-A"], "body"),
])
def test_bad_fields_are_400_naming_the_field(client, body, field):
    response = client.post(VALIDATE, json=body)
    assert response.status_code == 400
    assert field in response.get_json()["fields"]


def test_unparseable_body_is_400(client):
    response = client.post(VALIDATE, data=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "body" in response.get_json()["fields"]


def test_coupon_validation_is_rate_limited_per_ip(client, runtime, coupon):
    for _ in range(60):
        assert validate(client, ip="10.0.0.7").status_code == 200
    response = validate(client, ip="10.0.0.7")
    assert response.status_code == 429
    assert response.get_json()["error"] == "too many requests" and response.headers["Retry-After"] == "60"
    # bad requests count too: a flood of garbage is still a flood
    assert client.post(VALIDATE, data=b"{", environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 429
    assert validate(client, ip="10.0.0.8").status_code == 200  # another client is not affected
    key = runtime.keys("rl", "coupon", "10.0.0.7")
    assert 0 < runtime.redis.ttl(key) <= 60


def test_the_rate_limit_window_expires(client, runtime, coupon):
    key = runtime.keys("rl", "coupon", "10.0.0.9")
    runtime.redis.set(key, 60, ex=60)
    assert validate(client, ip="10.0.0.9").status_code == 429
    runtime.redis.delete(key)
    assert validate(client, ip="10.0.0.9").status_code == 200


def test_a_counter_left_without_expiry_gets_one(client, runtime, coupon):
    key = runtime.keys("rl", "coupon", "10.0.0.10")
    runtime.redis.set(key, 5)
    assert validate(client, ip="10.0.0.10").status_code == 200
    assert 0 < runtime.redis.ttl(key) <= 60


def test_dates_are_plain_dates(client, session):
    # from == to: one day
    body = client.get(STATS, query_string={"from": "2026-11-10", "to": "2026-11-10"},
                      headers=auth(token_for(session, "manager"))).get_json()
    assert [d["date"] for d in body["by_day"]] == [date(2026, 11, 10).isoformat()]


@pytest.mark.parametrize("change,field", [
    ({"coupon_rule_id": 10**30}, "coupon_rule_id"),
    ({"variant_b_coupon_rule_id": 2**63}, "variant_b_coupon_rule_id"),
    ({"template": "Oi {{ nome }}\x00"}, "template"),
    ({"template": "Oi {{ nome }} \ud800"}, "template"),
    ({"coupon_url_pattern": "{shop}/{code}\x00"}, "coupon_url_pattern"),
])
def test_values_no_column_can_hold_are_400_not_500(client, session, manager, change, field):
    response = client.put(SETTINGS, data=json.dumps(change), headers={**manager, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == [field]
    assert session.get(RecoverySettings, 1) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from([*FIELDS, "x"]), json_values, max_size=4))
def test_settings_put_never_fails_with_a_server_error(client, manager, changes):
    response = client.put(SETTINGS, data=json.dumps(changes), headers={**manager, "Content-Type": "application/json"})
    assert response.status_code in (200, 400), response.data


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["code", "phone", "cart_total", "x"]), json_values, max_size=4),
       ip=st.integers(1, 250))
def test_coupon_validation_never_fails_with_a_server_error(client, body, ip):
    response = client.post(VALIDATE, data=json.dumps(body), headers={"Content-Type": "application/json"},
                           environ_base={"REMOTE_ADDR": f"10.1.0.{ip}"})
    assert response.status_code in (200, 400, 429), response.data
