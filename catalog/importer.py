"""Catalog import from a merchant's CSV or JSON file: every row or none, every problem reported by line.

``import_catalog(session, path)`` reads the whole file, validates every row and, only when no row has a
problem, upserts the products by ``sku`` in the caller's session (the caller commits). Otherwise it raises
``CatalogImportError`` carrying one ``RowError`` per problem: the physical line of the file where the row
(CSV record or JSON object) starts, the field as the file names it, and a message in Brazilian Portuguese.

CSV: UTF-8 with or without BOM, ``,`` or ``;`` as delimiter (sniffed from the header), header row required.
Known columns (accents and case ignored): sku, name/nome, price/preco/preço, category/categoria,
brand/marca, description/descricao/descrição, url, active/ativo. Any other column is a product attribute;
a value with ``|`` becomes a list (``38|39|40``).

JSON: an array of objects with the same keys; an ``attributes`` (or ``atributos``) object and/or any
other key become attributes.

On update, a product's fields that the file does not carry (a column or key that is absent) are left as
they are; a present but empty value clears an optional field (``active`` falls back to true).
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Product

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PRICE = Decimal("1000000")
CENTS = Decimal("0.01")
SKU_MAX = 64
NAME_MAX = 200
SHORT_TEXT_MAX = 80  # category, brand (the columns' width)
URL_MAX = 500
ATTRIBUTE_KEY_MAX = 64
LOOKUP_CHUNK = 500

FILE_FIELD = "file"  # RowError.field for problems with the file as a whole
ROW_FIELD = "row"  # RowError.field for problems with a row as a whole

# Canonical field -> accepted spellings after normalisation (lower case, accents removed, spaces -> "_").
ALIASES: dict[str, tuple[str, ...]] = {
    "sku": ("sku",),
    "name": ("name", "nome"),
    "price": ("price", "preco"),
    "category": ("category", "categoria"),
    "brand": ("brand", "marca"),
    "description": ("description", "descricao"),
    "url": ("url",),
    "active": ("active", "ativo"),
}
REQUIRED = ("sku", "name", "price")
JSON_ATTRIBUTES_KEYS = ("attributes", "atributos")
_CANONICAL = {alias: canonical for canonical, aliases in ALIASES.items() for alias in aliases}

TRUE_WORDS = {"sim", "s", "true", "t", "verdadeiro", "1", "yes", "y"}
FALSE_WORDS = {"nao", "n", "false", "f", "falso", "0", "no"}


@dataclass(frozen=True)
class RowError:
    line: int  # physical line of the file (1 = first line); 0 for a problem with the file as a whole
    field: str
    message: str  # pt-BR, shown to the merchant


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int


class CatalogImportError(Exception):
    """The file was refused; nothing was written. ``errors`` lists every problem found."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        summary = f"line {first.line}: {first.field}: {first.message}" if first else "no details"
        super().__init__(f"catalog refused: {len(self.errors)} problem(s); first: {summary}")


@dataclass
class _Row:
    """One validated product: only the fields the file carries for it."""

    line: int
    sku: str
    sku_field: str  # the sku's column (key) as the file names it, for the duplicate error
    values: dict[str, Any] = field(default_factory=dict)


# --- entry point -------------------------------------------------------------------------------------


def import_catalog(session: Session, path: Path) -> ImportReport:
    """Validate every row of ``path`` (.csv or .json), then upsert the products by sku in ``session``.

    Raises CatalogImportError listing every problem, having written nothing, when any row is bad.
    Flushes but does not commit.
    """
    path = Path(path)
    rows = _read_rows(path)
    return _upsert(session, rows)


def _read_rows(path: Path) -> list[_Row]:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise CatalogImportError([RowError(0, FILE_FIELD, f"formato não suportado ({suffix or 'sem extensão'}): "
                                                          "envie um arquivo .csv ou .json")])
    text = _read_text(path)
    if suffix == ".json":
        return _validate_all(_json_rows(text))
    rows = _validate_all(_csv_rows(text))
    _consistent_list_columns(rows)
    return rows


