"""Sessions for people (Flask-Login), CSRF on every form (Flask-WTF), login rate limits, and the role check
every page uses. The JSON API authenticates with bearer tokens instead (web.api_auth) and is CSRF-exempt, as are
the signed webhooks and the development simulator."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from core.security import hash_token, verify_password
from models import Role, User
from web import db_session, limits, runtime

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()

MAX_FAILURES = 5  # per e-mail and per client IP
FAILURE_WINDOW = 15 * 60  # seconds
HOME_BY_ROLE = {Role.SELLER: "seller.queue"}
DEFAULT_HOME = "console.dashboard"


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired("Informe o e-mail."), Length(max=254)])
    password = PasswordField("Senha", validators=[DataRequired("Informe a senha."), Length(max=200)])


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    if not user_id.isdigit():
        return None
    user = db_session().get(User, int(user_id))
    return user if user is not None and user.active else None


def init_auth(app: Flask, exempt_blueprints: list[Blueprint]) -> None:
    if app.extensions["runtime"].settings.is_production:
        # In production the session cookie is always Secure, even if PUBLIC_BASE_URL was left on http://.
        # Elsewhere it follows PUBLIC_BASE_URL (app.py), so a development login on http://127.0.0.1 works.
        app.config["SESSION_COOKIE_SECURE"] = True
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config.get("SESSION_COOKIE_SECURE", False))
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 8 * 3600)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Entre para continuar."
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    for blueprint in exempt_blueprints:
        csrf.exempt(blueprint)
    app.register_blueprint(bp)


def roles_required(*roles: Role):
    """Decorate a page: anonymous visitors go to the login page, a role outside ``roles`` gets 403."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        wrapper.required_roles = roles  # lets a test prove every page declares its roles
        return wrapper

    return decorator


def home_for(user: User) -> str:
    return url_for(HOME_BY_ROLE.get(user.role, DEFAULT_HOME))


def _safe_next(target: str | None) -> str | None:
    """Only a local path: never an open redirect to another site."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def _failure_keys(email: str) -> list[str]:
    rt = runtime()
    # Hashed: no e-mail address in Redis keys.
    return [rt.keys("rl", "login", "email", hash_token(email)), rt.keys("rl", "login", "ip", request.remote_addr or "?")]


@bp.route("/entrar", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        keys = _failure_keys(email)
        client = runtime().redis
        if any(limits.count(client, key) >= MAX_FAILURES for key in keys):
            flash("Muitas tentativas. Aguarde 15 minutos e tente de novo.", "error")
            return render_template("pages/login.html", form=form), 429
        user = db_session().scalar(select(User).where(User.email == email))
        if user is not None and user.active and verify_password(user.password_hash, form.password.data):
            client.delete(keys[0])
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
        for key in keys:
            limits.hit(client, key, FAILURE_WINDOW)
        flash("E-mail ou senha incorretos.", "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("pages/login.html", form=form), status


@bp.post("/sair")
def logout():
    logout_user()
    flash("Você saiu.", "info")
    return redirect(url_for("auth.login"))
