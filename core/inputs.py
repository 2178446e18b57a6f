"""Parsing what people and programs send: numbers, ids, pages, dates and instants, in one place.

Every query parameter, form field and JSON value the web layer turns into a number or a date goes through these
helpers. Each refuses what no column, index or date computation can hold (``²`` and other non-ASCII digits, a page
of 10**18, an id of 2**63, a year 9999 with a -23:59 offset) with an ``InputError`` naming the field and saying in
Portuguese what is expected. The web layer answers it with 400 (API) or the field's error on the page.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any

# The calendar a query may name. Outside it a period's bounds cannot be turned into instants in every time zone
# (``date.max + 1 day`` overflows), and no shop has data there anyway.
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2100, 12, 31)
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)

MAX_ID = 2**31 - 1  # the id columns are 32-bit integers

# Formats shared by the validators and the OpenAPI document (web/openapi.py), so they cannot drift apart.
MONEY_PATTERN = r"^\d{1,10}(\.\d{1,2})?$"  # NUMERIC(12, 2) as text with a dot: ten integer digits, two decimals
MONEY = re.compile(MONEY_PATTERN)
MAX_PHONE_TEXT = 40  # a phone as people write it ("+55 (11) 99999-0001", "whatsapp:+55…")
MAX_EXTERNAL_ID = 64  # a shop's cart or order id
MAX_SKU = 64
MAX_URL = 500
MAX_EMAIL = 254
# The shape only: whether it receives mail is the shop's business.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_COUPON_CODE = 64
MAX_SELLER_CODE = 32
MAX_CUSTOMER_NAME = 120
MAX_PAGE = 10_000  # with 50 rows a page: half a million rows deep is as far as anyone pages
_ASCII_DIGITS = re.compile(r"[0-9]{1,18}")
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A day as people in Brazil type it: 31/01/2026, 1/2/2026, 31-01-2026, 31.01.2026, or 31012026 (a phone's numeric
# keypad has no slash).
_TYPED_DAY = re.compile(r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})|([0-9]{2})([0-9]{2})([0-9]{4})")
TYPED_DAY_FORMAT = "dd/mm/aaaa"


class InputError(ValueError):
    """A value that cannot be used; ``field`` names it, ``message`` (pt-BR) says what is expected."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def supported_day(day: date) -> bool:
    return EARLIEST_DAY <= day <= LATEST_DAY


def parse_int(raw: Any, field: str, *, minimum: int, maximum: int, default: int | None = None) -> int:
    """An integer written with ASCII digits (a query or form value), within [minimum, maximum]."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if default is not None:
            return default
        raise InputError(field, "obrigatório")
    text = str(raw).strip()
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    if not _ASCII_DIGITS.fullmatch(digits):
        raise InputError(field, f"use um número inteiro entre {minimum} e {maximum}")
    value = -int(digits) if negative else int(digits)
    if not minimum <= value <= maximum:
        raise InputError(field, f"use um número inteiro entre {minimum} e {maximum}")
    return value


def parse_id(raw: Any, field: str) -> int:
    """The id of a row (1 … 2**31-1), as text or as a JSON integer."""
    if isinstance(raw, bool):
        raise InputError(field, "deve ser o número (id) de um registro")
    if isinstance(raw, int):
        if not 1 <= raw <= MAX_ID:
            raise InputError(field, "id fora do intervalo")
        return raw
    if not isinstance(raw, str):
        raise InputError(field, "deve ser o número (id) de um registro")
    return parse_int(raw, field, minimum=1, maximum=MAX_ID)


def parse_page(raw: Any, field: str = "page") -> int:
    """A 1-based page number; absent means 1."""
    return parse_int(raw, field, minimum=1, maximum=MAX_PAGE, default=1)


def parse_day(raw: Any, field: str) -> date | None:
    """``AAAA-MM-DD`` exactly (no spaces or line breaks around it), within 2000–2100; empty means None."""
    if raw is None or raw == "":
        return None
    text = str(raw)
    if not _ISO_DAY.fullmatch(text):
        raise InputError(field, "use o formato AAAA-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InputError(field, "data inválida") from None
    if not supported_day(day):
        raise InputError(field, f"use uma data entre {EARLIEST_DAY:%d/%m/%Y} e {LATEST_DAY:%d/%m/%Y}")
    return day


def parse_typed_day(raw: Any, field: str) -> date | None:
    """A day typed in a form: ``dd/mm/aaaa`` (also ``d/m/aaaa``, with ``-`` or ``.``, or the eight digits
    ``ddmmaaaa``), or ``AAAA-MM-DD`` as links and bookmarks carry it; spaces around are ignored, empty means None.
    Within 2000–2100."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InputError(field, f"use o formato {TYPED_DAY_FORMAT}, por exemplo 31/01/2026")
    text = raw.strip()
    if not text:
        return None
    if _ISO_DAY.fullmatch(text):
        return parse_day(text, field)
    match = _TYPED_DAY.fullmatch(text) if text.isascii() and len(text) <= 10 else None
    if match is None:
        raise InputError(field, f"use o formato {TYPED_DAY_FORMAT}, por exemplo 31/01/2026")
    day_text, month_text, year_text = (g for g in match.groups() if g is not None)
    try:
        day = date(int(year_text), int(month_text), int(day_text))
    except ValueError:
        raise InputError(field, f"a data {text} não existe no calendário") from None
    if not supported_day(day):
        raise InputError(field, f"use uma data entre {EARLIEST_DAY:%d/%m/%Y} e {LATEST_DAY:%d/%m/%Y}")
    return day


def format_typed_day(day: date) -> str:
    """The day as a form shows it and ``parse_typed_day`` reads it back: dd/mm/aaaa."""
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def parse_moment(raw: Any, field: str) -> datetime:
    """An ISO 8601 instant with its offset, between 2000 and 2100, returned in UTC."""
    example = "por exemplo 2026-12-01T18:00:00-03:00"
    if not isinstance(raw, str) or not raw.strip() or not raw.isascii() or len(raw) > 40:
        raise InputError(field, f"use data e hora ISO 8601 com fuso, {example}")
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InputError(field, f"data e hora inválida; use ISO 8601 com fuso, {example}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InputError(field, "informe o fuso horário, por exemplo -03:00 ou Z")
    if not EARLIEST_DAY <= parsed.date() <= LATEST_DAY:
        raise InputError(field, "data fora do intervalo aceito (2000 a 2100)")
    try:
        moment = parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise InputError(field, "data fora do intervalo aceito (2000 a 2100)") from None
    if not EARLIEST <= moment < LATEST:
        raise InputError(field, "data fora do intervalo aceito (2000 a 2100)")
    return moment


def parse_choice(raw: Any, field: str, options: dict[str, Any]) -> Any:
    """One of ``options``' keys (texts only: a list or an object is refused, not hashed)."""
    if not isinstance(raw, str) or raw not in options:
        raise InputError(field, "use " + ", ".join(options))
    return options[raw]
