"""Secrets kept in the database (the shop's webhook secret after a rotation), encrypted with a key derived from
SECRET_KEY.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with a 32-byte key derived by HKDF-SHA256 from
SECRET_KEY and a label naming this use, so the key is never the session-signing key itself and another use can
derive its own. ``open_`` answers None when the token was sealed under another SECRET_KEY (it was changed) or is
not a token at all: the caller decides what that means (for the shop's secret: generate a new one).

Plain Python: the caller passes the SECRET_KEY (``runtime.settings.secret_key``).
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LABEL = b"whatsapp-recovery/secret-box/v1"


@functools.lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    if not secret_key:
        raise ValueError("SECRET_KEY is empty: nothing can be sealed")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=LABEL).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(text: str, secret_key: str) -> str:
    """``text`` encrypted and authenticated, as ASCII fit for a Text column."""
    return _fernet(secret_key).encrypt(text.encode()).decode("ascii")


def open_(token: str | None, secret_key: str) -> str | None:
    """The text ``seal`` sealed, or None when it cannot be read with this SECRET_KEY (changed, or not a token)."""
    if not token:
        return None
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError):
        return None