def _consistent_list_columns(rows: list[_Row]) -> None:
    """A CSV attribute column that holds a list (``38|39``) in any row holds a list in every row, so
    ``tamanhos`` = ``Único`` becomes ``["Único"]`` next to rows with several sizes."""
    list_keys = {key for row in rows for key, value in row.values.get("attributes", {}).items()
                 if isinstance(value, list)}
    for row in rows:
        attributes = row.values.get("attributes", {})
        for key in list_keys & attributes.keys():
            if not isinstance(attributes[key], list):
                attributes[key] = [attributes[key]]


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CatalogImportError([RowError(0, FILE_FIELD, f"não foi possível ler o arquivo: {exc.strerror}")]) from None
    too_big = RowError(0, FILE_FIELD, f"arquivo grande demais ({size / 1024 / 1024:.1f} MB); o limite é "
                                      f"{MAX_FILE_BYTES // 1024 // 1024} MB. Divida o catálogo em arquivos menores")
    if size > MAX_FILE_BYTES:
        raise CatalogImportError([too_big])
    with path.open("rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat()
    if len(data) > MAX_FILE_BYTES:
        raise CatalogImportError([too_big])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CatalogImportError([RowError(line, FILE_FIELD,
                                           "o arquivo não está em UTF-8; no Excel, use \"Salvar como\" > "
                                           "\"CSV UTF-8 (delimitado por vírgulas)\"")]) from None
    if not text.strip():
        raise CatalogImportError([RowError(1, FILE_FIELD, "arquivo vazio")])
    return text


# --- CSV -----------------------------------------------------------------------------------------------


@dataclass
class _RawRow:
    """A row as read: (name as the file writes it, value) pairs, before validation."""

    line: int
    pairs: list[tuple[str, Any]]
    attributes_object: tuple[str, Any] | None = None  # JSON only: (key, value) of an attributes object
    problems: list[RowError] = field(default_factory=list)


def _normalise_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.strip().lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\s\-]+", "_", plain)


def _sniff_delimiter(header_line: str) -> str:
    """``;`` (Brazilian Excel) or ``,``: whichever occurs more often outside quotes in the header."""
    counts = {",": 0, ";": 0}
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return ";" if counts[";"] > counts[","] else ","


