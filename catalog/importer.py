"""Catalog import: products and their variants from a merchant's file, every row or none, every problem by line.

``import_catalog(session, path, format="auto")`` reads the whole file, validates every record and, only when no
record has a problem, upserts the products (by product key) and their variants (by SKU) in the caller's session,
inside a savepoint, then refreshes the search index (``catalog.index.refresh``) in the same transaction. The
caller commits. Otherwise it raises ``CatalogImportError`` carrying one ``RowError`` per problem: the physical line
of the file where the record (CSV record, JSON object) starts, the field as the file names it (``arquivo`` for the
file as a whole, ``linha`` for a record as a whole) and a message in Brazilian Portuguese.

Formats (``format="auto"`` tells them apart by extension and header; ``csv``, ``json``, ``shopify`` and
``nuvemshop`` force one):

**Ours**, CSV (``,`` or ``;``, UTF-8 with or without BOM) or JSON (a list of objects with the same keys): one row
per variant, grouped by the product key. Header names, accents and case ignored (Portuguese / English):

========================  ============================================================  ==========
column                    also accepted                                                 level
========================  ============================================================  ==========
produto                   product, codigo, código do produto, referencia, ref,          product key
                          product_key, product_code
sku                       codigo sku, variant_sku                                       variant, required
nome                      nome do produto, titulo, name, title                          product, required
preço                     preco de venda, valor, price                                  variant, required
preço de                  preço original, preço cheio, preço antigo, compare_at_price   variant
estoque                   quantidade, qtd, qtde, stock, quantity, inventory             variant
tamanho                   tam, numeração, size                                          variant
cor                       color, colour                                                 variant
ativo                     ativa, situação, status, active                               variant
categoria                 category                                                      product
marca                     brand                                                         product
descrição                 description                                                   product
url                       link, url do produto, product_url                             product
imagem                    url da imagem, foto, image, image_url                         product
========================  ============================================================  ==========

Any other column is a product attribute (``material``, ``gênero``); a value with ``|`` becomes a list. JSON also
takes an ``atributos``/``attributes`` object and an ``opcoes``/``options`` object (every option of the variant,
``{"Tamanho": "42", "Cor": "Preto", "Material": "Couro"}``). Product-level values may repeat on every row of the
product (they must then agree, or the later line is an error) or be on its first row only; ``imagem`` is the
exception: the first image given wins (each colour's row may carry its own photo). ``preço de`` must be higher
than ``preço``. ``estoque``: empty = not tracked, ``0`` = sold out, ``12`` or ``12.0`` = twelve; negative,
fractional or ambiguous (``1.000``) values are errors.

**Today's format** (before variants; one row per product, ``sku`` the product's code, ``tamanhos`` = ``38|39|40``):
a file *without* a ``produto`` column. Each row is then a product whose key is its ``sku``, with one variant per
listed size named exactly as migration 0007 names them (``<sku>-<size>``; the ``sku`` itself for one size or none),
the row's colour (``cor``, capitalised as 0007 did) and price, so an old file re-imported after the migration
updates the same variants (a size whose SKU is not found updates the product's variant of that size: 0007 numbered
sizes that collapse to one SKU, ``P/M`` and ``P-M``, across the whole catalog). With a ``produto`` column,
``tamanhos`` is refused with advice (one row per size).

**Shopify's product CSV export**: Handle, Title, Body (HTML), Vendor, Type / Product Category, Tags, Published,
Status, Option1..3 Name/Value, Variant SKU, Variant Price, Variant Compare At Price, Variant Inventory Qty,
Variant Inventory Tracker, Variant Inventory Policy, Image Src (and the 2024 export's names: URL handle,
Description, SKU, Price, Compare-at price, Inventory quantity, Inventory tracker, Product image URL...). Rows of a
handle after the first carry only variant columns; image-only rows are skipped. The category is Type, else the last
level of Product Category. A product is active when its Status is active (or empty) and Published is not FALSE;
its variants follow it. No tracker = untracked stock; policy "continue" (sells when out of stock) = untracked; a
negative quantity (oversold) counts as 0. A compare-at price not above the price is ignored, as Shopify does. A
variant without SKU is an error naming its line. Other columns are ignored.

**Nuvemshop's product CSV export** (``;``): Identificador URL, Nome, Categorias, Nome/Valor da variação 1..3,
Preço, Preço promocional, Estoque, SKU, Exibir na loja, Descrição, Tags, Marca, Sexo, Faixa etária (others
ignored). Rows after a product's first repeat the Identificador URL and carry the variant. A promotional price
becomes the price and the regular price the "de" price. An empty Estoque is untracked ("infinito"). A variant
without SKU gets ``<identificador>-<valores>`` (Nuvemshop does not require SKUs), stable across imports.

For every platform format, options named Tamanho/Tam/Numeração/Size/Talla/Taille... become the variant's size and
Cor/Color/Colour/Couleur... its colour; every option is kept in ``Variant.options``. HTML descriptions become plain
text. A product key over 64 characters (long handles) is shortened with a hash suffix, the same way every time.

CSV as spreadsheets write it (RFC 4180): a field with the separator, a quote or a line break is quoted, its quotes
doubled. A quote inside an unquoted field (``Produto "quebrado``) or text after a closing quote is refused with the
line and the column, not imported as text; an inch mark after a digit (``Mochila 15"``) is text. A quote never
closed is refused on the line where its record starts. Blank lines and Excel's ``;;;;`` rows are skipped.

Encoding: UTF-8, with or without BOM. A Windows-1252 ("ANSI") file is refused with the line and word of its first
accented character and how to save it as UTF-8, as the issue asks: any byte decodes as Windows-1252, so decoding it
would silently store wrong names for the files that are in another encoding (Mac, ISO-8859-15, UTF-8 saved twice),
and one re-save fixes the file for every later import.

Upsert: a product is found by key, a variant by SKU; fields the file does not carry (a column that is absent) are
left as they are, a present but empty cell clears an optional field. In our format the attribute columns replace
the product's attributes; a platform export only replaces the attributes it carries (tags, sexo, faixa etária).
A product's variants that are not in the file are left as they are, unless ``deactivate_missing=True`` (then they
are deactivated, never deleted). A SKU that the file puts under another product moves there. Afterwards every
product the import touched has ``price`` = the lowest price among its active variants (all its variants when none
is active); in our format a product is active when at least one of its variants is, in the platform formats it
follows the platform's status. At most MAX_ERRORS problems are listed, then one line says how many more there are.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from catalog import index
from models import Product, Variant

FORMATS = ("auto", "csv", "json", "shopify", "nuvemshop")
FORMAT_LABELS = {"csv": "CSV", "json": "JSON", "shopify": "Shopify", "nuvemshop": "Nuvemshop"}

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PRICE = Decimal(1000000)
MAX_STOCK = 10_000_000
MAX_ERRORS = 500  # beyond this, one more line says how many were left out
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
LOOKUP_CHUNK = 500

FILE_FIELD = "arquivo"  # RowError.field for problems with the file as a whole
ROW_FIELD = "linha"  # RowError.field for problems with a record as a whole

TRUE_WORDS = {"sim", "s", "true", "t", "verdadeiro", "1", "yes", "y", "ativo", "ativa", "active", "x"}
FALSE_WORDS = {"nao", "n", "false", "f", "falso", "0", "no", "inativo", "inativa", "inactive"}

# Option names (normalised) that mean the variant's size / colour, in the languages shops write them in.
SIZE_OPTIONS = {"tamanho", "tamanhos", "tam", "tamano", "tamanio", "numeracao", "numero", "size", "sizes",
                "talla", "talle", "taille", "taglia", "grosse", "große", "groesse"}
COLOR_OPTIONS = {"cor", "cores", "color", "colors", "colour", "colours", "couleur", "farbe", "colore", "kleur"}
SIZE_KEY, COLOR_KEY = "Tamanho", "Cor"  # our format's option names


@dataclass(frozen=True)
class RowError:
    line: int  # physical line of the file where the record starts (1 = first line); 0 for the file as a whole
    field: str  # the column (key) as the file names it; "arquivo" or "linha" for the file or the record
    message: str  # pt-BR, one line, shown to the merchant


@dataclass(frozen=True)
class ImportReport:
    format: str  # csv, json, shopify, nuvemshop
    legacy: bool = False  # our format without a product column (one row per product, sizes in "tamanhos")
    products_created: int = 0
    products_updated: int = 0
    products_unchanged: int = 0
    variants_created: int = 0
    variants_updated: int = 0
    variants_unchanged: int = 0
    variants_deactivated: int = 0  # only with deactivate_missing

    @property
    def created(self) -> int:
        return self.products_created

    @property
    def updated(self) -> int:
        return self.products_updated


class CatalogImportError(Exception):
    """The file was refused; nothing was written. ``errors`` lists every problem found (at most MAX_ERRORS + 1)."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        summary = f"line {first.line}: {first.field}: {first.message}" if first else "no details"
        super().__init__(f"catalog refused: {len(self.errors)} problem(s); first: {summary}")


