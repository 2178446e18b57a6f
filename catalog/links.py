"""Links that open a shopper's cart on the shop's own site, with a coupon applied where the platform allows.

One builder per shop platform behind one interface (`LinkBuilder`); the generic one serves a custom shop: its
checkout page takes the lines as ``?itens=SKU:quantidade,…`` and a coupon as ``cupom=CODE``. Shopify's builder
uses cart permalinks (``/cart/VARIANT_ID:QTY,…``) and applies a coupon through ``/discount/CODE?redirect=…``; the
Nuvemshop and WooCommerce builders come with their connectors.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import object_session

from core.settings import Settings
from models import Cart, Variant


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
        ids = self._platform_ids(cart)
        lines = []
        for item in cart.items:
            variant_id = ids.get(item.variant_id) if item.variant_id is not None else None
            if not variant_id or not variant_id.isdigit():
                return f"{self.shop}/cart"
            lines.append(f"{variant_id}:{item.quantity}")
        return f"{self.shop}/cart/{','.join(lines)}" if lines else f"{self.shop}/cart"

    def with_coupon(self, link: str, code: str) -> str:
        """Shopify's discount link: applies the code, then redirects to ``link``'s path on the shop."""
        parts = urlsplit(link)
        target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        return f"{self.shop}/discount/{quote(code, safe='')}?{urlencode({'redirect': target})}"

    @staticmethod
    def _platform_ids(cart: Cart) -> dict[int, str | None]:
        wanted = {item.variant_id for item in cart.items if item.variant_id is not None}
        session = object_session(cart)
        if not wanted or session is None:
            return {}
        return dict(session.execute(select(Variant.id, Variant.platform_variant_id).where(Variant.id.in_(wanted))).all())


def builder_for(shop_base_url: str, *, platform: str = "generic", shopify_domain: str | None = None) -> LinkBuilder:
    """The builder for the shop's platform (Settings.shop_platform); generic unless the platform's shop is known."""
    if platform == "shopify" and shopify_domain:
        return ShopifyLinks(shopify_domain)
    return GenericLinks(shop_base_url)


def shop_links(settings: Settings) -> LinkBuilder:
    """The configured shop's builder (SHOP_PLATFORM, SHOP_BASE_URL, SHOPIFY_SHOP_DOMAIN)."""
    return builder_for(settings.shop_base_url, platform=settings.shop_platform,
                       shopify_domain=settings.shopify_shop_domain)


def restore_link(builder: LinkBuilder, cart: Cart, coupon_code: str | None = None) -> str:
    """The link that brings this cart back, with the coupon applied when there is one: a chat cart is rebuilt
    from its lines (whatever the shopper did or did not type); a web cart opens the checkout the shop gave us,
    or is rebuilt when the shop gave none."""
    link = cart.checkout_url if cart.source != "bot" and cart.checkout_url else builder.cart_link(cart)
    return builder.with_coupon(link, coupon_code) if coupon_code else link
