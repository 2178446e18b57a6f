from sqlalchemy import func, select

from decimal import Decimal

from core.security import hash_token
from recovery.config import load_settings
from models import ApiToken, CouponRule, Product, Role, Store, User
from models.demo import DEMO_PASSWORD


def test_demo_seed_loads_the_store_and_is_idempotent(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert "seeded" in result.output
    assert session.scalar(select(func.count()).select_from(Store)) == 3
    assert 45 <= session.scalar(select(func.count()).select_from(Product)) <= 60
    ddds = {d for u in session.scalars(select(User).where(User.role == Role.SELLER, User.active)) for d in u.region_ddds}
    assert {"11", "21", "31"} <= ddds
    assert session.scalar(select(Product).where(Product.name == "Tênis Corrida Preto")) is not None
    recovery = load_settings(session)
    assert recovery.enabled and recovery.delay_minutes == 10 and recovery.coupon_validity_hours == 24
    assert (recovery.frequency_count, recovery.frequency_unit.value) == (7, "days")
    rule = session.get(CouponRule, recovery.coupon_rule_id)
    assert rule.kind.value == "percent" and rule.value == Decimal("10")
    again = runner.invoke(args=["demo", "seed"])
    assert again.exit_code == 0 and "already seeded" in again.output
    assert session.scalar(select(func.count()).select_from(Store)) == 3


def test_demo_web_cart_abandoner_gets_the_approved_template_in_the_simulator(app, client, session, runtime):
    """`demo seed` maps a demo template and leaves a shopper with a web cart who never wrote: past the delay the
    recoverer sends her the template (outbox mode: stored for the simulator, never sent), and the simulator shows
    it once her number is typed there."""
    from datetime import timedelta

    from channel.sender import deliver
    from channel.ratelimit import RateLimiter
    from models import Customer, Message
    from models.demo import DEMO_ABANDONER
    from recovery.config import update_settings
    from recovery.tick import run_tick
    from models import utcnow

    assert app.test_cli_runner().invoke(args=["demo", "seed"]).exit_code == 0
    update_settings(session, {"quiet_start": "00:00", "quiet_end": "00:00"})  # whatever the hour the suite runs
    session.commit()
    assert run_tick(session, runtime, utcnow() + timedelta(minutes=11)).sent == 1
    carla = session.scalar(select(Customer).where(Customer.phone == DEMO_ABANDONER[0]))
    [message] = session.scalars(select(Message).where(Message.customer_id == carla.id))
    assert message.sent_as == "template" and message.content_variables["1"] == "Carla"
    assert message.body.startswith("Oi, Carla! Você deixou 1x Tênis Corrida Preto 40 (R$")
    assert deliver(session, runtime, None, RateLimiter(runtime.redis), message.id).outcome == "outbox"

    with client.session_transaction() as cookie:
        cookie["simulator_phones"] = [DEMO_ABANDONER[0]]
    shown = client.get("/simulator/messages", query_string={"phone": DEMO_ABANDONER[0]}).get_json()["messages"]
    assert [m["body"] for m in shown] == [message.body] and shown[0]["status"] == "outbox"


def test_demo_seed_refuses_real_data(app, session):
    session.add(Store(code="REAL", name="Loja de verdade"))
    session.commit()
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 1
    assert "recusada" in result.output
    assert session.scalar(select(func.count()).select_from(Product)) == 0


def test_users_create_and_token(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "Gerente@Loja.com", "--role", "manager", "--password-stdin"],
                           input="uma-senha-forte\n")
    assert result.exit_code == 0, result.output
    user = session.scalar(select(User).where(User.email == "gerente@loja.com"))
    assert user.role is Role.MANAGER
    assert user.password_hash and "uma-senha-forte" not in user.password_hash

    token_result = runner.invoke(args=["users", "token", "gerente@loja.com"])
    token = token_result.output.strip()
    assert token_result.exit_code == 0 and len(token) > 30
    stored = session.scalars(select(ApiToken)).all()
    assert [t.token_hash for t in stored] == [hash_token(token)]


def test_users_create_reports_bad_input(app, session):
    runner = app.test_cli_runner()
    bad_role = runner.invoke(args=["users", "create", "a@b.com", "--role", "king", "--password-stdin"], input="x" * 12)
    assert bad_role.exit_code != 0 and "role" in bad_role.output.lower()
    short = runner.invoke(args=["users", "create", "a@b.com", "--role", "seller", "--password-stdin"], input="curta\n")
    assert short.exit_code == 1 and "password" in short.output
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_demo_password_is_long_enough_for_the_console():
    assert len(DEMO_PASSWORD) >= 10


def test_users_password_and_revoke_end_sessions_and_tokens(app, session):
    from crm.users import live_session, start_session
    from models import utcnow

    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "create", "apoio@loja.com", "--role", "backoffice", "--password-stdin"],
                         input="uma-senha-forte\n").exit_code == 0
    user = session.scalar(select(User).where(User.email == "apoio@loja.com"))
    browser = start_session(session, user, utcnow(), ip="10.0.0.1", user_agent="teste")
    session.commit()
    token = runner.invoke(args=["users", "token", "apoio@loja.com"]).output.strip()
    reset = runner.invoke(args=["users", "password", "apoio@loja.com", "--password-stdin"], input="outra-senha-forte\n")
    assert reset.exit_code == 0, reset.output
    session.expire_all()
    assert live_session(session, browser, utcnow()) is None
    assert app.test_client().get("/api/opportunities", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    revoked = runner.invoke(args=["users", "revoke", "apoio@loja.com"])
    assert revoked.exit_code == 0 and "1 API token(s) revoked" in revoked.output
    assert app.test_client().get("/api/opportunities", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    unknown = runner.invoke(args=["users", "revoke", "ninguem@loja.com"])
    assert unknown.exit_code == 1 and "não encontrado" in unknown.output


def test_recovery_tick_refuses_an_instant_it_cannot_use(app):
    result = app.test_cli_runner().invoke(args=["recovery", "tick", "--now", "9999-12-31T23:59:59-23:59"])
    assert result.exit_code == 2 and "--now" in result.output and "Traceback" not in result.output
