"""Flask application factory: `flask --app app ...` and `gunicorn 'app:create_app()'`."""

from __future__ import annotations

from typing import Any, Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from core.logging import configure_logging
from core.runtime import Runtime
from core.settings import PROJECT_ROOT, Settings


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` may carry ``RUNTIME`` (tests inject theirs) or plain Flask settings."""
    config = dict(config or {})
    runtime: Runtime = config.pop("RUNTIME", None) or Runtime(Settings.from_env())
    settings = runtime.settings
    configure_logging(settings.secret_values())

    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "web" / "static"),
        instance_path=str(settings.instance_path),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.config.update(config)
    app.extensions["runtime"] = runtime
    if settings.trusted_proxies:
        # Behind a load balancer: client IPs (rate limits) and the scheme come from its headers.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)

    from web import init_app as init_web

    init_web(app)

    from web.cli import register_cli

    register_cli(app)
    return app
