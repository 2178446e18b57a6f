"""Nuvemshop's product CSV export: one row mapped to product fields and a variant."""

from __future__ import annotations

from catalog.importing.assemble import Row
from catalog.importing.columns import Columns
from catalog.importing.errors import FieldError, RowError
from catalog.importing.platforms import add_platform_variant, platform_key, platform_variant
from catalog.importing.values import (
    OPTION_MAX,
    SKU_MAX,
    bounded,
    clean,
    parse_active,
    parse_price,
    parse_short,
    parse_stock,
    parse_text,
    reais,
    slug,
)

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


def nuvemshop_row(line: int, cells: list[str], columns: Columns) -> Row:
    row = Row(line=line)
    get = lambda canonical: columns.cell(cells, canonical)
    if not platform_key(row, get, line, "Identificador URL vazio: cada linha (cada variação) leva o identificador "
                                         "do produto"):
        return row
    category = get("category")
    if category is not None:
        first = clean(category[0].split(",")[0]).split(">")[-1].strip()
        try:
            row.product["category"] = (parse_short(first), category[1])
        except FieldError as exc:
            row.errors.append(RowError(line, category[1], str(exc)))
    for canonical, attribute in (("gender", "sexo"), ("age", "faixa etária")):
        cell = get(canonical)
        if cell is not None:
            row.attributes_present = True
            try:
                row.product[f"attr:{attribute}"] = (parse_text(cell[0], max_length=OPTION_MAX), cell[1])
            except FieldError as exc:
                row.errors.append(RowError(line, cell[1], str(exc)))
    active = get("active")
    if active is not None:
        try:
            row.product["active"] = (parse_active(active[0]), active[1])
        except FieldError as exc:
            row.errors.append(RowError(line, active[1], str(exc)))

    option_values = [(n, get(f"option{n}_value")) for n in (1, 2, 3)]
    variant_cells = [get(c) for c in ("sku", "price", "promo", "stock")] + [c for _, c in option_values]
    if not any(cell and cell[0].strip() for cell in variant_cells):
        return row
    values, raw_options, sku_cell = platform_variant(row, get, line, option_values)
    promo = get("promo")
    values["compare_at_price"] = None
    if promo is not None:
        try:
            promo_price = parse_price(promo[0])
        except FieldError as exc:
            row.errors.append(RowError(line, promo[1], str(exc)))
        else:
            price = values.get("price")
            if promo_price is not None and price is not None:
                if promo_price >= price:
                    row.errors.append(RowError(line, promo[1], f"o preço promocional ({reais(promo_price)}) deve "
                                                               f"ser menor que o preço ({reais(price)})"))
                else:
                    values["price"], values["compare_at_price"] = promo_price, price
    stock = get("stock")
    if stock is not None:
        try:
            values["stock"] = parse_stock(stock[0])
        except FieldError as exc:
            row.errors.append(RowError(line, stock[1], str(exc)))
    if sku_cell is None or not clean(sku_cell[0]):
        generated = bounded("-".join([slug(row.key), *(slug(v) for _, v, _ in raw_options)]), SKU_MAX)
        sku_cell = (generated, sku_cell[1] if sku_cell else row.key_field)
    add_platform_variant(row, line, sku_cell, values, raw_options)
    return row
