"""The merchant console: recoverer settings and message, the WhatsApp templates sent outside the 24-hour window,
coupon rules, the bot's texts and FAQ, the catalog, conversations and the results dashboard.

Thin views: form fields are turned into the values the core validates (recovery.config, recovery.coupons,
bot.texts, bot.faq, catalog.importing), and its per-field errors are shown next to the fields.

Who: admins, and managers responsible for the whole brand (no branch), configure; branch managers and the
back office read the dashboard, conversations and catalog.
"""

from __future__ import annotations

import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from bot import faq, texts
from catalog import discounts
from catalog.importing import FORMAT_LABELS as CATALOG_FORMAT_LABELS
from catalog.importing import FORMATS as CATALOG_FORMATS
from catalog.importing import CatalogImportError, ImportReport, import_catalog
from channel import template_sync
from channel.templates import PLACEHOLDER
from core.inputs import InputError, format_typed_day, parse_id, parse_page
from core.templating import TemplateRenderError
from crm import access
from crm.access import Action, may
from models import (
    Coupon, Customer, CouponKind, CouponRule, Direction, FaqEntry, FrequencyUnit, Message, Product, TemplateStatus,
    Variant, WhatsAppTemplate, utcnow,
)
from recovery import coupons, whatsapp_templates
from recovery.config import FIELDS, SettingsInvalid, as_dict, load_settings, update_settings
from recovery.messages import CHIPS, VARIABLES, sample_variables, validate_template
from recovery.stats import FUNNEL_BASE, funnel, recovery_stats
from web import charts
from web.context import db_session, runtime
from web.auth import allowed
from web.formatting import LABELS, PLATFORM_LABELS
from web.period import requested_days

bp = Blueprint("console", __name__, url_prefix="/console")

PAGE_SIZE = 50
# The settings page's fields (the message texts have their own page).
SETTINGS_FORM = ("enabled", "delay_minutes", "coupon_rule_id", "coupon_validity_hours", "frequency_count",
                 "frequency_unit", "coupon_use_pause_days", "quiet_start", "quiet_end", "variant_b_percent",
                 "variant_b_coupon_rule_id", "attribution_days", "max_age_hours", "coupon_url_pattern")
TEMPLATE_FORM = ("template", "variant_b_template")
MAX_FAQ_ANSWER = 1200  # bot.faq.save_entry refuses longer answers
FUNNEL_LABELS = {"tracked": "Acompanhados", "due": "Prazo vencido", "deferred": "Adiadas", "sent": "Enviadas",
                 "delivered": "Entregues", "read": "Lidas", "recovered": "Recuperados"}
# Steps no one can measure in outbox mode: nothing leaves, so nothing is delivered or read.
UNMEASURED_IN_OUTBOX = ("delivered", "read")


@bp.app_context_processor
def _console_flags():
    signed_in = current_user.is_authenticated
    return {"may_configure": signed_in and may(current_user, Action.CONFIGURE_BRAND),
            "may_manage_people": signed_in and may(current_user, Action.MANAGE_PEOPLE)}


def _page() -> int:
    return parse_page(request.args.get("pagina"), "pagina")


# --- dashboard ---------------------------------------------------------------------------------------------


@bp.get("/")
@allowed(Action.READ_DASHBOARD)
def dashboard():
    session = db_session()
    tz = runtime().settings.store_timezone
    first, last = requested_days(tz, default_days=30)
    stats = recovery_stats(session, start=first, end=last, tz=tz)
    outbox = runtime().settings.outbox_mode
    counted = dict(funnel(session, stats, start=first, end=last, tz=tz))
    # (key, label, count or None when it cannot be measured, share of the base step or None, base step's label)
    funnel_rows = []
    for key, count in counted.items():
        # Statuses recorded while a provider was connected still count; new messages get none in outbox mode.
        measured = not (outbox and key in UNMEASURED_IN_OUTBOX and not count)
        base = FUNNEL_BASE.get(key)
        base_count = counted.get(base) if base else None
        share = count / base_count if measured and base_count else None
        funnel_rows.append((key, FUNNEL_LABELS[key], count if measured else None, share,
                            FUNNEL_LABELS[base] if base else None))
    steps = [(key, label, count) for key, label, count, _, _ in funnel_rows if count is not None]
    totals = stats["totals"]
    days = [(date.fromisoformat(d["date"]), Decimal(d["recovered_revenue"])) for d in stats["by_day"]]
    variants = [(f"Variante {v}", m["sent"], m["recovered_orders"], m["conversion_rate"])
                for v, m in stats["by_variant"].items() if v == "A" or m["attempts"]]
    reason_rows = sorted(((r, LABELS.get(r, r), n) for r, n in totals["skipped_by_reason"].items()),
                         key=lambda x: -x[2])
    reasons = [(label, n) for _, label, n in reason_rows]
    paths = stats["paths"]
    blocked = sorted(((r, LABELS.get(r, r), n) for r, n in paths["blocked_by_reason"].items()), key=lambda x: -x[2])
    errors = sorted(((r, LABELS.get(r, r), n) for r, n in totals["errors_by_reason"].items()), key=lambda x: -x[2])
    figures = {
        "funnel": charts.funnel_chart(steps),
        "revenue": charts.revenue_chart(days),
        "variants": charts.variant_chart([(label, sent, rec) for label, sent, rec, _ in variants]),
        "skipped": charts.skipped_chart(reasons) if reasons else None,
    }
    deferred = stats["deferred"]
    deferred_reasons = [(r, LABELS.get(r, r), n) for r, n in deferred["by_reason"].items()]
    return render_template("pages/console/dashboard.html", first=format_typed_day(first), last=format_typed_day(last),
                           totals=totals, steps=steps, funnel_rows=funnel_rows, outbox=outbox, deferred=deferred,
                           deferred_reasons=deferred_reasons, days=days, variants=variants, reasons=reasons, errors=errors,
                           reason_rows=reason_rows, paths=paths, blocked=blocked, template_reasons=TEMPLATE_REASONS,
                           coupon_problems=stats["coupon_problems"],
                           coupons=stats["coupons"], figures=figures, settings=load_settings(session))


