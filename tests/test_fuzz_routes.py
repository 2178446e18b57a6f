"""Every route of the URL map, pages included, with hostile values in every parameter and form field, as every kind
of user: never a 500.

The parameter names are read from the views and templates themselves (``request.args.get("…")``,
``request.form.get("…")``, ``<input name="…">``), so a field added tomorrow is fuzzed tomorrow. Two passes: a
deterministic sweep (each name alone with each hostile value, on each route) as the users who reach the most
routes, and a hypothesis walk of random routes with random mixes of fields as every kind of user.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Request
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from werkzeug.datastructures import ImmutableMultiDict

from core.settings import PROJECT_ROOT
from tests.access_world import PASSWORD, PEOPLE, build_world

pytestmark = pytest.mark.slow

HOSTILE = [
    "²", "٣", "１２", "-1", "0", "00", "1.5", "1e309", "NaN", "inf", "9" * 30, "1" + "0" * 25,
    "1000000000000000000", str(2**31), str(2**63), "-" + str(2**63), "0x10", " 1 ", "1\n", "",
    " ", "\x00", "%00", "%", "'", '"', "\\", "<script>alert(1)</script>", "{{ 7*7 }}", "{% for x in range(9) %}",
    "a" * 5000, "../../etc/passwd", "+5511999990001", "[]", "{}", "null", "true", "on", "9999-12-31",
    "0001-01-01", "2026-02-30", "9999-12-31T23:59:59-23:59", "2026-12-01T18:00:00-03:00", "10**25",
    "😀" * 50, "\u202e", "ção", "none", "even", "deactivate", "activate", "positive", "admin", "manager",
]
JSON_HOSTILE = [None, True, False, 0, -1, 2**31, 2**63, -(2**63) - 1, 10**25, 1.5, 1e308, float("nan"), "", "²",
                "9999-12-31T23:59:59-23:59", "a" * 5000, [], {}, [1, 2], {"a": 1}, "\x00", "high", "finished"]
JSON_FIELDS = ["status", "result", "note", "seller_id", "priority", "deadline", "phone", "name", "type", "reason",
               "campaign", "message", "skus", "recommended_skus", "code", "cart_total", "enabled", "delay_minutes",
               "coupon_rule_id", "template", "quiet_start", "frequency_unit", "variant_b_percent"]
SKIPPED_ENDPOINTS = {"static", "auth.logout"}  # logout ends the walk's session; static files are Werkzeug's own


def _field_names() -> list[str]:
    names: set[str] = set()
    pattern = re.compile(r'request\.(?:args|form|files)(?:\.get)?[(\[]\s*"([a-z_]+)"|name="([a-z_]+)"')
    for path in [*Path(PROJECT_ROOT / "web").glob("*.py"), *Path(PROJECT_ROOT / "templates/pages").rglob("*.html")]:
        for args_name, input_name in pattern.findall(path.read_text()):
            names.add(args_name or input_name)
    names -= {"csrf_token", "viewport"}
    assert len(names) > 40, "the field names could not be read from the views"
    return sorted(names)


FIELDS = _field_names()
PATH_VALUES = {"customer_id": ["1", "2147483647"], "opportunity_id": ["1", "3"], "seller_id": ["1", "999"],
               "rule_id": ["1"], "entry_id": ["1"], "key": ["greeting", "nao-existe", "..%2f", "menu"],
               "phone": ["+5511999990001", "²", "a" * 300, "%2B55%2011", "1" * 40], "filename": ["app.css"]}


class _RecordingArgs(ImmutableMultiDict):
    """Query and form values that remember which names a view asked for."""

    read: set[str] = set()

    def get(self, key, default=None, type=None):  # noqa: A002 - Werkzeug's signature
        _RecordingArgs.read.add(key)
        return super().get(key, default, type)

    def __getitem__(self, key):
        _RecordingArgs.read.add(key)
        return super().__getitem__(key)

    def getlist(self, key, type=None):  # noqa: A002
        _RecordingArgs.read.add(key)
        return super().getlist(key, type)


class _RecordingRequest(Request):
    parameter_storage_class = _RecordingArgs


@pytest.fixture
def fuzz_app(runtime):
    from app import create_app

    app = create_app({"RUNTIME": runtime, "TESTING": True, "WTF_CSRF_ENABLED": False})
    app.request_class = _RecordingRequest
    return app


@pytest.fixture
def world(session):
    return build_world(session)


def _client(app, kind):
    client = app.test_client()
    if kind != "anonymous":
        response = client.post("/entrar", data={"email": PEOPLE[kind][0], "password": PASSWORD})
        assert response.status_code == 302
    return client


def _routes(app):
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED_ENDPOINTS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule, method))
    return out


def _urls(rule) -> list[str]:
    urls = [rule.rule]
    for name in re.findall(r"<(?:\w+:)?(\w+)>", rule.rule):
        urls = [re.sub(rf"<(?:\w+:)?{name}>", value, url, count=1) for url in urls for value in PATH_VALUES[name]]
    return urls


def _send(client, world, kind, rule, method, url, fields: dict, body=None):
    headers = {}
    if url.startswith("/api/") and kind != "anonymous":
        headers["Authorization"] = f"Bearer {world.tokens[kind]}"
    if method == "GET":
        return client.get(url, query_string=fields, headers=headers)
    if body is not None:
        return client.open(url, method=method, json=body, headers=headers)
    return client.open(url, method=method, data=fields, query_string=fields, headers=headers)


def _check(response, what):
    if response.status_code == 503 and response.request.path == "/healthz":
        return  # /healthz?strict=1 says 503 when the scheduler is not beating (none runs in this test)
    assert response.status_code < 500, (what, response.status_code, response.get_data(as_text=True)[:300])


@pytest.mark.parametrize("kind", ["admin", "seller"])
def test_each_field_alone_with_each_hostile_value_on_every_route(fuzz_app, world, kind):
    """Each route is probed to learn the names its view reads (with everything empty, then every field set); each
    name it reads, including names it only reads once another value passed, gets every hostile value alone."""
    client = _client(fuzz_app, kind)
    swept = 0
    for rule, method in _routes(fuzz_app):
        for url in _urls(rule):
            _RecordingArgs.read = set()
            _check(_send(client, world, kind, rule, method, url, {}), (method, url))
            _check(_send(client, world, kind, rule, method, url, dict.fromkeys(FIELDS, "1")), (method, url))
            todo, done = set(_RecordingArgs.read), set()
            while todo:
                name = todo.pop()
                done.add(name)
                for value in HOSTILE:
                    _RecordingArgs.read = set()
                    _check(_send(client, world, kind, rule, method, url, {name: value}), (method, url, name, value))
                    swept += 1
                    todo |= _RecordingArgs.read - done
        if rule.rule.startswith("/api/") and method in ("POST", "PUT", "PATCH"):
            for url in _urls(rule)[:1]:
                for name in JSON_FIELDS:
                    for value in JSON_HOSTILE:
                        _check(_send(client, world, kind, rule, method, url, {}, body={name: value}),
                               (method, url, name, value))
                        swept += 1
    assert swept > 1000  # the sweep reached the views' fields, not only their doors


field_values = st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(HOSTILE) | st.text(max_size=40),
                               max_size=8)
json_bodies = st.dictionaries(st.sampled_from(JSON_FIELDS), st.sampled_from(JSON_HOSTILE) | st.text(max_size=20),
                              max_size=6) | st.lists(st.sampled_from(JSON_HOSTILE), max_size=3)


@pytest.mark.parametrize("kind", ["anonymous", "admin", "brand_manager", "branch_manager", "brand_backoffice",
                                  "branch_backoffice", "seller"])
def test_random_routes_with_random_hostile_fields_as_every_kind_of_user(fuzz_app, world, kind):
    client = _client(fuzz_app, kind)
    routes = _routes(fuzz_app)

    @hsettings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(route=st.sampled_from(routes), fields=field_values, body=json_bodies, data=st.data())
    def walk(route, fields, body, data):
        rule, method = route
        url = data.draw(st.sampled_from(_urls(rule)))
        as_json = rule.rule.startswith("/api/") and method in ("POST", "PUT", "PATCH")
        _check(_send(client, world, kind, rule, method, url, fields, body=body if as_json else None),
               (method, url, fields))

    walk()
