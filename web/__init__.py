"""HTTP edge: blueprints only. Views parse and check input, then call plain-Python core functions."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, jsonify, request
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