# --- recovery settings and message ------------------------------------------------------------------------


def _rules(session, active_only: bool = False) -> list[CouponRule]:
    query = select(CouponRule).order_by(CouponRule.active.desc(), CouponRule.name)
    if active_only:
        query = query.where(CouponRule.active.is_(True))
    return list(session.scalars(query))


def _form_changes(names: tuple[str, ...]) -> dict:
    """Form strings to the types recovery.config validates; a bad value is passed on so it is reported."""
    changes = {}
    for name in names:
        kind = FIELDS[name].kind
        raw = request.form.get(name)
        if kind == "bool":
            changes[name] = raw in ("on", "1", "true")
        elif kind == "rule":
            raw = (raw or "").strip()
            changes[name] = None if not raw else _rule_id_or_text(raw)
        elif kind == "text" and FIELDS[name].nullable:
            changes[name] = raw if raw is not None else None
        else:
            changes[name] = (raw or "").strip() if kind != "text" else (raw or "")
    return changes


def _rule_id_or_text(raw: str) -> int | str:
    """A coupon rule's id, or the text as typed so recovery.config reports it on the field."""
    try:
        return parse_id(raw, "coupon_rule_id")
    except InputError:
        return raw


def _save_settings(names: tuple[str, ...]) -> tuple[dict, dict[str, str]]:
    """Save the posted fields, all or none. Returns the posted values as the form shows them again, and the
    errors by field."""
    session = db_session()
    changes = _form_changes(names)
    posted = {k: changes[k] if FIELDS[k].kind == "bool" else request.form.get(k, "") for k in names}
    try:
        update_settings(session, changes)
    except SettingsInvalid as exc:
        session.rollback()
        return posted, exc.errors
    session.commit()
    return posted, {}


@bp.route("/recuperacao", methods=["GET", "POST"])
@allowed(Action.CONFIGURE_BRAND)
def recovery_settings():
    session = db_session()
    errors, values = {}, as_dict(load_settings(session))
    if request.method == "POST":
        posted, errors = _save_settings(SETTINGS_FORM)
        if not errors:
            flash("Configurações da recuperação salvas.", "info")
            return redirect(url_for(".recovery_settings")), 303
        values.update(posted)
    return render_template("pages/console/recovery.html", values=values, errors=errors, rules=_rules(session),
                           platform_coupons=platform_coupons(),
                           units=list(FrequencyUnit), tick_every=_duration(runtime().settings.recovery_tick_seconds)
                           ), 400 if errors else 200


def _duration(seconds: int) -> str:
    """How often the recovery check runs, as the merchant reads it: "5 minutos", "1 minuto", "90 segundos"."""
    if seconds % 60:
        return f"{seconds} segundos"
    minutes = seconds // 60
    return "1 minuto" if minutes == 1 else f"{minutes} minutos"


@bp.route("/recuperacao/mensagem", methods=["GET", "POST"])
@allowed(Action.CONFIGURE_BRAND)
def recovery_message():
    session = db_session()
    errors, values = {}, as_dict(load_settings(session))
    if request.method == "POST":
        posted, errors = _save_settings(TEMPLATE_FORM)
        if not errors:
            flash("Mensagem salva.", "info")
            return redirect(url_for(".recovery_message")), 303
        values.update(posted)
    previews = {}
    for name in TEMPLATE_FORM:
        previews[name] = _preview_recovery(values.get(name) or "") if values.get(name) else ("", None)
    return render_template("pages/console/message.html", values=values, errors=errors, variables=VARIABLES,
                           chips=CHIPS, previews=previews), 400 if errors else 200