def _csv_rows(text: str) -> list[_RawRow]:
    first_line = next((line for line in io.StringIO(text) if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(first_line), strict=True)
    records = _csv_records(reader)

    header: list[str] = []
    header_line = 1
    while not any(h.strip() for h in header):  # blank lines before the header are skipped
        try:
            header_line, header = next(records)
        except StopIteration:
            raise CatalogImportError([RowError(1, FILE_FIELD, "arquivo vazio")]) from None
        except _CsvSyntaxError as exc:
            raise CatalogImportError([exc.error]) from None
    names = [h.strip() for h in header]
    _check_header(names, header_line)

    rows: list[_RawRow] = []
    errors: list[RowError] = []
    while True:
        try:
            line, values = next(records)
        except StopIteration:
            break
        except _CsvSyntaxError as exc:
            errors.append(exc.error)  # the reader cannot resynchronise after a broken quote: stop here
            break
        if not any(v.strip() for v in values):
            continue  # blank line, or Excel's trailing ";;;;"
        row = _RawRow(line=line, pairs=[])
        for index, value in enumerate(values):
            if index >= len(names):
                if value.strip():
                    row.problems.append(RowError(line, ROW_FIELD, f"a linha tem mais colunas que o cabeçalho "
                                                                  f"({len(values)} em vez de {len(names)})"))
                    break
                continue
            if not names[index]:
                if value.strip():
                    row.problems.append(RowError(line, f"coluna {index + 1}",
                                                 "valor em uma coluna sem nome no cabeçalho"))
                continue
            row.pairs.append((names[index], value))
        # Columns missing at the end of a short row count as empty cells.
        for name in names[len(values):]:
            if name:
                row.pairs.append((name, ""))
        rows.append(row)
    if errors:
        # Keep the rows read before the break: their problems are reported along with the syntax error.
        return rows + [_RawRow(line=e.line, pairs=[], problems=[e]) for e in errors]
    return rows


class _CsvSyntaxError(Exception):
    def __init__(self, error: RowError) -> None:
        self.error = error


def _csv_records(reader) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, values); a broken record raises _CsvSyntaxError."""
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            message = str(exc)
            if "end of data" in message or "unexpected end" in message:
                text = "aspas (\") abertas e nunca fechadas a partir desta linha"
            elif "field larger than field limit" in message:
                text = "campo grande demais (limite de 128 KB por campo)"
            else:
                text = f"CSV malformado: {message}"
            raise _CsvSyntaxError(RowError(start, ROW_FIELD, text)) from None
        yield start, values


def _check_header(names: list[str], line: int) -> None:
    errors: list[RowError] = []
    seen: dict[str, str] = {}
    attribute_keys: dict[str, str] = {}
    for name in names:
        if not name:
            continue
        canonical = _CANONICAL.get(_normalise_key(name))
        if canonical is not None:
            if canonical in seen:
                errors.append(RowError(line, name, f"coluna repetida: \"{seen[canonical]}\" e \"{name}\" "
                                                   "significam a mesma coisa"))
            else:
                seen[canonical] = name
            continue
        key = _attribute_key(name)
        if key in attribute_keys:
            errors.append(RowError(line, name, f"coluna repetida: \"{attribute_keys[key]}\""))
        elif len(key) > ATTRIBUTE_KEY_MAX:
            errors.append(RowError(line, name, f"nome de coluna longo demais (máximo {ATTRIBUTE_KEY_MAX} caracteres)"))
        else:
            attribute_keys[key] = name
    for canonical in REQUIRED:
        if canonical not in seen:
            spellings = ", ".join(ALIASES[canonical] + (("preço",) if canonical == "price" else ()))
            errors.append(RowError(line, canonical, f"coluna obrigatória ausente no cabeçalho (aceita: {spellings})"))
    if errors:
        raise CatalogImportError(errors)


# --- JSON ----------------------------------------------------------------------------------------------

_JSON_WS = re.compile(r"[ \t\n\r]*")


class _LineCounter:
    """Line number of a character offset, counting newlines incrementally (offsets only move forward)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offset = 0
        self.line = 1

    def at(self, offset: int) -> int:
        if offset < self.offset:
            return self.text.count("\n", 0, offset) + 1
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


MAX_JSON_NUMBER_DIGITS = 30  # a price or an attribute; beyond this it is not a number a shop means


def _parse_json_number(text: str) -> Decimal | int:
    digits = sum(c.isdigit() for c in text)
    if digits > MAX_JSON_NUMBER_DIGITS:
        raise _NumberTooLong(text)
    return Decimal(text) if any(c in text for c in ".eE") else int(text)


class _NumberTooLong(ValueError):
    pass


def _json_rows(text: str) -> list[_RawRow]:
    # Numbers as Decimal: a price written as 299.90 is never a float; and a 5 000-digit number is refused before
    # Python's own limit (4 300 digits) raises out of the parser.
    decoder = json.JSONDecoder(parse_float=_parse_json_number, parse_int=_parse_json_number)
    lines = _LineCounter(text)

    def syntax_error(offset: int, message: str) -> CatalogImportError:
        return CatalogImportError([RowError(lines.at(offset), FILE_FIELD, message)])

    def decode_error(exc: json.JSONDecodeError) -> CatalogImportError:
        return CatalogImportError([RowError(exc.lineno, FILE_FIELD, f"JSON inválido: {_json_message(exc.msg)} "
                                                                   f"(coluna {exc.colno})")])

    try:
        return _decode_rows(text, decoder, lines, syntax_error, decode_error)
    except RecursionError:
        raise CatalogImportError([RowError(1, FILE_FIELD, "JSON aninhado demais: cada produto deve ser um objeto "
                                                          "simples, com listas só nos atributos")]) from None
    except _NumberTooLong as exc:
        position = text.find(str(exc)[:40])
        raise syntax_error(max(position, 0), f"número longo demais (mais de {MAX_JSON_NUMBER_DIGITS} dígitos)") \
            from None


