"""Creating users and API tokens; plain functions over a Session."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.inputs import EMAIL, MAX_EMAIL
from core.security import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, hash_password, hash_token, new_api_token
from models import ApiToken, Role, User, UserSession


class UserError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def create_user(
    session: Session, *, email: str, role: str, password: str, name: str | None = None, store_id: int | None = None
) -> User:
    email = email.strip().lower()
    if len(email) > MAX_EMAIL or not EMAIL.match(email):
        raise UserError("email", "e-mail inválido")
    try:
        role_value = Role(role)
    except ValueError:
        raise UserError("role", f"papel inválido; use um de: {', '.join(r.value for r in Role)}") from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError("password", f"a senha precisa ter pelo menos {MIN_PASSWORD_LENGTH} caracteres")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError("password", f"a senha pode ter no máximo {MAX_PASSWORD_LENGTH} caracteres")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserError("email", "já existe um usuário com este e-mail")
    user = User(
        email=email,
        name=name or email.split("@", 1)[0],
        role=role_value,
        password_hash=hash_password(password),
        store_id=store_id,
        active=True,
        region_ddds=[],
    )
    session.add(user)
    session.flush()
    return user


def issue_api_token(session: Session, email: str) -> str:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise UserError("email", "usuário não encontrado")
    token, digest = new_api_token()
    session.add(ApiToken(user_id=user.id, token_hash=digest))
    session.flush()
    return token


# --- sessions: one row per signed-in browser, revocable from the server -------------------------------------

SESSION_IDLE = timedelta(hours=12)  # a browser left alone this long signs in again
SESSION_LIFETIME = timedelta(days=7)  # and in any case once a week
TOUCH_EVERY = timedelta(minutes=5)  # last_seen_at is written at most this often (not on every request)


def start_session(session: Session, user: User, now: datetime, *, ip: str | None, user_agent: str | None) -> str:
    """A new session for ``user``; returns the token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(UserSession(user_id=user.id, token_hash=hash_token(token), created_at=now, last_seen_at=now,
                            ip=(ip or "")[:45] or None, user_agent=(user_agent or "")[:200] or None))
    session.flush()
    return token


def live_session(session: Session, token: str, now: datetime) -> UserSession | None:
    """The live session of an active user for this token, or None (unknown, revoked, idle too long, too old,
    user inactive)."""
    row = session.scalar(select(UserSession).where(UserSession.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        return None
    if now - row.last_seen_at > SESSION_IDLE or now - row.created_at > SESSION_LIFETIME:
        return None
    return row if row.user.active else None


def needs_touch(row: UserSession, now: datetime) -> bool:
    return now - row.last_seen_at > TOUCH_EVERY


def touch_session(session: Session, session_id: int, now: datetime) -> None:
    session.execute(update(UserSession).where(UserSession.id == session_id).values(last_seen_at=now))


def end_session(session: Session, token: str, now: datetime) -> None:
    session.execute(update(UserSession).where(UserSession.token_hash == hash_token(token),
                                              UserSession.revoked_at.is_(None)).values(revoked_at=now))


def revoke_sessions(session: Session, user_id: int, now: datetime, *, keep_token: str | None = None) -> int:
    """End every session of a user (password change, deactivation), optionally but the caller's own."""
    query = update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
    if keep_token is not None:
        query = query.where(UserSession.token_hash != hash_token(keep_token))
    return session.execute(query.values(revoked_at=now)).rowcount or 0


def revoke_api_tokens(session: Session, user_id: int, now: datetime) -> int:
    return session.execute(update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
                           .values(revoked_at=now)).rowcount or 0


def set_password(session: Session, user: User, password: str, now: datetime, *, keep_token: str | None = None) -> None:
    """Change a password and end the user's other sessions: a copied cookie stops working."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError("password", f"a senha precisa ter pelo menos {MIN_PASSWORD_LENGTH} caracteres")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError("password", f"a senha pode ter no máximo {MAX_PASSWORD_LENGTH} caracteres")
    user.password_hash = hash_password(password)
    revoke_sessions(session, user.id, now, keep_token=keep_token)
    session.flush()
