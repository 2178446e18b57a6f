"""Phone numbers: E.164 normalisation with `phonenumbers`, Brazilian DDD and state, masking for logs."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def mask_phone(e164: str) -> str:
    """``+5511999990001`` -> ``+55 11 9****-0001``: enough to tell numbers apart in a log, not to call them."""
    digits = re.sub(r"\D", "", e164)
    if e164.startswith("+55") and len(digits) in (12, 13):
        ddd, local = digits[2:4], digits[4:]
        return f"+55 {ddd} {local[0]}{'*' * (len(local) - 5)}-{local[-4:]}"
    if len(digits) > 4:
        return "+" + "*" * (len(digits) - 4) + digits[-4:]
    return "****"


_PHONE_IN_TEXT = re.compile(r"\+?\b\d{10,15}\b")


def mask_phones_in(text: str) -> str:
    """Mask every phone-looking run of 10-15 digits (optionally after '+') in free text."""
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group(0) if m.group(0).startswith("+") else "+" + m.group(0)), text)