def _preview_recovery(source: str) -> tuple[str, str | None]:
    """(rendered text, error): the sender's own renderer with a sample shopper, cart and coupon, checked as
    saving checks it (recovery.messages.validate_template), so a problem shows here before the merchant saves."""
    settings = runtime().settings
    try:
        if not source.strip():
            raise TemplateRenderError("a mensagem não pode ficar vazia")
        if len(source) > 2000:
            raise TemplateRenderError("no máximo 2000 caracteres")
        return validate_template(source, sample_variables(settings.store_timezone, settings.store_name)), None
    except TemplateRenderError as exc:
        return "", exc.message


@bp.post("/recuperacao/previa")
@allowed(Action.CONFIGURE_BRAND)
def recovery_preview():
    source = request.form.get("template", "")
    if not source.strip() and request.form.get("optional"):
        return jsonify(ok=True, preview="", error=None)  # variant B may be left empty
    text, error = _preview_recovery(source)
    return jsonify(ok=error is None, preview=text, error=error)


# --- WhatsApp templates (outside the 24-hour window) ----------------------------------------------------------

CATEGORY_PT = {"marketing": "Marketing", "utility": "Utilidade", "authentication": "Autenticação"}
# Per variant: the settings fields of its template and mapping, and of the coupon rule that decides whether the
# coupon variables can be filled.
MAPPING_FIELDS = {"A": ("whatsapp_template_id", "whatsapp_template_params", "coupon_rule_id"),
                  "B": ("variant_b_whatsapp_template_id", "variant_b_whatsapp_template_params",
                        "variant_b_coupon_rule_id")}
PARAM_PREFIX = "marcador_"  # form field of a placeholder: marcador_<key> (keys: "1", "header:1", "first_name")
# Dashboard reasons fixed on the WhatsApp templates page: the row links there.
TEMPLATE_REASONS = {"no_template_mapped": "escolher um modelo", "template_not_approved": "ver os modelos",
                    "outside_24h_window_no_template": "escolher um modelo",
                    "template_variables_missing": "revisar os marcadores"}


def _marked(text: str | None) -> list[tuple[str, bool]]:
    """The text in pieces, each placeholder ({{1}}, {{first_name}}) a piece of its own, to highlight it."""
    text = text or ""
    pieces, last = [], 0
    for match in PLACEHOLDER.finditer(text):
        if match.start() > last:
            pieces.append((text[last:match.start()], False))
        pieces.append((match.group(0), True))
        last = match.end()
    if last < len(text):
        pieces.append((text[last:], False))
    return pieces


def _template_row(template: WhatsAppTemplate) -> dict:
    category = (template.category or "").lower()
    return {
        "template": template, "category": CATEGORY_PT.get(category, template.category or "—"),
        "status": whatsapp_templates.STATUS_PT.get(template.status, template.status.value),
        "header": _marked(template.header), "body": _marked(template.body),
        "buttons": [b.get("text") for b in template.buttons or [] if b.get("text")],
    }


def _template_label(template: WhatsAppTemplate) -> str:
    status = whatsapp_templates.STATUS_PT.get(template.status, template.status.value)
    return f"{template.name} ({template.language}) · {status}"


def _placeholder_label(placeholder: dict) -> str:
    where = {"header": " no título", "button": " no link do botão"}.get(placeholder.get("component"), "")
    return "Marcador {{" + str(placeholder.get("name", placeholder["key"])) + "}}" + where


def _has_coupon(session, settings, variant: str) -> bool:
    rule_id = getattr(settings, MAPPING_FIELDS[variant][2])
    rule = session.get(CouponRule, rule_id) if rule_id else None
    return rule is not None and rule.active


def _mapping_preview(template: WhatsAppTemplate | None, params: dict[str, str],
                     has_coupon: bool) -> tuple[str, str | None]:
    """(text, problem): the template filled for the sample shopper, checked as saving checks it."""
    if template is None:
        return "", None
    settings = runtime().settings
    try:
        return whatsapp_templates.check_mapping(
            template, params, has_coupon=has_coupon,
            sample=sample_variables(settings.store_timezone, settings.store_name)), None
    except whatsapp_templates.MappingInvalid as exc:
        return "", str(exc)


def _mapping_form(session, settings, variant: str, template_id, params: dict[str, str],
                  errors: dict[str, str] | None = None) -> dict:
    """What one variant's mapping form shows: the chosen template, a select per placeholder, the preview."""
    template = session.get(WhatsAppTemplate, template_id) if isinstance(template_id, int) else None
    has_coupon = _has_coupon(session, settings, variant)
    preview, problem = _mapping_preview(template, params, has_coupon)
    id_field, params_field, _ = MAPPING_FIELDS[variant]
    errors = errors or {}
    return {
        "variant": variant, "template": template, "template_id": template_id, "params": params,
        "placeholders": [(p["key"], _placeholder_label(p)) for p in (template.placeholders if template else [])],
        "has_coupon": has_coupon, "preview": preview, "preview_error": problem,
        "template_error": errors.get(id_field), "params_error": errors.get(params_field),
        "other_errors": [m for k, m in errors.items() if k not in (id_field, params_field)],
    }


