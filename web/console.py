"""The merchant console: recoverer settings and message, coupon rules, the bot's texts and FAQ, the catalog,
conversations and the results dashboard.

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
from catalog.importing import FORMAT_LABELS as CATALOG_FORMAT_LABELS
from catalog.importing import FORMATS as CATALOG_FORMATS
from catalog.importing import CatalogImportError, ImportReport, import_catalog
from core.inputs import InputError, parse_id, parse_page
from core.templating import TemplateRenderError
from crm import access
from crm.access import Action, may
from models import (
    Customer, CouponKind, CouponRule, Direction, FaqEntry, FrequencyUnit, Message, Product, Variant,
)
from recovery import coupons
from recovery.config import FIELDS, SettingsInvalid, as_dict, load_settings, update_settings
from recovery.messages import VARIABLES, sample_variables, validate_template
from recovery.stats import funnel, recovery_stats
from web import charts
from web.context import db_session, runtime
from web.auth import allowed
from web.formatting import LABELS
from web.seller import requested_days

bp = Blueprint("console", __name__, url_prefix="/console")

PAGE_SIZE = 50
# The settings page's fields (the message texts have their own page).
SETTINGS_FORM = ("enabled", "delay_minutes", "coupon_rule_id", "coupon_validity_hours", "frequency_count",
                 "frequency_unit", "coupon_use_pause_days", "quiet_start", "quiet_end", "variant_b_percent",
                 "variant_b_coupon_rule_id", "attribution_days", "max_age_hours", "coupon_url_pattern")
TEMPLATE_FORM = ("template", "variant_b_template")
MAX_FAQ_ANSWER = 1200  # bot.faq.save_entry refuses longer answers
FUNNEL_LABELS = {"tracked": "Acompanhados", "due": "Prazo vencido", "sent": "Enviadas", "delivered": "Entregues",
                 "read": "Lidas", "recovered": "Recuperados"}


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
    steps = [(key, FUNNEL_LABELS[key], count) for key, count in funnel(session, stats, start=first, end=last, tz=tz)]
    totals = stats["totals"]
    days = [(date.fromisoformat(d["date"]), Decimal(d["recovered_revenue"])) for d in stats["by_day"]]
    variants = [(f"Variante {v}", m["sent"], m["recovered_orders"], m["conversion_rate"])
                for v, m in stats["by_variant"].items() if v == "A" or m["attempts"]]
    reasons = sorted(((LABELS.get(r, r), n) for r, n in totals["skipped_by_reason"].items()), key=lambda x: -x[1])
    errors = sorted(((r, LABELS.get(r, r), n) for r, n in totals["errors_by_reason"].items()), key=lambda x: -x[2])
    figures = {
        "funnel": charts.funnel_chart(steps),
        "revenue": charts.revenue_chart(days),
        "variants": charts.variant_chart([(label, sent, rec) for label, sent, rec, _ in variants]),
        "skipped": charts.skipped_chart(reasons) if reasons else None,
    }
    return render_template("pages/console/dashboard.html", first=first.isoformat(), last=last.isoformat(),
                           totals=totals, steps=steps, days=days, variants=variants, reasons=reasons, errors=errors,
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
                           previews=previews), 400 if errors else 200


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


# --- coupon rules ------------------------------------------------------------------------------------------


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
                           in_use=in_use), 400 if errors else 200


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
    coupons.set_rule_active(session, rule, active)
    session.commit()
    flash(f"Regra “{rule.name}” {'reativada' if active else 'desativada: seus cupons deixam de valer'}.", "info")
    return redirect(url_for(".coupon_rules")), 303


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
    texts.reset_override(session, _text_key_or_404(key))
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