def _decode_rows(text, decoder, lines, syntax_error, decode_error) -> list[_RawRow]:
    pos = _JSON_WS.match(text, 0).end()
    if pos >= len(text) or text[pos] != "[":
        if pos < len(text) and text[pos] == "{":
            raise syntax_error(pos, "o JSON deve ser uma lista de produtos: [ {...}, {...} ]")
        try:
            decoder.decode(text)
        except json.JSONDecodeError as exc:
            raise decode_error(exc) from None
        raise syntax_error(pos, "o JSON deve ser uma lista de produtos: [ {...}, {...} ]")
    pos = _JSON_WS.match(text, pos + 1).end()

    rows: list[_RawRow] = []
    if pos < len(text) and text[pos] == "]":
        pos += 1
    else:
        while True:
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise decode_error(exc) from None
            line = lines.at(pos)
            rows.append(_json_object_row(line, value))
            pos = _JSON_WS.match(text, end).end()
            if pos < len(text) and text[pos] == ",":
                pos = _JSON_WS.match(text, pos + 1).end()
                continue
            if pos < len(text) and text[pos] == "]":
                pos += 1
                break
            if pos >= len(text):
                raise syntax_error(len(text), "JSON inválido: a lista não foi fechada com ]")
            raise syntax_error(pos, "JSON inválido: esperava , ou ] entre os produtos")
    pos = _JSON_WS.match(text, pos).end()
    if pos < len(text):
        raise syntax_error(pos, "JSON inválido: há conteúdo depois do ] final")
    return rows


def _json_message(msg: str) -> str:
    known = {
        "Expecting value": "esperava um valor",
        "Expecting property name enclosed in double quotes": "esperava um nome de campo entre aspas duplas",
        "Expecting ',' delimiter": "faltou uma vírgula",
        "Expecting ':' delimiter": "faltou dois-pontos (:)",
        "Unterminated string starting at": "texto (string) sem aspas de fechamento",
        "Invalid control character at": "caractere de controle dentro de um texto",
        "Extra data": "há conteúdo a mais",
    }
    return known.get(msg, msg)


def _json_object_row(line: int, value: Any) -> _RawRow:
    if not isinstance(value, dict):
        problem = RowError(line, ROW_FIELD, "cada item da lista deve ser um objeto { ... } com os dados do produto")
        return _RawRow(line=line, pairs=[], problems=[problem])
    row = _RawRow(line=line, pairs=[])
    for key, item in value.items():
        if _normalise_key(key) in JSON_ATTRIBUTES_KEYS:
            if row.attributes_object is not None:
                row.problems.append(RowError(line, key, "campo repetido: use só \"attributes\" ou \"atributos\""))
            row.attributes_object = (key, item)
        else:
            row.pairs.append((key, item))
    return row


# --- validation ----------------------------------------------------------------------------------------


class _FieldError(ValueError):
    pass


def _validate_all(raw_rows: list[_RawRow]) -> list[_Row]:
    errors: list[RowError] = []
    rows: list[_Row] = []
    first_line_of_sku: dict[str, int] = {}
    for raw in raw_rows:
        row, problems = _validate_row(raw)
        errors.extend(problems)
        if row is None:
            continue
        earlier = first_line_of_sku.get(row.sku)
        if earlier is not None:
            errors.append(RowError(row.line, row.sku_field, f"sku \"{row.sku}\" repetido: já aparece na "
                                                                       f"linha {earlier}"))
            continue
        first_line_of_sku[row.sku] = row.line
        if not problems:
            rows.append(row)
    if not errors and not rows:
        errors.append(RowError(1, FILE_FIELD, "nenhum produto encontrado no arquivo"))
    if errors:
        errors.sort(key=lambda e: e.line)  # stable: a row's own errors keep their column order
        raise CatalogImportError(errors)
    return rows