def _stored_form(session, settings, variant: str) -> dict:
    id_field, params_field, _ = MAPPING_FIELDS[variant]
    return _mapping_form(session, settings, variant, getattr(settings, id_field),
                         dict(getattr(settings, params_field) or {}))


def _posted_mapping(session) -> tuple[int | str | None, WhatsAppTemplate | None, dict[str, str]]:
    """The posted template (an id, or the text as typed so saving reports it) and its placeholders' variables."""
    raw = (request.form.get("modelo") or "").strip()
    template_id: int | str | None = None
    if raw:
        try:
            template_id = parse_id(raw, "modelo")
        except InputError:
            template_id = raw[:80]
    template = session.get(WhatsAppTemplate, template_id) if isinstance(template_id, int) else None
    params = {}
    for key in template.keys if template else []:
        value = (request.form.get(PARAM_PREFIX + key) or "").strip()
        if value:
            params[key] = value[:80]
    return template_id, template, params


def _posted_variant() -> str:
    variant = request.form.get("variante", "")
    if variant not in MAPPING_FIELDS:
        abort(400)
    return variant


def _whatsapp_page(session, forms: dict[str, dict] | None = None, status: int = 200):
    settings = load_settings(session)
    forms = {v: (forms or {}).get(v) or _stored_form(session, settings, v) for v in MAPPING_FIELDS}
    listed = session.scalars(select(WhatsAppTemplate).order_by(WhatsAppTemplate.name, WhatsAppTemplate.language,
                                                               WhatsAppTemplate.id)).all()
    # Removed ones last: kept only because sent messages refer to them.
    listed = sorted(listed, key=lambda t: t.status is TemplateStatus.REMOVED)
    mappable = [t for t in listed if t.status in whatsapp_templates.MAPPABLE]
    choices = {}
    for variant, form in forms.items():
        current = form["template"]
        options = list(mappable)
        if current is not None and current not in options:
            options.insert(0, current)  # the saved one, even if no longer approved: the merchant sees why
        choices[variant] = [(t.id, _template_label(t)) for t in options]
    last_sync = max((t.synced_at for t in listed), default=None)
    ab_test_on = bool(settings.variant_b_percent and settings.variant_b_template)
    return render_template("pages/console/whatsapp.html", rows=[_template_row(t) for t in listed], forms=forms,
                           choices=choices, mappable=mappable, last_sync=last_sync, ab_test_on=ab_test_on,
                           slots={t.id: [(p["key"], _placeholder_label(p)) for p in t.placeholders] for t in mappable},
                           variables=whatsapp_templates.VARIABLES,
                           coupon_variables=whatsapp_templates.COUPON_VARIABLES, param_prefix=PARAM_PREFIX,
                           provider=runtime().settings.whatsapp_provider,
                           variant_b_percent=settings.variant_b_percent), status


@bp.get("/whatsapp", endpoint="whatsapp_templates")
@allowed(Action.CONFIGURE_BRAND)
def whatsapp_templates_page():
    return _whatsapp_page(db_session())


@bp.post("/whatsapp/sincronizar")
@allowed(Action.CONFIGURE_BRAND)
def whatsapp_sync():
    session = db_session()
    try:
        result = template_sync.sync_templates(session, runtime().settings)
    except template_sync.TemplateSyncError as exc:
        session.rollback()
        flash(f"Não foi possível sincronizar os modelos: {exc}", "error")
    else:
        session.commit()
        flash(result.summary(), "info")
    return redirect(url_for(".whatsapp_templates")), 303


@bp.post("/whatsapp/modelo")
@allowed(Action.CONFIGURE_BRAND)
def whatsapp_mapping():
    """Save one variant's template and mapping; "escolher" only shows the chosen template's placeholders (the
    page without JavaScript), "remover" stops using a template for that variant."""
    session = db_session()
    variant = _posted_variant()
    action = request.form.get("acao", "salvar")
    id_field, params_field, _ = MAPPING_FIELDS[variant]
    template_id, template, params = (None, None, {}) if action == "remover" else _posted_mapping(session)
    settings = load_settings(session)
    if action == "escolher":
        return _whatsapp_page(session, {variant: _mapping_form(session, settings, variant, template_id, params)})
    try:
        update_settings(session, {id_field: template_id, params_field: params})
    except SettingsInvalid as exc:
        session.rollback()
        settings = load_settings(session)
        form = _mapping_form(session, settings, variant, template_id, params, exc.errors)
        return _whatsapp_page(session, {variant: form}, status=400)
    session.commit()
    if template is None:
        flash(f"Variante {variant}: nenhum modelo. Fora da janela de 24 h a recuperação desta variante não é "
              "enviada.", "info")
    else:
        flash(f"Variante {variant}: o modelo {template.name} será enviado fora da janela de 24 h.", "info")
    return redirect(url_for(".whatsapp_templates")), 303


