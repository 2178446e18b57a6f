"""The merchant's recoverer settings: read, validated, written. Out-of-range values are refused per field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from time import monotonic
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from core.templating import TemplateRenderError
from models import CouponRule, FrequencyUnit, RecoverySettings, WhatsAppTemplate
from recovery import whatsapp_templates
from recovery.messages import sample_variables, validate_template

SETTINGS_ID = 1
DELAY_RANGE = (5, 60)
VALIDITY_RANGE = (1, 720)
FREQUENCY_RANGE = (1, 365)
PAUSE_RANGE = (0, 365)
ATTRIBUTION_RANGE = (1, 90)
MAX_AGE_RANGE = (1, 23)  # a reminder a day after the cart no longer reads as one (templates reach past 24 h)
HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
PLACEHOLDER_KEY = re.compile(r"[A-Za-z0-9_:]{1,80}")  # "1", "first_name", Meta's "header:1", "button:0:1"


class SettingsInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def load_settings(session: Session) -> RecoverySettings:
    """The stored settings, or the (disabled) defaults when the merchant never saved any."""
    stored = session.get(RecoverySettings, SETTINGS_ID)
    if stored is not None:
        return stored
    defaults = RecoverySettings(id=SETTINGS_ID)
    for column in RecoverySettings.__table__.columns:
        if getattr(defaults, column.key) is None and column.default is not None and not callable(column.default.arg):
            setattr(defaults, column.key, column.default.arg)
    return defaults


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class Field:
    kind: str  # int, bool, text, hhmm, rule, unit
    bounds: tuple[int, int] | None = None
    nullable: bool = False


FIELDS: dict[str, Field] = {
    "enabled": Field("bool"),
    "delay_minutes": Field("int", DELAY_RANGE),
    "coupon_rule_id": Field("rule", nullable=True),
    "coupon_validity_hours": Field("int", VALIDITY_RANGE),
    "frequency_count": Field("int", FREQUENCY_RANGE),
    "frequency_unit": Field("unit"),
    "coupon_use_pause_days": Field("int", PAUSE_RANGE),
    "template": Field("text"),
    "quiet_start": Field("hhmm"),
    "quiet_end": Field("hhmm"),
    "variant_b_template": Field("text", nullable=True),
    "variant_b_coupon_rule_id": Field("rule", nullable=True),
    "variant_b_percent": Field("int", (0, 100)),
    "attribution_days": Field("int", ATTRIBUTION_RANGE),
    "max_age_hours": Field("int", MAX_AGE_RANGE),
    "coupon_url_pattern": Field("text"),
    "whatsapp_template_id": Field("template", nullable=True),
    "whatsapp_template_params": Field("params"),
    "variant_b_whatsapp_template_id": Field("template", nullable=True),
    "variant_b_whatsapp_template_params": Field("params"),
}
# Each variant: its free-form text, coupon rule, template outside the window and that template's mapping.
VARIANT_FIELDS = {
    "A": ("template", "coupon_rule_id", "whatsapp_template_id", "whatsapp_template_params"),
    "B": ("variant_b_template", "variant_b_coupon_rule_id", "variant_b_whatsapp_template_id",
          "variant_b_whatsapp_template_params"),
}


def update_settings(session: Session, changes: Mapping[str, Any]) -> RecoverySettings:
    """Validate every given field, then apply all or nothing. Unknown fields are errors too.

    Templates are rendered with a sample shopper through the same sandbox as the sender, so one that
    would fail at send time is refused now.
    """
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        field = FIELDS.get(name)
        if field is None:
            errors[name] = "campo desconhecido"
            continue
        try:
            clean[name] = _coerce(session, field, value)
        except ValueError as exc:
            errors[name] = str(exc)
    current = load_settings(session)
    merged = {name: clean.get(name, getattr(current, name)) for name in FIELDS}
    if "coupon_url_pattern" in clean:
        problem = coupon_url_problem(clean["coupon_url_pattern"])
        if problem:
            errors["coupon_url_pattern"] = problem
    if merged["variant_b_percent"] and not merged["variant_b_template"]:
        errors.setdefault("variant_b_template", "defina o texto da variante B para dividir o envio")

    for name in ("template", "variant_b_template"):
        if name in clean and clean[name] is not None:
            try:
                validate_template(clean[name])
            except TemplateRenderError as exc:
                errors[name] = exc.message
    for _text, rule_field, template_field, params_field in VARIANT_FIELDS.values():
        if {rule_field, template_field, params_field} & set(clean) and template_field not in errors:
            problem = _mapping_problem(session, merged[template_field], merged[params_field], merged[rule_field])
            if problem:
                errors[params_field] = problem
    if errors:
        raise SettingsInvalid(errors)

    settings = session.get(RecoverySettings, SETTINGS_ID)
    if settings is None:
        settings = current
        session.add(settings)
    for name, value in clean.items():
        setattr(settings, name, value)
    session.flush()
    invalidate_delay_cache()
    return settings


# The merchant's delay, read on every inbound message (recovery.tracker.note_interaction): cached briefly per
# process and key prefix, and dropped when this process saves new settings.
_delay_cache: dict[str, tuple[float, int]] = {}
_DELAY_CACHE_SECONDS = 30.0


def delay_minutes(session: Session, cache_key: str) -> int:
    cached = _delay_cache.get(cache_key)
    if cached and cached[0] > monotonic():
        return cached[1]
    delay = load_settings(session).delay_minutes
    _delay_cache[cache_key] = (monotonic() + _DELAY_CACHE_SECONDS, delay)
    return delay


def invalidate_delay_cache() -> None:
    _delay_cache.clear()


def coupon_url(pattern: str, shop: str, code: str) -> str:
    return pattern.format(shop=shop, code=code)


def coupon_url_problem(pattern: str) -> str | None:
    """Why this coupon link pattern cannot build links, or None. Only {shop} and {code} may appear."""
    if "{code}" not in pattern:
        return "o padrão precisa conter {code}"
    try:
        url = coupon_url(pattern, "https://loja.example", "VOLTA-ABC")
    except (KeyError, IndexError, ValueError, AttributeError):
        return "use apenas {shop} e {code} no padrão (chaves soltas precisam ser duplicadas: {{ e }})"
    if not url.startswith(("https://", "http://")):
        return "o link precisa começar com http:// ou https:// (ou com {shop})"
    return None


def _mapping_problem(session: Session, template_id: int | None, params: dict, rule_id: int | None) -> str | None:
    """Why this variant's template mapping cannot be saved, or None (no template: nothing to check)."""
    if template_id is None:
        return None
    template = session.get(WhatsAppTemplate, template_id)
    rule = session.get(CouponRule, rule_id) if rule_id else None
    try:
        whatsapp_templates.check_mapping(template, params or {}, has_coupon=rule is not None and rule.active,
                                         sample=sample_variables(ZoneInfo("America/Sao_Paulo")))
    except whatsapp_templates.MappingInvalid as exc:
        return str(exc)
    return None