def _validate_row(raw: _RawRow) -> tuple[_Row | None, list[RowError]]:
    """The row's product values and its problems. The row is returned (for the duplicate check) whenever
    its sku itself is valid, even if other fields are not."""
    line = raw.line
    problems = list(raw.problems)
    if not raw.pairs and raw.attributes_object is None and problems:
        return None, problems  # not a product at all (broken CSV record, JSON item that is not an object)
    values: dict[str, Any] = {}
    field_names: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    has_attributes = False

    for name, value in raw.pairs:
        canonical = _CANONICAL.get(_normalise_key(name))
        if canonical is None:
            has_attributes = True
            key = _attribute_key(name)
            try:
                parsed = _attribute_value(value)
            except _FieldError as exc:
                problems.append(RowError(line, name, str(exc)))
                continue
            if key in attributes:
                problems.append(RowError(line, name, f"atributo \"{key}\" repetido"))
            elif len(key) > ATTRIBUTE_KEY_MAX or not key:
                problems.append(RowError(line, name, f"nome de atributo inválido (1 a {ATTRIBUTE_KEY_MAX} caracteres)"))
            elif parsed is not None:
                attributes[key] = parsed
            continue
        if canonical in field_names:
            problems.append(RowError(line, name, f"campo repetido: \"{field_names[canonical]}\" e \"{name}\" "
                                                 "significam a mesma coisa"))
            continue
        field_names[canonical] = name
        try:
            values[canonical] = _PARSERS[canonical](value)
        except _FieldError as exc:
            problems.append(RowError(line, name, str(exc)))

    if raw.attributes_object is not None:
        has_attributes = True
        key_name, obj = raw.attributes_object
        if obj is None:
            pass
        elif not isinstance(obj, dict):
            problems.append(RowError(line, key_name, "deve ser um objeto { \"cor\": \"preto\", ... }"))
        else:
            for key, item in obj.items():
                label = f"{key_name}.{key}"
                try:
                    parsed = _attribute_value(item)
                except _FieldError as exc:
                    problems.append(RowError(line, label, str(exc)))
                    continue
                clean_key = _attribute_key(key)
                if not clean_key or len(clean_key) > ATTRIBUTE_KEY_MAX:
                    problems.append(RowError(line, label, f"nome de atributo inválido (1 a {ATTRIBUTE_KEY_MAX} "
                                                          "caracteres)"))
                elif clean_key in attributes:
                    problems.append(RowError(line, label, f"atributo \"{clean_key}\" informado duas vezes"))
                elif parsed is not None:
                    attributes[clean_key] = parsed

    for canonical in REQUIRED:
        if canonical not in field_names:
            problems.append(RowError(line, canonical, "campo obrigatório ausente"))
        elif values.get(canonical) is None and not any(p.field == field_names[canonical] for p in problems):
            problems.append(RowError(line, field_names[canonical], "campo obrigatório vazio"))

    # Report a row's problems in the order of its columns (keys), whole-row problems first.
    position = {name: index for index, (name, _) in enumerate(raw.pairs)}
    problems.sort(key=lambda p: -1 if p.field == ROW_FIELD else position.get(p.field, len(position)))

    if has_attributes:
        values["attributes"] = attributes
    if "active" in values and values["active"] is None:
        values["active"] = True  # present but empty: the default

    sku = values.get("sku")
    if not sku:
        return None, problems
    return _Row(line=line, sku=sku, sku_field=field_names["sku"], values=values), problems