@bp.post("/whatsapp/previa")
@allowed(Action.CONFIGURE_BRAND)
def whatsapp_preview():
    """The live preview of a mapping form: {"text"} or {"error"}, checked as saving checks it."""
    session = db_session()
    variant = request.form.get("variante", "A")
    if variant not in MAPPING_FIELDS:
        return jsonify(error="variante inválida")
    template_id, template, params = _posted_mapping(session)
    if template_id is None:
        return jsonify(text="")
    if template is None:
        return jsonify(error="modelo não encontrado: sincronize os modelos do WhatsApp")
    text, problem = _mapping_preview(template, params, _has_coupon(session, load_settings(session), variant))
    return jsonify(error=problem) if problem else jsonify(text=text)


# --- coupon rules ------------------------------------------------------------------------------------------


def platform_coupons() -> dict | None:
    """Whether the shop's platform can take the recoverer's codes (None for a custom shop, which checks them with
    our API): the variables still missing, for the notice on the coupon and recovery pages."""
    settings = runtime().settings
    if settings.shop_platform == "generic":
        return None
    return {"platform": settings.shop_platform, "label": PLATFORM_LABELS[settings.shop_platform],
            "missing": discounts.needs_credentials(settings), "outbox": settings.outbox_mode}


def _rule_values() -> dict:
    return {"name": request.form.get("name", ""), "kind": request.form.get("kind", ""),
            "value": request.form.get("value", ""), "min_order": request.form.get("min_order", "0"),
            "recovery_only": request.form.get("recovery_only") in ("on", "1", "true")}


@bp.route("/cupons", methods=["GET", "POST"])
@allowed(Action.CONFIGURE_BRAND)
def coupon_rules():
    session = db_session()
    errors = {}
    if request.method == "POST":
        try:
            rule = coupons.save_rule(session, None, **_rule_values())
        except coupons.RuleInvalid as exc:
            session.rollback()
            errors = exc.errors
        else:
            session.commit()
            flash(f"Regra “{rule.name}” criada.", "info")
            return redirect(url_for(".coupon_rules")), 303
    settings = load_settings(session)
    in_use = {settings.coupon_rule_id, settings.variant_b_coupon_rule_id} - {None}
    return render_template("pages/console/coupons.html", rules=_rules(session), usage=coupons.usage_by_rule(session),
                           describe=coupons.describe, kinds=list(CouponKind), errors=errors, form=request.form,
                           in_use=in_use, platform_coupons=platform_coupons()), 400 if errors else 200


def _rule_or_404(rule_id: int) -> CouponRule:
    rule = db_session().get(CouponRule, rule_id)
    if rule is None:
        abort(404)
    return rule


@bp.route("/cupons/<id:rule_id>", methods=["GET", "POST"])
@allowed(Action.CONFIGURE_BRAND)
def coupon_rule(rule_id: int):
    session = db_session()
    rule = _rule_or_404(rule_id)
    errors = {}
    if request.method == "POST":
        try:
            coupons.save_rule(session, rule, **_rule_values())
        except coupons.RuleInvalid as exc:
            session.rollback()
            errors = exc.errors
        else:
            session.commit()
            flash("Regra atualizada. Vale também para os cupons já enviados que ainda não foram usados.", "info")
            return redirect(url_for(".coupon_rules")), 303
    issued, redeemed = coupons.usage_by_rule(session).get(rule.id, (0, 0))
    return render_template("pages/console/coupon.html", rule=rule, errors=errors, form=request.form,
                           kinds=list(CouponKind), issued=issued, redeemed=redeemed), 400 if errors else 200


@bp.post("/cupons/<id:rule_id>/status")
@allowed(Action.CONFIGURE_BRAND)
def coupon_rule_status(rule_id: int):
    session = db_session()
    rule = _rule_or_404(rule_id)
    active = request.form.get("active") == "1"
    if not active and rule.active and request.form.get("confirmar") != "1":
        return render_template("pages/confirm.html", **_disable_rule_question(session, rule))
    coupons.set_rule_active(session, rule, active)
    session.commit()
    flash(f"Regra “{rule.name}” {'reativada' if active else 'desativada: seus cupons deixam de valer'}.", "info")
    return redirect(url_for(".coupon_rules")), 303


