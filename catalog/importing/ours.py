"""Our format, CSV rows and JSON objects (one per variant, grouped by the product key), and today's format (no product
column: one row per product, its sizes in ``tamanhos``), mapped to variants the way migration 0007 named them."""

from __future__ import annotations

import re
from typing import Any

from catalog.importing.assemble import ParsedVariant, Row
from catalog.importing.columns import SPELLINGS
from catalog.importing.errors import ROW_FIELD, FieldError, RowError
from catalog.importing.files import json_objects
from catalog.importing.values import (
    ATTRIBUTE_KEY_MAX,
    attribute_key,
    attribute_value,
    norm,
    option_problems,
    parse_active,
    parse_color,
    parse_description,
    parse_image,
    parse_key,
    parse_name,
    parse_options,
    parse_price,
    parse_short,
    parse_size,
    parse_sizes,
    parse_sku,
    parse_stock,
    parse_url,
    reais,
)

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
LEGACY_SIZES_MESSAGE = ("com a coluna produto, cada tamanho é uma linha (uma variante com seu sku, tamanho, preço e "
                        "estoque): troque \"38|39|40\" por três linhas com a coluna tamanho; ou tire a coluna produto "
                        "para importar no formato antigo (uma linha por produto)")
_OURS_ALIASES = {alias: canonical for canonical, names in OURS_COLUMNS.items() for alias in names}
_OURS_PARSERS = {
    "key": parse_key,
    "sku": parse_sku,
    "name": parse_name,
    "price": parse_price,
    "compare_at_price": parse_price,
    "stock": parse_stock,
    "size": parse_size,
    "color": parse_color,
    "active": parse_active,
    "category": parse_short,
    "brand": parse_short,
    "description": parse_description,
    "url": parse_url,
    "image_url": parse_image,
    "sizes": parse_sizes,
}


def ours_row(line: int, pairs: list[tuple[str, Any]], *, legacy: bool, json_mode: bool = False) -> Row:
    row = Row(line=line)
    parsed: dict[str, Any] = {}
    names: dict[str, str] = {}
    failed: set[str] = set()
    attributes: list[tuple[str, str, Any]] = []  # (column, key, value)
    options_obj: tuple[str, Any] | None = None
    for name, value in pairs:
        key = norm(name)
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
        except FieldError as exc:
            row.errors.append(RowError(line, name, str(exc)))
            failed.add(canonical)

    # Attributes: product-level, one entry per key.
    attribute_values: dict[str, Any] = {}
    for column, raw_key, value in attributes:
        attribute = attribute_key(str(raw_key))
        if not attribute or len(attribute) > ATTRIBUTE_KEY_MAX or "\x00" in attribute:
            row.errors.append(RowError(line, column, f"nome de atributo inválido (1 a {ATTRIBUTE_KEY_MAX} "
                                                     "caracteres)"))
            continue
        try:
            parsed_value = attribute_value(value)
        except FieldError as exc:
            row.errors.append(RowError(line, column, str(exc)))
            continue
        if attribute in attribute_values:
            row.errors.append(RowError(line, column, f"atributo \"{attribute}\" informado duas vezes"))
            continue
        attribute_values[attribute] = (parsed_value, column)
    if legacy and json_mode:
        # Today's JSON kept sizes and colour among the attributes ({"cor": "cinza", "tamanhos": [...]}).
        for attribute, canonical, parser in (("tamanhos", "sizes", parse_sizes), ("cor", "color", parse_color)):
            if attribute in attribute_values and canonical not in names:
                value, column = attribute_values.pop(attribute)
                names[canonical] = column
                try:
                    parsed[canonical] = parser(value)
                except FieldError as exc:
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
                                       f"o \"{names['compare_at_price']}\" ({reais(compare)}) deve ser maior que o "
                                       f"preço ({reais(price)}); deixe em branco se não há desconto"))
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
            options = parse_options(options_obj[1])
        except FieldError as exc:
            row.errors.append(RowError(line, options_obj[0], str(exc)))
        else:
            if options is not None:
                values["options"] = options
                for problem in option_problems(options):
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


# --- JSON ------------------------------------------------------------------------------------------------------


def ours_rows_json(text: str) -> tuple[list[Row], bool]:
    objects = json_objects(text)
    legacy = not any(isinstance(value, dict) and any(_OURS_ALIASES.get(norm(str(k))) == "key" for k in value)
                     for _, value in objects)
    rows = []
    for line, value in objects:
        if not isinstance(value, dict):
            rows.append(Row(line=line, errors=[RowError(line, ROW_FIELD, "cada item da lista deve ser um objeto "
                                                                          "{ ... } com os dados de uma variante")]))
            continue
        rows.append(ours_row(line, list(value.items()), legacy=legacy, json_mode=True))
    return rows, legacy