def _attribute_key(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


def _text(value: Any, *, max_length: int | None = None, allow_number: bool = False) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or (not isinstance(value, str) and not (allow_number and isinstance(value, int))):
        raise _FieldError("deve ser um texto")
    text = str(value).strip()
    if "\x00" in text:
        raise _FieldError("contém um caractere inválido (NUL)")
    if not text:
        return None
    if max_length is not None and len(text) > max_length:
        raise _FieldError(f"longo demais ({len(text)} caracteres; máximo {max_length})")
    return text


def _parse_sku(value: Any) -> str | None:
    sku = _text(value, max_length=SKU_MAX, allow_number=True)
    if sku is not None and re.search(r"\s", sku):
        raise _FieldError("o sku não pode ter espaços")
    return sku


def _parse_name(value: Any) -> str | None:
    text = _text(value, max_length=NAME_MAX)
    return re.sub(r"\s+", " ", text) if text else text


def _parse_short(value: Any) -> str | None:
    return _text(value, max_length=SHORT_TEXT_MAX)


def _parse_description(value: Any) -> str | None:
    return _text(value)


def _parse_url(value: Any) -> str | None:
    url = _text(value, max_length=URL_MAX)
    if url is None:
        return None
    parsed = urlparse(url)
    if parsed.scheme.lower() not in ("http", "https") or not parsed.netloc or re.search(r"\s", url):
        raise _FieldError("endereço inválido: use um link completo começando com http:// ou https://")
    return url


def _parse_active(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if not isinstance(value, str):
        raise _FieldError("use sim ou não")
    word = _normalise_key(value)
    if not word:
        return None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _FieldError(f"valor \"{value.strip()}\" não reconhecido: use sim ou não")


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
        raise _FieldError("deve ser um número ou um texto como 299,90")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, (Decimal, float)):
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
        if not amount.is_finite():
            raise _FieldError("preço inválido")
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        amount = _parse_price_text(text)
    else:
        raise _FieldError("deve ser um número ou um texto como 299,90")
    if amount <= 0:
        raise _FieldError("o preço deve ser maior que zero")
    if amount >= MAX_PRICE:
        raise _FieldError("preço alto demais (deve ser menor que R$ 1.000.000,00)")
    if amount != amount.quantize(CENTS, rounding=ROUND_DOWN):
        raise _FieldError(f"preço com mais de 2 casas decimais: {value}")
    return amount.quantize(CENTS)


def _parse_price_text(text: str) -> Decimal:
    compact = re.sub(r"^r\$", "", re.sub(r"[\s\u00a0]+", "", text), flags=re.IGNORECASE)
    if compact.startswith("-"):
        raise _FieldError("o preço deve ser maior que zero")
    if re.fullmatch(r"\d{1,3}\.\d{3}", compact):
        raise _FieldError(f"preço ambíguo \"{text}\": escreva {compact.replace('.', '')} ou {compact},00")
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
        raise _FieldError(f"preço com mais de 2 casas decimais: \"{text}\"")
    raise _FieldError(f"preço inválido \"{text}\": use um valor como 299,90 ou R$ 1.299,90")


_PARSERS = {
    "sku": _parse_sku,
    "name": _parse_name,
    "price": parse_price,
    "category": _parse_short,
    "brand": _parse_short,
    "description": _parse_description,
    "url": _parse_url,
    "active": _parse_active,
}


def _attribute_value(value: Any) -> Any:
    """A CSV cell or JSON value as stored in Product.attributes; None means 'not set'."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if "\x00" in text:
            raise _FieldError("contém um caractere inválido (NUL)")
        if "|" in text:
            return [part.strip() for part in text.split("|") if part.strip()]
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
                    raise _FieldError("contém um caractere inválido (NUL)")
                if item.strip():
                    items.append(item.strip())
            elif isinstance(item, bool):
                items.append(item)
            elif isinstance(item, (int, Decimal, float)):
                items.append(_json_number(item))
            elif item is not None:
                raise _FieldError("uma lista de atributo só pode ter textos ou números")
        return items
    raise _FieldError("atributo deve ser texto, número, sim/não ou lista")


def _json_number(value: int | Decimal | float) -> int | float | str:
    if isinstance(value, int):
        return value
    decimal = value if isinstance(value, Decimal) else Decimal(str(value))
    if not decimal.is_finite():
        raise _FieldError("número inválido")
    if decimal == decimal.to_integral_value():
        return int(decimal)
    return float(decimal)  # an attribute (weight, size), not money


# --- writing -------------------------------------------------------------------------------------------


def _upsert(session: Session, rows: list[_Row]) -> ImportReport:
    existing: dict[str, Product] = {}
    skus = [row.sku for row in rows]
    for start in range(0, len(skus), LOOKUP_CHUNK):
        chunk = skus[start:start + LOOKUP_CHUNK]
        for product in session.scalars(select(Product).where(Product.sku.in_(chunk))):
            existing[product.sku] = product

    created = updated = 0
    for row in rows:
        values = dict(row.values)
        product = existing.get(row.sku)
        if product is None:
            values.setdefault("active", True)
            values.setdefault("attributes", {})
            session.add(Product(**values))
            created += 1
        else:
            for key, value in values.items():
                if key != "sku" and getattr(product, key) != value:
                    setattr(product, key, value)
            updated += 1
    session.flush()
    return ImportReport(created=created, updated=updated)
