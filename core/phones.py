"""Phone numbers: E.164 normalisation with `phonenumbers`, Brazilian DDD and state, masking for logs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import phonenumbers

# DDD (area code) -> state (UF). Anatel's numbering plan; it changes rarely.
DDD_STATE: dict[str, str] = {
    **dict.fromkeys(["11", "12", "13", "14", "15", "16", "17", "18", "19"], "SP"),
    **dict.fromkeys(["21", "22", "24"], "RJ"),
    **dict.fromkeys(["27", "28"], "ES"),
    **dict.fromkeys(["31", "32", "33", "34", "35", "37", "38"], "MG"),
    **dict.fromkeys(["41", "42", "43", "44", "45", "46"], "PR"),
    **dict.fromkeys(["47", "48", "49"], "SC"),
    **dict.fromkeys(["51", "53", "54", "55"], "RS"),
    "61": "DF",
    **dict.fromkeys(["62", "64"], "GO"),
    "63": "TO",
    **dict.fromkeys(["65", "66"], "MT"),
    "67": "MS",
    "68": "AC",
    "69": "RO",
    **dict.fromkeys(["71", "73", "74", "75", "77"], "BA"),
    "79": "SE",
    **dict.fromkeys(["81", "87"], "PE"),
    "82": "AL",
    "83": "PB",
    "84": "RN",
    **dict.fromkeys(["85", "88"], "CE"),
    **dict.fromkeys(["86", "89"], "PI"),
    **dict.fromkeys(["91", "93", "94"], "PA"),
    "92": "AM",
    "97": "AM",
    "95": "RR",
    "96": "AP",
    **dict.fromkeys(["98", "99"], "MA"),
}

# The capital of each DDD's main city, used as the customer's city when nothing better is known.
DDD_CITY: dict[str, str] = {
    "11": "São Paulo", "21": "Rio de Janeiro", "31": "Belo Horizonte", "41": "Curitiba",
    "48": "Florianópolis", "51": "Porto Alegre", "61": "Brasília", "62": "Goiânia", "71": "Salvador",
    "81": "Recife", "85": "Fortaleza", "91": "Belém", "92": "Manaus", "27": "Vitória", "19": "Campinas",
    "13": "Santos", "65": "Cuiabá", "67": "Campo Grande", "79": "Aracaju", "82": "Maceió",
    "83": "João Pessoa", "84": "Natal", "86": "Teresina", "98": "São Luís", "63": "Palmas",
    "68": "Rio Branco", "69": "Porto Velho", "95": "Boa Vista", "96": "Macapá",
}


class InvalidPhone(ValueError):
    """The text is not a valid phone number."""


@dataclass(frozen=True)
class PhoneLocation:
    ddd: str | None
    state: str | None
    city: str | None


def normalize_phone(raw: str, default_region: str = "BR") -> str:
    """Return the E.164 form (``+5511999990001``) or raise InvalidPhone.

    Accepts ``whatsapp:`` prefixes, punctuation and WhatsApp ids without ``+``. A Brazilian mobile
    written without the ninth digit (as some WhatsApp ids still are) gets it back.
    """
    text = (raw or "").strip()
    text = text.removeprefix("whatsapp:").strip()
    if not text:
        raise InvalidPhone("número vazio")
    digits = re.sub(r"\D", "", text)
    if not text.startswith("+") and digits.startswith("55") and len(digits) in (12, 13):
        text = "+" + digits
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"número inválido: {exc}") from None
    if number.country_code == 55:
        national = str(number.national_number)
        # 10 digits = DDD + 8; mobiles (starting 6-9) gained a leading 9 in 2016.
        if len(national) == 10 and national[2] in "6789":
            number = phonenumbers.parse("+55" + national[:2] + "9" + national[2:])
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"número inválido: {text}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def location_of(e164: str) -> PhoneLocation:
    """The DDD, state and (best known) city of a Brazilian number; all None for foreign numbers."""
    if not e164.startswith("+55") or len(e164) < 5:
        return PhoneLocation(None, None, None)
    ddd = e164[3:5]
    return PhoneLocation(ddd, DDD_STATE.get(ddd), DDD_CITY.get(ddd))


def format_phone(e164: str) -> str:
    """``+5511988881001`` -> ``+55 (11) 98888-1001``, as Brazilians write numbers; other countries in the
    international format; anything unparseable as it came."""
    digits = re.sub(r"\D", "", e164 or "")
    if e164.startswith("+55") and len(digits) in (12, 13):
        ddd, local = digits[2:4], digits[4:]
        return f"+55 ({ddd}) {local[:-4]}-{local[-4:]}"
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask_phone(e164: str) -> str:
    """``+5511999990001`` -> ``+55 11 9****-0001``: enough to tell numbers apart in a log, not to call them."""
    digits = re.sub(r"\D", "", e164)
    if e164.startswith("+55") and len(digits) in (12, 13):
        ddd, local = digits[2:4], digits[4:]
        return f"+55 {ddd} {local[0]}{'*' * (len(local) - 5)}-{local[-4:]}"
    if len(digits) > 4:
        return "+" + "*" * (len(digits) - 4) + digits[-4:]
    return "****"


# --- Phone numbers in free text (log lines) ------------------------------------------------------------
#
# A tokenizer finds *candidates*: runs of digit groups joined by the separators people, browsers and encoders
# put in phone numbers. Each candidate is split into its digit groups, and contiguous windows of groups
# (longest first, left to right) are checked with `phonenumbers`; a window that is a phone number is replaced by
# its mask. Timestamps, IPv4 addresses and UUIDs are consumed whole by the tokenizer, so their digits never join
# a candidate; digits glued to letters (Twilio SIDs, hex ids, `12ms`) are never candidates.

_ESC = r"%(?:25)*"  # a percent escape, also double-encoded (%252B is %2B encoded again)
_PLUS = rf"(?:\+|{_ESC}2[Bb])"
_OPEN = rf"(?:\(|{_ESC}28)"
# Between digit groups: space, tab, NBSP, dash, dot, parentheses, '+' (a space in a query string) and the
# percent-encoded forms of those. Not '/', ':' or ',' (dates, times, money, lists keep their numbers apart).
_SEP = rf"(?:[ \t\u00a0().+\-]|{_ESC}(?:20|2[BbDdEe]|28|29))"

# The lookaheads on the first character come first: most positions of a line fail there, cheaply.
_TOKENS = re.compile(
    rf"""
    (?=[\dA-Fa-f+%(])
    (?:
    (?P<skip>
        \d(?<![\w.]\d)\d{{0,2}}(?:\.\d{{1,3}}){{3}}(?::\d{{1,5}})?(?!\w|\.\d)        # IPv4, optional :port
      | \d(?<!\w\d)\d{{3}}-\d{{2}}-\d{{2}}                                            # ISO date ...
            (?:[T\ ]\d{{2}}:\d{{2}}(?::\d{{2}}(?:[.,]\d{{1,9}})?)?                     # ... time, fraction
            (?:Z|[+-]\d{{2}}(?::?\d{{2}})?)?)?                                         # ... offset
      | [0-9A-Fa-f](?<![\w-][0-9A-Fa-f])[0-9A-Fa-f]{{7}}(?:-[0-9A-Fa-f]{{4}}){{3}}-[0-9A-Fa-f]{{12}}(?![\w-])  # UUID
    )
  | (?P<cand>
        (?=[\d+%(])
        (?:(?<![^\W_])(?<!%)|(?<=%[0-9A-Fa-f]{{2}})(?<!%25))  # not inside a word, a number, an escape
        (?:{_PLUS}{_OPEN}?|{_OPEN})?
        \d+(?:{_SEP}{{1,4}}\d+)*
        (?![^\W_])                                      # nor glued to a letter after it ('_' is a gap)
    )
    )
    """,
    re.VERBOSE,
)
# A line without 8 digits close together (at most 6 other characters between two) holds no phone number: a
# candidate's digits are at most 4 separators apart, and escapes only add digits. Most lines stop here.
_ENOUGH_DIGITS = re.compile(r"\d(?:\D{0,6}+\d){7}")
# Inside a candidate: percent escapes (separators), digit groups, and single separator characters.
_PARTS = re.compile(r"(%(?:25)*[0-9A-Fa-f]{2})|(\d+)|(.)", re.S)
_ESC_PLUS = re.compile(r"%(?:25)*2[Bb]\Z")
_ESC_OPEN = re.compile(r"%(?:25)*28\Z")
_ESCAPES = re.compile(r"%(?:25)*[0-9A-Fa-f]{2}")
_NON_DIGITS = re.compile(r"\D+")

# Text right before a candidate that says "this is a phone": a WhatsApp address or a phone-ish field name
# (`whatsapp:`, `From=whatsapp%3A`, `"wa_id": "`, `phone=`, `To=`). Digits there are masked even when they
# are not a valid number (a mistyped phone is still a phone), and digits without '+' may be foreign.
_KEYED = re.compile(
    r"(?:whatsapp|wa_?id|phone(?:_?number)?|telefone|fone|tel|celular|mobile|msisdn|from|to)"
    r"(?:\"|'|%(?:25)*22)?\s*(?:[:=]|%(?:25)*3[Aa])\s*(?:\"|'|%(?:25)*22)?\Z",
    re.IGNORECASE,
)
# Epoch seconds of 2017-2033 (1500000000-1999999999) look like a Brazilian number without the ninth digit (DDD
# 15-19 + 8 digits). Kept when a time word precedes them, they end an id joined by - or : (the stale sweep's job
# ids, wa-deliver-12-1764582933), or a unit or a fraction follows them.
_EPOCH_BEFORE = re.compile(
    r"(?:(?:\b|_)(?:due|ts|ms|at|epoch|time|timestamp|until|since|expires?|deadline|score|when|seen|tick)"
    r"(?:\"|')?[\s:=_]*(?:\"|')?|[^\W_][-:])\Z",
    re.IGNORECASE,
)
_EPOCH_AFTER = re.compile(r"\.\d|\s?(?:ms|s|sec|secs|seconds|us|ns)\b")

_MIN_DIGITS = 8  # the shortest number masked (a foreign E.164 number with '+'); Brazilian ones have 10-13
_MAX_DIGITS = 15  # E.164's longest


class _Group(NamedTuple):
    start: int  # where the replacement starts: the group, or the '+' / '(' leading it
    end: int
    digits: str
    plus: bool  # a '+' (or %2B) leads the group


def _brazilian_national(national: str) -> str | None:
    """The E.164 form of a Brazilian DDD + subscriber number (10 or 11 digits), ninth digit restored."""
    if len(national) == 10 and national[2] in "6789":
        national = national[:2] + "9" + national[2:]
    if national[:2] not in DDD_STATE:
        return None
    if not ((len(national) == 11 and national[2] == "9") or (len(national) == 10 and national[2] in "2345")):
        return None
    return _valid_e164("+55" + national)


@lru_cache(maxsize=4096)
def _valid_e164(candidate: str) -> str | None:
    try:
        number = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        return None
    return candidate if phonenumbers.is_valid_number(number) else None


@lru_cache(maxsize=4096)
def _possible_e164(candidate: str) -> bool:
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(candidate, None))
    except phonenumbers.NumberParseException:
        return False


def _international(digits: str) -> str | None:
    """``digits`` after a '+': a valid number (Brazilian ones with the ninth digit restored)."""
    if digits.startswith("55") and len(digits) in (12, 13):
        return _brazilian_national(digits[2:])
    return _valid_e164("+" + digits)


def _bare(digits: str) -> str | None:
    """Digits without '+': a Brazilian number with or without 55 (or a trunk 0), or 00 + an international one."""
    n = len(digits)
    if digits.startswith("55") and n in (12, 13):
        found = _brazilian_national(digits[2:])
        if found:
            return found
    if n in (10, 11):
        return _brazilian_national(digits)
    if digits.startswith("0") and n in (11, 12):
        return _brazilian_national(digits[1:])
    if digits.startswith("00") and n >= _MIN_DIGITS + 2:
        return _international(digits[2:])
    return None


def _groups(text: str, start: int, end: int) -> list[_Group]:
    groups: list[_Group] = []
    lead: int | None = None  # start of the '+' / '(' tokens right before the next group
    plus = False
    for part in _PARTS.finditer(text, start, end):
        escape, digits, char = part.groups()
        if digits:
            groups.append(_Group(part.start() if lead is None else lead, part.end(), digits, plus))
            lead, plus = None, False
            continue
        token = escape or char
        # A '+' directly after a digit is a query-string space ("55+21+98888"); elsewhere it is a plus sign.
        is_plus = bool(_ESC_PLUS.match(token)) if escape else (
            char == "+" and not (part.start() > 0 and text[part.start() - 1].isdigit()))
        if is_plus or token == "(" or (escape and _ESC_OPEN.match(token)):
            if lead is None:
                lead = part.start()
            plus = plus or is_plus
        else:
            lead, plus = None, False
    return groups


def _phone_in(text: str, groups: list[_Group], i: int, j: int, digits: str, keyed: bool) -> str | None:
    """The E.164 number groups[i..j] hold, if they hold one."""
    if groups[i].plus:
        return _international(digits)
    if keyed:
        return _bare(digits) or _international(digits)
    if i == j and len(digits) == 10 and digits[0] == "1" and digits[1] in "56789":
        before = text[max(0, groups[i].start - 24):groups[i].start]
        if _EPOCH_BEFORE.search(before) or _EPOCH_AFTER.match(text, groups[i].end):
            return None
    return _bare(digits)


def _in_url(text: str, first: int, last: int) -> bool:
    """Whether text[first:last] sits in a URL or a form body: the space-delimited word around it holds / ? & = or %."""
    right = text.find(" ", last)
    word = text[text.rfind(" ", 0, first) + 1:right if right >= 0 else len(text)]
    return any(c in word for c in "/?&=%")


def _render(e164: str, text: str, first: int, last: int) -> str:
    masked = mask_phone(e164)
    # A number written without spaces in a URL or a form body is masked without spaces too, so an access log's
    # request line keeps its three fields.
    if " " not in text[first:last] and _in_url(text, first, last):
        masked = masked.replace(" ", "-")
    return masked


def _number_at(text: str, groups: list[_Group], i: int, keyed: bool) -> tuple[int, str] | None:
    """The longest window groups[i..j] that is a phone number, as (j, its E.164 form)."""
    windows: list[tuple[int, str]] = []  # (j, digits), longest first
    digits = ""
    for j in range(i, len(groups)):
        if len(digits) + len(groups[j].digits) > _MAX_DIGITS:
            break
        digits += groups[j].digits
        if len(digits) >= _MIN_DIGITS:
            windows.append((j, digits))
    windows.reverse()
    for j, digits in windows:
        e164 = _phone_in(text, groups, i, j, digits, keyed)
        if e164:
            return j, e164
    # After a '+' or in a phone field, 10+ digits that are no valid number are still a phone (a typo, a range
    # newer than phonenumbers' metadata): with '+' when they have a possible length, in a phone field always.
    if groups[i].plus or keyed:
        for j, digits in windows:
            if len(digits) >= 10 and (keyed or _possible_e164("+" + digits)):
                return j, "+" + digits
    return None


def _mask_candidate(text: str, start: int, end: int, keyed: bool, out: list[str], pos: int) -> int:
    """Append text[pos:] up to the candidate's last number, numbers masked, to ``out``; return the new pos."""
    groups = _groups(text, start, end)
    i = 0
    while i < len(groups):
        found = _number_at(text, groups, i, keyed and i == 0)
        if found is None:
            i += 1
            continue
        j, e164 = found
        first, last = groups[i].start, groups[j].end
        out.append(text[pos:first])
        out.append(_render(e164, text, first, last))
        pos = last
        i = j + 1
    return pos


def mask_phones_in(text: str) -> str:
    """Mask every phone number in a log line, however it is written; leave every other number alone.

    The rule:

    * A *candidate* is a run of digit groups joined by one to four separators: space, tab, NBSP, ``-``, ``.``,
      ``(``, ``)``, ``+`` (a space in a query string) and their percent-encoded forms (``%20 %2B %2D %2E %28
      %29``, also double-encoded ``%25...``), optionally led by ``+``/``%2B`` and/or ``(``/``%28``. It starts
      outside any word, number or percent escape and is not glued to a letter after it, so the digits of
      Twilio SIDs, hex ids or ``120ms`` are never candidates (``_`` counts as a gap). ISO timestamps
      (``2026-12-01T09:15:33.123456+00:00``, ``2026-12-01 09:15:33,123``), IPv4 addresses with an optional
      port and UUIDs are skipped whole. ``/ : ,`` never join groups, so dates (``01/12/2026 09:15``), times,
      money (``R$ 1.234,56``), ports and JSON values (``{"claimed": 1000, "sent": 950}``) stay apart and short.
    * Within a candidate, windows of contiguous groups holding 8 to 15 digits are tried longest first, left to
      right (``sent 950 11999990001`` masks the number, not the count). A window is a phone number when:

      - a ``+``/``%2B`` leads it and it is a valid number for its country code (``phonenumbers``; foreign
        numbers included), or it has 10+ digits and is a *possible* one (right length: ``+55 11 1234-5678``);
      - without ``+``, it is a valid Brazilian number: 55 + DDD + subscriber (12-13 digits) or DDD +
        subscriber (10-11 digits, a trunk ``0`` allowed), with or without the mobile ninth digit; or ``00`` +
        a valid international number;
      - it directly follows a WhatsApp address or a phone field (``whatsapp:``, ``whatsapp%3A``, ``phone=``,
        ``To=``, ``"wa_id": "``...): also a valid foreign number without ``+``, or any 10-15 digits (a mistyped
        phone is still a phone).
    * Epoch values. 13-digit epoch milliseconds (``1764582933123``) are never masked: they do not start with 55
      before the year 2144 and are too long to be a number without country code, so no rule above matches
      them (outside a phone field), with or without ``due``/``ms``/``ts`` beside them; a bare 13-digit number
      starting with 55 that is a
      valid Brazilian mobile is a phone. Epoch *seconds* of 2017-2033 (1500000000-1999999999) read as a
      Brazilian number without the ninth digit (DDD 15-19); they are kept when a time word precedes them
      (``due``, ``ts``, ``ms``, ``at``, ``*_at``, ``time``, ``score``, ``until``, ``since``...), when they end an
      id joined by ``-`` or ``:`` (``wa-deliver-12-1764582933``), or when a unit (``ms``, ``s``) or a fraction
      (``1764582933.123``) follows; otherwise they are masked. Other bare numbers that happen to be valid
      Brazilian numbers (a 10-digit byte count) are masked too: over-masking costs a log reader less than a
      leaked number costs a shopper.

    A masked number is written as :func:`mask_phone` writes it (``+55 11 9****-0001``, the ninth digit
    restored; foreign ``+*******8886``). In a URL or a form body (the space-delimited word around the number
    holds ``/ ? & = %``) a number written without spaces gets ``-`` for the spaces
    (``?phone=+55-11-9****-0001``), so an access log's request line keeps its three fields. Masking is
    idempotent: a masked number holds too few digits to be masked again.
    """
    if not _ENOUGH_DIGITS.search(text):
        return text
    out: list[str] = []
    pos = 0  # text[:pos] is in out
    for match in _TOKENS.finditer(text):
        start, end = match.span("cand")
        if end - start < _MIN_DIGITS:  # also a skipped token: (-1, -1)
            continue
        span = text[start:end]
        if len(_NON_DIGITS.sub("", _ESCAPES.sub("", span) if "%" in span else span)) < _MIN_DIGITS:
            continue
        keyed = _KEYED.search(text, max(0, start - 24), start) is not None
        pos = _mask_candidate(text, start, end, keyed, out, pos)
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)
