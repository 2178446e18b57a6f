"""Shopify's product CSV export (classic and 2024 column names): one row mapped to product fields and a variant."""

from __future__ import annotations

from catalog.importing.assemble import Row
from catalog.importing.columns import Columns
from catalog.importing.errors import FieldError, RowError
from catalog.importing.platforms import add_platform_variant, platform_key, platform_variant
from catalog.importing.values import clean, norm, parse_active, parse_price, parse_short, parse_stock, short

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


def shopify_row(line: int, cells: list[str], columns: Columns) -> Row:
    row = Row(line=line)
    get = lambda canonical: columns.cell(cells, canonical)
    if not platform_key(row, get, line, "Handle vazio: cada linha da exportação leva o Handle do produto"):
        return row

    category = None
    category_column = None
    for canonical in ("type", "product_category"):
        cell = get(canonical)
        if cell is None:
            continue
        category_column = category_column or cell[1]
        text = clean(cell[0])
        if text and category is None:
            leaf = text.split(">")[-1].strip()
            try:
                category = parse_short(leaf)
                category_column = cell[1]
            except FieldError as exc:
                row.errors.append(RowError(line, cell[1], str(exc)))
    if category_column is not None:
        row.product["category"] = (category, category_column)

    active = None
    for canonical in ("status", "published"):
        cell = get(canonical)
        if cell is None or not cell[0].strip():
            continue
        word = norm(cell[0])
        if canonical == "status":
            state = SHOPIFY_STATUS.get(word)
            if state is None:
                row.errors.append(RowError(line, cell[1], f"situação \"{short(cell[0])}\" desconhecida: use active, "
                                                          "draft ou archived"))
                continue
        else:
            try:
                state = parse_active(cell[0])
            except FieldError as exc:
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
    values, raw_options, sku_cell = platform_variant(row, get, line, option_values)
    tracker, policy = get("tracker"), get("policy")
    stock_cell = get("stock")
    if stock_cell is not None:
        try:
            stock = parse_stock(stock_cell[0], allow_negative=True)
        except FieldError as exc:
            row.errors.append(RowError(line, stock_cell[1], str(exc)))
        else:
            if tracker is not None and not tracker[0].strip():
                stock = None  # Shopify does not track this variant's stock
            elif policy is not None and norm(policy[0]) in ("continue", "true", "sim"):
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
        except FieldError as exc:
            row.errors.append(RowError(line, compare_cell[1], str(exc)))
        else:
            price = values.get("price")
            values["compare_at_price"] = compare if compare is not None and price is not None and compare > price \
                else None
    if sku_cell is None or not clean(sku_cell[0]):
        row.errors.append(RowError(line, sku_cell[1] if sku_cell else "Variant SKU",
                                   "variante sem SKU: preencha o SKU da variante na Shopify (ou nesta linha) e "
                                   "exporte de novo; sem ele não há como atualizar a variante nas próximas "
                                   "importações"))
        return row
    add_platform_variant(row, line, sku_cell, values, raw_options)
    return row