class _FieldError(ValueError):
    """A cell's value is wrong; the message (pt-BR) is shown with the line and the column."""


def _refuse(errors: list[RowError]) -> CatalogImportError:
    ordered = sorted(errors, key=lambda e: e.line)  # stable: a record's own errors keep their column order
    if len(ordered) > MAX_ERRORS:
        more = len(ordered) - MAX_ERRORS
        ordered = ordered[:MAX_ERRORS] + [RowError(0, FILE_FIELD, f"e mais {more} problema(s) não listado(s): "
                                                                  "corrija os de cima e envie de novo")]
    return CatalogImportError(ordered)


def _file_error(line: int, message: str) -> CatalogImportError:
    return CatalogImportError([RowError(line, FILE_FIELD, message)])


# --- the parsed catalog ----------------------------------------------------------------------------------


@dataclass
class ParsedVariant:
    line: int
    sku: str
    sku_field: str
    # Only what the file carries for it: price, compare_at_price, stock, active, options, size, color,
    # platform_variant_id. "size"/"color" present = our format's columns (merged into the options on update);
    # "options" present = the full set of options (platform formats, JSON "opcoes").
    values: dict[str, Any] = field(default_factory=dict)
    raw_options: list[tuple[int, str, str]] = field(default_factory=list)  # platforms: (n, value, value column)
    # Today's format: a size whose SKU is not found updates the product's variant of that size (migration 0007
    # numbered sizes that collapse to one SKU, "P/M" and "P-M", across the whole catalog).
    match_size: bool = False


@dataclass
class ParsedProduct:
    key: str
    line: int  # first line of the product in the file
    key_field: str
    values: dict[str, Any] = field(default_factory=dict)  # product-level fields the file carries
    variants: list[ParsedVariant] = field(default_factory=list)
    # (value, line, column) of the first non-empty value of each product-level field, for the agreement check.
    seen: dict[str, tuple[Any, int, str]] = field(default_factory=dict)
    present: dict[str, str] = field(default_factory=dict)  # field -> column, for fields the file has
    attributes_present: bool = False
    rows: int = 0


@dataclass
class ParsedCatalog:
    format: str
    legacy: bool
    products: list[ParsedProduct]


# --- entry points ------------------------------------------------------------------------------------------


def import_catalog(session: Session, path: Path | str, format: str = "auto", *,
                   deactivate_missing: bool = False) -> ImportReport:
    """Validate every record of ``path``, then upsert its products and variants in ``session``.

    Raises CatalogImportError listing every problem, having written nothing, when any record is bad. A product's
    variants that the file does not list are left as they are (``deactivate_missing=True`` deactivates them).
    Writes inside a savepoint and refreshes the search index for the products it touched; does not commit.
    """
    catalog = read_catalog(path, format)
    return _write(session, catalog, deactivate_missing=deactivate_missing)


def read_catalog(path: Path | str, format: str = "auto") -> ParsedCatalog:
    """Read and validate ``path`` without touching the database; raises CatalogImportError."""
    if format not in FORMATS:
        raise _file_error(0, f"formato desconhecido \"{format}\": use {', '.join(FORMATS)}")
    path = Path(path)
    data = _read_bytes(path)
    kind = _kind(path, data, format)
    text = _decode(data)
    if kind == "json":
        rows, legacy = _ours_rows_json(text)
        return _assemble(rows, "json", legacy=legacy)
    return _read_csv(text, format)


