"""Cell values: the parsers for texts, keys and SKUs, prices, stock, yes/no, URLs, sizes, options and attributes
(each raises ``FieldError`` with the message in pt-BR), the limits they enforce, the option names that mean size and
colour, and HTML descriptions as plain text."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from html.parser import HTMLParser
from typing import Any

from catalog.importing.errors import FieldError

MAX_PRICE = Decimal(1000000)
MAX_STOCK = 10_000_000
CENTS = Decimal("0.01")
KEY_MAX = 64
SKU_MAX = 64
NAME_MAX = 200
SHORT_TEXT_MAX = 80  # category, brand (the columns' width)
URL_MAX = 500
SIZE_MAX = 32
COLOR_MAX = 40
OPTION_MAX = 100
ATTRIBUTE_KEY_MAX = 64

TRUE_WORDS = {"sim", "s", "true", "t", "verdadeiro", "1", "yes", "y", "ativo", "ativa", "active", "x"}
FALSE_WORDS = {"nao", "n", "false", "f", "falso", "0", "no", "inativo", "inativa", "inactive"}

# Option names (normalised) that mean the variant's size / colour, in the languages shops write them in.
SIZE_OPTIONS = {"tamanho", "tamanhos", "tam", "tamano", "tamanio", "numeracao", "numero", "size", "sizes",
                "talla", "talle", "taille", "taglia", "grosse", "große", "groesse"}
COLOR_OPTIONS = {"cor", "cores", "color", "colors", "colour", "colours", "couleur", "farbe", "colore", "kleur"}
SIZE_KEY, COLOR_KEY = "Tamanho", "Cor"  # our format's option names


# --- option names ----------------------------------------------------------------------------------------------


def is_size(name: str) -> bool:
    return norm(name) in SIZE_OPTIONS


def is_color(name: str) -> bool:
    return norm(name) in COLOR_OPTIONS


def option_problems(options: dict[str, str]) -> list[str]:
    problems = []
    size_key = next((k for k in options if is_size(k)), None)
    color_key = next((k for k in options if is_color(k)), None)
    if size_key and len(options[size_key]) > SIZE_MAX:
        problems.append(f"tamanho \"{short(options[size_key])}\" longo demais (máximo {SIZE_MAX} caracteres)")
    if color_key and len(options[color_key]) > COLOR_MAX:
        problems.append(f"cor \"{short(options[color_key])}\" longa demais (máximo {COLOR_MAX} caracteres)")
    return problems


# --- text ------------------------------------------------------------------------------------------------------


def norm(name: Any) -> str:
    """A header or option name compared without accents, case or punctuation: "Preço de" -> "preco_de"."""
    decomposed = unicodedata.normalize("NFKD", str(name).strip().lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^\w]+", "_", plain).strip("_")


def attribute_key(name: str) -> str:
    return re.sub(r"\s+", " ", str(name).strip().lower())


def short(text: Any, limit: int = 40) -> str:
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def show(value: Any) -> str:
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    if isinstance(value, bool):
        return "sim" if value else "não"
    return str(value)


def reais(value: Decimal) -> str:
    whole, cents = f"{value:.2f}".split(".")
    return f"R$ {int(whole):,}".replace(",", ".") + f",{cents}"


def clean(text: str) -> str:
    return text.strip() if isinstance(text, str) else ""


def slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-") or "x"


def bounded(code: str, limit: int = KEY_MAX) -> str:
    """``code`` if it fits the column, else its start and a hash of the whole: the same every import."""
    if len(code) <= limit:
        return code
    digest = hashlib.sha1(code.encode()).hexdigest()[:8]
    return f"{code[:limit - 9]}-{digest}"


# --- cell values -----------------------------------------------------------------------------------------------


def parse_text(value: Any, *, max_length: int | None = None, allow_number: bool = False) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or (not isinstance(value, str) and not (allow_number and isinstance(value, int))):
        raise FieldError("deve ser um texto")
    text = str(value).strip()
    if "\x00" in text:
        raise FieldError("contém um caractere inválido (NUL)")
    if not text:
        return None
    if max_length is not None and len(text) > max_length:
        raise FieldError(f"longo demais ({len(text)} caracteres; máximo {max_length})")
    return text


def parse_key(value: Any) -> str | None:
    return parse_text(value, max_length=KEY_MAX, allow_number=True)


def parse_sku(value: Any) -> str | None:
    sku = parse_text(value, max_length=SKU_MAX, allow_number=True)
    if sku is not None and re.search(r"\s", sku):
        raise FieldError("o SKU não pode ter espaços")
    return sku


def parse_name(value: Any) -> str | None:
    text = parse_text(value, max_length=NAME_MAX)
    return re.sub(r"\s+", " ", text) if text else text


def parse_short(value: Any) -> str | None:
    return parse_text(value, max_length=SHORT_TEXT_MAX)


def parse_description(value: Any) -> str | None:
    text = parse_text(value)
    if text is None:
        return None
    return _html_to_text(text) if _LOOKS_LIKE_HTML.search(text) else text


def parse_html_description(value: Any) -> str | None:
    text = parse_text(value)
    if text is None:
        return None
    return _html_to_text(text) or None


def parse_url(value: Any) -> str | None:
    url = parse_text(value, max_length=URL_MAX)
    if url is None:
        return None
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", url, flags=re.IGNORECASE):
        raise FieldError("endereço inválido: use um link completo começando com http:// ou https://")
    return url


def parse_image(value: Any) -> str | None:
    """An image link; a cell with several (Nuvemshop's "Imagens") gives its first."""
    text = parse_text(value)
    if text is None:
        return None
    first = re.split(r"\s*[|,\s]\s*", text)[0]
    return parse_url(first)


def parse_platform_id(value: Any) -> str | None:
    return parse_text(value, max_length=64, allow_number=True)


def parse_active(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if not isinstance(value, str):
        raise FieldError("use sim ou não")
    word = norm(value)
    if not word:
        return None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise FieldError(f"valor \"{short(value)}\" não reconhecido: use sim ou não")


def parse_size(value: Any) -> str | None:
    return parse_text(value, max_length=SIZE_MAX, allow_number=True)


def parse_color(value: Any) -> str | None:
    return parse_text(value, max_length=COLOR_MAX)


def parse_sizes(value: Any) -> list[str] | None:
    """Today's ``tamanhos``: ``38|39|40`` (or a JSON list) -> ["38", "39", "40"]."""
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        items = str(value).split("|")
    elif isinstance(value, list):
        items = value
    else:
        raise FieldError("use os tamanhos separados por |, como 38|39|40")
    sizes = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise FieldError("use os tamanhos separados por |, como 38|39|40")
        text = str(item).strip()
        if "\x00" in text:
            raise FieldError("contém um caractere inválido (NUL)")
        if len(text) > SIZE_MAX:
            raise FieldError(f"tamanho \"{short(text)}\" longo demais (máximo {SIZE_MAX} caracteres)")
        if text:
            sizes.append(text)
    return sizes or None


def parse_option_name(value: Any) -> str | None:
    return parse_text(value, max_length=OPTION_MAX)


def parse_option_value(value: Any) -> str | None:
    return parse_text(value, max_length=OPTION_MAX, allow_number=True)


def parse_options(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FieldError("deve ser um objeto { \"Tamanho\": \"42\", \"Cor\": \"Preto\" }")
    options: dict[str, str] = {}
    for name, item in value.items():
        option = parse_option_name(name)
        if option is None:
            raise FieldError("nome de opção vazio")
        if item is None:
            continue
        text = parse_option_value(item)
        if text is not None:
            options[option] = text
    return options


_INTEGER = re.compile(r"(\d+)(?:[.,]0+)?")  # 12, 12.0, 12,00
_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3})+")  # 1.000: one thousand, or one with three decimals?


def parse_stock(value: Any, *, allow_negative: bool = False) -> int | None:
    """Units in stock: empty -> None (not tracked); ``0`` -> sold out; ``12``, ``12.0``, ``12,0`` -> 12."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal, float)):
        raise FieldError("deve ser um número inteiro, como 12")
    if isinstance(value, str):
        text = value.strip().replace("\u00a0", "")
        if not text:
            return None
        negative = text.startswith("-")
        digits = text[1:].strip() if negative else text
        if _THOUSANDS.fullmatch(digits):
            raise FieldError(f"estoque ambíguo \"{text}\": escreva só os dígitos, como {digits.replace('.', '')}")
        match = _INTEGER.fullmatch(digits)
        if match is None:
            if re.fullmatch(r"\d+[.,]\d+", digits):
                raise FieldError(f"estoque \"{text}\" não é um número inteiro de unidades")
            raise FieldError(f"estoque inválido \"{short(text)}\": use um número inteiro, como 12 (vazio = não "
                              "controlado)")
        if len(match.group(1)) > 12:
            raise FieldError(f"estoque alto demais (máximo {MAX_STOCK - 1:,})".replace(",", "."))
        number = -int(match.group(1)) if negative else int(match.group(1))
    else:
        amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        if not amount.is_finite() or amount != amount.to_integral_value():
            raise FieldError("o estoque deve ser um número inteiro de unidades, como 12")
        if abs(amount) >= MAX_STOCK:
            raise FieldError(f"estoque alto demais (máximo {MAX_STOCK - 1:,})".replace(",", "."))
        number = int(amount)
    if number < 0 and not allow_negative:
        raise FieldError("o estoque não pode ser negativo: use 0 para esgotado, ou deixe vazio se não controla")
    if abs(number) >= MAX_STOCK:
        raise FieldError(f"estoque alto demais (máximo {MAX_STOCK - 1:,})".replace(",", "."))
    return number


_PRICE_FORMATS = [
    # (pattern, thousands separator, decimal separator)
    (re.compile(r"\d+"), None, None),  # 1299
    (re.compile(r"\d+\.\d{1,2}"), None, "."),  # 299.90
    (re.compile(r"\d+,\d{1,2}"), None, ","),  # 299,90
    (re.compile(r"\d{1,3}(?:\.\d{3})+,\d{1,2}"), ".", ","),  # 1.299,90
    (re.compile(r"\d{1,3}(?:\.\d{3}){2,}"), ".", None),  # 1.299.000 (several groups: thousands, not cents)
    (re.compile(r"\d{1,3}(?:,\d{3})+\.\d{1,2}"), ",", "."),  # 1,299.90
]


def parse_price(value: Any) -> Decimal | None:
    """A price as merchants write it (``299.90``, ``299,90``, ``R$ 1.299,90``, ``1299``) -> Decimal('0.00').

    Raises ValueError (message in pt-BR) when it is not a price, has more than two decimals, is ambiguous
    (``1.299``: one thousand or one real?) or is out of range. Empty -> None. Never goes through float.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise FieldError("deve ser um número ou um texto como 299,90")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, (Decimal, float)):
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
        if not amount.is_finite():
            raise FieldError("preço inválido")
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        amount = _parse_price_text(text)
    else:
        raise FieldError("deve ser um número ou um texto como 299,90")
    if amount <= 0:
        raise FieldError("o preço deve ser maior que zero")
    if amount >= MAX_PRICE:
        raise FieldError("preço alto demais (deve ser menor que R$ 1.000.000,00)")
    if amount != amount.quantize(CENTS, rounding=ROUND_DOWN):
        raise FieldError(f"preço com mais de 2 casas decimais: {short(value)}")
    return amount.quantize(CENTS)


