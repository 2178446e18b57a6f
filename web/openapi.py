"""GET /openapi.json: a hand-written OpenAPI 3.0 description of the JSON API and the webhooks.

Kept next to the code it describes: ranges come from the same constants the validators use.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from core import inputs
from core.inputs import MONEY_PATTERN
from models import TemplateStatus
from recovery import config, events, whatsapp_templates

bp = Blueprint("openapi", __name__)

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _int(bounds: tuple[int, int], description: str = "") -> dict:
    schema: dict[str, Any] = {"type": "integer", "minimum": bounds[0], "maximum": bounds[1]}
    if description:
        schema["description"] = description
    return schema


def _settings_properties() -> dict[str, dict]:
    hhmm = {"type": "string", "pattern": config.HHMM.pattern, "example": "21:00"}
    text = {"type": "string", "minLength": 1, "maxLength": 2000}
    return {
        "enabled": {"type": "boolean"},
        "delay_minutes": _int(config.DELAY_RANGE, "minutos sem interação até a mensagem de recuperação"),
        "coupon_rule_id": {"type": "integer", "nullable": True, "description": "regra de cupom ativa, ou null"},
        "coupon_validity_hours": _int(config.VALIDITY_RANGE),
        "frequency_count": _int(config.FREQUENCY_RANGE),
        "frequency_unit": {"type": "string", "enum": ["hours", "days"]},
        "coupon_use_pause_days": _int(config.PAUSE_RANGE),
        "template": {**text, "description": "texto Jinja (sandbox) da mensagem; variáveis desconhecidas são erro"},
        "quiet_start": hhmm,
        "quiet_end": hhmm,
        "variant_b_template": {**text, "nullable": True},
        "variant_b_coupon_rule_id": {"type": "integer", "nullable": True},
        "variant_b_percent": _int((0, 100)),
        "attribution_days": _int(config.ATTRIBUTION_RANGE),
        "max_age_hours": _int(config.MAX_AGE_RANGE),
        "coupon_url_pattern": {**text, "description": "precisa conter {code}; pode usar {shop}",
                               "example": "{shop}/cupom/{code}"},
        "whatsapp_template_id": {"type": "integer", "nullable": True,
                                 "description": "modelo aprovado (GET /api/whatsapp/templates) enviado à variante A "
                                                "fora da janela de 24 h, ou null"},
        "whatsapp_template_params": _template_params(),
        "variant_b_whatsapp_template_id": {"type": "integer", "nullable": True},
        "variant_b_whatsapp_template_params": _template_params(),
    }


def _template_params() -> dict:
    return {"type": "object", "maxProperties": 50,
            "additionalProperties": {"type": "string", "enum": list(whatsapp_templates.VARIABLES)},
            "description": "o que preenche cada marcador do modelo, por chave: {\"1\": \"nome\", \"2\": \"link\"}; "
                           "recusado se algum marcador ficar vazio para algum cliente",
            "example": {"1": "nome", "2": "itens", "3": "link"}}


def _metrics() -> dict:
    count = {"type": "integer", "minimum": 0}
    return {
        "type": "object",
        "required": ["attempts", "sent", "delivered", "read", "failed", "skipped", "skipped_by_reason", "errors",
                     "errors_by_reason", "deferred", "recovered_orders", "recovered_revenue", "conversion_rate", "coupons_issued",
                     "coupons_redeemed"],
        "properties": {
            "attempts": {**count, "description": "tentativas criadas no período"},
            "sent": {**count, "description": "mensagens enviadas no período"},
            "delivered": {**count, "description": "entregues (inclui lidas)"},
            "read": count,
            "failed": {**count, "description": "falhas e não entregues"},
            "skipped": count,
            "skipped_by_reason": {"type": "object", "additionalProperties": count},
            "errors": {**count, "description": "tentativas que não puderam ser montadas para o cliente (ex.: a "
                                                "mensagem falha com os dados dele)"},
            "errors_by_reason": {"type": "object", "additionalProperties": count},
            "deferred": count,
            "recovered_orders": {**count, "description": "pedidos (não cancelados) atribuídos às mensagens enviadas"},
            "recovered_revenue": {"type": "string", "pattern": MONEY_PATTERN, "example": "159.80"},
            "conversion_rate": {"type": "number", "minimum": 0, "description": "recovered_orders / sent, 4 casas"},
            "coupons_issued": count,
            "coupons_redeemed": count,
        },
    }


def _schemas() -> dict[str, dict]:
    money = {"type": "string", "pattern": MONEY_PATTERN, "description": "valor decimal como texto, com ponto",
             "example": "79.90"}
    nullable_text = {"type": "string", "nullable": True}
    moment = {"type": "string", "format": "date-time",
              "description": "ISO-8601 com fuso horário (sem fuso é erro), entre 2000 e 2099",
              "example": "2026-11-22T10:00:00-03:00"}
    settings_props = _settings_properties()
    return {
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
        },
        "FieldErrors": {
            "type": "object", "required": ["error", "fields"],
            "properties": {
                "error": {"type": "string", "example": "invalid body"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "campo (caminho com pontos, por exemplo items[0].unit_price) -> mensagem"},
            },
        },
        "TwilioFieldError": {
            "type": "object", "required": ["error", "field", "message"],
            "properties": {"error": {"type": "string"}, "field": {"type": "string"}, "message": {"type": "string"}},
        },
        "StoreCustomer": {
            "type": "object", "required": ["phone"],
            "properties": {
                "phone": {"type": "string", "maxLength": inputs.MAX_PHONE_TEXT, "example": "+5511999990001"},
                "name": {**nullable_text, "description": f"cortado em {inputs.MAX_CUSTOMER_NAME} caracteres"},
            },
        },
        "StoreItem": {
            "type": "object", "required": ["sku", "name", "quantity", "unit_price"],
            "properties": {
                "sku": {"type": "string", "minLength": 1, "maxLength": inputs.MAX_SKU},
                "name": {"type": "string", "minLength": 1},
                "quantity": {"type": "integer", "minimum": 1, "maximum": events.MAX_QUANTITY},
                "unit_price": money,
            },
        },
        "CartEvent": {
            "type": "object",
            "required": ["event", "id", "customer", "items", "total", "currency", "updated_at"],
            "description": "Campos desconhecidos são ignorados. Idempotente em (event, id, updated_at).",
            "properties": {
                "event": {"type": "string", "enum": list(events.CART_EVENTS)},
                "id": {"type": "string", "minLength": 1, "maxLength": inputs.MAX_EXTERNAL_ID},
                "customer": _ref("StoreCustomer"),
                "items": {"type": "array", "maxItems": events.MAX_ITEMS, "items": _ref("StoreItem")},
                "total": money,
                "currency": {"type": "string", "enum": list(events.CURRENCIES)},
                "checkout_url": {"type": "string", "nullable": True, "format": "uri", "maxLength": inputs.MAX_URL,
                                 "description": "http:// ou https://"},
                "updated_at": moment,
            },
        },
        "OrderEvent": {
            "type": "object",
            "required": ["event", "id", "customer", "items", "total", "currency", "created_at"],
            "description": "Campos desconhecidos são ignorados. Idempotente em (event, id, created_at). "
                           "O status nunca volta: created < paid; cancelled é final.",
            "properties": {
                "event": {"type": "string", "enum": list(events.ORDER_EVENTS)},
                "id": {"type": "string", "minLength": 1, "maxLength": inputs.MAX_EXTERNAL_ID},
                "customer": _ref("StoreCustomer"),
                "items": {"type": "array", "maxItems": events.MAX_ITEMS, "items": _ref("StoreItem")},
                "total": money,
                "currency": {"type": "string", "enum": list(events.CURRENCIES)},
                "coupon_code": {**nullable_text, "maxLength": inputs.MAX_COUPON_CODE},
                "seller_code": {**nullable_text, "maxLength": inputs.MAX_SELLER_CODE},
                "created_at": moment,
            },
        },
        "EventResult": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["applied", "duplicate", "ignored", "ok"]}},
        },
        "CouponCheck": {
            "type": "object", "required": ["code", "phone", "cart_total"],
            "properties": {
                "code": {"type": "string", "minLength": 1, "maxLength": inputs.MAX_COUPON_CODE, "example": "VOLTA-7K2M9QX4"},
                "phone": {"type": "string", "example": "+5511999990001"},
                "cart_total": money,
            },
        },
        "CouponVerdict": {
            "type": "object", "required": ["valid", "discount", "reason", "message", "free_shipping"],
            "properties": {
                "valid": {"type": "boolean"},
                "discount": {"type": "string", "pattern": MONEY_PATTERN},
                "reason": {"type": "string",
                           "enum": ["ok", "not_found", "already_used", "expired", "disabled", "below_minimum"],
                           "description": "código estável para programas"},
                "message": {"type": "string", "description": "explicação em português, por exemplo 'cupom expirado'"},
                "free_shipping": {"type": "boolean"},
            },
        },
        "RecoverySettings": {
            "type": "object", "required": list(settings_props), "properties": settings_props,
        },
        "RecoverySettingsChange": {
            "type": "object", "additionalProperties": False, "properties": settings_props,
            "description": "Só os campos a alterar. Tudo ou nada: com um campo inválido, nada é gravado.",
        },
        "WhatsAppTemplates": {
            "type": "object", "required": ["provider", "templates"],
            "properties": {
                "provider": {"type": "string", "enum": ["twilio", "meta"]},
                "templates": {"type": "array", "items": {
                    "type": "object",
                    "required": ["id", "provider", "external_id", "name", "language", "category", "status", "body",
                                 "placeholders", "buttons", "synced_at"],
                    "properties": {
                        "id": {"type": "integer"}, "provider": {"type": "string"},
                        "external_id": {"type": "string", "description": "ContentSid (Twilio) ou id do modelo (Meta)"},
                        "name": {"type": "string"}, "language": {"type": "string", "example": "pt_BR"},
                        "category": {"type": "string", "nullable": True, "example": "marketing"},
                        "status": {"type": "string", "enum": [s.value for s in TemplateStatus]},
                        "rejection_reason": {"type": "string", "nullable": True},
                        "header": {"type": "string", "nullable": True}, "body": {"type": "string"},
                        "footer": {"type": "string", "nullable": True},
                        "placeholders": {"type": "array", "items": {
                            "type": "object", "required": ["key", "name", "component"],
                            "properties": {"key": {"type": "string", "example": "1"}, "name": {"type": "string"},
                                           "component": {"type": "string", "enum": ["header", "body", "button"]}}}},
                        "buttons": {"type": "array", "items": {"type": "object"}},
                        "synced_at": {"type": "string", "format": "date-time"},
                    },
                }},
            },
        },
        "Metrics": _metrics(),
        "RecoveryStats": {
            "type": "object",
            "required": ["from", "to", "timezone", "totals", "by_day", "by_variant", "coupons", "coupon_problems",
                         "paths"],
            "properties": {
                "coupon_problems": {
                    "type": "object", "required": ["count", "by_problem", "orders"],
                    "description": "pedidos do período que usaram um cupom nosso indevidamente (já usado, expirado, "
                                   "desativado ou de outro cliente)",
                    "properties": {
                        "count": {"type": "integer", "minimum": 0},
                        "by_problem": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
                        "orders": {"type": "array", "items": {"type": "object", "properties": {
                            "order": {"type": "string"}, "coupon_code": {"type": "string"},
                            "problem": {"type": "string",
                                        "enum": ["already_used", "expired", "disabled", "wrong_customer"]},
                            "total": {"type": "string", "pattern": MONEY_PATTERN},
                            "placed_at": {"type": "string", "format": "date-time"}}}},
                    },
                },
                "paths": {
                    "type": "object", "required": ["text", "template", "marketing_limit", "blocked",
                                                   "blocked_by_reason"],
                    "description": "como as mensagens de recuperação do período saíram: texto livre (dentro da "
                                   "janela de 24 h) ou modelo aprovado (fora dela); recusadas pelo limite de "
                                   "marketing da Meta (131049); bloqueadas antes de sair, por motivo",
                    "properties": {
                        "text": {"type": "integer", "minimum": 0}, "template": {"type": "integer", "minimum": 0},
                        "marketing_limit": {"type": "integer", "minimum": 0},
                        "blocked": {"type": "integer", "minimum": 0},
                        "blocked_by_reason": {"type": "object",
                                              "additionalProperties": {"type": "integer", "minimum": 0}},
                    },
                },
                "deferred": {
                    "type": "object", "required": ["count", "by_reason", "next_at"],
                    "description": "tentativas do período esperando para sair agora (horário de silêncio, ou a "
                                   "plataforma da loja sem criar o cupom), por motivo, e o próximo envio previsto",
                    "properties": {
                        "count": {"type": "integer", "minimum": 0},
                        "by_reason": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
                        "next_at": {"type": "string", "format": "date-time", "nullable": True},
                    },
                },
                "from": {"type": "string", "format": "date"},
                "to": {"type": "string", "format": "date"},
                "timezone": {"type": "string", "example": "America/Sao_Paulo"},
                "totals": _ref("Metrics"),
                "by_day": {"type": "array", "items": {"allOf": [
                    _ref("Metrics"),
                    {"type": "object", "required": ["date"],
                     "properties": {"date": {"type": "string", "format": "date"}}},
                ]}},
                "by_variant": {"type": "object", "required": ["A", "B"],
                               "properties": {"A": _ref("Metrics"), "B": _ref("Metrics")}},
                "coupons": {"type": "array", "items": {
                    "type": "object", "required": ["rule_id", "rule_name", "issued", "redeemed"],
                    "properties": {
                        "rule_id": {"type": "integer"},
                        "rule_name": {"type": "string", "nullable": True},
                        "issued": {"type": "integer", "minimum": 0},
                        "redeemed": {"type": "integer", "minimum": 0},
                    },
                }},
            },
        },
        "Health": {
            "type": "object", "required": ["db", "redis", "scheduler", "status", "degraded"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"],
                           "description": "degraded: algo em `degraded` falhou; monitoração deve alertar"},
                "degraded": {"type": "array", "items": {"type": "string",
                                                        "enum": ["db", "redis", "scheduler", "recovery_tick"]}},
                "db": {"type": "string", "enum": ["ok", "down"]},
                "redis": {"type": "string", "enum": ["ok", "down"]},
                "scheduler": {"type": "object", "properties": {
                    "last_seen": {"type": "string", "nullable": True}, "last_tick": {"type": "string", "nullable": True},
                    "ok": {"type": "boolean"}, "stale_after_seconds": {"type": "integer"}}},
                "mode": {"type": "string", "enum": ["outbox", "twilio"]},
            },
        },
    }


def _twilio_form(fields: dict[str, dict], required: list[str]) -> dict:
    return {"required": True, "content": {"application/x-www-form-urlencoded": {
        "schema": {"type": "object", "required": required, "properties": fields}}}}


def _responses() -> dict[str, dict]:
    return {
        "BadBody": _json(_ref("FieldErrors"), "corpo ou parâmetros inválidos; `fields` nomeia cada campo"),
        "Unauthorized": _json(_ref("Error"), "token ausente ou inválido"),
        "Forbidden": _json(_ref("Error"), "o papel do usuário não permite este recurso"),
        "BadSignature": _json(_ref("Error"), "assinatura ausente ou inválida"),
        "TooManyRequests": {**_json(_ref("Error"), "limite de consultas por IP excedido (60 por minuto)"),
                            "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
    }


def _crm_schemas() -> dict[str, dict]:
    text = {"type": "string"}
    nullable_text = {"type": "string", "nullable": True}
    moment = {"type": "string", "format": "date-time", "nullable": True}
    return {
        "Opportunity": {"type": "object", "properties": {
            "id": {"type": "integer"},
            "type": {"type": "string", "enum": ["behavior", "segment", "manual", "contact"]},
            "reason": text,
            "status": {"type": "string", "enum": ["backlog", "assigned", "in_progress", "finished"]},
            "priority": {"type": "string", "enum": ["low", "normal", "high"]},
            "customer": {"type": "object", "properties": {"id": {"type": "integer"}, "phone": text,
                                                          "name": nullable_text}},
            "seller_id": {"type": "integer", "nullable": True}, "seller_code": nullable_text,
            "campaign": nullable_text, "message": nullable_text,
            "recommended_skus": {"type": "array", "items": text},
            "deadline": moment, "result": {"type": "string", "nullable": True,
                                           "enum": ["positive", "neutral", "negative", None]},
            "result_note": nullable_text, "created_at": moment, "assigned_at": moment, "started_at": moment,
            "finished_at": moment}},
        "OpportunityInput": {"type": "object", "required": ["phone"], "additionalProperties": False, "properties": {
            "phone": {"type": "string", "description": "E.164 ou formato brasileiro"},
            "name": {"type": "string", "maxLength": 120},
            "type": {"type": "string", "enum": ["manual", "segment", "behavior"], "default": "manual"},
            "reason": {"type": "string", "maxLength": 40, "description": "obrigatório para behavior"},
            "campaign": {"type": "string", "maxLength": 120, "description": "obrigatório para segment"},
            "message": {"type": "string", "maxLength": 2000, "description": "template Jinja (sandbox)"},
            "deadline": {"type": "string", "format": "date-time", "description": "ISO 8601 com fuso, futuro"},
            "priority": {"type": "string", "enum": ["low", "normal", "high"], "default": "normal"},
            "recommended_skus": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 64}}}},
        "OpportunityChange": {"type": "object", "additionalProperties": False, "properties": {
            "status": {"type": "string", "enum": ["backlog", "in_progress", "finished"]},
            "result": {"type": "string", "enum": ["positive", "neutral", "negative"]},
            "note": {"type": "string", "maxLength": 2000},
            "seller_id": {"type": "integer", "description": "gestores: reatribuir"},
            "priority": {"type": "string", "enum": ["low", "normal", "high"]},
            "deadline": {"type": "string", "format": "date-time"}}},
        "OpportunityPage": {"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("Opportunity")}, "page": {"type": "integer"},
            "has_more": {"type": "boolean"}}},
        "OpportunitiesCreated": {"type": "object", "properties": {
            "created": {"type": "array", "items": _ref("Opportunity")},
            "merged": {"type": "array", "items": {"type": "object"}},
            "skipped": {"type": "array", "items": {"type": "object"}}}},
        "Customer360": {"type": "object", "properties": {
            "id": {"type": "integer"}, "phone": text, "name": nullable_text, "ddd": nullable_text,
            "city": nullable_text, "state": nullable_text, "owner_seller_id": {"type": "integer", "nullable": True},
            "opted_out": {"type": "boolean"},
            "opportunities": {"type": "array", "items": _ref("Opportunity")},
            "orders": {"type": "array", "items": {"type": "object"}},
            "recovery": {"type": "array", "items": {"type": "object"}},
            "history": {"type": "array", "items": {"type": "object"}},
            "overview": {"type": "object", "description": "valores do período escolhido e do anterior (receita, "
                                                          "pedidos, ticket médio, itens por pedido), totais, "
                                                          "histórico mensal de 12 meses e a última compra",
                         "properties": {"period_days": {"type": "integer"}, "period": {"type": "object"},
                                        "previous_period": {"type": "object"}, "lifetime": {"type": "object"},
                                        "history": {"type": "array", "items": {"type": "object"}},
                                        "last_purchase": {"type": "object", "nullable": True}}},
            "churn": {"type": "object", "required": ["index", "band", "factors"], "properties": {
                "index": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True,
                          "description": "null para clientes inativos (sem compra em 12 meses)"},
                "band": {"type": "string", "enum": ["baixo", "medio", "alto", "inativo"]},
                "little_data": {"type": "boolean", "description": "poucas compras: usa os intervalos típicos da loja"},
                "factors": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string", "enum": ["recency", "ticket", "frequency", "growth", "mix"]},
                    "score": {"type": "number"}, "weight": {"type": "number"}, "reason": text}}}}},
            "contact": {"type": "object"},
            "notes": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "integer"}, "kind": text, "text": text, "created_at": text,
                "author": nullable_text, "opportunity_id": {"type": "integer", "nullable": True}}}},
            "recommended": {"type": "object", "properties": {
                name: {"type": "array", "items": {"type": "object", "properties": {
                    "product_id": {"type": "integer"}, "key": text, "name": text, "price": text,
                    "url": nullable_text, "image_url": nullable_text, "why": text}}}
                for name in ("popular", "repurchase", "trending")}},
            "most_bought": {"type": "array", "items": {"type": "object", "properties": {
                "group": text, "quantity": {"type": "integer"}, "orders": {"type": "integer"}, "spent": text,
                "last_bought_at": nullable_text}}}}},
    }


def _crm_paths(bearer: list, auth_errors: dict) -> dict:
    bad = {"$ref": "#/components/responses/BadBody"}
    not_found = _json(_ref("Error"), "não encontrado (ou não visível ao seu papel)")
    return {
        "/api/opportunities": {
            "get": {
                "summary": "Oportunidades visíveis ao usuário",
                "description": "Vendedor: as suas; gerente de loja: as da loja e a fila; admin e backoffice: "
                               "todas. 50 por página.",
                "tags": ["oportunidades"], "security": bearer,
                "parameters": [
                    {"name": "status", "in": "query", "required": False, "schema": {
                        "type": "string", "enum": ["backlog", "assigned", "in_progress", "finished"]}},
                    {"name": "type", "in": "query", "required": False, "schema": {
                        "type": "string", "enum": ["behavior", "segment", "manual", "contact"]}},
                    {"name": "seller_id", "in": "query", "required": False, "schema": {"type": "integer"}},
                    {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
                ],
                "responses": {"200": _json(_ref("OpportunityPage"), "uma página"), "400": bad, **auth_errors},
            },
            "post": {
                "summary": "Criar oportunidades (uma, uma lista, ou CSV), tudo ou nada",
                "description": "Papéis: admin, manager, backoffice. CSV (`text/csv`) com as colunas "
                               "phone,name,type,reason,campaign,message,deadline,priority,skus; erros por linha.",
                "tags": ["oportunidades"], "security": bearer,
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"oneOf": [
                        _ref("OpportunityInput"), {"type": "array", "items": _ref("OpportunityInput")}]}},
                    "text/csv": {"schema": {"type": "string"}}}},
                "responses": {"201": _json(_ref("OpportunitiesCreated"), "criadas, unidas ou ignoradas"),
                              "400": bad, **auth_errors},
            },
        },
        "/api/opportunities/{id}": {"patch": {
            "summary": "Mudar status, resultado, vendedor, prioridade ou prazo",
            "description": "Vendedor: só as suas, só status/result/note. Gestores: também seller_id, priority, "
                           "deadline.",
            "tags": ["oportunidades"], "security": bearer,
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("OpportunityChange")}}},
            "responses": {"200": _json(_ref("Opportunity"), "depois da mudança"), "400": bad, "404": not_found,
                          **auth_errors},
        }},
        "/api/customers/{phone}": {"get": {
            "summary": "Visão 360 do cliente",
            "description": "Vendedor: só clientes da sua carteira ou das suas oportunidades.",
            "tags": ["oportunidades"], "security": bearer,
            "parameters": [
                {"name": "phone", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "group_by", "in": "query", "required": False, "description": "Mais comprados agrupados "
                 "por name, category, brand, color, size ou um atributo dos produtos",
                 "schema": {"type": "string", "default": "name"}},
                {"name": "period_days", "in": "query", "required": False,
                 "schema": {"type": "integer", "enum": [30, 90, 180, 365], "default": 90}},
            ],
            "responses": {"200": _json(_ref("Customer360"), "cliente"), "400": bad, "404": not_found,
                          **auth_errors},
        }},
    }


def _store_webhook(summary: str, schema: str) -> dict:
    return {"post": {
        "summary": summary,
        "tags": ["webhooks"],
        "parameters": [{
            "name": "X-Store-Signature", "in": "header", "required": True,
            "description": "hex do HMAC-SHA256 do corpo bruto com o segredo da loja: STORE_WEBHOOK_SECRET, ou o "
                           "gerado em Configuração (o anterior vale por mais 24 h)",
            "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        }],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(schema)}}},
        "responses": {
            "200": _json(_ref("EventResult"), "aplicado, ou repetido (nada muda)"),
            "400": {"$ref": "#/components/responses/BadBody"},
            "401": {"$ref": "#/components/responses/BadSignature"},
        },
    }}


def _platform_webhook(platform: str, header: str, signature: str, what: str) -> dict:
    return {"post": {
        "summary": f"Webhook da {platform}" if platform != "WooCommerce" else "Webhook do WooCommerce",
        "description": what,
        "tags": ["webhooks"],
        "security": [],
        "parameters": [{"name": header, "in": "header", "required": True, "description": signature,
                        "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"type": "object", "description": f"o corpo como a {platform} o envia"}}}},
        "responses": {
            "200": _json(_ref("EventResult"), "aplicado, repetido ou ignorado (tópico não usado, sem telefone)"),
            "400": {"$ref": "#/components/responses/BadBody"},
            "401": {"$ref": "#/components/responses/BadSignature"},
            "503": _json(_ref("Error"), "a API da plataforma não respondeu; a plataforma reenvia"),
        },
    }}


def build_document() -> dict[str, Any]:
    twilio_signature = {
        "name": "X-Twilio-Signature", "in": "header", "required": True,
        "description": "assinatura do Twilio sobre PUBLIC_BASE_URL + caminho e o formulário",
        "schema": {"type": "string"},
    }
    twilio_errors = {
        "400": _json(_ref("TwilioFieldError"), "campo do formulário inválido"),
        "403": _json(_ref("Error"), "assinatura do Twilio ausente ou inválida"),
    }
    bearer = [{"bearerAuth": []}]
    auth_errors = {"401": {"$ref": "#/components/responses/Unauthorized"},
                   "403": {"$ref": "#/components/responses/Forbidden"}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Recuperador de vendas via WhatsApp",
            "version": "1.0.0",
            "description": "Webhooks do WhatsApp (Twilio ou Meta) e da loja, API JSON do recuperador. Valores em dinheiro são textos "
                           "decimais (\"79.90\"). Mensagens de erro em português.",
        },
        "paths": {
            "/webhooks/whatsapp": {"post": {
                "summary": "Mensagem recebida (webhook do Twilio)",
                "tags": ["webhooks"],
                "parameters": [twilio_signature],
                "requestBody": _twilio_form({
                    "MessageSid": {"type": "string"}, "SmsMessageSid": {"type": "string"},
                    "From": {"type": "string", "example": "whatsapp:+5511999990001"},
                    "To": {"type": "string"}, "Body": {"type": "string"}, "ProfileName": {"type": "string"},
                    "WaId": {"type": "string"}, "NumMedia": {"type": "string", "pattern": r"^\d+$"},
                    "AccountSid": {"type": "string"},
                }, ["MessageSid", "From"]),
                "responses": {"200": {"description": "TwiML vazio",
                                      "content": {"text/xml": {"schema": {"type": "string"}}}},
                              **twilio_errors},
            }},
            "/webhooks/whatsapp/status": {"post": {
                "summary": "Status de entrega (callback do Twilio)",
                "tags": ["webhooks"],
                "parameters": [twilio_signature],
                "requestBody": _twilio_form({
                    "MessageSid": {"type": "string"}, "MessageStatus": {"type": "string"},
                    "ErrorCode": {"type": "string"},
                }, ["MessageSid", "MessageStatus"]),
                "responses": {"204": {"description": "registrado (o status só avança)"}, **twilio_errors},
            }},
            "/webhooks/meta": {
                "get": {
                    "summary": "Verificação do webhook pela Meta",
                    "tags": ["webhooks"],
                    "security": [],
                    "parameters": [
                        {"name": "hub.mode", "in": "query", "required": True, "schema": {"type": "string",
                                                                                         "enum": ["subscribe"]}},
                        {"name": "hub.verify_token", "in": "query", "required": True, "schema": {"type": "string"},
                         "description": "igual a META_VERIFY_TOKEN"},
                        {"name": "hub.challenge", "in": "query", "required": True, "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "o hub.challenge, como corpo inteiro",
                                          "content": {"text/plain": {"schema": {"type": "string"}}}},
                                  "403": {"description": "modo ou token errado"}},
                },
                "post": {
                    "summary": "Mensagens, status e preferências de marketing (webhook da Meta, em lote)",
                    "description": "Assinado com X-Hub-Signature-256 (sha256= HMAC-SHA256 hexadecimal do corpo com "
                                   "META_APP_SECRET), senão 403. Itens malformados dentro de um lote válido são "
                                   "ignorados e contados em `skipped`; idempotente pelo id da mensagem.",
                    "tags": ["webhooks"],
                    "security": [],
                    "parameters": [{"name": "X-Hub-Signature-256", "in": "header", "required": True,
                                    "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"}}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["object", "entry"],
                        "properties": {"object": {"type": "string", "enum": ["whatsapp_business_account"]},
                                       "entry": {"type": "array", "items": {"type": "object"}}}}}}},
                    "responses": {
                        "200": _json({"type": "object", "properties": {
                            "status": {"type": "string"}, "messages": {"type": "integer"},
                            "statuses": {"type": "integer"}, "preferences": {"type": "integer"},
                            "skipped": {"type": "integer"}}}, "lote aplicado"),
                        "400": {"description": "corpo que não é o envelope da Meta (campo em `field`)"},
                        "403": {"description": "assinatura ausente ou errada"},
                    },
                },
            },
            "/webhooks/store/carts": _store_webhook("Carrinho criado, atualizado ou abandonado", "CartEvent"),
            "/webhooks/store/orders": _store_webhook("Pedido criado, pago ou cancelado", "OrderEvent"),
            "/webhooks/shopify": _platform_webhook(
                "Shopify", "X-Shopify-Hmac-Sha256", "base64 do HMAC-SHA256 do corpo bruto com SHOPIFY_WEBHOOK_SECRET",
                "Tópicos checkouts/create, checkouts/update, orders/create, orders/paid, orders/cancelled "
                "(X-Shopify-Topic); idempotente por X-Shopify-Webhook-Id."),
            "/webhooks/nuvemshop": _platform_webhook(
                "Nuvemshop", "X-Linkedstore-HMAC-SHA256", "hex do HMAC-SHA256 do corpo bruto com NUVEMSHOP_APP_SECRET",
                "Corpo {store_id, event, id}; o pedido é lido na API da Nuvemshop (order/created, order/paid, "
                "order/updated, order/cancelled…)."),
            "/webhooks/woocommerce": _platform_webhook(
                "WooCommerce", "X-WC-Webhook-Signature",
                "base64 do HMAC-SHA256 do corpo bruto com WOOCOMMERCE_WEBHOOK_SECRET (o ping de criação, "
                "webhook_id=N, vem sem assinatura e recebe 200)",
                "Tópicos order.created e order.updated (X-WC-Webhook-Topic); idempotente por "
                "X-WC-Webhook-Delivery-ID. Pedido pendente além do prazo = abandono."),
            "/api/coupons/validate": {"post": {
                "summary": "Validar um cupom de recuperação no checkout",
                "description": "Sem token; limitado a 60 consultas por minuto por IP. Julgado pela regra como "
                               "ela está agora.",
                "tags": ["cupons"],
                "security": [],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CouponCheck")}}},
                "responses": {
                    "200": _json(_ref("CouponVerdict"), "veredito (válido ou não, com o motivo)"),
                    "400": {"$ref": "#/components/responses/BadBody"},
                    "429": {"$ref": "#/components/responses/TooManyRequests"},
                },
            }},
            "/api/recovery/settings": {
                "get": {
                    "summary": "Configuração do recuperador",
                    "description": "Papéis: admin, manager.",
                    "tags": ["recuperador"],
                    "security": bearer,
                    "responses": {"200": _json(_ref("RecoverySettings"), "configuração atual"), **auth_errors},
                },
                "put": {
                    "summary": "Alterar a configuração (parcial, tudo ou nada)",
                    "description": "Papéis: admin, manager.",
                    "tags": ["recuperador"],
                    "security": bearer,
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": _ref("RecoverySettingsChange")}}},
                    "responses": {
                        "200": _json(_ref("RecoverySettings"), "configuração completa depois da alteração"),
                        "400": {"$ref": "#/components/responses/BadBody"},
                        **auth_errors,
                    },
                },
            },
            "/api/whatsapp/templates": {"get": {
                "summary": "Modelos do WhatsApp sincronizados do provedor (Twilio Content API ou Meta)",
                "description": "Papéis: admin, manager. Fora da janela de 24 h só um modelo aprovado é entregue; "
                               "o mapeamento de cada variante fica em /api/recovery/settings.",
                "tags": ["recuperador"],
                "security": bearer,
                "responses": {"200": _json(_ref("WhatsAppTemplates"), "modelos e seus marcadores"), **auth_errors},
            }},
            "/api/recovery/stats": {"get": {
                "summary": "Números do recuperador por período (dias do fuso da loja)",
                "description": "Papéis: admin, manager, backoffice. Padrão: os últimos 30 dias até hoje; no "
                               "máximo 366 dias.",
                "tags": ["recuperador"],
                "security": bearer,
                "parameters": [
                    {"name": "from", "in": "query", "required": False,
                     "schema": {"type": "string", "format": "date", "pattern": DATE_PATTERN}},
                    {"name": "to", "in": "query", "required": False,
                     "schema": {"type": "string", "format": "date", "pattern": DATE_PATTERN}},
                ],
                "responses": {"200": _json(_ref("RecoveryStats"), "números do período"),
                              "400": {"$ref": "#/components/responses/BadBody"}, **auth_errors},
            }},
            **_crm_paths(bearer, auth_errors),
            "/healthz": {"get": {
                "summary": "Saúde: banco, Redis, agendador",
                "description": "200 enquanto banco e Redis respondem, mesmo com o agendador parado (status "
                               "`degraded`): o balanceador não deve tirar os webhooks do ar por causa dele. "
                               "Com `strict=1`, 503 também quando algo está degradado.",
                "tags": ["operação"],
                "security": [],
                "parameters": [{"name": "strict", "in": "query", "required": False,
                                "schema": {"type": "string", "enum": ["1"]}}],
                "responses": {"200": _json(_ref("Health"), "banco e Redis no ar (veja `status`)"),
                              "503": _json(_ref("Health"), "banco ou Redis fora do ar; com strict=1, qualquer "
                                                           "item degradado")},
            }},
            "/openapi.json": {"get": {
                "summary": "Este documento",
                "tags": ["operação"],
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.0",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "token de `flask --app app users token EMAIL`"}},
            "schemas": {**_schemas(), **_crm_schemas()},
            "responses": _responses(),
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(build_document())
