"""Rows grouped into products: the parsed catalog (``ParsedCatalog``, ``ParsedProduct``, ``ParsedVariant``), the
mapped record every format produces (``Row``), product-level values that must agree across a product's rows, SKUs
repeated in the file, and the platform formats' option names resolved for each variant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalog.importing.errors import FILE_FIELD, RowError, refuse
from catalog.importing.values import norm, option_problems, short, show


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


@dataclass
class Row:
    """One record, mapped: its product key, product-level values (value, column) and variants."""

    line: int
    key: str | None = None
    key_field: str = ""
    product: dict[str, tuple[Any, str]] = field(default_factory=dict)
    attributes_present: bool = False
    variants: list[ParsedVariant] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


FIRST_WINS = {"image_url"}  # a later row's different value is not a conflict


def assemble_catalog(rows: list[Row], format: str, *, legacy: bool,
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
                                                         f"(\"{short(show(value))}\" em vez de "
                                                         f"\"{short(show(earlier[0]))}\"): repita o mesmo valor "
                                                         "ou deixe em branco nas linhas seguintes"))
        for variant in row.variants:
            first = sku_lines.get(variant.sku)
            if first is not None:
                where = f" (produto \"{short(first[1])}\")" if first[1] != row.key else ""
                errors.append(RowError(variant.line, variant.sku_field, f"SKU \"{short(variant.sku)}\" repetido: "
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
                message = f"o nome do produto \"{short(product.key)}\" está vazio em todas as suas linhas"
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
        raise refuse(errors)
    return ParsedCatalog(format=format, legacy=bool(legacy) and not platform, products=list(products.values()))


def _resolve_platform_options(product: ParsedProduct, errors: list[RowError]) -> None:
    names = {n: product.seen.get(f"option{n}_name") for n in (1, 2, 3)}
    seen_names: dict[str, int] = {}
    for n, entry in names.items():
        if entry is None:
            continue
        key = norm(entry[0])
        if key in seen_names:
            errors.append(RowError(entry[1], entry[2], f"opção \"{short(entry[0])}\" repetida no mesmo produto"))
        seen_names[key] = n
    for variant in product.variants:
        options: dict[str, str] = {}
        for n, value, column in variant.raw_options:
            entry = names.get(n)
            if entry is None:
                name_column = product.present.get(f"option{n}_name", f"nome da opção {n}")
                errors.append(RowError(variant.line, column, f"valor \"{short(value)}\" sem nome de opção: preencha "
                                                             f"\"{name_column}\" na primeira linha do produto"))
                continue
            name = entry[0]
            if norm(name) == "title" and norm(value) == "default_title":
                continue  # Shopify's placeholder for a product without options
            options[name] = value
        for problem in option_problems(options):
            column = next((c for n, v, c in variant.raw_options if v in problem), variant.sku_field)
            errors.append(RowError(variant.line, column, problem))
        variant.values["options"] = options
