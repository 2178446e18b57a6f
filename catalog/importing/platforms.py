"""What the Shopify and Nuvemshop exports share: the product key (handle, identifier) and product fields of a row,
and a variant's price, options, platform id and SKU."""

from __future__ import annotations

from typing import Any

from catalog.importing.assemble import ParsedVariant, Row
from catalog.importing.errors import FieldError, RowError
from catalog.importing.values import (
    bounded,
    clean,
    parse_html_description,
    parse_image,
    parse_name,
    parse_option_name,
    parse_option_value,
    parse_platform_id,
    parse_price,
    parse_short,
    parse_sku,
    parse_text,
)


def platform_key(row: Row, get, line: int, empty_message: str) -> bool:
    """The row's product key (a platform's handle or identifier) and its product fields; False on a problem,
    recorded on the row."""
    key_cell = get("key")
    row.key_field = key_cell[1]
    try:
        key = parse_text(key_cell[0])
    except FieldError as exc:
        row.errors.append(RowError(line, key_cell[1], str(exc)))
        return False
    if not key:
        row.errors.append(RowError(line, key_cell[1], empty_message))
        return False
    row.key = bounded(key)
    _platform_product_fields(row, get, line)
    return True


def _platform_product_fields(row: Row, get, line: int) -> None:
    for canonical, parser in (("name", parse_name), ("description", parse_html_description),
                              ("brand", parse_short), ("image_url", parse_image),
                              ("platform_product_id", parse_platform_id)):
        cell = get(canonical)
        if cell is None:
            continue
        try:
            row.product[canonical] = (parser(cell[0]), cell[1])
        except FieldError as exc:
            row.errors.append(RowError(line, cell[1], str(exc)))
    tags = get("tags")
    if tags is not None:
        row.attributes_present = True
        if "\x00" in tags[0]:
            row.errors.append(RowError(line, tags[1], "contém um caractere inválido (NUL)"))
        else:
            items = [clean(t) for t in tags[0].split(",")]
            row.product["attr:tags"] = ([t for t in items if t] or None, tags[1])
    for n in (1, 2, 3):
        cell = get(f"option{n}_name")
        if cell is None:
            continue
        try:
            row.product[f"option{n}_name"] = (parse_option_name(cell[0]), cell[1])
        except FieldError as exc:
            row.errors.append(RowError(line, cell[1], str(exc)))


def platform_variant(row: Row, get, line: int, option_values):
    values: dict[str, Any] = {}
    price_cell = get("price")
    try:
        price = parse_price(price_cell[0])
    except FieldError as exc:
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
            raw_options.append((n, parse_option_value(cell[0]), cell[1]))
        except FieldError as exc:
            row.errors.append(RowError(line, cell[1], str(exc)))
    id_cell = get("platform_variant_id")
    if id_cell is not None:
        try:
            values["platform_variant_id"] = parse_platform_id(id_cell[0])
        except FieldError as exc:
            row.errors.append(RowError(line, id_cell[1], str(exc)))
    return values, raw_options, get("sku")


def add_platform_variant(row: Row, line: int, sku_cell: tuple[str, str], values: dict,
                          raw_options: list) -> None:
    try:
        sku = parse_sku(sku_cell[0])
    except FieldError as exc:
        row.errors.append(RowError(line, sku_cell[1], str(exc)))
        return
    if values.get("price") is None:
        return
    row.variants.append(ParsedVariant(line, sku, sku_cell[1], values, raw_options))
