"""Text as shoppers type it, made comparable: lower case, no accents, punctuation to spaces, single spaces."""

from __future__ import annotations

import re

from unidecode import unidecode


def normalize(text: str) -> str:
    """'Tênis PRETO, 42!' -> 'tenis preto 42'."""
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9 ]", " ", unidecode(text or "").lower())).strip()
