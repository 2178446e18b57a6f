"""What a refused import reports: one ``RowError`` per problem (line, field, message) in a ``CatalogImportError``;
``FieldError`` for one cell's bad value."""

from __future__ import annotations

from dataclasses import dataclass

MAX_ERRORS = 500  # beyond this, one more line says how many were left out
FILE_FIELD = "arquivo"  # RowError.field for problems with the file as a whole
ROW_FIELD = "linha"  # RowError.field for problems with a record as a whole


@dataclass(frozen=True)
class RowError:
    line: int  # physical line of the file where the record starts (1 = first line); 0 for the file as a whole
    field: str  # the column (key) as the file names it; "arquivo" or "linha" for the file or the record
    message: str  # pt-BR, one line, shown to the merchant


class CatalogImportError(Exception):
    """The file was refused; nothing was written. ``errors`` lists every problem found (at most MAX_ERRORS + 1)."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        summary = f"line {first.line}: {first.field}: {first.message}" if first else "no details"
        super().__init__(f"catalog refused: {len(self.errors)} problem(s); first: {summary}")


class FieldError(ValueError):
    """A cell's value is wrong; the message (pt-BR) is shown with the line and the column."""


def refuse(errors: list[RowError]) -> CatalogImportError:
    ordered = sorted(errors, key=lambda e: e.line)  # stable: a record's own errors keep their column order
    if len(ordered) > MAX_ERRORS:
        more = len(ordered) - MAX_ERRORS
        ordered = ordered[:MAX_ERRORS] + [RowError(0, FILE_FIELD, f"e mais {more} problema(s) não listado(s): "
                                                                  "corrija os de cima e envie de novo")]
    return CatalogImportError(ordered)


def file_error(line: int, message: str) -> CatalogImportError:
    return CatalogImportError([RowError(line, FILE_FIELD, message)])
