"""HTTP edge: blueprints only. Views parse and check input, then call plain-Python core functions."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from core.runtime import Runtime

log = logging.getLogger(__name__)


def runtime() -> Runtime:
    return current_app.extensions["runtime"]


def db_session() -> Session:
    """The request's session, opened on first use and closed when the request ends."""
    if "db_session" not in g:
        g.db_session = runtime().db.session()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/webhooks/", "/healthz", "/openapi"))


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_session)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if _wants_json():
            return jsonify(error=exc.name, message=exc.description), exc.code
        if exc.code == 403:
            return render_template("pages/forbidden.html"), 403
        return exc

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
    from web.store_webhooks import bp as store_webhooks_bp
    from web.webhooks import bp as webhooks_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(store_webhooks_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(crm_api_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(simulator_bp)

    from web import formatting
    from web.auth import init_auth
    from web.manager import bp as manager_bp
    from web.seller import bp as seller_bp

    # Bearer-token API, signed webhooks, probes and the development simulator carry no browser session.
    init_auth(app, exempt_blueprints=[api_bp, crm_api_bp, webhooks_bp, store_webhooks_bp, health_bp, openapi_bp,
                                      simulator_bp])
    app.register_blueprint(seller_bp)
    app.register_blueprint(manager_bp)
    formatting.register(app, app.extensions["runtime"].settings.store_timezone)
    app.add_url_rule("/", "index", lambda: redirect(url_for("auth.login")))

    @app.context_processor
    def _store_name():
        return {"store_name": app.extensions["runtime"].settings.store_name}
