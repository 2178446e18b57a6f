"""HTTP edge: blueprints only. Views parse and check input, then call plain-Python core functions."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from core.inputs import InputError
from web import context
from web.period import PeriodInvalid

log = logging.getLogger(__name__)


# Error pages a person may meet, in the console's language (Werkzeug's own pages are in English).
PAGE_ERRORS = {
    400: ("Pedido inválido", "Não foi possível entender o que foi enviado. Volte e tente de novo."),
    404: ("Página não encontrada", "O endereço não existe ou o item foi removido."),
    405: ("Ação não permitida", "Esta página não aceita essa ação. Volte e use os botões da página."),
}


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/webhooks/", "/healthz", "/openapi"))


class RowIdConverter(IntegerConverter):
    """``<id:name>``: a positive integer that fits a database id column. A larger number is a 404 like any
    unknown id, not an integer overflow in the database (a 500)."""

    def __init__(self, url_map) -> None:
        super().__init__(url_map, min=1, max=2**31 - 1)


def init_app(app: Flask) -> None:
    app.url_map.converters["id"] = RowIdConverter
    context.init_app(app)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if _wants_json():
            return jsonify(error=exc.name, message=exc.description), exc.code
        if exc.code == 403:
            return render_template("pages/forbidden.html"), 403
        if exc.code == 413:
            limit = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) // (1024 * 1024)
            return render_template("pages/error.html", title="Arquivo grande demais",
                                   message=f"Envie arquivos de até {limit} MB. Divida a planilha em partes, se preciso."), 413
        if isinstance(exc, CSRFError):
            # The form's token is missing or older than WTF_CSRF_TIME_LIMIT (a page left open overnight).
            return render_template("pages/error.html", title="A página expirou",
                                   message="Por segurança, cada formulário vale por algumas horas. Recarregue a "
                                           "página e envie de novo."), 400
        if exc.code in PAGE_ERRORS:
            title, message = PAGE_ERRORS[exc.code]
            return render_template("pages/error.html", title=title, message=message), exc.code
        return exc  # redirects (e.g. /console -> /console/) and the rest keep Werkzeug's response

    @app.before_request
    def _refuse_nul_characters():
        # No person types a NUL, and PostgreSQL cannot store one: refuse it in any query or form value at the door
        # (400 naming the field) rather than in each view. Webhooks check their signature first, then their form.
        if request.blueprint in ("webhooks", "store_webhooks", "shop_webhooks"):
            return
        for source in (request.args, request.form):
            for key, value in source.items(multi=True):
                if "\x00" in key or "\x00" in value:
                    raise InputError(key.replace("\x00", "")[:40] or "?", "contém um caractere inválido (NUL)")

    @app.errorhandler(InputError)
    def _bad_input(exc: InputError):
        # A parameter or field that cannot be used: the field and why, never a 500.
        if _wants_json():
            return jsonify(error="invalid parameters", fields={exc.field: exc.message}), 400
        return render_template("pages/error.html", title="Valor inválido",
                               message=f"O campo “{exc.field}” não pôde ser usado: {exc.message}."), 400

    @app.errorhandler(PeriodInvalid)
    def _bad_period(exc: PeriodInvalid):
        # A page's period form with a day that cannot be read: the form again, with each field's error.
        if _wants_json():
            return jsonify(error="invalid parameters", fields=exc.errors), 400
        return render_template("pages/period_error.html", first=exc.values.get("de", ""),
                               last=exc.values.get("ate", ""), period_errors=exc.errors), 400

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return jsonify(error="Internal Server Error"), 500
        return "Erro interno. Tente novamente em instantes.", 500

    from web.api import bp as api_bp
    from web.crm_api import bp as crm_api_bp
    from web.health import bp as health_bp
    from web.openapi import bp as openapi_bp
    from web.simulator import bp as simulator_bp
    from web.shop_webhooks import bp as shop_webhooks_bp
    from web.store_webhooks import bp as store_webhooks_bp
    from web.webhooks import bp as webhooks_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(store_webhooks_bp)
    app.register_blueprint(shop_webhooks_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(crm_api_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(simulator_bp)

    from web import formatting
    from web.auth import init_auth
    from web.console import bp as console_bp
    from web.customers import bp as customers_bp
    from web.golive import bp as golive_bp
    from web.manager import bp as manager_bp
    from web.replies import bp as replies_bp
    from web.seller import bp as seller_bp

    # Bearer-token API, signed webhooks, probes and the development simulator carry no browser session.
    init_auth(app, exempt_blueprints=[api_bp, crm_api_bp, webhooks_bp, store_webhooks_bp, shop_webhooks_bp, health_bp,
                                      openapi_bp, simulator_bp])
    app.register_blueprint(seller_bp)
    app.register_blueprint(manager_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(customers_bp)
    app.register_blueprint(golive_bp)
    app.register_blueprint(replies_bp)
    formatting.register(app, app.extensions["runtime"].settings.store_timezone)
    app.add_url_rule("/", "index", lambda: redirect(url_for("auth.login")))

    @app.after_request
    def _page_headers(response):
        # Pages load nothing from elsewhere and run only our own static scripts; charts are inline SVG whose
        # <style> needs inline styles. Nothing may frame the pages (clickjacking of the console's forms).
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                        "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
            response.headers.setdefault("X-Frame-Options", "DENY")
        if request.endpoint != "static":
            # Pages and answers carry personal data (conversations, phones, results): no browser or proxy keeps
            # a copy, and the back button after /sair does not show them again.
            response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.context_processor
    def _store_name():
        return {"store_name": app.extensions["runtime"].settings.store_name}
