"""The security promises, tried black-box: the real app under gunicorn (2 workers × 8 threads), over HTTP, with
CSRF on, as an attacker would. Each test starts its own server on the suite's database and Redis."""

from __future__ import annotations

import http.client
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from models import User
from tests.access_world import PASSWORD, PEOPLE, build_world
from tests.conftest import delete_prefixed
from tests.live_server import Gunicorn

pytestmark = pytest.mark.slow


@pytest.fixture
def world(committed_db):
    with committed_db.session() as session:
        return build_world(session)


@pytest.fixture
def server(committed_db, settings, redis_client, world, tmp_path):
    with Gunicorn(settings, tmp_path / "gunicorn.log") as live:
        live.world = world
        yield live
    delete_prefixed(redis_client, settings.redis_key_prefix)


def csrf_token(http_session: requests.Session, url: str) -> str:
    page = http_session.get(url, timeout=10).text
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"', page)
    return found.group(1) or found.group(2)


def login(server, kind=None, *, email=None, password=PASSWORD, headers=None):
    browser = requests.Session()
    if headers:
        browser.headers.update(headers)
    token = csrf_token(browser, server.url + "/entrar")
    response = browser.post(server.url + "/entrar", data={"csrf_token": token, "email": email or PEOPLE[kind][0],
                                                         "password": password}, allow_redirects=False, timeout=10)
    return browser, response


# --- 1. sign-in throttle --------------------------------------------------------------------------------------


def _attempts(server, email: str, passwords: list[str]) -> Counter:
    """Fire sign-in attempts in parallel, each with its own browser and form token, released together."""
    prepared = []
    for password in passwords:
        browser = requests.Session()
        prepared.append((browser, csrf_token(browser, server.url + "/entrar"), password))
    gate = threading.Barrier(len(prepared))

    def attempt(item):
        browser, token, password = item
        gate.wait(30)
        return browser.post(server.url + "/entrar", data={"csrf_token": token, "email": email, "password": password},
                            allow_redirects=False, timeout=60).status_code

    with ThreadPoolExecutor(len(prepared)) as pool:
        return Counter(pool.map(attempt, prepared))


def test_150_parallel_wrong_passwords_get_at_most_five_tries(server):
    outcome = _attempts(server, PEOPLE["admin"][0], ["senha-errada-123"] * 150)
    assert outcome[401] <= 5 and outcome[429] >= 145, outcome
    # The right password now is refused too, for this (e-mail, address): the lock holds.
    _, response = login(server, "admin")
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0


def test_a_right_password_among_39_wrong_ones_is_one_of_at_most_five_checked(server):
    outcome = _attempts(server, PEOPLE["brand_manager"][0], ["senha-errada-123"] * 39 + [PASSWORD])
    assert outcome[429] >= 35 and outcome[401] + outcome[302] <= 5, outcome


def test_one_address_trying_many_accounts_is_stopped(server):
    outcome = Counter()
    for n in range(25):
        _, response = login(server, email=f"ninguem{n}@acesso.loja", password="qualquer-coisa-1")
        outcome[response.status_code] += 1
    assert outcome[401] <= 20 and outcome[429] >= 5, outcome


# --- 2. the simulator is no signing oracle --------------------------------------------------------------------


def test_with_real_credentials_the_simulator_does_not_exist(committed_db, settings, world, tmp_path):
    env = {"APP_ENV": "development", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "x" * 32}
    with Gunicorn(settings, tmp_path / "g.log", env=env) as live:
        assert requests.get(live.url + "/simulator", timeout=10).status_code == 404
        signed = requests.post(live.url + "/simulator/sign", json={"params": {"From": "whatsapp:+5511999990001",
                                                                               "Body": "oi"}}, timeout=10)
        assert signed.status_code == 404 and "signature" not in signed.text
        read = requests.get(live.url + "/simulator/messages", params={"phone": "+5511999990001"}, timeout=10)
        assert read.status_code == 404 and "sou Ana" not in read.text


def test_in_outbox_mode_the_simulator_shows_only_its_own_shoppers(server):
    visitor = requests.Session()
    real = server.world.customers["own"].phone
    refused = visitor.post(server.url + "/simulator/sign", json={"params": {"From": f"whatsapp:{real}"}}, timeout=10)
    assert refused.status_code == 403
    peek = visitor.get(server.url + "/simulator/messages", params={"phone": real}, timeout=10)
    assert peek.status_code == 200 and peek.json()["messages"] == []
    own = visitor.post(server.url + "/simulator/sign", json={"params": {"From": "whatsapp:+5511955550000",
                                                                         "Body": "oi", "MessageSid": "SM" + "a" * 32}},
                       timeout=10)
    assert own.status_code == 200
    stranger = requests.Session()  # another browser: not its conversation
    assert stranger.get(server.url + "/simulator/messages", params={"phone": "+5511955550000"},
                        timeout=10).json()["messages"] == []


# --- 3. a branch manager stays in their branch ----------------------------------------------------------------