# --- reading -----------------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _file_error(0, f"não foi possível ler o arquivo: {exc.strerror}") from None
    too_big = (f"arquivo grande demais ({size / 1024 / 1024:.1f} MB); o limite é "
               f"{MAX_FILE_BYTES // 1024 // 1024} MB. Divida o catálogo em arquivos menores")
    if size > MAX_FILE_BYTES:
        raise _file_error(0, too_big)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise _file_error(0, f"não foi possível ler o arquivo: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise _file_error(0, too_big)
    return data


def _kind(path: Path, data: bytes, format: str) -> str:
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise _file_error(0, "isto é uma planilha do Excel (.xlsx/.xls), não um CSV: no Excel, use \"Salvar como\" > "
                             "\"CSV UTF-8 (delimitado por vírgulas)\" e envie o arquivo .csv")
    if format == "json":
        return "json"
    if format != "auto":
        return "csv"
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix == ".csv":
        return "csv"
    raise _file_error(0, f"formato não suportado ({suffix or 'sem extensão'}): envie um arquivo .csv ou .json")


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _file_error(1, "o arquivo está em UTF-16 (\"Texto Unicode\" do Excel): salve como \"CSV UTF-8 "
                             "(delimitado por vírgulas)\" e envie de novo")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        try:
            start = data.rfind(b"\n", 0, exc.start) + 1
            end = data.find(b"\n", exc.start)
            sample = data[start:end if end >= 0 else len(data)].decode("cp1252").strip()
        except UnicodeDecodeError:
            sample = None
        if sample is not None:
            word = _word_at(sample, exc.start - start)
            message = (f"o arquivo está em Windows-1252 (ANSI), não em UTF-8 (linha {line}: \"{word}\"). "
                       "Salve de novo como UTF-8: no Excel, \"Salvar como\" > \"CSV UTF-8 (delimitado por "
                       "vírgulas)\"; no LibreOffice, marque \"Editar configurações do filtro\" e escolha "
                       "\"Unicode (UTF-8)\"; no Google Planilhas, \"Arquivo\" > \"Fazer download\" > \"CSV\"")
        else:
            message = ("o arquivo não está em UTF-8: salve de novo como UTF-8 (no Excel, \"Salvar como\" > "
                       "\"CSV UTF-8 (delimitado por vírgulas)\")")
        raise _file_error(line, message) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise _file_error(1, "arquivo vazio")
    return text


def _word_at(text: str, position: int) -> str:
    position = max(0, min(position, len(text) - 1))
    start = position
    while start > 0 and not text[start - 1].isspace() and text[start - 1] not in ",;\"":
        start -= 1
    end = position
    while end < len(text) and not text[end].isspace() and text[end] not in ",;\"":
        end += 1
    return _short(text[start:end] or text[:30])


# --- CSV ---------------------------------------------------------------------------------------------------


@dataclass
class _Record:
    line: int  # where the record starts
    values: list[str]
    problems: list[tuple[int, str]] = field(default_factory=list)  # (field index, message)


class _Unclosed(Exception):
    def __init__(self, line: int, quote_line: int, index: int) -> None:
        self.line, self.quote_line, self.index = line, quote_line, index


def _sniff_delimiter(text: str) -> str:
    """``;`` (Brazilian Excel, Nuvemshop) or ``,``: whichever occurs more often outside quotes in the header."""
    counts = {",": 0, ";": 0}
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "\n" and not quoted:
            if counts[","] or counts[";"]:
                break
        elif not quoted and char in counts:
            counts[char] += 1
    return ";" if counts[";"] > counts[","] else ","


def _csv_records(text: str, delimiter: str) -> Iterator[_Record]:
    """RFC 4180 records with the line each starts on. Refuses what spreadsheets never write: a quote inside an
    unquoted field (``Produto "quebrado``), text after a closing quote; an unclosed quote raises _Unclosed."""
    d = re.escape(delimiter)
    plain = re.compile(rf'[^{d}\n"]*')
    rest = re.compile(rf"[^{d}\n]*")
    pos, line, n = 0, 1, len(text)
    while pos < n:
        record = _Record(line=line, values=[])
        while True:
            index = len(record.values)
            if pos < n and text[pos] == '"':
                closed = _quoted_field(text, pos)
                if closed is None:
                    raise _Unclosed(record.line, line, index)
                value, end = closed
                line += text.count("\n", pos, end)
                pos = end
                if pos < n and text[pos] not in (delimiter, "\n"):
                    tail = rest.match(text, pos)
                    record.problems.append((index, ("texto depois das aspas de fechamento: um campo entre aspas "
                                                    "termina na aspa; para usar aspas dentro do texto, dobre-as "
                                                    "(\"\")")))
                    value += tail.group(0)
                    pos = tail.end()
            else:
                parts, stray = [], False
                while True:
                    match = plain.match(text, pos)
                    parts.append(match.group(0))
                    pos = match.end()
                    if pos < n and text[pos] == '"':
                        # 15" (inches) is text; any other quote here is a field that was meant to be quoted.
                        stray |= not text[pos - 1].isdigit()
                        parts.append('"')
                        pos += 1
                        continue
                    break
                value = "".join(parts)
                if stray:
                    record.problems.append((index, (f"aspas (\") no meio de um campo sem aspas: \"{_short(value)}\". "
                                                    "Coloque o campo inteiro entre aspas e dobre as aspas de "
                                                    "dentro, como \"Camiseta \"\"Vintage\"\"\" (o Excel faz isso "
                                                    "ao salvar)")))
            record.values.append(value)
            if pos >= n:
                break
            if text[pos] == delimiter:
                pos += 1
                if pos >= n:
                    record.values.append("")
                    break
                continue
            pos += 1  # "\n"
            line += 1
            break
        yield record


def _quoted_field(text: str, pos: int) -> tuple[str, int] | None:
    """The value of the quoted field opening at ``pos`` and the offset after its closing quote; None if it never
    closes. ``""`` inside is one quote. Linear: no regular expression to backtrack over a 20 MB field."""
    chunks = []
    start = pos + 1
    while True:
        quote = text.find('"', start)
        if quote < 0:
            return None
        if text.startswith('""', quote):
            chunks.append(text[start:quote + 1])
            start = quote + 2
            continue
        chunks.append(text[start:quote])
        return "".join(chunks), quote + 1


@dataclass
class _Header:
    line: int
    names: list[str]  # as in the file, stripped
    keys: list[str]  # normalised


def _read_csv(text: str, format: str) -> ParsedCatalog:
    delimiter = _sniff_delimiter(text)
    records = _csv_records(text, delimiter)
    header: _Header | None = None
    rows_in: list[_Record] = []
    unclosed: _Unclosed | None = None
    try:
        for record in records:
            if not any(v.strip() for v in record.values):
                continue  # blank line, or Excel's trailing ";;;;"
            if header is None:
                if record.problems:
                    raise CatalogImportError([RowError(record.line, FILE_FIELD, f"cabeçalho: {message}")
                                              for _, message in record.problems])
                names = [v.strip() for v in record.values]
                header = _Header(record.line, names, [_norm(name) for name in names])
                continue
            rows_in.append(record)
    except _Unclosed as exc:
        unclosed = exc
    if header is None:
        if unclosed is not None:
            raise _file_error(unclosed.line, "cabeçalho: aspas (\") abertas e nunca fechadas")
        raise _file_error(1, "arquivo vazio")

    dialect = _dialect(header, format)
    if any("\x00" in name for name in header.names):
        raise _file_error(header.line, "cabeçalho com um caractere inválido (NUL)")
    legacy = False
    errors: list[RowError] = []
    if unclosed is not None:
        column = header.names[unclosed.index] if unclosed.index < len(header.names) else ROW_FIELD
        where = f" (aberta na linha {unclosed.quote_line})" if unclosed.quote_line != unclosed.line else ""
        errors.append(RowError(unclosed.line, column or ROW_FIELD,
                               f"aspas (\") abertas e nunca fechadas{where}: o resto do arquivo ficaria dentro "
                               "deste campo. Feche as aspas, ou dobre-as (\"\") se fazem parte do texto"))
    if dialect == "shopify":
        columns = _Columns(header, SHOPIFY_COLUMNS, "Shopify")
        columns.require(("key", "name", "sku", "price"))
        row_of = _shopify_row
    elif dialect == "nuvemshop":
        columns = _Columns(header, NUVEMSHOP_COLUMNS, "Nuvemshop")
        columns.require(("key", "name", "price"))
        row_of = _nuvemshop_row
    else:
        columns = _Columns(header, OURS_COLUMNS, None, attributes=True)
        columns.require(("sku", "name", "price"))
        legacy = "key" not in columns.index
        if not legacy and "sizes" in columns.index:
            columns.errors.append(RowError(header.line, columns.name("sizes"), LEGACY_SIZES_MESSAGE))
        if legacy and "sizes" in columns.index and "size" in columns.index:
            columns.errors.append(RowError(header.line, columns.name("size"),
                                           f"use \"{columns.name('size')}\" (um tamanho por linha, com a coluna "
                                           f"produto) ou \"{columns.name('sizes')}\" (formato antigo), não as duas"))
    if columns.errors:
        raise _refuse(columns.errors)

    rows: list[_Row] = []
    width = len(header.names)
    for record in rows_in:
        row_errors = [RowError(record.line, _column_label(header, i), message) for i, message in record.problems]
        if len(record.values) > width and any(v.strip() for v in record.values[width:]):
            row_errors.append(RowError(record.line, ROW_FIELD, f"a linha tem mais colunas que o cabeçalho "
                                                               f"({len(record.values)} em vez de {width}); "
                                                               "confira o separador e as aspas"))
        cells = record.values[:width] + [""] * (width - len(record.values))
        if dialect == "csv":
            pairs = []
            for i, (name, cell) in enumerate(zip(header.names, cells)):
                if name:
                    pairs.append((name, cell))
                elif cell.strip():
                    row_errors.append(RowError(record.line, f"coluna {i + 1}", "valor em uma coluna sem nome no "
                                                                               "cabeçalho"))
            row = _ours_row(record.line, pairs, legacy=legacy)
        else:
            row = row_of(record.line, cells, columns)
        row.errors[:0] = row_errors
        rows.append(row)
    catalog = _assemble(rows, dialect, legacy=legacy if dialect == "csv" else False, extra_errors=errors)
    return catalog


def _column_label(header: _Header, index: int) -> str:
    if index < len(header.names) and header.names[index]:
        return header.names[index]
    return f"coluna {index + 1}"


def _dialect(header: _Header, format: str) -> str:
    keys = set(header.keys)
    shopify = bool(keys & {"handle", "url_handle"}) and "title" in keys
    nuvemshop = "identificador_url" in keys
    if format == "auto":
        return "shopify" if shopify else "nuvemshop" if nuvemshop else "csv"
    if format == "shopify" and not (keys & {"handle", "url_handle"}):
        raise _file_error(header.line, "o cabeçalho não é o da exportação de produtos da Shopify: falta a coluna "
                                       "Handle (exporte em Produtos > Exportar > CSV para Excel ou planilhas)")
    if format == "nuvemshop" and not nuvemshop:
        raise _file_error(header.line, "o cabeçalho não é o da exportação de produtos da Nuvemshop: falta a coluna "
                                       "\"Identificador URL\" (exporte em Produtos > Exportar e importar)")
    return format


class _Columns:
    """Which column of the header holds each field, for one format."""

    def __init__(self, header: _Header, spec: dict[str, tuple[str, ...]], platform: str | None, *,
                 attributes: bool = False) -> None:
        self.header = header
        self.platform = platform
        self.spec = spec
        self.index: dict[str, int] = {}
        self.attributes: list[tuple[int, str, str]] = []  # (index, column, attribute key)
        self.errors: list[RowError] = []
        aliases = {alias: canonical for canonical, names in spec.items() for alias in names}
        attribute_keys: dict[str, str] = {}
        for i, (name, key) in enumerate(zip(header.names, header.keys)):
            if not name:
                continue
            canonical = aliases.get(key)
            if canonical is not None:
                if canonical in self.index:
                    earlier = header.names[self.index[canonical]]
                    self.errors.append(RowError(header.line, name, f"coluna repetida: \"{earlier}\" e \"{name}\" "
                                                                   "significam a mesma coisa"))
                else:
                    self.index[canonical] = i
                continue
            if not attributes:
                continue  # platform columns we do not use (weight, SEO, Google Shopping...)
            attribute = _attribute_key(name)
            if attribute in attribute_keys:
                self.errors.append(RowError(header.line, name, f"coluna repetida: \"{attribute_keys[attribute]}\""))
            elif len(attribute) > ATTRIBUTE_KEY_MAX:
                self.errors.append(RowError(header.line, name, f"nome de coluna longo demais (máximo "
                                                               f"{ATTRIBUTE_KEY_MAX} caracteres)"))
            else:
                attribute_keys[attribute] = name
                self.attributes.append((i, name, attribute))

    def name(self, canonical: str) -> str:
        return self.header.names[self.index[canonical]]

    def require(self, canonicals: Iterable[str]) -> None:
        for canonical in canonicals:
            if canonical not in self.index:
                label = REQUIRED_LABELS.get((self.platform, canonical), canonical)
                if self.platform is None:
                    accepted = f" (aceita: {', '.join(SPELLINGS[canonical])})"
                else:
                    accepted = f": o arquivo não parece uma exportação completa da {self.platform}"
                self.errors.append(RowError(self.header.line, label,
                                            f"coluna obrigatória ausente no cabeçalho{accepted}"))

    def cell(self, cells: list[str], canonical: str) -> tuple[str, str] | None:
        """(value, column) of a field, or None when the header has no such column."""
        i = self.index.get(canonical)
        if i is None:
            return None
        return cells[i], self.header.names[i]


# --- our format (CSV rows and JSON objects) ------------------------------------------------------------------

OURS_COLUMNS: dict[str, tuple[str, ...]] = {
    "key": ("produto", "codigo_do_produto", "codigo_produto", "cod_produto", "codigo", "referencia", "ref",
            "product", "product_key", "product_code"),
    "sku": ("sku", "codigo_sku", "sku_da_variante", "variant_sku"),
    "name": ("nome", "nome_do_produto", "titulo", "name", "product_name", "title"),
    "price": ("preco", "preco_de_venda", "preco_venda", "valor", "price"),
    "compare_at_price": ("preco_de", "preco_original", "preco_cheio", "preco_antigo", "preco_riscado",
                         "compare_at_price", "compare_at", "list_price"),
    "stock": ("estoque", "quantidade", "qtd", "qtde", "stock", "quantity", "inventory"),
    "size": ("tamanho", "tam", "numeracao", "size"),
    "color": ("cor", "color", "colour"),
    "active": ("ativo", "ativa", "situacao", "status", "active"),
    "category": ("categoria", "category"),
    "brand": ("marca", "brand"),
    "description": ("descricao", "description"),
    "url": ("url", "link", "url_do_produto", "product_url"),
    "image_url": ("imagem", "url_da_imagem", "imagem_url", "foto", "image", "image_url"),
    "sizes": ("tamanhos", "sizes"),  # today's format: every size in one cell
}
JSON_ATTRIBUTES = {"atributos", "attributes"}
JSON_OPTIONS = {"opcoes", "options"}
PRODUCT_FIELDS = ("name", "description", "category", "brand", "url", "image_url")
FIRST_WINS = {"image_url"}  # a later row's different value is not a conflict
SPELLINGS = {
    "key": ("produto", "product", "codigo"), "sku": ("sku",), "name": ("nome", "name"),
    "price": ("preço", "preco", "price"),
}
REQUIRED_LABELS = {
    (None, "key"): "produto", (None, "sku"): "sku", (None, "name"): "nome", (None, "price"): "preço",
    ("Shopify", "key"): "Handle", ("Shopify", "name"): "Title", ("Shopify", "sku"): "Variant SKU",
    ("Shopify", "price"): "Variant Price",
    ("Nuvemshop", "key"): "Identificador URL", ("Nuvemshop", "name"): "Nome", ("Nuvemshop", "price"): "Preço",
}
LEGACY_SIZES_MESSAGE = ("com a coluna produto, cada tamanho é uma linha (uma variante com seu sku, tamanho, preço e "
                        "estoque): troque \"38|39|40\" por três linhas com a coluna tamanho; ou tire a coluna produto "
                        "para importar no formato antigo (uma linha por produto)")
_OURS_ALIASES = {alias: canonical for canonical, names in OURS_COLUMNS.items() for alias in names}


@dataclass
class _Row:
    """One record, mapped: its product key, product-level values (value, column) and variants."""

    line: int
    key: str | None = None
    key_field: str = ""
    product: dict[str, tuple[Any, str]] = field(default_factory=dict)
    attributes_present: bool = False
    variants: list[ParsedVariant] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _ours_row(line: int, pairs: list[tuple[str, Any]], *, legacy: bool, json_mode: bool = False) -> _Row:
    row = _Row(line=line)
    parsed: dict[str, Any] = {}
    names: dict[str, str] = {}
    failed: set[str] = set()
    attributes: list[tuple[str, str, Any]] = []  # (column, key, value)
    options_obj: tuple[str, Any] | None = None
    for name, value in pairs:
        key = _norm(name)
        if json_mode and key in JSON_ATTRIBUTES:
            row.attributes_present = True
            if value is None:
                continue
            if not isinstance(value, dict):
                row.errors.append(RowError(line, name, "deve ser um objeto { \"material\": \"couro\", ... }"))
                continue
            attributes.extend((f"{name}.{k}", k, v) for k, v in value.items())
            continue
        if json_mode and key in JSON_OPTIONS:
            options_obj = (name, value)
            continue
        canonical = _OURS_ALIASES.get(key)
        if canonical is None:
            row.attributes_present = True
            attributes.append((name, name, value))
            continue
        if canonical in names:
            row.errors.append(RowError(line, name, f"campo repetido: \"{names[canonical]}\" e \"{name}\" "
                                                   "significam a mesma coisa"))
            continue
        names[canonical] = name
        try:
            parsed[canonical] = _OURS_PARSERS[canonical](value)
        except _FieldError as exc:
            row.errors.append(RowError(line, name, str(exc)))
            failed.add(canonical)

    # Attributes: product-level, one entry per key.
    attribute_values: dict[str, Any] = {}
    for column, raw_key, value in attributes:
        attribute = _attribute_key(str(raw_key))
        if not attribute or len(attribute) > ATTRIBUTE_KEY_MAX or "\x00" in attribute:
            row.errors.append(RowError(line, column, f"nome de atributo inválido (1 a {ATTRIBUTE_KEY_MAX} "
                                                     "caracteres)"))
            continue
        try:
            parsed_value = _attribute_value(value)
        except _FieldError as exc:
            row.errors.append(RowError(line, column, str(exc)))
            continue
        if attribute in attribute_values:
            row.errors.append(RowError(line, column, f"atributo \"{attribute}\" informado duas vezes"))
            continue
        attribute_values[attribute] = (parsed_value, column)
    if legacy and json_mode:
        # Today's JSON kept sizes and colour among the attributes ({"cor": "cinza", "tamanhos": [...]}).
        for attribute, canonical, parser in (("tamanhos", "sizes", _parse_sizes), ("cor", "color", _parse_color)):
            if attribute in attribute_values and canonical not in names:
                value, column = attribute_values.pop(attribute)
                names[canonical] = column
                try:
                    parsed[canonical] = parser(value)
                except _FieldError as exc:
                    row.errors.append(RowError(line, column, str(exc)))
                    failed.add(canonical)
    for attribute, (value, column) in attribute_values.items():
        row.product[f"attr:{attribute}"] = (value, column)

    # Required fields.
    required = ("sku", "price") if legacy else ("key", "sku", "price")
    for canonical in required:
        if canonical in failed:
            continue
        if canonical not in names:
            if json_mode:
                row.errors.append(RowError(line, SPELLINGS[canonical][0], "campo obrigatório ausente"))
        elif parsed.get(canonical) is None:
            row.errors.append(RowError(line, names[canonical], "campo obrigatório vazio"))
    if json_mode and not legacy and "sizes" in names:
        row.errors.append(RowError(line, names["sizes"], LEGACY_SIZES_MESSAGE))
    if legacy and "sizes" in names and "size" in names:
        row.errors.append(RowError(line, names["size"], f"use \"{names['size']}\" ou \"{names['sizes']}\", "
                                                        "não os dois"))

    sku = parsed.get("sku")
    if legacy:
        row.key, row.key_field = sku, names.get("sku", "sku")
    else:
        row.key, row.key_field = parsed.get("key"), names.get("key", "produto")
    for canonical in PRODUCT_FIELDS:
        if canonical in names and canonical not in failed:
            row.product[canonical] = (parsed.get(canonical), names[canonical])
    if "name" in names:
        row.product.setdefault("name", (None, names["name"]))

    price = parsed.get("price")
    values: dict[str, Any] = {"price": price}
    if "compare_at_price" in names and "compare_at_price" not in failed:
        compare = parsed.get("compare_at_price")
        if compare is not None and price is not None and compare <= price:
            row.errors.append(RowError(line, names["compare_at_price"],
                                       f"o \"{names['compare_at_price']}\" ({_reais(compare)}) deve ser maior que o "
                                       f"preço ({_reais(price)}); deixe em branco se não há desconto"))
        values["compare_at_price"] = compare
    if "stock" in names and "stock" not in failed:
        values["stock"] = parsed.get("stock")
    if "active" in names and "active" not in failed:
        active = parsed.get("active")
        values["active"] = True if active is None else active
    colour = parsed.get("color")
    if legacy and colour:
        colour = colour.capitalize()  # as migration 0007 wrote today's colours
    if "color" in names and "color" not in failed:
        values["color"] = colour
    if "size" in names and "size" not in failed:
        values["size"] = parsed.get("size")
    if options_obj is not None:
        try:
            options = _parse_options(options_obj[1])
        except _FieldError as exc:
            row.errors.append(RowError(line, options_obj[0], str(exc)))
        else:
            if options is not None:
                values["options"] = options
                for problem in _option_problems(options):
                    row.errors.append(RowError(line, options_obj[0], problem))

    if not sku or price is None or any(e.line == line and e.field in (names.get("sku"), names.get("price"))
                                       for e in row.errors):
        return row
    sku_field = names["sku"]
    sizes = parsed.get("sizes") if legacy else None
    if sizes and len(sizes) > 1:
        taken: set[str] = set()
        for size in dict.fromkeys(sizes):
            variant_sku = _legacy_variant_sku(sku, size, True)
            while variant_sku in taken:  # two sizes that collapse to one suffix ("P/M", "P-M"), as 0007 does
                variant_sku = f"{variant_sku[:60]}-{len(taken) % 1000}"
            taken.add(variant_sku)
            row.variants.append(ParsedVariant(line, variant_sku, sku_field, {**values, "size": size},
                                              match_size=True))
    else:
        if sizes:
            values["size"] = sizes[0]
        elif legacy and "sizes" in names:
            values["size"] = None
        row.variants.append(ParsedVariant(line, sku, sku_field, values))
    return row


def _legacy_variant_sku(key: str, size: str | None, several: bool) -> str:
    """Migration 0007's name for a size of today's product."""
    if not several or not size:
        return key
    suffix = re.sub(r"[^A-Za-z0-9]+", "-", size).strip("-").upper() or "U"
    return f"{key}-{suffix}"[:64]


# --- JSON ----------------------------------------------------------------------------------------------------

_JSON_WS = re.compile(r"[ \t\n\r]*")
MAX_JSON_NUMBER_DIGITS = 30  # a price, a stock or an attribute; beyond this it is not a number a shop means


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


class _NumberTooLong(ValueError):
    pass


def _parse_json_number(text: str) -> Decimal | int:
    digits = sum(c.isdigit() for c in text)
    if digits > MAX_JSON_NUMBER_DIGITS:
        raise _NumberTooLong(text)
    return Decimal(text) if any(c in text for c in ".eE") else int(text)


def _ours_rows_json(text: str) -> tuple[list[_Row], bool]:
    objects = _json_objects(text)
    legacy = not any(isinstance(value, dict) and any(_OURS_ALIASES.get(_norm(str(k))) == "key" for k in value)
                     for _, value in objects)
    rows = []
    for line, value in objects:
        if not isinstance(value, dict):
            rows.append(_Row(line=line, errors=[RowError(line, ROW_FIELD, "cada item da lista deve ser um objeto "
                                                                          "{ ... } com os dados de uma variante")]))
            continue
        rows.append(_ours_row(line, list(value.items()), legacy=legacy, json_mode=True))
    return rows, legacy


def _json_objects(text: str) -> list[tuple[int, Any]]:
    # Numbers as Decimal: a price written as 299.90 is never a float; and a 5 000-digit number is refused before
    # Python's own limit (4 300 digits) raises out of the parser.
    decoder = json.JSONDecoder(parse_float=_parse_json_number, parse_int=_parse_json_number)
    lines = _LineCounter(text)

    def syntax_error(offset: int, message: str) -> CatalogImportError:
        return _file_error(lines.at(offset), message)

    def decode_error(exc: json.JSONDecodeError) -> CatalogImportError:
        return _file_error(exc.lineno, f"JSON inválido: {_json_message(exc.msg)} (coluna {exc.colno})")

    try:
        return _decode_objects(text, decoder, lines, syntax_error, decode_error)
    except RecursionError:
        raise _file_error(1, "JSON aninhado demais: cada variante deve ser um objeto simples, com listas só nos "
                             "atributos") from None
    except _NumberTooLong as exc:
        position = text.find(str(exc)[:40])
        raise syntax_error(max(position, 0), f"número longo demais (mais de {MAX_JSON_NUMBER_DIGITS} dígitos)") \
            from None


def _decode_objects(text, decoder, lines, syntax_error, decode_error) -> list[tuple[int, Any]]:
    pos = _JSON_WS.match(text, 0).end()
    if pos >= len(text) or text[pos] != "[":
        if pos < len(text) and text[pos] == "{":
            raise syntax_error(pos, "o JSON deve ser uma lista de variantes: [ {...}, {...} ]")
        try:
            decoder.decode(text)
        except json.JSONDecodeError as exc:
            raise decode_error(exc) from None
        raise syntax_error(pos, "o JSON deve ser uma lista de variantes: [ {...}, {...} ]")
    pos = _JSON_WS.match(text, pos + 1).end()
    objects: list[tuple[int, Any]] = []
    if pos < len(text) and text[pos] == "]":
        pos += 1
    else:
        while True:
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise decode_error(exc) from None
            objects.append((lines.at(pos), value))
            pos = _JSON_WS.match(text, end).end()
            if pos < len(text) and text[pos] == ",":
                pos = _JSON_WS.match(text, pos + 1).end()
                continue
            if pos < len(text) and text[pos] == "]":
                pos += 1
                break
            if pos >= len(text):
                raise syntax_error(len(text), "JSON inválido: a lista não foi fechada com ]")
            raise syntax_error(pos, "JSON inválido: esperava , ou ] entre os itens")
    pos = _JSON_WS.match(text, pos).end()
    if pos < len(text):
        raise syntax_error(pos, "JSON inválido: há conteúdo depois do ] final")
    return objects


def _json_message(msg: str) -> str:
    known = {
        "Expecting value": "esperava um valor",
        "Expecting property name enclosed in double quotes": "esperava um nome de campo entre aspas duplas",
        "Expecting ',' delimiter": "faltou uma vírgula",
        "Expecting ':' delimiter": "faltou dois-pontos (:)",
        "Unterminated string starting at": "texto (string) sem aspas de fechamento",
        "Invalid control character at": "caractere de controle dentro de um texto",
        "Invalid \\escape": "barra invertida (\\) inválida dentro de um texto",
        "Extra data": "há conteúdo a mais",
    }
    return known.get(msg, "erro de sintaxe")


# --- Shopify -----------------------------------------------------------------------------------------------

SHOPIFY_COLUMNS: dict[str, tuple[str, ...]] = {
    "key": ("handle", "url_handle"),
    "name": ("title",),
    "description": ("body_html", "description"),
    "brand": ("vendor",),
    "type": ("type",),
    "product_category": ("product_category",),
    "tags": ("tags",),
    "published": ("published", "published_on_online_store"),
    "status": ("status",),
    "sku": ("variant_sku", "sku"),
    "price": ("variant_price", "price"),
    "compare_at_price": ("variant_compare_at_price", "compare_at_price"),
    "stock": ("variant_inventory_qty", "inventory_quantity"),
    "tracker": ("variant_inventory_tracker", "inventory_tracker"),
    "policy": ("variant_inventory_policy", "continue_selling_when_out_of_stock"),
    "image_url": ("image_src", "product_image_url"),
    "platform_product_id": ("id", "product_id"),
    "platform_variant_id": ("variant_id",),
    **{f"option{n}_name": (f"option{n}_name",) for n in (1, 2, 3)},
    **{f"option{n}_value": (f"option{n}_value",) for n in (1, 2, 3)},
}
SHOPIFY_STATUS = {"active": True, "ativo": True, "draft": False, "rascunho": False, "archived": False,
                  "arquivado": False, "unlisted": False}


def _shopify_row(line: int, cells: list[str], columns: _Columns) -> _Row:
    row = _Row(line=line)
    get = lambda canonical: columns.cell(cells, canonical)
    if not _platform_key(row, get, line, "Handle vazio: cada linha da exportação leva o Handle do produto"):
        return row

    category = None
    category_column = None
    for canonical in ("type", "product_category"):
        cell = get(canonical)
        if cell is None:
            continue
        category_column = category_column or cell[1]
        text = _clean(cell[0])
        if text and category is None:
            leaf = text.split(">")[-1].strip()
            try:
                category = _parse_short(leaf)
                category_column = cell[1]
            except _FieldError as exc:
                row.errors.append(RowError(line, cell[1], str(exc)))
    if category_column is not None:
        row.product["category"] = (category, category_column)

    active = None
    for canonical in ("status", "published"):
        cell = get(canonical)
        if cell is None or not cell[0].strip():
            continue
        word = _norm(cell[0])
        if canonical == "status":
            state = SHOPIFY_STATUS.get(word)
            if state is None:
                row.errors.append(RowError(line, cell[1], f"situação \"{_short(cell[0])}\" desconhecida: use active, "
                                                          "draft ou archived"))
                continue
        else:
            try:
                state = _parse_active(cell[0])
            except _FieldError as exc:
                row.errors.append(RowError(line, cell[1], str(exc)))
                continue
        active = state if active is None else (active and state)
    if get("status") is not None or get("published") is not None:
        column = (get("status") or get("published"))[1]
        row.product["active"] = (active, column)

    option_values = [(n, get(f"option{n}_value")) for n in (1, 2, 3)]
    variant_cells = [get(c) for c in ("sku", "price", "compare_at_price", "stock")] + [c for _, c in option_values]
    if not any(cell and cell[0].strip() for cell in variant_cells):
        return row  # an image row, or the product's own row of a hand-made file
    values, raw_options, sku_cell = _platform_variant(row, get, line, option_values)
    tracker, policy = get("tracker"), get("policy")
    stock_cell = get("stock")
    if stock_cell is not None:
        try:
            stock = _parse_stock(stock_cell[0], allow_negative=True)
        except _FieldError as exc:
            row.errors.append(RowError(line, stock_cell[1], str(exc)))
        else:
            if tracker is not None and not tracker[0].strip():
                stock = None  # Shopify does not track this variant's stock
            elif policy is not None and _norm(policy[0]) in ("continue", "true", "sim"):
                stock = None  # sells when out of stock: always available
            elif stock is not None:
                stock = max(stock, 0)  # oversold: Shopify reports negative stock
            values["stock"] = stock
    elif tracker is not None and not tracker[0].strip():
        values["stock"] = None
    compare_cell = get("compare_at_price")
    if compare_cell is not None:
        try:
            compare = parse_price(compare_cell[0])
        except _FieldError as exc:
            row.errors.append(RowError(line, compare_cell[1], str(exc)))
        else:
            price = values.get("price")
            values["compare_at_price"] = compare if compare is not None and price is not None and compare > price \
                else None
    if sku_cell is None or not _clean(sku_cell[0]):
        row.errors.append(RowError(line, sku_cell[1] if sku_cell else "Variant SKU",
                                   "variante sem SKU: preencha o SKU da variante na Shopify (ou nesta linha) e "
                                   "exporte de novo; sem ele não há como atualizar a variante nas próximas "
                                   "importações"))
        return row
    _add_platform_variant(row, line, sku_cell, values, raw_options)
    return row


def _platform_key(row: _Row, get, line: int, empty_message: str) -> bool:
    """The row's product key (a platform's handle or identifier) and its product fields; False on a problem,
    recorded on the row."""
    key_cell = get("key")
    row.key_field = key_cell[1]
    try:
        key = _text(key_cell[0])
    except _FieldError as exc:
        row.errors.append(RowError(line, key_cell[1], str(exc)))
        return False
    if not key:
        row.errors.append(RowError(line, key_cell[1], empty_message))
        return False
    row.key = _bounded(key)
    _platform_product_fields(row, get, line)
    return True


def _platform_product_fields(row: _Row, get, line: int) -> None:
    for canonical, parser in (("name", _parse_name), ("description", _parse_html_description),
                              ("brand", _parse_short), ("image_url", _parse_image),
                              ("platform_product_id", _parse_platform_id)):
        cell = get(canonical)
        if cell is None:
            continue
        try:
            row.product[canonical] = (parser(cell[0]), cell[1])
        except _FieldError as exc:
            row.errors.append(RowError(line, cell[1], str(exc)))
    tags = get("tags")
    if tags is not None:
        row.attributes_present = True
        if "\x00" in tags[0]:
            row.errors.append(RowError(line, tags[1], "contém um caractere inválido (NUL)"))
        else:
            items = [_clean(t) for t in tags[0].split(",")]
            row.product["attr:tags"] = ([t for t in items if t] or None, tags[1])
    for n in (1, 2, 3):
        cell = get(f"option{n}_name")
        if cell is None:
            continue
        try:
            row.product[f"option{n}_name"] = (_parse_option_name(cell[0]), cell[1])
        except _FieldError as exc:
            row.errors.append(RowError(line, cell[1], str(exc)))


def _platform_variant(row: _Row, get, line: int, option_values):
    values: dict[str, Any] = {}
    price_cell = get("price")
    try:
        price = parse_price(price_cell[0])
    except _FieldError as exc:
        row.errors.append(RowError(line, price_cell[1], str(exc)))
        price = None
    else:
        if price is None:
            row.errors.append(RowError(line, price_cell[1], "campo obrigatório vazio"))
    values["price"] = price
    raw_options = []
    for n, cell in option_values:
        if cell is None or not cell[0].strip():
            continue
        try:
            raw_options.append((n, _parse_option_value(cell[0]), cell[1]))
        except _FieldError as exc:
            row.errors.append(RowError(line, cell[1], str(exc)))
    id_cell = get("platform_variant_id")
    if id_cell is not None:
        try:
            values["platform_variant_id"] = _parse_platform_id(id_cell[0])
        except _FieldError as exc:
            row.errors.append(RowError(line, id_cell[1], str(exc)))
    return values, raw_options, get("sku")


def _add_platform_variant(row: _Row, line: int, sku_cell: tuple[str, str], values: dict,
                          raw_options: list) -> None:
    try:
        sku = _parse_sku(sku_cell[0])
    except _FieldError as exc:
        row.errors.append(RowError(line, sku_cell[1], str(exc)))
        return
    if values.get("price") is None:
        return
    row.variants.append(ParsedVariant(line, sku, sku_cell[1], values, raw_options))


# --- Nuvemshop ---------------------------------------------------------------------------------------------

NUVEMSHOP_COLUMNS: dict[str, tuple[str, ...]] = {
    "key": ("identificador_url",),
    "name": ("nome",),
    "category": ("categorias", "categoria"),
    "price": ("preco",),
    "promo": ("preco_promocional",),
    "stock": ("estoque",),
    "sku": ("sku",),
    "active": ("exibir_na_loja",),
    "description": ("descricao",),
    "tags": ("tags",),
    "brand": ("marca",),
    "gender": ("sexo",),
    "age": ("faixa_etaria",),
    "image_url": ("imagens", "imagem", "url_da_imagem"),
    **{f"option{n}_name": (f"nome_da_variacao_{n}", f"nome_da_propriedade_{n}") for n in (1, 2, 3)},
    **{f"option{n}_value": (f"valor_da_variacao_{n}", f"valor_da_propriedade_{n}") for n in (1, 2, 3)},
}


def _nuvemshop_row(line: int, cells: list[str], columns: _Columns) -> _Row:
    row = _Row(line=line)
    get = lambda canonical: columns.cell(cells, canonical)
    if not _platform_key(row, get, line, "Identificador URL vazio: cada linha (cada variação) leva o identificador "
                                         "do produto"):
        return row
    category = get("category")
    if category is not None:
        first = _clean(category[0].split(",")[0]).split(">")[-1].strip()
        try:
            row.product["category"] = (_parse_short(first), category[1])
        except _FieldError as exc:
            row.errors.append(RowError(line, category[1], str(exc)))
    for canonical, attribute in (("gender", "sexo"), ("age", "faixa etária")):
        cell = get(canonical)
        if cell is not None:
            row.attributes_present = True
            try:
                row.product[f"attr:{attribute}"] = (_text(cell[0], max_length=OPTION_MAX), cell[1])
            except _FieldError as exc:
                row.errors.append(RowError(line, cell[1], str(exc)))
    active = get("active")
    if active is not None:
        try:
            row.product["active"] = (_parse_active(active[0]), active[1])
        except _FieldError as exc:
            row.errors.append(RowError(line, active[1], str(exc)))

    option_values = [(n, get(f"option{n}_value")) for n in (1, 2, 3)]
    variant_cells = [get(c) for c in ("sku", "price", "promo", "stock")] + [c for _, c in option_values]
    if not any(cell and cell[0].strip() for cell in variant_cells):
        return row
    values, raw_options, sku_cell = _platform_variant(row, get, line, option_values)
    promo = get("promo")
    values["compare_at_price"] = None
    if promo is not None:
        try:
            promo_price = parse_price(promo[0])
        except _FieldError as exc:
            row.errors.append(RowError(line, promo[1], str(exc)))
        else:
            price = values.get("price")
            if promo_price is not None and price is not None:
                if promo_price >= price:
                    row.errors.append(RowError(line, promo[1], f"o preço promocional ({_reais(promo_price)}) deve "
                                                               f"ser menor que o preço ({_reais(price)})"))
                else:
                    values["price"], values["compare_at_price"] = promo_price, price
    stock = get("stock")
    if stock is not None:
        try:
            values["stock"] = _parse_stock(stock[0])
        except _FieldError as exc:
            row.errors.append(RowError(line, stock[1], str(exc)))
    if sku_cell is None or not _clean(sku_cell[0]):
        generated = _bounded("-".join([_slug(row.key), *(_slug(v) for _, v, _ in raw_options)]), SKU_MAX)
        sku_cell = (generated, sku_cell[1] if sku_cell else row.key_field)
    _add_platform_variant(row, line, sku_cell, values, raw_options)
    return row


# --- grouping rows into products -----------------------------------------------------------------------------


def _assemble(rows: list[_Row], format: str, *, legacy: bool,
              extra_errors: list[RowError] | None = None) -> ParsedCatalog:
    errors: list[RowError] = list(extra_errors or [])
    platform = format in ("shopify", "nuvemshop")
    products: dict[str, ParsedProduct] = {}
    sku_lines: dict[str, tuple[int, str]] = {}
    for row in rows:
        errors.extend(row.errors)
        if not row.key:
            continue
        product = products.get(row.key)
        if product is None:
            product = products[row.key] = ParsedProduct(key=row.key, line=row.line, key_field=row.key_field)
        product.rows += 1
        product.attributes_present |= row.attributes_present
        for name, (value, column) in row.product.items():
            product.present.setdefault(name, column)
            if value is None:
                continue
            earlier = product.seen.get(name)
            if earlier is None:
                product.seen[name] = (value, row.line, column)
            elif earlier[0] != value and name not in FIRST_WINS:
                errors.append(RowError(row.line, column, f"diferente da linha {earlier[1]} do mesmo produto "
                                                         f"(\"{_short(_show(value))}\" em vez de "
                                                         f"\"{_short(_show(earlier[0]))}\"): repita o mesmo valor "
                                                         "ou deixe em branco nas linhas seguintes"))
        for variant in row.variants:
            first = sku_lines.get(variant.sku)
            if first is not None:
                where = f" (produto \"{_short(first[1])}\")" if first[1] != row.key else ""
                errors.append(RowError(variant.line, variant.sku_field, f"SKU \"{_short(variant.sku)}\" repetido: "
                                                                        f"já aparece na linha {first[0]}{where}"))
                continue
            sku_lines[variant.sku] = (variant.line, row.key)
            product.variants.append(variant)

    for product in products.values():
        for name, column in product.present.items():
            if name.startswith(("attr:", "option")):
                continue
            seen = product.seen.get(name)
            product.values[name] = seen[0] if seen else None
        if product.attributes_present:
            product.values["attributes"] = {name[5:]: seen[0] for name, seen in product.seen.items()
                                            if name.startswith("attr:")}
        if product.values.get("name") is None:
            column = product.present.get("name") or "nome"
            if "name" not in product.present:
                message = "campo obrigatório ausente"
            elif product.rows == 1:
                message = "campo obrigatório vazio"
            else:
                message = f"o nome do produto \"{_short(product.key)}\" está vazio em todas as suas linhas"
            if not any(e.line == product.line and e.field == column for e in errors):
                errors.append(RowError(product.line, column, message))
        if platform:
            _resolve_platform_options(product, errors)
            active = product.values.get("active")
            product.values["active"] = True if active is None else active
            for variant in product.variants:
                variant.values["active"] = product.values["active"]
    if not errors and not products:
        errors.append(RowError(1, FILE_FIELD, "nenhuma variante encontrada no arquivo"))
    if errors:
        raise _refuse(errors)
    return ParsedCatalog(format=format, legacy=bool(legacy) and not platform, products=list(products.values()))


def _resolve_platform_options(product: ParsedProduct, errors: list[RowError]) -> None:
    names = {n: product.seen.get(f"option{n}_name") for n in (1, 2, 3)}
    seen_names: dict[str, int] = {}
    for n, entry in names.items():
        if entry is None:
            continue
        key = _norm(entry[0])
        if key in seen_names:
            errors.append(RowError(entry[1], entry[2], f"opção \"{_short(entry[0])}\" repetida no mesmo produto"))
        seen_names[key] = n
    for variant in product.variants:
        options: dict[str, str] = {}
        for n, value, column in variant.raw_options:
            entry = names.get(n)
            if entry is None:
                name_column = product.present.get(f"option{n}_name", f"nome da opção {n}")
                errors.append(RowError(variant.line, column, f"valor \"{_short(value)}\" sem nome de opção: preencha "
                                                             f"\"{name_column}\" na primeira linha do produto"))
                continue
            name = entry[0]
            if _norm(name) == "title" and _norm(value) == "default_title":
                continue  # Shopify's placeholder for a product without options
            options[name] = value
        for problem in _option_problems(options):
            column = next((c for n, v, c in variant.raw_options if v in problem), variant.sku_field)
            errors.append(RowError(variant.line, column, problem))
        variant.values["options"] = options


def _option_problems(options: dict[str, str]) -> list[str]:
    problems = []
    size_key = next((k for k in options if _is_size(k)), None)
    color_key = next((k for k in options if _is_color(k)), None)
    if size_key and len(options[size_key]) > SIZE_MAX:
        problems.append(f"tamanho \"{_short(options[size_key])}\" longo demais (máximo {SIZE_MAX} caracteres)")
    if color_key and len(options[color_key]) > COLOR_MAX:
        problems.append(f"cor \"{_short(options[color_key])}\" longa demais (máximo {COLOR_MAX} caracteres)")
    return problems


def _is_size(name: str) -> bool:
    return _norm(name) in SIZE_OPTIONS


def _is_color(name: str) -> bool:
    return _norm(name) in COLOR_OPTIONS


# --- values ----------------------------------------------------------------------------------------------------


def _norm(name: Any) -> str:
    """A header or option name compared without accents, case or punctuation: "Preço de" -> "preco_de"."""
    decomposed = unicodedata.normalize("NFKD", str(name).strip().lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^\w]+", "_", plain).strip("_")


def _attribute_key(name: str) -> str:
    return re.sub(r"\s+", " ", str(name).strip().lower())


def _short(text: Any, limit: int = 40) -> str:
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    if isinstance(value, bool):
        return "sim" if value else "não"
    return str(value)


def _reais(value: Decimal) -> str:
    whole, cents = f"{value:.2f}".split(".")
    return f"R$ {int(whole):,}".replace(",", ".") + f",{cents}"


def _clean(text: str) -> str:
    return text.strip() if isinstance(text, str) else ""


def _slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-") or "x"


def _bounded(code: str, limit: int = KEY_MAX) -> str:
    """``code`` if it fits the column, else its start and a hash of the whole: the same every import."""
    if len(code) <= limit:
        return code
    digest = hashlib.sha1(code.encode()).hexdigest()[:8]
    return f"{code[:limit - 9]}-{digest}"


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


def _parse_key(value: Any) -> str | None:
    return _text(value, max_length=KEY_MAX, allow_number=True)


def _parse_sku(value: Any) -> str | None:
    sku = _text(value, max_length=SKU_MAX, allow_number=True)
    if sku is not None and re.search(r"\s", sku):
        raise _FieldError("o SKU não pode ter espaços")
    return sku


def _parse_name(value: Any) -> str | None:
    text = _text(value, max_length=NAME_MAX)
    return re.sub(r"\s+", " ", text) if text else text


def _parse_short(value: Any) -> str | None:
    return _text(value, max_length=SHORT_TEXT_MAX)


def _parse_description(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return _html_to_text(text) if _LOOKS_LIKE_HTML.search(text) else text


def _parse_html_description(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return _html_to_text(text) or None


def _parse_url(value: Any) -> str | None:
    url = _text(value, max_length=URL_MAX)
    if url is None:
        return None
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", url, flags=re.IGNORECASE):
        raise _FieldError("endereço inválido: use um link completo começando com http:// ou https://")
    return url


def _parse_image(value: Any) -> str | None:
    """An image link; a cell with several (Nuvemshop's "Imagens") gives its first."""
    text = _text(value)
    if text is None:
        return None
    first = re.split(r"\s*[|,\s]\s*", text)[0]
    return _parse_url(first)


def _parse_platform_id(value: Any) -> str | None:
    return _text(value, max_length=64, allow_number=True)


def _parse_active(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if not isinstance(value, str):
        raise _FieldError("use sim ou não")
    word = _norm(value)
    if not word:
        return None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _FieldError(f"valor \"{_short(value)}\" não reconhecido: use sim ou não")


def _parse_size(value: Any) -> str | None:
    return _text(value, max_length=SIZE_MAX, allow_number=True)


def _parse_color(value: Any) -> str | None:
    return _text(value, max_length=COLOR_MAX)


def _parse_sizes(value: Any) -> list[str] | None:
    """Today's ``tamanhos``: ``38|39|40`` (or a JSON list) -> ["38", "39", "40"]."""
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        items = str(value).split("|")
    elif isinstance(value, list):
        items = value
    else:
        raise _FieldError("use os tamanhos separados por |, como 38|39|40")
    sizes = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise _FieldError("use os tamanhos separados por |, como 38|39|40")
        text = str(item).strip()
        if "\x00" in text:
            raise _FieldError("contém um caractere inválido (NUL)")
        if len(text) > SIZE_MAX:
            raise _FieldError(f"tamanho \"{_short(text)}\" longo demais (máximo {SIZE_MAX} caracteres)")
        if text:
            sizes.append(text)
    return sizes or None


def _parse_option_name(value: Any) -> str | None:
    return _text(value, max_length=OPTION_MAX)


def _parse_option_value(value: Any) -> str | None:
    return _text(value, max_length=OPTION_MAX, allow_number=True)


def _parse_options(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _FieldError("deve ser um objeto { \"Tamanho\": \"42\", \"Cor\": \"Preto\" }")
    options: dict[str, str] = {}
    for name, item in value.items():
        option = _parse_option_name(name)
        if option is None:
            raise _FieldError("nome de opção vazio")
        if item is None:
            continue
        text = _parse_option_value(item)
        if text is not None:
            options[option] = text
    return options


_INTEGER = re.compile(r"(\d+)(?:[.,]0+)?")  # 12, 12.0, 12,00
_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3})+")  # 1.000: one thousand, or one with three decimals?


def _parse_stock(value: Any, *, allow_negative: bool = False) -> int | None:
    """Units in stock: empty -> None (not tracked); ``0`` -> sold out; ``12``, ``12.0``, ``12,0`` -> 12."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal, float)):
        raise _FieldError("deve ser um número inteiro, como 12")
    if isinstance(value, str):
        text = value.strip().replace("\u00a0", "")
        if not text:
            return None
        negative = text.startswith("-")
        digits = text[1:].strip() if negative else text
        if _THOUSANDS.fullmatch(digits):
            raise _FieldError(f"estoque ambíguo \"{text}\": escreva só os dígitos, como {digits.replace('.', '')}")
        match = _INTEGER.fullmatch(digits)
        if match is None:
            if re.fullmatch(r"\d+[.,]\d+", digits):
                raise _FieldError(f"estoque \"{text}\" não é um número inteiro de unidades")
            raise _FieldError(f"estoque inválido \"{_short(text)}\": use um número inteiro, como 12 (vazio = não "
                              "controlado)")
        if len(match.group(1)) > 12:
            raise _FieldError(f"estoque alto demais (máximo {MAX_STOCK - 1:,})".replace(",", "."))
        number = -int(match.group(1)) if negative else int(match.group(1))
    else:
        amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        if not amount.is_finite() or amount != amount.to_integral_value():
            raise _FieldError("o estoque deve ser um número inteiro de unidades, como 12")
        if abs(amount) >= MAX_STOCK:
            raise _FieldError(f"estoque alto demais (máximo {MAX_STOCK - 1:,})".replace(",", "."))
        number = int(amount)
    if number < 0 and not allow_negative:
        raise _FieldError("o estoque não pode ser negativo: use 0 para esgotado, ou deixe vazio se não controla")
    if abs(number) >= MAX_STOCK:
        raise _FieldError(f"estoque alto demais (máximo {MAX_STOCK - 1:,})".replace(",", "."))
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
        raise _FieldError(f"preço com mais de 2 casas decimais: {_short(value)}")
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
        raise _FieldError(f"preço com mais de 2 casas decimais: \"{_short(text)}\"")
    raise _FieldError(f"preço inválido \"{_short(text)}\": use um valor como 299,90 ou R$ 1.299,90")


_OURS_PARSERS = {
    "key": _parse_key,
    "sku": _parse_sku,
    "name": _parse_name,
    "price": parse_price,
    "compare_at_price": parse_price,
    "stock": _parse_stock,
    "size": _parse_size,
    "color": _parse_color,
    "active": _parse_active,
    "category": _parse_short,
    "brand": _parse_short,
    "description": _parse_description,
    "url": _parse_url,
    "image_url": _parse_image,
    "sizes": _parse_sizes,
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
                    raise _FieldError("contém um caractere inválido (NUL)")
                if item.strip():
                    items.append(item.strip())
            elif isinstance(item, bool):
                items.append(item)
            elif isinstance(item, (int, Decimal, float)):
                items.append(_json_number(item))
            elif item is not None:
                raise _FieldError("uma lista de atributo só pode ter textos ou números")
        return items or None
    raise _FieldError("atributo deve ser texto, número, sim/não ou lista")


def _json_number(value: Decimal | float) -> int | float:
    if isinstance(value, int):
        return value
    decimal = value if isinstance(value, Decimal) else Decimal(str(value))
    if not decimal.is_finite():
        raise _FieldError("número inválido")
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


# --- writing ---------------------------------------------------------------------------------------------------


def _write(session: Session, catalog: ParsedCatalog, *, deactivate_missing: bool) -> ImportReport:
    keys = [p.key for p in catalog.products]
    skus = [v.sku for p in catalog.products for v in p.variants]
    products: dict[str, Product] = {}
    for chunk in _chunks(keys):
        for product in session.scalars(select(Product).options(selectinload(Product.variants))
                                       .where(Product.key.in_(chunk))):
            products[product.key] = product
    variants: dict[str, Variant] = {}
    for chunk in _chunks(skus):
        for variant in session.scalars(select(Variant).options(selectinload(Variant.product))
                                       .where(Variant.sku.in_(chunk))):
            variants[variant.sku] = variant

    errors = [RowError(p.line, p.key_field, f"o produto \"{_short(p.key)}\" não tem nenhuma variante (linha com SKU "
                                            "e preço) no arquivo")
              for p in catalog.products if p.key not in products and not p.variants]
    if errors:
        raise _refuse(errors)

    counts = dict.fromkeys(("products_created", "products_updated", "products_unchanged", "variants_created",
                            "variants_updated", "variants_unchanged", "variants_deactivated"), 0)
    platform = catalog.format in ("shopify", "nuvemshop")
    file_skus = set(skus)
    touched: list[Product] = []
    left_behind: list[Product] = []
    status: dict[int, bool | None] = {}  # id(product) -> the platform's active flag, None in our format
    try:
        with session.begin_nested():
            for parsed in catalog.products:
                product = products.get(parsed.key)
                created = product is None
                changed = False
                if created:
                    product = Product(key=parsed.key, name=parsed.values["name"], price=Decimal("0.00"),
                                      attributes={}, active=True)
                    session.add(product)
                    counts["products_created"] += 1
                for name, value in parsed.values.items():
                    if name == "active" and not platform:
                        continue
                    if name == "attributes" and platform and not created:
                        # A platform export carries a few attributes (tags...): the product keeps its others.
                        managed = {n[5:] for n in parsed.present if n.startswith("attr:")}
                        value = {**{k: v for k, v in (product.attributes or {}).items() if k not in managed},
                                 **value}
                    if getattr(product, name) != value:
                        setattr(product, name, value)
                        changed = True
                in_file: set[str] = set()
                for item in parsed.variants:
                    variant = variants.get(item.sku)
                    if variant is None and item.match_size and not created:
                        variant = next((v for v in product.variants if v.size == item.values.get("size")
                                        and v.sku not in in_file and v.sku not in file_skus), None)
                    in_file.add(item.sku if variant is None else variant.sku)
                    if variant is None:
                        variant = Variant(sku=item.sku, product=product, active=True, options={})
                        session.add(variant)  # SQLAlchemy 2: a backref does not cascade into the session
                        _apply_variant(variant, item.values, platform)
                        counts["variants_created"] += 1
                        changed = True
                        continue
                    variant_changed = False
                    if variant.product is not product:
                        if variant.product not in left_behind:
                            left_behind.append(variant.product)
                        variant.product = product
                        variant_changed = True
                    variant_changed |= _apply_variant(variant, item.values, platform)
                    counts["variants_updated" if variant_changed else "variants_unchanged"] += 1
                    changed |= variant_changed
                if deactivate_missing:
                    for variant in product.variants:
                        if variant.sku not in in_file and variant.active:
                            variant.active = False
                            counts["variants_deactivated"] += 1
                            changed = True
                status[id(product)] = parsed.values["active"] if platform else None
                changed |= _settle(product, status[id(product)])
                if not created:
                    counts["products_updated" if changed else "products_unchanged"] += 1
                if created or changed:
                    touched.append(product)
            for product in left_behind:  # gave a variant to another product (maybe after its own turn)
                _settle(product, status.get(id(product)) if product.variants else False)
                if product not in touched:
                    touched.append(product)
            session.flush()
            if touched:
                index.refresh(session, sorted(p.id for p in touched))
    except IntegrityError:
        raise _file_error(0, "outro envio alterou o catálogo ao mesmo tempo; nada foi importado, envie de novo") \
            from None
    return ImportReport(format=catalog.format, legacy=catalog.legacy, **counts)


def _apply_variant(variant: Variant, values: dict[str, Any], platform: bool) -> bool:
    changed = False
    wanted = {k: v for k, v in values.items() if k not in ("size", "color", "options")}
    # Nothing about options in the file (no size/colour column): the variant keeps what it had.
    if platform or "options" in values or "size" in values or "color" in values:
        options = values.get("options", {}) if platform else _ours_options(variant.options or {}, values)
        wanted["options"] = options
        wanted["size"] = next((v for k, v in options.items() if _is_size(k)), None)
        wanted["color"] = next((v for k, v in options.items() if _is_color(k)), None)
    for name, value in wanted.items():
        if getattr(variant, name) != value:
            setattr(variant, name, value)
            changed = True
    return changed


def _ours_options(current: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Our format's ``tamanho``/``cor`` columns set those options; the variant's other options stay."""
    base = dict(values["options"]) if values.get("options") is not None else dict(current)
    if "size" in values:
        size = {SIZE_KEY: values["size"]} if values["size"] else {}
    else:
        size = {k: v for k, v in base.items() if _is_size(k)}
    if "color" in values:
        color = {COLOR_KEY: values["color"]} if values["color"] else {}
    else:
        color = {k: v for k, v in base.items() if _is_color(k)}
    rest = {k: v for k, v in base.items() if not _is_size(k) and not _is_color(k)}
    return {**size, **color, **rest}


def _settle(product: Product, active: bool | None) -> bool:
    """The product's price (lowest active variant price) and, in our format (``active`` None), its active flag
    (at least one active variant). True when either changed."""
    changed = False
    live = [v for v in product.variants if v.active]
    prices = [v.price for v in (live or product.variants) if v.price is not None]
    if prices and product.price != min(prices):
        product.price = min(prices)
        changed = True
    wanted = bool(live) if active is None else active
    if product.active != wanted:
        product.active = wanted
        changed = True
    return changed


def _chunks(items: list[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(items))
    for start in range(0, len(unique), LOOKUP_CHUNK):
        yield unique[start:start + LOOKUP_CHUNK]
