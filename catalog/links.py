"""Links that open a cart on the shop's own site. Generic today: the shop's checkout with the SKUs and quantities
in the query string; per-platform builders (Shopify, Nuvemshop, WooCommerce) come with the shop connectors."""

from __future__ import annotations

from urllib.parse import urlencode

from models import Cart


def checkout_link(shop_base_url: str, cart: Cart) -> str:
    items = ",".join(f"{item.sku}:{item.quantity}" for item in cart.items)
    return f"{shop_base_url}/checkout?{urlencode({'itens': items})}"
