"""The conversation engine: one inbound text in, the reply texts out (pt-BR). It never sends anything.

It may change the database (the chat cart, a handoff request) and the conversation state in Redis; the
caller commits and queues the replies. State: the last result list (for "quero o 2") and the count of
consecutive messages it did not understand, under ``keys("conv", customer id)`` with a TTL.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

import redis
from sqlalchemy.orm import Session

from bot import carts, faq, orders, texts
from bot.handoff import request_handoff
from bot.intents import Intent, Parsed, parse
from catalog.links import checkout_link
from catalog.search import categories, looks_like_search, search
from core.redis import Keys
from core.settings import Settings
from core.templating import brl
from models import Customer, Product

STATE_TTL = 2 * 3600  # a result list is forgotten after two quiet hours
MENU_SEARCH, MENU_CART, MENU_ORDERS, MENU_FAQ, MENU_PERSON = 1, 2, 3, 4, 5


class _Conversation:
    def __init__(self, session: Session, client: redis.Redis, keys: Keys, settings: Settings, customer: Customer,
                 now: datetime) -> None:
        self.session, self.redis, self.settings, self.customer, self.now = session, client, settings, customer, now
        self.key = keys("conv", customer.id)
        raw = client.get(self.key)
        try:
            self.state = json.loads(raw) if raw else {}
        except ValueError:
            self.state = {}
        if not isinstance(self.state, dict):
            self.state = {}

    def save(self) -> None:
        self.redis.set(self.key, json.dumps(self.state), ex=STATE_TTL)

    def say(self, key: str, **variables) -> list[str]:
        return [texts.render(self.session, key, store_name=self.settings.store_name, **variables)]

    # --- helpers ----------------------------------------------------------------------------------------

    @property
    def results(self) -> list[int]:
        value = self.state.get("results")
        return [int(v) for v in value] if isinstance(value, list) else []

    def product_at(self, number: int) -> Product | None:
        ids = self.results
        if not 1 <= number <= len(ids):
            return None
        product = self.session.get(Product, ids[number - 1])
        return product if product is not None and product.active else None

    def first_name(self) -> str:
        return (self.customer.name or "").strip().split(" ")[0]

    # --- intents ----------------------------------------------------------------------------------------

    def greeting(self) -> list[str]:
        return self.say("greeting", nome=self.first_name())

    def show_search(self, text: str) -> list[str] | None:
        found = search(self.session, text)
        if not found.products:
            if not found.missing_size and not found.size and not looks_like_search(text):
                return None
            return self.say("no_results", busca=text.strip()[:60], categorias=categories(self.session),
                            tamanho_indisponivel=found.size if found.missing_size else None,
                            sem_tamanho=[p.name for p in found.missing_size])
        self.state["results"] = [p.id for p in found.products]
        self.state["list_shown"] = True
        return self.say(
            "search_results",
            produtos=[{"nome": p.name, "preco": brl(p.price), "link": p.url or ""} for p in found.products],
            tamanho_indisponivel=found.size if found.missing_size else None,
            sem_tamanho=[p.name for p in found.missing_size],
        )

    def details(self, number: int) -> list[str]:
        product = self.product_at(number)
        if product is None:
            return self.say("invalid_choice", numero=number, total_opcoes=len(self.results))
        self.state["list_shown"] = True  # still choosing among the results: a bare number picks again
        attributes = product.attributes or {}
        sizes = attributes.get("tamanhos") or []
        return self.say("product_details", numero=number, produto={
            "nome": product.name, "preco": brl(product.price), "descricao": product.description or "",
            "cor": str(attributes.get("cor") or "").capitalize(),
            "tamanhos": [str(s) for s in (sizes if isinstance(sizes, list) else [sizes])],
            "link": product.url or "",
        })

    def add(self, number: int, quantity: int) -> list[str]:
        product = self.product_at(number)
        if product is None:
            return self.say("invalid_choice", numero=number, total_opcoes=len(self.results))
        cart = carts.open_cart(self.session, self.customer, create=True, now=self.now)
        carts.add_product(cart, product, quantity, self.now)
        self.session.flush()
        label = f"{quantity}x {product.name}" if quantity > 1 else product.name
        return self.say("cart_summary", adicionado=label, removido=None, **carts.summary_variables(cart))

    def remove(self, number: int) -> list[str]:
        cart = carts.open_cart(self.session, self.customer, create=False, now=self.now)
        if cart is None or not cart.items:
            return self.say("cart_empty")
        removed = carts.remove_item(cart, number, self.now)
        if removed is None:
            return self.say("invalid_choice", numero=number, total_opcoes=len(cart.items))
        self.session.flush()
        if not cart.items:
            return self.say("cart_empty")
        return self.say("cart_summary", adicionado=None, removido=removed.name, **carts.summary_variables(cart))

    def cart(self) -> list[str]:
        cart = carts.open_cart(self.session, self.customer, create=False, now=self.now)
        if cart is None or not cart.items:
            return self.say("cart_empty")
        return self.say("cart_summary", adicionado=None, removido=None, **carts.summary_variables(cart))

    def checkout(self) -> list[str]:
        cart = carts.open_cart(self.session, self.customer, create=False, now=self.now)
        if cart is None or not cart.items:
            return self.say("cart_empty")
        cart.checkout_url = checkout_link(self.settings.shop_base_url, cart)
        cart.updated_at = self.now
        return self.say("checkout", total=brl(cart.total), link=cart.checkout_url)

    def order_status(self) -> list[str]:
        found = orders.recent_orders(self.session, self.customer, self.settings.store_timezone)
        return self.say("order_status", pedidos=found) if found else self.say("no_orders")

    def faq_list(self) -> list[str]:
        return self.say("faq_list", topicos=[entry.title for entry in faq.entries(self.session)])

    def handoff(self) -> list[str]:
        _, created = request_handoff(self.session, self.customer, reason="asked_for_person", now=self.now,
                                     tz=self.settings.store_timezone)
        return self.say("handoff_created" if created else "handoff_existing")

    def menu_option(self, number: int) -> list[str]:
        if number == MENU_SEARCH:
            return self.say("search_prompt")
        if number == MENU_CART:
            return self.cart()
        if number == MENU_ORDERS:
            return self.order_status()
        if number == MENU_FAQ:
            return self.faq_list()
        if number == MENU_PERSON:
            return self.handoff()
        return self.miss()

    def free_text(self, text: str) -> list[str]:
        entry = faq.match(self.session, text)
        if entry is not None:
            return self.say("faq_answer", titulo=entry.title, resposta=entry.answer)
        found = self.show_search(text)
        return found if found is not None else self.miss()

    def miss(self) -> list[str]:
        misses = int(self.state.get("misses") or 0) + 1
        self.state["misses"] = misses
        return self.say("fallback_offer_person" if misses >= 2 else "fallback")


def respond(session: Session, redis: redis.Redis, keys: Keys, settings: Settings, customer: Customer, text: str, *,
            media_count: int = 0, consent_transition: Literal["opt_out", "opt_in", "ask_out", "stay"] | None = None,
            now: datetime) -> list[str]:
    """The reply texts, in order, for one inbound message from ``customer``. Never sends; may write to the
    session (cart, handoff request) and to Redis (conversation state) but does not commit."""
    conversation = _Conversation(session, redis, keys, settings, customer, now)
    if consent_transition == "opt_out":
        return conversation.say("opt_out_confirmed")
    if consent_transition == "opt_in":
        return conversation.say("opt_in_confirmed")
    if consent_transition == "ask_out":
        # The message may have meant "stop": ask once rather than guess (channel.inbound reads the answer).
        return conversation.say("opt_out_question")
    if consent_transition == "stay":
        return conversation.say("opt_out_kept")

    # A bare number picks from the result list only while that list is what the shopper is looking at;
    # otherwise it is a menu option. "quero o 2" always refers to the last list.
    choosing = bool(conversation.state.pop("list_shown", False)) and bool(conversation.results)
    parsed: Parsed = parse(text or "", has_results=choosing)
    if parsed.intent is Intent.OPT_OUT:
        return conversation.say("opt_out_again")  # already out: say so, briefly, rather than stay silent
    if parsed.intent is Intent.OPT_IN:
        return conversation.say("opt_in_confirmed")
    if parsed.intent is Intent.EMPTY:
        replies = conversation.say("media_received") if media_count else conversation.greeting()
        conversation.save()
        return replies

    handlers = {
        Intent.GREETING: conversation.greeting,
        Intent.MENU_OPTION: lambda: conversation.menu_option(parsed.number),
        Intent.PICK: lambda: conversation.details(parsed.number),
        Intent.DETAILS: lambda: conversation.details(parsed.number),
        Intent.ADD: lambda: conversation.add(parsed.number, parsed.quantity),
        Intent.REMOVE: lambda: conversation.remove(parsed.number),
        Intent.CART: conversation.cart,
        Intent.CHECKOUT: conversation.checkout,
        Intent.ORDER_STATUS: conversation.order_status,
        Intent.HANDOFF: conversation.handoff,
        Intent.TEXT: lambda: conversation.free_text(text),
    }
    misses_before = conversation.state.get("misses", 0)
    replies = handlers[parsed.intent]()
    if conversation.state.get("misses", 0) == misses_before:
        conversation.state["misses"] = 0  # understood: the next miss is a first miss again
    conversation.save()
    return replies
