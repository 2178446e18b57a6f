"""``read_catalog``: a file to a validated ``ParsedCatalog`` without touching the database; a CSV file goes to our
format, Shopify's or Nuvemshop's by its header (or by the format asked for)."""

from __future__ import annotations

from pathlib import Path

from catalog.importing.assemble import ParsedCatalog, Row, assemble_catalog
from catalog.importing.columns import Columns, Header
from catalog.importing.errors import FILE_FIELD, ROW_FIELD, CatalogImportError, RowError, file_error, refuse
from catalog.importing.files import Record, Unclosed, csv_records, decode_text, file_kind, read_bytes, sniff_delimiter
from catalog.importing.nuvemshop import NUVEMSHOP_COLUMNS, nuvemshop_row
from catalog.importing.ours import LEGACY_SIZES_MESSAGE, OURS_COLUMNS, ours_row, ours_rows_json
from catalog.importing.shopify import SHOPIFY_COLUMNS, shopify_row
from catalog.importing.values import norm

FORMATS = ("auto", "csv", "json", "shopify", "nuvemshop")
FORMAT_LABELS = {"csv": "CSV", "json": "JSON", "shopify": "Shopify", "nuvemshop": "Nuvemshop"}


def read_catalog(path: Path | str, format: str = "auto") -> ParsedCatalog:
    """Read and validate ``path`` without touching the database; raises CatalogImportError."""
    if format not in FORMATS:
        raise file_error(0, f"formato desconhecido \"{format}\": use {', '.join(FORMATS)}")
    path = Path(path)
    data = read_bytes(path)
    kind = file_kind(path, data, format)
    text = decode_text(data)
    if kind == "json":
        rows, legacy = ours_rows_json(text)
        return assemble_catalog(rows, "json", legacy=legacy)
    return _read_csv(text, format)


def _read_csv(text: str, format: str) -> ParsedCatalog:
    delimiter = sniff_delimiter(text)
    records = csv_records(text, delimiter)
    header: Header | None = None
    rows_in: list[Record] = []
    unclosed: Unclosed | None = None
    try:
        for record in records:
            if not any(v.strip() for v in record.values):
                continue  # blank line, or Excel's trailing ";;;;"
            if header is None:
                if record.problems:
                    raise CatalogImportError([RowError(record.line, FILE_FIELD, f"cabeçalho: {message}")
                                              for _, message in record.problems])
                names = [v.strip() for v in record.values]
                header = Header(record.line, names, [norm(name) for name in names])
                continue
            rows_in.append(record)
    except Unclosed as exc:
        unclosed = exc
    if header is None:
        if unclosed is not None:
            raise file_error(unclosed.line, "cabeçalho: aspas (\") abertas e nunca fechadas")
        raise file_error(1, "arquivo vazio")

    dialect = _dialect(header, format)
    if any("\x00" in name for name in header.names):
        raise file_error(header.line, "cabeçalho com um caractere inválido (NUL)")
    legacy = False
    errors: list[RowError] = []
    if unclosed is not None:
        column = header.names[unclosed.index] if unclosed.index < len(header.names) else ROW_FIELD
        where = f" (aberta na linha {unclosed.quote_line})" if unclosed.quote_line != unclosed.line else ""
        errors.append(RowError(unclosed.line, column or ROW_FIELD,
                               f"aspas (\") abertas e nunca fechadas{where}: o resto do arquivo ficaria dentro "
                               "deste campo. Feche as aspas, ou dobre-as (\"\") se fazem parte do texto"))
    if dialect == "shopify":
        columns = Columns(header, SHOPIFY_COLUMNS, "Shopify")
        columns.require(("key", "name", "sku", "price"))
        row_of = shopify_row
    elif dialect == "nuvemshop":
        columns = Columns(header, NUVEMSHOP_COLUMNS, "Nuvemshop")
        columns.require(("key", "name", "price"))
        row_of = nuvemshop_row
    else:
        columns = Columns(header, OURS_COLUMNS, None, attributes=True)
        columns.require(("sku", "name", "price"))
        legacy = "key" not in columns.index
        if not legacy and "sizes" in columns.index:
            columns.errors.append(RowError(header.line, columns.name("sizes"), LEGACY_SIZES_MESSAGE))
        if legacy and "sizes" in columns.index and "size" in columns.index:
            columns.errors.append(RowError(header.line, columns.name("size"),
                                           f"use \"{columns.name('size')}\" (um tamanho por linha, com a coluna "
                                           f"produto) ou \"{columns.name('sizes')}\" (formato antigo), não as duas"))
    if columns.errors:
        raise refuse(columns.errors)

    rows: list[Row] = []
    width = len(header.names)
    # Columns a record must reach: up to the header's last named one (Excel may add unnamed ";;" at the end).
    named = max((i + 1 for i, name in enumerate(header.names) if name), default=width)
    for record in rows_in:
        row_errors = [RowError(record.line, _column_label(header, i), message) for i, message in record.problems]
        if len(record.values) > width and any(v.strip() for v in record.values[width:]):
            row_errors.append(RowError(record.line, ROW_FIELD, f"a linha tem mais colunas que o cabeçalho "
                                                               f"({len(record.values)} em vez de {width}); "
                                                               "confira o separador e as aspas"))
        elif len(record.values) < named and not record.problems:
            # A short record is a cut or mis-separated line, not empty cells: "estoque" missing would silently
            # mean "not tracked" (sells always), so it is refused, not padded.
            missing = ", ".join(f"\"{name}\"" for name in header.names[len(record.values):named] if name)
            row_errors.append(RowError(record.line, ROW_FIELD, f"a linha tem menos colunas que o cabeçalho "
                                                               f"({len(record.values)} em vez de {named}; faltam "
                                                               f"{missing}): confira o separador e as aspas"))
        cells = record.values[:width] + [""] * (width - len(record.values))
        if dialect == "csv":
            pairs = []
            for i, (name, cell) in enumerate(zip(header.names, cells)):
                if name:
                    pairs.append((name, cell))
                elif cell.strip():
                    row_errors.append(RowError(record.line, f"coluna {i + 1}", "valor em uma coluna sem nome no "
                                                                               "cabeçalho"))
            row = ours_row(record.line, pairs, legacy=legacy)
        else:
            row = row_of(record.line, cells, columns)
        row.errors[:0] = row_errors
        rows.append(row)
    catalog = assemble_catalog(rows, dialect, legacy=legacy if dialect == "csv" else False, extra_errors=errors)
    return catalog


def _column_label(header: Header, index: int) -> str:
    if index < len(header.names) and header.names[index]:
        return header.names[index]
    return f"coluna {index + 1}"


def _dialect(header: Header, format: str) -> str:
    keys = set(header.keys)
    shopify = bool(keys & {"handle", "url_handle"}) and "title" in keys
    nuvemshop = "identificador_url" in keys
    if format == "auto":
        return "shopify" if shopify else "nuvemshop" if nuvemshop else "csv"
    if format == "shopify" and not (keys & {"handle", "url_handle"}):
        raise file_error(header.line, "o cabeçalho não é o da exportação de produtos da Shopify: falta a coluna "
                                       "Handle (exporte em Produtos > Exportar > CSV para Excel ou planilhas)")
    if format == "nuvemshop" and not nuvemshop:
        raise file_error(header.line, "o cabeçalho não é o da exportação de produtos da Nuvemshop: falta a coluna "
                                       "\"Identificador URL\" (exporte em Produtos > Exportar e importar)")
    return format
