"""Password and token hashing. Passwords: scrypt (werkzeug); API tokens: random, stored as SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200  # scrypt hashes any length, but a megabyte "password" is an attack on CPU, not a password


def _dummy_hash() -> str:
    return generate_password_hash("not-a-password", method="scrypt")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


_DUMMY_HASH: list[str] = []


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the account exists: an unknown e-mail still costs one scrypt check, so the
    answer's timing does not tell which e-mails have accounts."""
    if not password_hash:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(_dummy_hash())
        check_password_hash(_DUMMY_HASH[0], password)
        return False
    return check_password_hash(password_hash, password)


def new_api_token() -> tuple[str, str]:
    """A fresh token and the hash to store. 256 bits of randomness: a fast hash is enough."""
    token = "wat_" + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hmac_sha256_hex(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def signatures_match(expected: str, given: str | None) -> bool:
    """Constant-time comparison of hex signatures; a malformed (e.g. non-ASCII) header simply does not match."""
    if not given or not given.isascii():
        return False
    return hmac.compare_digest(expected, given.strip().lower())
