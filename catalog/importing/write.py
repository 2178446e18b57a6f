"""``import_catalog``: the validated catalog upserted in the caller's session (products by key, variants by SKU)
inside a savepoint, the variants the file does not list deactivated on request, every touched product's price and
active flag settled, and the search index refreshed in the same transaction."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from catalog import index
from catalog.importing.assemble import ParsedCatalog
from catalog.importing.errors import RowError, file_error, refuse
from catalog.importing.read import read_catalog
from catalog.importing.values import COLOR_KEY, SIZE_KEY, is_color, is_size, short
from models import Product, Variant

LOOKUP_CHUNK = 500


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


def import_catalog(session: Session, path: Path | str, format: str = "auto", *,
                   deactivate_missing: bool = False) -> ImportReport:
    """Validate every record of ``path``, then upsert its products and variants in ``session``.

    Raises CatalogImportError listing every problem, having written nothing, when any record is bad. A product's
    variants that the file does not list are left as they are (``deactivate_missing=True`` deactivates them).
    Writes inside a savepoint and refreshes the search index for the products it touched; does not commit.
    """
    catalog = read_catalog(path, format)
    return write_catalog(session, catalog, deactivate_missing=deactivate_missing)


def write_catalog(session: Session, catalog: ParsedCatalog, *, deactivate_missing: bool) -> ImportReport:
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

    errors = [RowError(p.line, p.key_field, f"o produto \"{short(p.key)}\" não tem nenhuma variante (linha com SKU "
                                            "e preço) no arquivo")
              for p in catalog.products if p.key not in products and not p.variants]
    if errors:
        raise refuse(errors)

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
        raise file_error(0, "outro envio alterou o catálogo ao mesmo tempo; nada foi importado, envie de novo") \
            from None
    return ImportReport(format=catalog.format, legacy=catalog.legacy, **counts)


def _apply_variant(variant: Variant, values: dict[str, Any], platform: bool) -> bool:
    changed = False
    wanted = {k: v for k, v in values.items() if k not in ("size", "color", "options")}
    # Nothing about options in the file (no size/colour column): the variant keeps what it had.
    if platform or "options" in values or "size" in values or "color" in values:
        options = values.get("options", {}) if platform else _ours_options(variant.options or {}, values)
        wanted["options"] = options
        wanted["size"] = next((v for k, v in options.items() if is_size(k)), None)
        wanted["color"] = next((v for k, v in options.items() if is_color(k)), None)
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
        size = {k: v for k, v in base.items() if is_size(k)}
    if "color" in values:
        color = {COLOR_KEY: values["color"]} if values["color"] else {}
    else:
        color = {k: v for k, v in base.items() if is_color(k)}
    rest = {k: v for k, v in base.items() if not is_size(k) and not is_color(k)}
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
