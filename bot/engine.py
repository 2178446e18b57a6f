"""The conversation engine: one inbound text in, the reply texts out (pt-BR). It never sends anything.

It may change the database (the chat cart, a handoff request) and the conversation state in Redis; the
caller commits and queues the replies. State: the last result list (for "quero o 2") and the count of
consecutive messages it did not understand, under ``keys("conv", customer id)`` with a TTL.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Literal

import redis
from sqlalchemy.orm import Session

from bot import carts, faq, orders, texts
from bot.handoff import request_handoff
from bot.intents import Intent, Parsed, parse
from catalog.links import builder_for
from catalog.search import categories, looks_like_search, parse_query, search
from core.redis import Keys
from core.settings import Settings
from core.templating import brl
from core.text import normalize
from models import Customer, Product, Variant

STATE_TTL = 2 * 3600  # a result list is forgotten after two quiet hours
RESULTS_SHOWN = 5
MAX_CHOICE_WORDS = 5  # "o 42", "a azul tamanho M": longer is another request, not the answer to "which size?"
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
    def results(self) -> list[dict]:
        """The last list shown: [{"p": product id, "v": [variant ids the search narrowed it to]}]."""
        value = self.state.get("results")
        if not isinstance(value, list):
            return []
        entries = []
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("p"), int):
                entries.append({"p": item["p"], "v": [v for v in item.get("v") or [] if isinstance(v, int)]})
            elif isinstance(item, int):
                entries.append({"p": item, "v": []})
        return entries

    def product_at(self, number: int) -> tuple[Product, list[Variant]] | None:
        """The product at 1-based ``number`` of the last list and the variants the search narrowed it to (all
        its active variants when the search named no size or colour)."""
        entries = self.results
        if not 1 <= number <= len(entries):
            return None
        product = self.session.get(Product, entries[number - 1]["p"])
        if product is None or not product.active:
            return None
        wanted = set(entries[number - 1]["v"])
        variants = [v for v in product.variants if v.active and (not wanted or v.id in wanted)]
        return product, variants or [v for v in product.variants if v.active]

    def first_name(self) -> str:
        return (self.customer.name or "").strip().split(" ")[0]

    # --- intents ----------------------------------------------------------------------------------------

    def greeting(self) -> list[str]:
        return self.say("greeting", nome=self.first_name())

    def show_search(self, text: str) -> list[str] | None:
        found = search(self.session, text)
        notes = {"tamanho_indisponivel": found.size if found.out_of_size else None,
                 "sem_tamanho": [_with_sizes(hit) for hit in found.out_of_size],
                 "marca_ausente": found.unknown_brand, "tamanho_inexistente": None, "cor_inexistente": None}
        shown = found.shown[:RESULTS_SHOWN]
        if not found.hits and not found.out_of_size:  # nothing in that size (colour) at all: say so plainly
            notes["tamanho_inexistente"] = found.size if found.other_sizes else None
            notes["cor_inexistente"] = found.color if not found.other_sizes and found.other_colors else None
        if not shown:
            if not found.size and not found.unknown_brand and not looks_like_search(text):
                return None
            return self.say("no_results", busca=text.strip()[:60], categorias=categories(self.session),
                            tamanho_indisponivel=notes["tamanho_indisponivel"], sem_tamanho=notes["sem_tamanho"],
                            marca_ausente=found.unknown_brand)
        self.state["results"] = [{"p": hit.product.id, "v": [v.id for v in hit.variants]} for hit in shown]
        self.state["list_shown"] = True
        return self.say(
            "search_results",
            produtos=[{"nome": hit.product.name, "preco": brl(_price_of(hit.product, hit.variants)),
                       "link": hit.product.url or "", "tamanhos": hit.available_sizes} for hit in shown],
            **notes,
        )

    def details(self, number: int) -> list[str]:
        found = self.product_at(number)
        if found is None:
            return self.say("invalid_choice", numero=number, total_opcoes=len(self.results))
        product, _ = found
        self.state["list_shown"] = True  # still choosing among the results: a bare number picks again
        available = [v for v in product.variants if v.available]
        return self.say("product_details", numero=number, produto={
            "nome": product.name, "preco": brl(_price_of(product, available)), "descricao": product.description or "",
            "cor": ", ".join(dict.fromkeys(v.color for v in available if v.color)),
            "tamanhos": list(dict.fromkeys(v.size for v in available if v.size)),
            "link": product.url or "",
        })

    def add(self, number: int, quantity: int, wanted: str = "") -> list[str]:
        """'quero o 1' (and 'quero a 1 tamanho G', 'quero 2 do 3 azul'): the one variant the list and the message
        point to goes in the cart; with several left, ask which, once."""
        found = self.product_at(number)
        if found is None:
            return self.say("invalid_choice", numero=number, total_opcoes=len(self.results))
        product, candidates = found
        if wanted.strip():
            narrowed = match_variants(candidates, wanted) or match_variants(product.variants, wanted)
            candidates = narrowed or candidates
        return self._put(product, candidates, quantity)

    def _put(self, product: Product, candidates: list[Variant], quantity: int) -> list[str]:
        available = [v for v in candidates if v.available]
        if not available:
            others = [v for v in product.variants if v.available]
            return self.say("variant_sold_out", produto=product.name,
                            tamanho=", ".join(dict.fromkeys(v.size or v.color or "" for v in candidates)) or None,
                            disponiveis=_option_labels(others))
        if len(available) > 1:
            self.state["pending"] = {"p": product.id, "q": quantity, "v": [v.id for v in available]}
            return self.say("choose_variant", produto=product.name, opcoes=_option_labels(available))
        variant = available[0]
        cart = carts.open_cart(self.session, self.customer, create=True, now=self.now)
        added = carts.add_variant(cart, variant, quantity, self.now)
        self.session.flush()
        if added.quantity == 0:  # the cart already holds all there is
            return self.say("variant_sold_out", produto=variant.label(), tamanho=None, disponiveis=[])
        label = variant.label() if added.quantity == 1 else f"{added.quantity}x {variant.label()}"
        return self.say("cart_summary", adicionado=label, removido=None, so_em_estoque=added.capped,
                        **carts.summary_variables(cart))

    def choose(self, text: str) -> list[str] | None:
        """The answer to "which size?": a variant of the pending product, or None when the message is about
        something else (the question is then dropped and the message handled as any other)."""
        pending = self.state.pop("pending", None)
        if not isinstance(pending, dict) or not isinstance(pending.get("p"), int):
            return None
        product = self.session.get(Product, pending["p"])
        if product is None or len(normalize(text).split()) > MAX_CHOICE_WORDS:
            return None
        quantity = int(pending.get("q") or 1)
        offered = [v for v in product.variants if v.id in set(pending.get("v") or [])]
        chosen = match_variants(offered, text) or match_variants(product.variants, text)
        if chosen:
            return self._put(product, chosen, quantity)  # a sold-out one is said so, with what is left
        if _looks_like_an_option(text):  # a size or colour this product does not have: ask again
            self.state["pending"] = pending
            return self.say("choose_variant", produto=product.name,
                            opcoes=_option_labels([v for v in offered if v.available]))
        return None

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
        cart.checkout_url = builder_for(self.settings.shop_base_url).cart_link(cart)
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
    if conversation.state.get("pending"):
        answered = conversation.choose(text or "")
        if answered is not None:
            conversation.save()
            return answered
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
        Intent.ADD: lambda: conversation.add(parsed.number, parsed.quantity, parsed.rest),
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


def _price_of(product: Product, variants: list[Variant]) -> Decimal:
    prices = [v.price for v in variants if v.active]
    return min(prices) if prices else product.price


def _option_labels(variants: list[Variant]) -> list[str]:
    """How a shopper tells these variants apart: "42", "M", or "Preto 42" only when the colours differ."""
    colours = {v.color for v in variants}
    sizes = {v.size for v in variants}
    labels = []
    for v in variants:
        parts = [v.color if len(colours) > 1 else None, v.size if len(sizes) > 1 or len(colours) == 1 else None]
        labels.append(" ".join(p for p in parts if p) or v.size or v.color or v.sku)
    return list(dict.fromkeys(labels))


def _with_sizes(hit) -> str:
    sizes = hit.available_sizes
    return f"{hit.product.name} (ainda tem {', '.join(sizes)})" if sizes else hit.product.name


_OPTION_FILLER = {"o", "a", "os", "as", "no", "na", "tamanho", "tam", "numero", "n", "cor", "de", "do", "da", "em",
                  "quero", "queria", "esse", "essa", "este", "esta", "pode", "ser", "mesmo", "mesma", "pra", "mim",
                  "por", "favor", "sim", "um", "uma"}


def match_variants(variants: list[Variant], text: str) -> list[Variant]:
    """The variants ``text`` names by size and/or colour ("42", "o G", "a azul", "preto 40"); [] when it names
    none of them. Every word that is not filler must be one of the variant's own sizes or colours."""
    query = parse_query(text)
    words = [w for w in normalize(text).split() if w not in _OPTION_FILLER]
    if not words:
        return []
    chosen = []
    for variant in variants:
        size, color = normalize(variant.size or ""), normalize(variant.color or "")
        own = set(size.split()) | set(color.split()) | ({size} if size else set())
        if query.color and color and not color.startswith(query.color[:4]):
            continue
        if query.size and normalize(query.size) != size:
            continue
        if all(w in own or (query.color and w.startswith(query.color[:4])) for w in words):
            chosen.append(variant)
    return chosen


_OPTION_CUES = {"tamanho", "tam", "numero", "cor", "tamanhos"}


def _looks_like_an_option(text: str) -> bool:
    """A short answer that says it names a size or colour ("tamanho 44", "a verde") but names none the product
    has: ask again. A bare number that is no size of the product is something else (a menu option)."""
    words = set(normalize(text).split())
    return bool(words & _OPTION_CUES) or parse_query(text).color is not None
