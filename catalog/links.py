"""Links that open a shopper's cart on the shop's own site, with a coupon applied where the platform allows.

One builder per shop platform behind one interface (`LinkBuilder`); the generic one serves a custom shop: its
checkout page takes the lines as ``?itens=SKU:quantidade,…`` and a coupon as ``cupom=CODE``. Shopify's builder
uses cart permalinks (``/cart/VARIANT_ID:QTY,…``) and applies a coupon through ``/discount/CODE?redirect=…``.
WooCommerce takes one line through its core ``?add-to-cart=ID&quantity=N`` link. Nuvemshop documents no link
that fills a cart, so a chat cart opens its product's page there (or the shop when the cart has several
products). Neither Nuvemshop nor WooCommerce applies a coupon from a link: the message carries the code and the
shopper types it at checkout, so ``with_coupon`` leaves their links as they are.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import object_session

from core.settings import Settings
from models import Cart, Product, Variant


class LinkBuilder(Protocol):
    def cart_link(self, cart: Cart) -> str:
        """A link that puts exactly this cart's lines (variants and quantities) in the shop's checkout."""

    def with_coupon(self, link: str, code: str) -> str:
        """``link`` with ``code`` applied at checkout."""


class GenericLinks:
    def __init__(self, shop_base_url: str) -> None:
        self.shop = shop_base_url.rstrip("/")

    def cart_link(self, cart: Cart) -> str:
        items = ",".join(f"{item.sku}:{item.quantity}" for item in cart.items)
        return f"{self.shop}/checkout?{urlencode({'itens': items})}"

    def with_coupon(self, link: str, code: str) -> str:
        parts = urlsplit(link)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "cupom"]
        return urlunsplit(parts._replace(query=urlencode([*query, ("cupom", code)])))


class ShopifyLinks:
    """Links on a Shopify shop (``domain`` is its host, e.g. ``loja.myshopify.com``)."""

    def __init__(self, domain: str) -> None:
        self.shop = f"https://{domain.strip().rstrip('/')}"

    def cart_link(self, cart: Cart) -> str:
        """A cart permalink with each line's Shopify variant id; the shop's cart page when a line's variant is not
        known to be a Shopify one (a permalink with a wrong id would open an empty or different cart)."""
        lines = []
        for item, (variant_id, _, _) in zip(cart.items, _products(cart)):
            if not variant_id or not variant_id.isdigit():
                return f"{self.shop}/cart"
            lines.append(f"{variant_id}:{item.quantity}")
        return f"{self.shop}/cart/{','.join(lines)}" if lines else f"{self.shop}/cart"

    def with_coupon(self, link: str, code: str) -> str:
        """Shopify's discount link: applies the code, then redirects to ``link``'s path on the shop."""
        parts = urlsplit(link)
        target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        return f"{self.shop}/discount/{quote(code, safe='')}?{urlencode({'redirect': target})}"


def _products(cart: Cart) -> list[tuple[str | None, str | None, str | None]]:
    """(platform variant id, platform product id, product page) of each line, in order; Nones where unknown."""
    wanted = [item.variant_id for item in cart.items if item.variant_id is not None]
    session = object_session(cart)
    found: dict[int, tuple] = {}
    if wanted and session is not None:
        rows = session.execute(select(Variant.id, Variant.platform_variant_id, Product.platform_product_id,
                                      Product.url).join(Product, Product.id == Variant.product_id)
                               .where(Variant.id.in_(wanted))).all()
        found = {row[0]: tuple(row[1:]) for row in rows}
    return [found.get(item.variant_id, (None, None, None)) if item.variant_id is not None else (None, None, None)
            for item in cart.items]


class _TypedCoupon:
    """A platform whose checkout takes a coupon only typed in: the link stays as it is (the message has the code)."""

    def with_coupon(self, link: str, code: str) -> str:
        return link


class WooCommerceLinks(_TypedCoupon):
    """Links on a WooCommerce shop (``store_url``: its address, WOOCOMMERCE_STORE_URL)."""

    def __init__(self, store_url: str) -> None:
        self.shop = store_url.rstrip("/")

    def cart_link(self, cart: Cart) -> str:
        """WooCommerce's own add-to-cart link for a one-line cart (the variation's id, or the product's for a
        simple product); with several lines, or an id we do not know, the shop's cart page."""
        lines = _products(cart)
        if len(lines) == 1:
            variant_id, product_id, _ = lines[0]
            platform_id = variant_id if variant_id and variant_id.isdigit() else product_id
            if platform_id and platform_id.isdigit():
                quantity = cart.items[0].quantity
                return f"{self.shop}/?{urlencode({'add-to-cart': platform_id, 'quantity': quantity})}"
        return f"{self.shop}/cart/"


class NuvemshopLinks(_TypedCoupon):
    """Links on a Nuvemshop shop (``shop_base_url``: its address)."""

    def __init__(self, shop_base_url: str) -> None:
        self.shop = shop_base_url.rstrip("/")

    def cart_link(self, cart: Cart) -> str:
        """The product's page when the cart holds one product (the shopper picks the variant and buys there);
        the shop's home otherwise: Nuvemshop has no documented link that fills a cart."""
        pages = {page for _, _, page in _products(cart)}
        if len(pages) == 1:
            page = pages.pop()
            if page and page.startswith(("https://", "http://")):
                return page
        return f"{self.shop}/"


def builder_for(shop_base_url: str, *, platform: str = "generic", shopify_domain: str | None = None,
                woocommerce_url: str | None = None) -> LinkBuilder:
    """The builder for the shop's platform (Settings.shop_platform); generic unless the platform's shop is known."""
    if platform == "shopify" and shopify_domain:
        return ShopifyLinks(shopify_domain)
    if platform == "woocommerce":
        return WooCommerceLinks(woocommerce_url or shop_base_url)
    if platform == "nuvemshop":
        return NuvemshopLinks(shop_base_url)
    return GenericLinks(shop_base_url)


def shop_links(settings: Settings) -> LinkBuilder:
    """The configured shop's builder (SHOP_PLATFORM, SHOP_BASE_URL, SHOPIFY_SHOP_DOMAIN, WOOCOMMERCE_STORE_URL)."""
    return builder_for(settings.shop_base_url, platform=settings.shop_platform,
                       shopify_domain=settings.shopify_shop_domain, woocommerce_url=settings.woocommerce_store_url)


def restore_link(builder: LinkBuilder, cart: Cart, coupon_code: str | None = None) -> str:
    """The link that brings this cart back, with the coupon applied when there is one: a chat cart is rebuilt
    from its lines (whatever the shopper did or did not type); a web cart opens the checkout the shop gave us,
    or is rebuilt when the shop gave none."""
    link = cart.checkout_url if cart.source != "bot" and cart.checkout_url else builder.cart_link(cart)
    return builder.with_coupon(link, coupon_code) if coupon_code else link
