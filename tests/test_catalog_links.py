"""Checkout links: a cart comes back as it was, with the coupon applied."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlparse

from catalog.links import GenericLinks, restore_link
from models import Cart, CartItem

SHOP = "https://loja.example/"


def _cart(source: str, checkout_url: str | None = None) -> Cart:
    cart = Cart(source=source, checkout_url=checkout_url)
    cart.items = [CartItem(sku="TEN-PRETO-42", name="Tênis Preto 42", quantity=2, unit_price=Decimal("299.90")),
                  CartItem(sku="MEIA 39/43", name="Meia", quantity=1, unit_price=Decimal("19.90"))]
    return cart


def test_a_chat_cart_is_rebuilt_from_its_lines_even_with_a_checkout_url():
    link = restore_link(GenericLinks(SHOP), _cart("bot", "https://loja.example/checkout/old"))
    parts = urlparse(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "loja.example", "/checkout")
    assert parse_qs(parts.query) == {"itens": ["TEN-PRETO-42:2,MEIA 39/43:1"]}


def test_a_web_cart_opens_the_shops_own_checkout():
    url = "https://loja.example/checkouts/c/abc123?key=xyz"
    assert restore_link(GenericLinks(SHOP), _cart("store", url)) == url


def test_a_web_cart_without_a_checkout_url_is_rebuilt():
    link = restore_link(GenericLinks(SHOP), _cart("store", None))
    assert parse_qs(urlparse(link).query)["itens"] == ["TEN-PRETO-42:2,MEIA 39/43:1"]


def test_the_coupon_is_applied_once_and_keeps_the_shops_parameters():
    url = "https://loja.example/checkouts/c/abc123?key=xyz&cupom=OLD"
    link = restore_link(GenericLinks(SHOP), _cart("store", url), "VOLTA-7K2M")
    assert parse_qs(urlparse(link).query) == {"key": ["xyz"], "cupom": ["VOLTA-7K2M"]}
    link = restore_link(GenericLinks(SHOP), _cart("bot"), "VOLTA-7K2M")
    assert parse_qs(urlparse(link).query)["cupom"] == ["VOLTA-7K2M"]