def _disable_rule_question(session, rule: CouponRule) -> dict:
    """The confirmation page of disabling a coupon rule: the codes that stop working, the recoverer's settings
    that lose their coupon."""
    outstanding = session.scalar(select(func.count()).select_from(Coupon).where(
        Coupon.rule_id == rule.id, Coupon.redeemed_at.is_(None), Coupon.expires_at > utcnow())) or 0
    if outstanding:
        codes = ("1 cupom já enviado e ainda não usado deixa" if outstanding == 1 else
                 f"{outstanding} cupons já enviados e ainda não usados deixam")
        lines = [f"{codes} de valer: quem tentar usar não recebe o desconto."]
    else:
        lines = ["Nenhum cupom desta regra enviado e ainda válido: nenhum cliente perde um desconto já recebido."]
    settings = load_settings(session)
    variants = [name for name, rule_id in (("A", settings.coupon_rule_id), ("B", settings.variant_b_coupon_rule_id))
                if rule_id == rule.id]
    if variants:
        lines.append(f"A recuperação usa esta regra na variante {' e '.join(variants)}: as próximas mensagens "
                     "saem sem cupom até você escolher outra regra.")
    lines.append("Nenhum código novo é criado com ela. Dá para reativar depois.")
    return {"title": f"Desativar a regra “{rule.name}”?", "consequences": lines,
            "action": url_for(".coupon_rule_status", rule_id=rule.id), "fields": [("active", "0")],
            "confirm_label": "Sim, desativar", "cancel_url": url_for(".coupon_rules")}


# --- bot texts and FAQ -------------------------------------------------------------------------------------


@bp.get("/robo")
@allowed(Action.CONFIGURE_BRAND)
def bot():
    session = db_session()
    rows = [(key, texts.description(key), texts.current_source(session, key)[1]) for key in texts.available_keys()]
    entries = session.scalars(select(FaqEntry).order_by(FaqEntry.position, FaqEntry.id)).all()
    return render_template("pages/console/bot.html", texts=rows, entries=entries)


def _text_key_or_404(key: str) -> str:
    if key not in texts.SAMPLES or key not in texts.available_keys():
        abort(404)
    return key


@bp.route("/robo/textos/<key>", methods=["GET", "POST"])
@allowed(Action.CONFIGURE_BRAND)
def bot_text(key: str):
    session = db_session()
    key = _text_key_or_404(key)
    store_name = runtime().settings.store_name
    source, overridden = texts.current_source(session, key)
    error = None
    if request.method == "POST":
        source = request.form.get("body", "")
        try:
            texts.save_override(session, key, source, store_name=store_name)
        except TemplateRenderError as exc:
            session.rollback()
            error = exc.message
        else:
            session.commit()
            flash("Texto salvo: o robô já usa a nova versão.", "info")
            return redirect(url_for(".bot_text", key=key)), 303
    preview, preview_error = _preview_bot(key, source)
    return render_template("pages/console/bot_text.html", key=key, label=texts.description(key), source=source,
                           overridden=overridden, error=error, preview=preview, preview_error=preview_error,
                           variables=texts.variables_of(key)), 400 if error else 200


def _preview_bot(key: str, source: str) -> tuple[str, str | None]:
    try:
        return texts.preview(db_session(), key, source, store_name=runtime().settings.store_name), None
    except TemplateRenderError as exc:
        return "", exc.message


@bp.post("/robo/textos/<key>/previa")
@allowed(Action.CONFIGURE_BRAND)
def bot_text_preview(key: str):
    text, error = _preview_bot(_text_key_or_404(key), request.form.get("body", ""))
    return jsonify(ok=error is None, preview=text, error=error)


@bp.post("/robo/textos/<key>/restaurar")
@allowed(Action.CONFIGURE_BRAND)
def bot_text_reset(key: str):
    session = db_session()
    key = _text_key_or_404(key)
    if request.form.get("confirmar") != "1":
        overridden = texts.current_source(session, key)[1]
        lines = ([f"O texto personalizado de “{texts.description(key)}” é apagado e o robô volta a usar o texto "
                  "original já na próxima conversa.", "Não dá para desfazer: copie o texto atual antes, se quiser "
                  "guardá-lo."] if overridden else
                 [f"“{texts.description(key)}” já usa o texto original: nada muda."])
        return render_template("pages/confirm.html", title="Restaurar o texto original?", consequences=lines,
                               action=url_for(".bot_text_reset", key=key), fields=[],
                               confirm_label="Sim, restaurar o original", cancel_url=url_for(".bot_text", key=key))
    texts.reset_override(session, key)
    session.commit()
    flash("Texto original restaurado.", "info")
    return redirect(url_for(".bot_text", key=key)), 303


def _faq_values() -> dict:
    return {"title": request.form.get("title", ""), "keywords": request.form.get("keywords", ""),
            "answer": request.form.get("answer", ""), "position": request.form.get("position", "0"),
            "active": request.form.get("active") in ("on", "1", "true"),
            "examples": request.form.get("examples", "")}


@bp.route("/robo/duvidas/nova", methods=["GET", "POST"], defaults={"entry_id": None})
@bp.route("/robo/duvidas/<id:entry_id>", methods=["GET", "POST"])
@allowed(Action.CONFIGURE_BRAND)
def faq_entry(entry_id: int | None):
    session = db_session()
    entry = None
    if entry_id is not None:
        entry = session.get(FaqEntry, entry_id)
        if entry is None:
            abort(404)
    errors = {}
    if request.method == "POST":
        try:
            faq.save_entry(session, entry, **_faq_values())
        except faq.FaqInvalid as exc:
            session.rollback()
            errors = exc.errors
        else:
            session.commit()
            flash("Dúvida salva.", "info")
            return redirect(url_for(".bot")), 303
    title = request.form.get("title", entry.title if entry else "")
    answer = request.form.get("answer", entry.answer if entry else "")
    preview = ""
    if answer.strip():
        try:
            preview = _faq_preview(title[:120], answer)
        except TemplateRenderError as exc:
            errors.setdefault("answer", exc.message)
    return render_template("pages/console/faq_entry.html", entry=entry, errors=errors, form=request.form,
                           preview=preview), 400 if errors else 200


