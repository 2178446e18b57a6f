"""A CSV header, and which of its columns holds each field of a format: aliases, repeated columns, required columns
missing, and (our format) the other columns as product attributes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from catalog.importing.errors import RowError
from catalog.importing.values import ATTRIBUTE_KEY_MAX, attribute_key

# Our format's spellings of a required column, listed when it is missing (the first names a JSON object's field).
SPELLINGS = {
    "key": ("produto", "product", "codigo"), "sku": ("sku",), "name": ("nome", "name"),
    "price": ("preço", "preco", "price"),
}
# (platform, field) -> the column a "missing" message names; platform None is our format.
REQUIRED_LABELS = {
    (None, "key"): "produto", (None, "sku"): "sku", (None, "name"): "nome", (None, "price"): "preço",
    ("Shopify", "key"): "Handle", ("Shopify", "name"): "Title", ("Shopify", "sku"): "Variant SKU",
    ("Shopify", "price"): "Variant Price",
    ("Nuvemshop", "key"): "Identificador URL", ("Nuvemshop", "name"): "Nome", ("Nuvemshop", "price"): "Preço",
}


@dataclass
class Header:
    line: int
    names: list[str]  # as in the file, stripped
    keys: list[str]  # normalised


class Columns:
    """Which column of the header holds each field, for one format."""

    def __init__(self, header: Header, spec: dict[str, tuple[str, ...]], platform: str | None, *,
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
            attribute = attribute_key(name)
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