def _coerce(session: Session, field: Field, value: Any) -> Any:
    if value is None:
        if field.nullable:
            return None
        raise ValueError("obrigatório")
    if field.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError("use true ou false")
        return value
    if isinstance(value, str) and ("\x00" in value or not _encodable(value)):
        raise ValueError("texto com caracteres inválidos")
    if field.kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError("deve ser um número inteiro")
        try:
            number = int(value)
        except ValueError:
            raise ValueError("deve ser um número inteiro") from None
        low, high = field.bounds
        if not low <= number <= high:
            raise ValueError(f"deve estar entre {low} e {high}")
        return number
    if field.kind == "text":
        if not isinstance(value, str) or not value.strip():
            if field.nullable and isinstance(value, str):
                return None
            raise ValueError("não pode ficar vazio")
        if len(value) > 2000:
            raise ValueError("no máximo 2000 caracteres")
        return value
    if field.kind == "hhmm":
        if not isinstance(value, str) or not HHMM.fullmatch(value):
            raise ValueError("use o formato HH:MM, por exemplo 21:00")
        return value
    if field.kind == "unit":
        try:
            return FrequencyUnit(value)
        except ValueError:
            raise ValueError("use 'hours' ou 'days'") from None
    if field.kind == "rule":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
            raise ValueError("id de regra de cupom inválido")
        rule = session.get(CouponRule, value)
        if rule is None:
            raise ValueError("regra de cupom não encontrada")
        if not rule.active:
            raise ValueError("regra de cupom desativada")
        return value
    if field.kind == "template":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
            raise ValueError("id de modelo inválido")
        if session.get(WhatsAppTemplate, value) is None:
            raise ValueError("modelo não encontrado (sincronize os modelos do WhatsApp)")
        return value
    if field.kind == "params":
        if not isinstance(value, dict) or len(value) > 50:
            raise ValueError("use um objeto {\"1\": \"nome\", \"2\": \"link\"}")
        for key, name in value.items():
            if not PLACEHOLDER_KEY.fullmatch(key):
                raise ValueError(f"marcador inválido {key[:40]!r}: use a chave do modelo, como \"1\"")
            if not isinstance(name, str):
                raise ValueError("cada marcador recebe o nome de uma variável")
            if name not in whatsapp_templates.VARIABLES:
                raise ValueError(f"variável desconhecida {name[:40]!r}; use "
                                 + ", ".join(whatsapp_templates.VARIABLES))
        return {str(k): v for k, v in value.items() if v}
    raise AssertionError(field.kind)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a JSON "\ud800"
        return False
    return True


def as_dict(settings: RecoverySettings) -> dict[str, Any]:
    out = {}
    for name in FIELDS:
        value = getattr(settings, name)
        if FIELDS[name].kind == "params":
            value = dict(value or {})
        out[name] = value.value if isinstance(value, FrequencyUnit) else value
    return out
