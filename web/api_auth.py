"""Bearer-token authentication and access checks for the JSON API (the same rules as the pages: crm.access).
401 without a valid token, 403 for a user whose kind may not."""

from __future__ import annotations

import functools

from flask import abort, g, request
from sqlalchemy import select

from core.security import hash_token
from crm.access import Action, may
from models import ApiToken, User, utcnow
from web.context import db_session


def _user_from_bearer() -> User | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    session = db_session()
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip()),
                                                ApiToken.revoked_at.is_(None)))
    if row is None or not row.user.active:
        return None
    row.last_used_at = utcnow()
    session.commit()
    return row.user


def api_allowed(action: Action):
    """Decorate an API view: the caller must present a token of an active user who may ``action``. Row scope is
    the view's job, through crm.access."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = _user_from_bearer()
            if user is None:
                abort(401, description="token de API ausente ou inválido (Authorization: Bearer TOKEN)")
            if not may(user, action):
                abort(403, description="seu papel não permite este recurso")
            g.api_user = user
            return view(*args, **kwargs)

        wrapper.required_action = action
        return wrapper

    return decorator
