"""Links that open a shopper's cart on the shop's own site, with a coupon applied where the platform allows.

One builder per shop platform behind one interface (`LinkBuilder`); the generic one serves a custom shop: its
checkout page takes the lines as ``?itens=SKU:quantidade,…`` and a coupon as ``cupom=CODE``. The platform
builders (Shopify cart permalinks, Nuvemshop, WooCommerce) come with the shop connectors.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from models import Cart


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


def builder_for(shop_base_url: str) -> LinkBuilder:
    return GenericLinks(shop_base_url)


def restore_link(builder: LinkBuilder, cart: Cart, coupon_code: str | None = None) -> str:
    """The link that brings this cart back, with the coupon applied when there is one: a chat cart is rebuilt
    from its lines (whatever the shopper did or did not type); a web cart opens the checkout the shop gave us,
    or is rebuilt when the shop gave none."""
    link = cart.checkout_url if cart.source != "bot" and cart.checkout_url else builder.cart_link(cart)
    return builder.with_coupon(link, coupon_code) if coupon_code else link
