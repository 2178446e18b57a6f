"""Creating users and API tokens; plain functions over a Session."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.security import MIN_PASSWORD_LENGTH, hash_password, new_api_token
from models import ApiToken, Role, User

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UserError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def create_user(
    session: Session, *, email: str, role: str, password: str, name: str | None = None, store_id: int | None = None
) -> User:
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise UserError("email", "e-mail inválido")
    try:
        role_value = Role(role)
    except ValueError:
        raise UserError("role", f"papel inválido; use um de: {', '.join(r.value for r in Role)}") from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError("password", f"a senha precisa ter pelo menos {MIN_PASSWORD_LENGTH} caracteres")
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