def _parse_price_text(text: str) -> Decimal:
    compact = re.sub(r"^r\$", "", re.sub(r"[\s\u00a0]+", "", text), flags=re.IGNORECASE)
    if compact.startswith("-"):
        raise FieldError("o preço deve ser maior que zero")
    if re.fullmatch(r"\d{1,3}\.\d{3}", compact):
        raise FieldError(f"preço ambíguo \"{text}\": escreva {compact.replace('.', '')} ou {compact},00")
    for pattern, thousands, decimal in _PRICE_FORMATS:
        if pattern.fullmatch(compact):
            plain = compact.replace(thousands, "") if thousands else compact
            if decimal == ",":
                plain = plain.replace(",", ".")
            try:
                return Decimal(plain)
            except InvalidOperation:  # pragma: no cover - the patterns only let digits through
                break
    if re.fullmatch(r"[\d.,]+", compact) and re.search(r"[.,]\d{3,}$", compact):
        raise FieldError(f"preço com mais de 2 casas decimais: \"{short(text)}\"")
    raise FieldError(f"preço inválido \"{short(text)}\": use um valor como 299,90 ou R$ 1.299,90")


def attribute_value(value: Any) -> Any:
    """A CSV cell or JSON value as stored in Product.attributes; None means 'not set'."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if "\x00" in text:
            raise FieldError("contém um caractere inválido (NUL)")
        if "|" in text:
            return [part.strip() for part in text.split("|") if part.strip()] or None
        return text or None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal, float)):
        return _json_number(value)
    if isinstance(value, list):
        items = []
        for item in value:
            if isinstance(item, str):
                if "\x00" in item:
                    raise FieldError("contém um caractere inválido (NUL)")
                if item.strip():
                    items.append(item.strip())
            elif isinstance(item, bool):
                items.append(item)
            elif isinstance(item, (int, Decimal, float)):
                items.append(_json_number(item))
            elif item is not None:
                raise FieldError("uma lista de atributo só pode ter textos ou números")
        return items or None
    raise FieldError("atributo deve ser texto, número, sim/não ou lista")


def _json_number(value: Decimal | float) -> int | float:
    if isinstance(value, int):
        return value
    decimal = value if isinstance(value, Decimal) else Decimal(str(value))
    if not decimal.is_finite():
        raise FieldError("número inválido")
    if decimal == decimal.to_integral_value():
        return int(decimal)
    return float(decimal)  # an attribute (weight, size), not money


# --- HTML descriptions -----------------------------------------------------------------------------------------


_LOOKS_LIKE_HTML = re.compile(r"</?(?:p|br|div|span|li|ul|ol|strong|b|i|em|u|h[1-6]|table|tr|td|a|img|meta)\b[^>]*>",
                              re.IGNORECASE)
_BLOCK_TAGS = {"p", "div", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "section", "article",
               "blockquote", "header", "footer"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n• ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def _html_to_text(markup: str) -> str:
    """Shopify's "Body (HTML)", Nuvemshop's "Descrição": paragraphs, line breaks and list items as plain text."""
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser is lenient; never let a description refuse the file
        return re.sub(r"<[^>]*>", " ", html.unescape(markup)).strip()
    text = "".join(parser.parts).replace("\u00a0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
