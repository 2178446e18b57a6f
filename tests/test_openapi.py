"""GET /openapi.json: valid JSON, the documented paths, every $ref resolves, and real answers fit the schemas."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from core.security import hmac_sha256_hex
from crm.users import create_user, issue_api_token
from models import utcnow

PATHS = {
    "/webhooks/whatsapp": {"post"},
    "/webhooks/whatsapp/status": {"post"},
    "/webhooks/store/carts": {"post"},
    "/webhooks/store/orders": {"post"},
    "/api/coupons/validate": {"post"},
    "/api/recovery/settings": {"get", "put"},
    "/api/recovery/stats": {"get"},
    "/api/opportunities": {"get", "post"},
    "/api/opportunities/{id}": {"patch"},
    "/api/customers/{phone}": {"get"},
    "/healthz": {"get"},
}


@pytest.fixture
def doc(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return json.loads(response.data)


def resolve(doc: dict, ref: str) -> dict:
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def check(doc: dict, schema: dict, value, where: str = "$") -> None:
    """A small JSON-schema check for the keywords the document uses."""
    if "$ref" in schema:
        return check(doc, resolve(doc, schema["$ref"]), value, where)
    for sub in schema.get("allOf", []):
        check(doc, sub, value, where)
    if value is None:
        assert schema.get("nullable") or "type" not in schema, f"{where}: null not allowed"
        return
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    if kind:
        assert isinstance(value, types[kind]), f"{where}: expected {kind}, got {value!r}"
        if kind in ("integer", "number"):
            assert not isinstance(value, bool), f"{where}: bool is not a number"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if "pattern" in schema and isinstance(value, str):
        assert re.search(schema["pattern"], value), f"{where}: {value!r} !~ {schema['pattern']}"
    if "minimum" in schema:
        assert value >= schema["minimum"], where
    if "maximum" in schema:
        assert value <= schema["maximum"], where
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{where}: missing {key}"
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                check(doc, properties[key], item, f"{where}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                check(doc, schema["additionalProperties"], item, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                raise AssertionError(f"{where}: unexpected {key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            check(doc, schema["items"], item, f"{where}[{index}]")


def response_schema(doc: dict, path: str, method: str, status: int) -> dict:
    operation = doc["paths"][path][method]
    assert str(status) in operation["responses"], f"{method.upper()} {path} -> {status} is not documented"
    response = operation["responses"][str(status)]
    if "$ref" in response:
        response = resolve(doc, response["$ref"])
    return response["content"]["application/json"]["schema"]


def conforms(doc, path, method, response) -> None:
    schema = response_schema(doc, path, method, response.status_code)
    check(doc, schema, response.get_json())


# --- the document ------------------------------------------------------------------------------------------

def test_document_is_openapi_3_with_the_paths(doc):
    assert doc["openapi"].startswith("3.0")
    assert doc["info"]["title"] and doc["info"]["version"]
    for path, methods in PATHS.items():
        assert path in doc["paths"], path
        assert methods <= set(doc["paths"][path]), path


def test_every_ref_resolves(doc):
    refs = re.findall(r'"\$ref": "([^"]+)"', json.dumps(doc))
    assert refs
    for ref in refs:
        resolve(doc, ref)


def test_operations_document_their_errors_and_security(doc):
    bearer = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    for path in ("/api/recovery/settings", "/api/recovery/stats", "/api/opportunities", "/api/opportunities/{id}",
                 "/api/customers/{phone}"):
        for method, operation in doc["paths"][path].items():
            assert operation["security"] == [{"bearerAuth": []}]
            assert {"401", "403"} <= set(operation["responses"]), (path, method)
    assert doc["paths"]["/api/recovery/settings"]["put"]["responses"].keys() >= {"200", "400", "401", "403"}
    assert doc["paths"]["/api/recovery/stats"]["get"]["responses"].keys() >= {"200", "400"}
    assert doc["paths"]["/api/coupons/validate"]["post"]["responses"].keys() >= {"200", "400", "429"}
    for path in ("/webhooks/store/carts", "/webhooks/store/orders"):
        operation = doc["paths"][path]["post"]
        assert operation["responses"].keys() >= {"200", "400", "401"}
        [header] = operation["parameters"]
        assert header["name"] == "X-Store-Signature" and header["in"] == "header" and header["required"]
    for path in ("/webhooks/whatsapp", "/webhooks/whatsapp/status"):
        operation = doc["paths"][path]["post"]
        assert "application/x-www-form-urlencoded" in operation["requestBody"]["content"]
        assert operation["parameters"][0]["name"] == "X-Twilio-Signature"
        assert "403" in operation["responses"]


def test_the_event_schemas_follow_the_contract(doc):
    schemas = doc["components"]["schemas"]
    cart = {"event": "cart.updated", "id": "c-123", "customer": {"phone": "+5511999990001", "name": "Ana"},
            "items": [{"sku": "TS-01", "name": "Camiseta", "quantity": 1, "unit_price": "79.90"}],
            "total": "79.90", "currency": "BRL", "checkout_url": "https://loja.example/checkout/c-123",
            "updated_at": "2026-11-22T10:00:00-03:00"}
    check(doc, schemas["CartEvent"], cart)
    order = {"event": "order.paid", "id": "o-9", "customer": {"phone": "+5511999990001"}, "items": [],
             "total": "159.80", "currency": "BRL", "coupon_code": None, "seller_code": None,
             "created_at": "2026-11-22T10:00:00-03:00"}
    check(doc, schemas["OrderEvent"], order)
    with pytest.raises(AssertionError):
        check(doc, schemas["CartEvent"], {**cart, "total": 79.9})
    assert schemas["RecoverySettings"]["properties"]["delay_minutes"] == {
        "type": "integer", "minimum": 5, "maximum": 60,
        "description": schemas["RecoverySettings"]["properties"]["delay_minutes"]["description"]}


# --- real answers fit the document ------------------------------------------------------------------------

def test_api_answers_fit_the_schemas(client, session, doc):
    create_user(session, email="gerente@loja.example", role="manager", password="uma-senha-bem-longa")
    create_user(session, email="vendedor@loja.example", role="seller", password="uma-senha-bem-longa")
    manager = {"Authorization": f"Bearer {issue_api_token(session, 'gerente@loja.example')}"}
    seller = {"Authorization": f"Bearer {issue_api_token(session, 'vendedor@loja.example')}"}
    session.commit()

    conforms(doc, "/api/recovery/settings", "get", client.get("/api/recovery/settings", headers=manager))
    conforms(doc, "/api/recovery/settings", "get", client.get("/api/recovery/settings"))
    conforms(doc, "/api/recovery/settings", "get", client.get("/api/recovery/settings", headers=seller))
    conforms(doc, "/api/recovery/settings", "put",
             client.put("/api/recovery/settings", json={"delay_minutes": 20}, headers=manager))
    conforms(doc, "/api/recovery/settings", "put",
             client.put("/api/recovery/settings", json={"delay_minutes": 61}, headers=manager))
    conforms(doc, "/api/recovery/stats", "get", client.get("/api/recovery/stats", headers=manager))
    conforms(doc, "/api/recovery/stats", "get",
             client.get("/api/recovery/stats", query_string={"from": "x"}, headers=manager))
    conforms(doc, "/api/coupons/validate", "post",
             client.post("/api/coupons/validate", json={"code": "VOLTA-X", "phone": "+5511999990001",
                                                        "cart_total": "10.00"}))
    conforms(doc, "/api/coupons/validate", "post", client.post("/api/coupons/validate", json={"code": 1}))
    conforms(doc, "/healthz", "get", client.get("/healthz"))


def test_store_webhook_answers_fit_the_schemas(client, settings, doc):
    body = json.dumps({"event": "cart.updated", "id": "c-1", "customer": {"phone": "+5511999990001"}, "items": [],
                       "total": "0.00", "currency": "BRL",
                       "updated_at": (utcnow() - timedelta(minutes=5)).isoformat()}).encode()
    signed = {"X-Store-Signature": hmac_sha256_hex(settings.store_webhook_secret, body),
              "Content-Type": "application/json"}
    path = "/webhooks/store/carts"
    conforms(doc, path, "post", client.post(path, data=body, headers=signed))
    conforms(doc, path, "post", client.post(path, data=body, headers=signed))  # duplicate
    conforms(doc, path, "post", client.post(path, data=body, headers={"X-Store-Signature": "0" * 64}))
    bad = b'{"event": "cart.updated"}'
    conforms(doc, path, "post", client.post(path, data=bad, headers={
        "X-Store-Signature": hmac_sha256_hex(settings.store_webhook_secret, bad)}))