def _faq_preview(title: str, answer: str) -> str:
    session = db_session()
    return texts.render(session, "faq_answer", store_name=runtime().settings.store_name, titulo=title,
                        resposta=answer)


@bp.post("/robo/duvidas/previa")
@allowed(Action.CONFIGURE_BRAND)
def faq_preview():
    """Live preview of an answer as the bot sends it (through the store's faq_answer text)."""
    title, answer = request.form.get("title", "").strip(), request.form.get("answer", "").strip()
    if not answer:
        return jsonify(ok=False, preview="", error="informe a resposta")
    if len(answer) > MAX_FAQ_ANSWER:
        return jsonify(ok=False, preview="", error=f"no máximo {MAX_FAQ_ANSWER} caracteres")
    try:
        return jsonify(ok=True, preview=_faq_preview(title[:120], answer), error=None)
    except TemplateRenderError as exc:
        return jsonify(ok=False, preview="", error=exc.message)


# --- catalog -----------------------------------------------------------------------------------------------


@bp.route("/catalogo", methods=["GET", "POST"])
@allowed(Action.READ_CATALOG)
def catalog():
    session = db_session()
    row_errors: list[tuple[int, str, str]] = []
    status = 200
    upload_form = {"formato": "auto", "desativar_ausentes": False}
    if request.method == "POST":
        if not may(current_user, Action.CONFIGURE_BRAND):
            abort(403)
        upload = request.files.get("arquivo")
        upload_form = {"formato": request.form.get("formato", "auto"),
                       "desativar_ausentes": request.form.get("desativar_ausentes") == "1"}
        if upload_form["formato"] not in CATALOG_FORMATS:
            row_errors, status = [(0, "formato", "escolha um dos formatos da lista")], 400
        elif upload is None or not upload.filename:
            row_errors, status = [(0, "arquivo", "escolha um arquivo .csv ou .json")], 400
        else:
            row_errors, status = _import_upload(session, upload, upload_form["formato"],
                                                upload_form["desativar_ausentes"])
            if not row_errors:
                return redirect(url_for(".catalog")), 303
    q = request.args.get("q", "").strip()[:100]
    page = _page()
    query = select(Product)
    if q:
        like = f"%{q.lower()}%"
        by_sku = select(Variant.product_id).where(func.lower(Variant.sku).like(like))
        query = query.where(or_(func.lower(Product.name).like(like), func.lower(Product.key).like(like),
                                Product.id.in_(by_sku),
                                func.lower(Product.category).like(like), func.lower(Product.brand).like(like)))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    products = session.scalars(query.options(selectinload(Product.variants)).order_by(Product.name, Product.id)
                               .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return render_template("pages/console/catalog.html", entries=[_catalog_entry(p) for p in products], q=q,
                           page=page, total=total, pages=max(1, -(-total // PAGE_SIZE)), row_errors=row_errors,
                           formats=CATALOG_FORMAT_CHOICES, upload_form=upload_form), status


CATALOG_FORMAT_CHOICES = [
    ("auto", "Reconhecer pelo arquivo"),
    ("csv", "Planilha CSV no nosso modelo"),
    ("json", "JSON no nosso modelo"),
    ("shopify", "Exportação de produtos da Shopify"),
    ("nuvemshop", "Exportação de produtos da Nuvemshop"),
]
_STATE_LABELS = {"ok": "disponível", "out": "esgotada", "off": "inativa"}


def _catalog_entry(product: Product) -> dict:
    """A product for the list: its variants grouped by colour, each size a chip (sold out, inactive)."""
    groups: dict[str | None, list[dict]] = {}
    counts = {"ok": 0, "out": 0, "off": 0}
    live_prices = set()
    for variant in product.variants:
        state = "off" if not variant.active else "ok" if variant.available else "out"
        counts[state] += 1
        if variant.active:
            live_prices.add(variant.price)
        others = [str(value) for name, value in (variant.options or {}).items()
                  if value and str(value) != (variant.color or "")]
        label = " · ".join(others) or variant.sku
        stock = "estoque não controlado" if variant.stock is None else f"{variant.stock} em estoque"
        groups.setdefault(variant.color, []).append({
            "label": label, "state": state, "stock": variant.stock, "state_label": _STATE_LABELS[state],
            "title": f"SKU {variant.sku} · {stock}" + ("" if state == "ok" else f" · {_STATE_LABELS[state]}"),
        })
    parts = [_plural(len(product.variants), "variante", "variantes")]
    if counts["out"]:
        parts.append(_plural(counts["out"], "esgotada", "esgotadas"))
    if counts["off"]:
        parts.append(_plural(counts["off"], "inativa", "inativas"))
    single = len(product.variants) == 1 and not (product.variants[0].options or {})
    return {"product": product, "groups": list(groups.items()), "summary": " · ".join(parts),
            "from_price": len(live_prices) > 1, "single": product.variants[0] if single else None}


def _plural(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def _import_upload(session, upload, file_format: str,
                   deactivate_missing: bool) -> tuple[list[tuple[int, str, str]], int]:
    suffix = Path(upload.filename).suffix.lower()
    data = upload.read()  # bounded by the app's MAX_CONTENT_LENGTH (413 page beyond it)
    # import_catalog reads a path (the CLI's interface): the upload goes through a private temporary file.
    with tempfile.TemporaryDirectory() as folder:
        safe = suffix[1:].isascii() and suffix[1:].isalnum() and len(suffix) <= 9
        path = Path(folder) / f"catalogo{suffix if safe else ''}"
        path.write_bytes(data)
        try:
            report = import_catalog(session, path, format=file_format, deactivate_missing=deactivate_missing)
        except CatalogImportError as exc:
            session.rollback()
            return [(e.line, e.field, e.message) for e in exc.errors], 400
    session.commit()
    flash(_import_summary(report), "info")
    return [], 303


def _import_summary(report: ImportReport) -> str:
    """'Catálogo importado (Shopify): 2 produtos novos, 1 atualizado; 11 variantes novas, 2 atualizadas.'"""
    label = CATALOG_FORMAT_LABELS.get(report.format, report.format)
    if report.legacy:
        label += ", formato antigo: cada tamanho da coluna tamanhos virou uma variante"
    products = [text for count, text in (
        (report.products_created, _plural(report.products_created, "produto novo", "produtos novos")),
        (report.products_updated, _plural(report.products_updated, "produto atualizado", "produtos atualizados")),
        (report.products_unchanged, _plural(report.products_unchanged, "produto sem mudança", "produtos sem mudança")),
    ) if count]
    variants = [text for count, text in (
        (report.variants_created, _plural(report.variants_created, "variante nova", "variantes novas")),
        (report.variants_updated, _plural(report.variants_updated, "variante atualizada", "variantes atualizadas")),
        (report.variants_deactivated, _plural(report.variants_deactivated, "variante desativada",
                                              "variantes desativadas")),
    ) if count]
    details = "; ".join(", ".join(group) for group in (products, variants) if group) or "nada mudou"
    return f"Catálogo importado ({label}): {details}."


# --- conversations -----------------------------------------------------------------------------------------


@bp.get("/conversas")
@allowed(Action.READ_CONVERSATIONS)
def conversations():
    session = db_session()
    page = _page()
    q = request.args.get("q", "").strip()[:60]
    latest = (select(Message.customer_id, func.max(Message.id).label("last_id"))
              .group_by(Message.customer_id).subquery())
    query = (select(Customer, Message).join(latest, latest.c.customer_id == Customer.id)
             .join(Message, Message.id == latest.c.last_id).where(access.customer_clause(session, current_user)))
    if q:
        digits = "".join(ch for ch in q if ch.isdigit())
        conditions = [func.lower(Customer.name).like(f"%{q.lower()}%")]
        if digits:
            conditions.append(Customer.phone.like(f"%{digits}%"))
        query = query.where(or_(*conditions))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.execute(query.order_by(Message.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return render_template("pages/console/conversations.html", rows=rows, page=page, q=q,
                           pages=max(1, -(-total // PAGE_SIZE)), Direction=Direction)


@bp.get("/conversas/<id:customer_id>")
@allowed(Action.READ_CONVERSATIONS)
def conversation(customer_id: int):
    session = db_session()
    customer = session.get(Customer, customer_id)
    if customer is None or not access.may_see_customer(session, current_user, customer):
        abort(404)
    messages = session.scalars(select(Message).where(Message.customer_id == customer.id)
                               .order_by(Message.created_at.desc(), Message.id.desc()).limit(200)).all()
    return render_template("pages/console/conversation.html", customer=customer, messages=list(reversed(messages)),
                           Direction=Direction)


@bp.get("/descadastros")
@allowed(Action.READ_CONVERSATIONS)
def opt_outs():
    session = db_session()
    page = _page()
    query = select(Customer).where(Customer.opted_out_at.is_not(None), access.customer_clause(session, current_user))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    customers = session.scalars(query.order_by(Customer.opted_out_at.desc()).limit(PAGE_SIZE)
                                .offset((page - 1) * PAGE_SIZE)).all()
    return render_template("pages/console/opt_outs.html", customers=customers, total=total, page=page,
                           pages=max(1, -(-total // PAGE_SIZE)))
