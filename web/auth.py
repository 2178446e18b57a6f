"""Sessions for people (Flask-Login over server-side session rows), CSRF on every form (Flask-WTF), the sign-in
throttle, one's own password, and the access check every page uses (``allowed``, backed by crm.access). The JSON
API authenticates with bearer tokens instead (web.api_auth) and is CSRF-exempt, as are the signed webhooks and the
development simulator."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, session as cookie, url_for
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from core.security import MAX_PASSWORD_LENGTH, hash_token, verify_password
from crm import users
from crm.access import Action, may
from models import Role, User, utcnow
from web import limits
from web.context import db_session, runtime

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()

# Sign-in throttle (web.limits.login_attempt): attempts per 15 minutes before a lock of 1 min, 2, 4 … 60 min.
PAIR_LIMIT = 5  # per (e-mail, client IP): guessing one account's password from one place
IP_LIMIT = 20  # per client IP, whatever the e-mail: one place trying many accounts
ATTEMPT_WINDOW = 15 * 60
BASE_LOCK = 60
MAX_LOCK = 3600
SESSION_TOKEN = "sid"  # the key of the server-side session's token in Flask's signed cookie
HOME_BY_ROLE = {Role.SELLER: "seller.queue"}
DEFAULT_HOME = "console.dashboard"


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired("Informe o e-mail."), Length(max=254)])
    password = PasswordField("Senha", validators=[DataRequired("Informe a senha."), Length(max=MAX_PASSWORD_LENGTH)])


class PasswordForm(FlaskForm):
    current = PasswordField("Senha atual", validators=[DataRequired("Informe a senha atual."),
                                                       Length(max=MAX_PASSWORD_LENGTH)])
    new = PasswordField("Nova senha", validators=[DataRequired("Informe a nova senha."),
                                                  Length(max=MAX_PASSWORD_LENGTH)])
    repeat = PasswordField("Repita a nova senha", validators=[DataRequired("Repita a nova senha.")])


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    """The user of this browser's server-side session: revoked, expired or unknown sessions sign nobody in, so a
    cookie copied before /sair, a password change or a deactivation opens nothing."""
    token = cookie.get(SESSION_TOKEN)
    if not isinstance(token, str) or not user_id.isdigit():
        return None
    now = utcnow()
    row = users.live_session(db_session(), token, now)
    if row is None or row.user_id != int(user_id):
        return None
    if users.needs_touch(row, now):
        # Its own short transaction: the request's session may be half-way through the view's changes.
        with runtime().db.session() as touch:
            users.touch_session(touch, row.id, now)
            touch.commit()
    return row.user


def _client_identifier() -> str:
    """Flask-Login's "strong" protection ties a session to the client's address and browser. Its default reads
    X-Forwarded-For from the request, which any client can set; the address comes from ``request.remote_addr``
    instead, which ProxyFix rewrites only for the TRUSTED_PROXIES the operator declared."""
    agent = request.headers.get("User-Agent", "")
    return hash_token(f"{request.remote_addr or ''}|{agent}")


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
    login_manager._session_identifier_generator = _client_identifier
    csrf.init_app(app)
    for blueprint in exempt_blueprints:
        csrf.exempt(blueprint)
    app.register_blueprint(bp)


def allowed(action: Action):
    """Decorate a page: anonymous visitors go to the login page, a user whose kind may not ``action`` gets 403.
    Row scope (which customers, opportunities, sellers) is the view's job, through crm.access."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not may(current_user, action):
                abort(403)
            return view(*args, **kwargs)

        wrapper.required_action = action  # lets a test prove every page declares its access rule
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


def _throttle_prefixes(email: str) -> tuple[str, str]:
    rt = runtime()
    ip = request.remote_addr or "?"
    # Hashed: no e-mail address in Redis keys.
    return rt.keys("rl", "login", "pair", hash_token(f"{email}|{ip}")), rt.keys("rl", "login", "ip", ip)


def _locked_page(form, wait: int):
    minutes = max(1, -(-wait // 60))
    flash(f"Muitas tentativas. Aguarde {minutes} minuto{'s' if minutes > 1 else ''} e tente de novo.", "error")
    return render_template("pages/login.html", form=form), 429, {"Retry-After": str(wait)}


@bp.route("/entrar", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        pair, ip = _throttle_prefixes(email)
        client = runtime().redis
        # Counted before the password is looked at, atomically: parallel guesses cannot all pass the check.
        permitted, wait = limits.login_attempt(client, [(pair, PAIR_LIMIT), (ip, IP_LIMIT)], window=ATTEMPT_WINDOW,
                                               base_lock=BASE_LOCK, max_lock=MAX_LOCK)
        if not permitted:
            return _locked_page(form, wait)
        session = db_session()
        user = session.scalar(select(User).where(User.email == email))
        password_ok = verify_password(user.password_hash if user is not None else None, form.password.data)
        if user is not None and user.active and password_ok:
            limits.login_succeeded(client, pair, ip)
            token = users.start_session(session, user, utcnow(), ip=request.remote_addr,
                                        user_agent=request.headers.get("User-Agent"))
            session.commit()
            cookie.clear()  # no state from before the sign-in survives it (session fixation)
            cookie[SESSION_TOKEN] = token
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
        flash("E-mail ou senha incorretos.", "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("pages/login.html", form=form), status


@bp.post("/sair")
def logout():
    token = cookie.get(SESSION_TOKEN)
    if isinstance(token, str):
        session = db_session()
        users.end_session(session, token, utcnow())
        session.commit()
    logout_user()
    cookie.clear()
    flash("Você saiu.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/conta/senha", methods=["GET", "POST"])
@allowed(Action.OWN_ACCOUNT)
def change_password():
    """One's own password. Every other session of the user ends (a cookie copied elsewhere stops working)."""
    form = PasswordForm()
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        session = db_session()
        user = session.get(User, current_user.id)
        if not verify_password(user.password_hash, form.current.data):
            errors["current"] = "A senha atual não confere."
        elif form.new.data != form.repeat.data:
            errors["repeat"] = "As duas senhas novas são diferentes."
        else:
            try:
                users.set_password(session, user, form.new.data, utcnow(), keep_token=cookie.get(SESSION_TOKEN))
            except users.UserError as exc:
                errors["new"] = exc.message
            else:
                session.commit()
                flash("Senha alterada. As outras sessões abertas com a senha antiga foram encerradas.", "info")
                return redirect(home_for(user)), 303
        session.rollback()
    elif request.method == "POST":
        errors = {name: field.errors[0] for name, field in form._fields.items() if field.errors}
    return render_template("pages/password.html", form=form, errors=errors), 400 if errors else 200