def test_a_branch_manager_stays_in_their_branch(server):
    world = server.world
    api = {"Authorization": f"Bearer {world.tokens['branch_manager']}"}
    assert requests.put(server.url + "/api/recovery/settings", json={"delay_minutes": 30}, headers=api,
                        timeout=10).status_code == 403
    other = world.customers["other"].phone
    assert requests.get(server.url + f"/api/customers/{other}", headers=api, timeout=10).status_code == 404
    backlog = world.opportunities["other_backlog"].id
    assert requests.patch(server.url + f"/api/opportunities/{backlog}", json={"seller_id": world.users["seller"].id},
                          headers=api, timeout=10).status_code == 404
    browser, response = login(server, "branch_manager")
    assert response.status_code == 302
    rules = browser.post(server.url + "/gestao/configuracoes",
                         data={"csrf_token": csrf_token(browser, server.url + "/gestao/vendedores"),
                               "quarantine_days": "1"}, allow_redirects=False, timeout=10)
    assert rules.status_code == 403


def test_the_user_a_branch_manager_creates_is_in_their_branch(server, committed_db):
    browser, _ = login(server, "branch_manager")
    browser.post(server.url + "/gestao/usuarios/novo", data={
        "csrf_token": csrf_token(browser, server.url + "/gestao/usuarios/novo"), "name": "Apoio Novo",
        "email": "apoio.novo@acesso.loja", "password": "uma-senha-bem-longa", "role": "backoffice", "store_id": ""},
        allow_redirects=False, timeout=10)
    with committed_db.session() as session:  # not brand-wide: a user without a branch would see every branch
        created = session.scalar(select(User).where(User.email == "apoio.novo@acesso.loja"))
        assert created is not None and created.store_id == server.world.stores["SP"].id


# --- 4. sessions end on the server ----------------------------------------------------------------------------


def _copy(browser: requests.Session) -> requests.Session:
    thief = requests.Session()
    thief.cookies.update(browser.cookies)
    thief.headers["User-Agent"] = browser.headers["User-Agent"]
    return thief


def _opens_console(browser, server) -> bool:
    response = browser.get(server.url + "/console/", allow_redirects=False, timeout=10)
    return response.status_code == 200


def test_a_cookie_copied_before_logout_opens_nothing_after_it(server):
    browser, _ = login(server, "admin")
    thief = _copy(browser)
    assert _opens_console(thief, server)
    token = csrf_token(browser, server.url + "/console/")
    assert browser.post(server.url + "/sair", data={"csrf_token": token}, allow_redirects=False,
                        timeout=10).status_code == 302
    assert not _opens_console(thief, server)


def test_a_password_change_ends_the_other_sessions(server):
    browser, _ = login(server, "brand_manager")
    other_device, _ = login(server, "brand_manager")
    changed = browser.post(server.url + "/conta/senha", data={
        "csrf_token": csrf_token(browser, server.url + "/conta/senha"), "current": PASSWORD,
        "new": "outra-senha-bem-longa", "repeat": "outra-senha-bem-longa"}, allow_redirects=False, timeout=10)
    assert changed.status_code == 303
    assert _opens_console(browser, server) and not _opens_console(other_device, server)


def test_deactivating_a_seller_ends_their_sessions(server):
    seller, _ = login(server, "seller")
    assert seller.get(server.url + "/vendedor/", allow_redirects=False, timeout=10).status_code == 200
    manager, _ = login(server, "branch_manager")
    target = server.world.users["seller"].id
    deactivated = manager.post(server.url + f"/gestao/vendedores/{target}/status", data={
        "csrf_token": csrf_token(manager, server.url + f"/gestao/vendedores/{target}"), "action": "deactivate",
        "to": "none", "confirmar": "1"}, allow_redirects=False, timeout=10)
    assert deactivated.status_code == 303
    assert seller.get(server.url + "/vendedor/", allow_redirects=False, timeout=10).status_code == 302


def test_strong_protection_ignores_a_forged_x_forwarded_for(server):
    """With TRUSTED_PROXIES=0 the session is bound to the real peer address: a stolen cookie replayed from another
    address does not get in by claiming the victim's address in X-Forwarded-For."""
    browser, _ = login(server, "admin")
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10, source_address=("127.0.0.2", 0))
    connection.request("GET", "/console/", headers={"Cookie": cookie, "X-Forwarded-For": "127.0.0.1",
                                                    "User-Agent": browser.headers["User-Agent"]})
    assert connection.getresponse().status == 302  # to the login page
    assert _opens_console(browser, server)  # the victim's own session is unaffected


# --- 5. templates cannot exhaust the server; 6. no cache of personal pages --------------------------------------


@pytest.mark.parametrize("source", [
    "{{ '%0300000000d'|format(1) }}", "{{ nome|center(200000000) }}", "{{ nome.ljust(200000000) }}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "{{ 9**9**9**9 }}",
])
def test_a_hostile_template_preview_answers_at_once_with_an_error(server, source):
    browser, _ = login(server, "admin")
    token = csrf_token(browser, server.url + "/console/recuperacao/mensagem")
    response = browser.post(server.url + "/console/recuperacao/previa", data={"csrf_token": token, "template": source},
                            timeout=10)
    assert response.status_code == 200 and response.json()["ok"] is False and response.json()["error"]
    assert len(response.content) < 10_000
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def test_personal_pages_and_answers_are_never_cached(server):
    browser, _ = login(server, "admin")
    for path in ("/console/", "/console/conversas", "/gestao/oportunidades", "/conta/senha"):
        assert browser.get(server.url + path, timeout=10).headers["Cache-Control"] == "no-store", path
    api = requests.get(server.url + "/api/opportunities",
                       headers={"Authorization": f"Bearer {server.world.tokens['admin']}"}, timeout=10)
    assert api.headers["Cache-Control"] == "no-store"
    assert "no-store" not in requests.get(server.url + "/static/app.css", timeout=10).headers.get("Cache-Control", "")
