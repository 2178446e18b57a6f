"""The file before its rows: its bytes within the size limit, its kind (CSV or JSON; a spreadsheet is refused), the
text (UTF-8 with or without BOM; UTF-16 and Windows-1252 refused with advice), CSV records with the physical line each
starts on and the delimiter, and a JSON list's objects with the line each starts on."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from catalog.importing.errors import CatalogImportError, file_error
from catalog.importing.values import short

MAX_FILE_BYTES = 20 * 1024 * 1024


def read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise file_error(0, f"não foi possível ler o arquivo: {exc.strerror}") from None
    too_big = (f"arquivo grande demais ({size / 1024 / 1024:.1f} MB); o limite é "
               f"{MAX_FILE_BYTES // 1024 // 1024} MB. Divida o catálogo em arquivos menores")
    if size > MAX_FILE_BYTES:
        raise file_error(0, too_big)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise file_error(0, f"não foi possível ler o arquivo: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise file_error(0, too_big)
    return data


def file_kind(path: Path, data: bytes, format: str) -> str:
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise file_error(0, "isto é uma planilha do Excel (.xlsx/.xls), não um CSV: no Excel, use \"Salvar como\" > "
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
    raise file_error(0, f"formato não suportado ({suffix or 'sem extensão'}): envie um arquivo .csv ou .json")


def decode_text(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise file_error(1, "o arquivo está em UTF-16 (\"Texto Unicode\" do Excel): salve como \"CSV UTF-8 "
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
        raise file_error(line, message) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise file_error(1, "arquivo vazio")
    return text


def _word_at(text: str, position: int) -> str:
    position = max(0, min(position, len(text) - 1))
    start = position
    while start > 0 and not text[start - 1].isspace() and text[start - 1] not in ",;\"":
        start -= 1
    end = position
    while end < len(text) and not text[end].isspace() and text[end] not in ",;\"":
        end += 1
    return short(text[start:end] or text[:30])


# --- CSV -------------------------------------------------------------------------------------------------------


@dataclass
class Record:
    line: int  # where the record starts
    values: list[str]
    problems: list[tuple[int, str]] = field(default_factory=list)  # (field index, message)


class Unclosed(Exception):
    def __init__(self, line: int, quote_line: int, index: int) -> None:
        self.line, self.quote_line, self.index = line, quote_line, index


def sniff_delimiter(text: str) -> str:
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


def csv_records(text: str, delimiter: str) -> Iterator[Record]:
    """RFC 4180 records with the line each starts on. Refuses what spreadsheets never write: a quote inside an
    unquoted field (``Produto "quebrado``), text after a closing quote; an unclosed quote raises Unclosed."""
    d = re.escape(delimiter)
    plain = re.compile(rf'[^{d}\n"]*')
    rest = re.compile(rf"[^{d}\n]*")
    pos, line, n = 0, 1, len(text)
    while pos < n:
        record = Record(line=line, values=[])
        while True:
            index = len(record.values)
            if pos < n and text[pos] == '"':
                closed = _quoted_field(text, pos)
                if closed is None:
                    raise Unclosed(record.line, line, index)
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
                    record.problems.append((index, (f"aspas (\") no meio de um campo sem aspas: \"{short(value)}\". "
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


# --- JSON ------------------------------------------------------------------------------------------------------


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


def json_objects(text: str) -> list[tuple[int, Any]]:
    # Numbers as Decimal: a price written as 299.90 is never a float; and a 5 000-digit number is refused before
    # Python's own limit (4 300 digits) raises out of the parser.
    decoder = json.JSONDecoder(parse_float=_parse_json_number, parse_int=_parse_json_number)
    lines = _LineCounter(text)

    def syntax_error(offset: int, message: str) -> CatalogImportError:
        return file_error(lines.at(offset), message)

    def decode_error(exc: json.JSONDecodeError) -> CatalogImportError:
        return file_error(exc.lineno, f"JSON inválido: {_json_message(exc.msg)} (coluna {exc.colno})")

    try:
        return _decode_objects(text, decoder, lines, syntax_error, decode_error)
    except RecursionError:
        raise file_error(1, "JSON aninhado demais: cada variante deve ser um objeto simples, com listas só nos "
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
