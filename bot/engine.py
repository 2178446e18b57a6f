"""The conversation engine: one inbound text in, the reply texts out (pt-BR). It never sends anything.

What a message means comes from ``bot.understanding`` (the intent model and the entities); what it means *here*
is decided by the conversation's state: the last result list, the product in focus (its details, a size
offered, the "which size?" question), the cart, a question the bot asked ("você quer A ou B?", "quer falar com
um vendedor?") and the recovery message the shopper may be answering (``bot.followup``). So "quero essa",
"sim", "pode", "tem no 42?" and "quanto deu?" are resolved against what the shopper is looking at, and a
command about an item in view is never taken for an FAQ question.

It may change the database (the chat cart, a handoff request, the opt-out question) and the conversation state
in Redis, under ``keys("conv", customer id)`` with a TTL; the caller commits and queues the replies.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Literal

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import carts, faq, orders, texts
from bot.followup import Followup, recent_followup
from bot.handoff import active_handoff, request_handoff
from bot.replies import with_options
from bot.understanding import Reading, read, without_greeting
from bot.understanding.entities import Entities, ItemRef, extract, resolve
from bot.understanding.model import CUSTOM_PREFIX, SHIPPED_FAQ
from catalog.index import COLOUR_WORDS, size_keys, stem
from catalog.links import restore_link, shop_links
from catalog.search import categories, parse_query, search, similarity
from channel.consent import read_consent
from core.redis import Keys
from core.settings import Settings
from core.templating import brl
from core.text import normalize
from crm import hours
from models import Cart, Customer, FaqEntry, Product, Variant

STATE_TTL = 2 * 3600  # what the shopper was looking at is forgotten after two quiet hours
RESULTS_SHOWN = 5
PRICED_CANDIDATES = 40  # searched for a price ceiling, then filtered by price
MAX_CHOICE_WORDS = 5  # "o 42", "a azul tamanho M": longer is another request, not the answer to "which size?"
MENU_SEARCH, MENU_CART, MENU_ORDERS, MENU_FAQ, MENU_PERSON = 1, 2, 3, 4, 5

# Below CONFIDENT the bot does not act on its first guess alone: a catalog hit decides for a search, else it
# asks which of the two likeliest was meant; below GUESS_FLOOR it says it did not understand. Set by hand; the
# evaluation prints how many misses were above CONFIDENT ("confidently wrong").
CONFIDENT = 0.5
GUESS_FLOOR = 0.2
# How the bot names an intent when it asks "você quer A ou B?". Intents without a phrase are never asked about.
ASK_PHRASES = {
    "search": "buscar um produto", "add": "colocar um produto no carrinho", "details": "ver os detalhes de um produto",
    "remove": "tirar um item do carrinho", "cart": "ver o seu carrinho", "checkout": "receber o link de pagamento",
    "order_status": "saber do seu pedido", "handoff": "falar com um vendedor", "coupon": "saber do seu cupom",
    "complaint": "registrar uma reclamação", "availability": "saber se tem um tamanho ou cor",
    "faq_frete": "saber do frete e da entrega", "faq_pagamento": "saber das formas de pagamento",
    "faq_trocas": "saber de trocas e devoluções", "faq_horario": "saber o nosso horário",
    "faq_tamanhos": "ajuda para escolher o tamanho", "faq_endereco": "saber onde fica a loja",
}
# What the shopper asked about when the store has no answer for it (faq_unknown).
FAQ_SUBJECTS = {"faq_frete": "frete e entrega", "faq_pagamento": "formas de pagamento",
                "faq_trocas": "trocas e devoluções", "faq_horario": "horário", "faq_tamanhos": "tamanhos e medidas",
                "faq_endereco": "endereço da loja"}
# Commands that an item reference ("o 2", "essa") makes more likely than an FAQ question.
COMMANDS = ("add", "details", "remove", "checkout", "cart", "availability")
# Intents whose messages name products as a matter of course ("tira a camiseta", "cadê o tênis que comprei").
PRODUCT_INTENTS = ("search", "add", "details", "remove", "availability", "order_status", "complaint", "faq_trocas",
                   "faq_tamanhos", "coupon", "handoff")
# What the model may call a message that picks an item of the list on screen ("o primeiro no 40").
PICK_READINGS = ("availability", "search", "faq_tamanhos", "affirm", "ack", "deny", "greeting", "help", "thanks",
                 "remove", "cart")
# Readings a bare product name gets mistaken for ("boné" as "cart"): the catalog decides.
SMALL_TALK = ("greeting", "thanks", "ack", "goodbye", "help", "affirm", "deny", "cart")
_FIRST = {"1", "primeiro", "primeira", "o primeiro", "a primeira", "sim", "isso", "a 1", "o 1", "opcao 1"}
_SECOND = {"2", "segundo", "segunda", "o segundo", "a segunda", "a outra", "o outro", "a 2", "o 2", "opcao 2"}
# Words around a request that name no product: "então me mostra...", "o 42 né", "vou querer esse", "mano tem
# aquele tênis lá", "gostaria de saber se vocês possuem...", "pro meu marido".
FILLER = {
    # chat filler and interjections
    "entao", "ne", "msm", "mesmo", "mesma", "ai", "la", "aqui", "ainda", "sim", "ok", "blz", "beleza", "ta", "bom",
    "fechou", "show", "ja", "agora", "enquanto", "isso", "hmm", "hm", "humm", "ah", "ahh", "eh", "opa", "putz",
    "nossa", "poxa", "ops", "oi", "ola", "eae", "eai", "iae", "mano", "mana", "cara", "vei", "veio", "rapido",
    "urgente", "vdd", "verdade", "que", "pena", "tb", "tbm", "tambem", "pfv", "pf", "favor", "obrigado",
    "obrigada", "obg", "valeu", "vlw", "digo", "dizer", "melhor", "errei",
    # verbs of wanting, showing and handling, in chat and in formal writing
    "vou", "querer", "quero", "queria", "qro", "kero", "pode", "ser", "manda", "mande", "me", "ve", "tem", "teria",
    "ver", "olhar", "mostra", "mostrar", "coloca", "colocar", "bota", "tira", "tirar", "remove", "remover",
    "exclui", "excluir", "deixa", "levar", "levo", "leva", "pega", "pegar", "add", "adiciona", "adicionar", "fico",
    "prefiro", "acho", "achei", "possuem", "possui", "trabalham", "gostaria", "gentileza", "obsequio", "poderia",
    "informar", "adquirir", "desejo", "compreendo", "excelente", "perfeito", "preferiria", "encaminhe", "precisa",
    "usa", "veste", "presentear",
    # pointers, people and qualifiers that are not the product
    "uns", "umas", "por", "pra", "pro", "mim", "e", "so", "das", "dos", "com", "ele", "ela", "dele", "dela",
    "desse", "dessa", "aquele", "aquela", "aqueles", "aquelas", "outro", "outra", "igual", "quais", "qual",
    "cores", "cor", "tam", "tamanho", "numero", "presente", "nora", "genro", "sogra", "marido", "esposa", "filho",
    "filha", "meu", "minha", "algum", "alguma", "algo", "caro", "mais", "barato", "barata", "vcs", "voces",
    "voce", "vc",
}
_COMPARE = re.compile(r"\b(?:diferenca|compara|comparar|qual (?:e )?(?:o )?melhor|qual (?:dos|das) dois)\b")
_CORRECTION = re.compile(r"^(?:nao|digo|quer dizer|na verdade|ops|opa|errei|ou melhor)\b")
_QUANTITY_BEFORE_SIZE = re.compile(r"\b\d{1,2} (?:no|na|do|da|de|tamanho|tam|em|n)\b")
_OTHER_COLOURS = re.compile(r"\b(?:outras? cor(?:es)?|outra cor|quais (?:as )?cores|que cores|mais cores|cores tem)\b")
_CLEAR_CART = {"tudo", "todos", "todas", "limpa", "limpar", "zera", "zerar", "esvazia", "esvaziar"}
# "o cupom vale até quando?", "não funcionou": about the coupon, not "use it".
_COUPON_QUESTION = {"vale", "validade", "quando", "expira", "vence", "funcionou", "funciona", "erro", "invalido",
                    "aceitou", "aplicou", "qual", "quanto", "qnto", "qto", "como", "desconto"}


def product_words(text: str) -> list[str]:
    """The words of a message that may name a product (the search's content words minus chat filler)."""
    return [w for w in parse_query(text).words if w not in FILLER and len(w) > 2 and not w.isdigit()]


def search_text(text: str) -> str:
    """The message without the filler around a request, so "então me mostra os óculos" searches for óculos."""
    return " ".join(w for w in normalize(without_greeting(text)).split() if w not in FILLER) or text


# "ele calça 40", "minha filha veste M", "eu uso 38": the size of the person it is for.
_WEARS = re.compile(r"\b(?:ele|ela|eu|ele so|ela so|que|filho|filha|marido|esposa|mulher|menino|menina) "
                    r"(?:calca|calco|veste|visto|usa|uso|usam|calcam|vestem) (?:o |a |numero |tamanho |n )?"
                    r"(\d{2}|pp|p|m|g|gg|xg|xgg|eg)\b")
# "M... não, G", "o preto, digo, o marrom", "tamanho 40 não 42": what counts is what comes after.
_CHANGE_OF_MIND = re.compile(r"^(?P<head>(?:\S+ ){0,3}\S+?)[ .,!]*\b(?:nao|digo|quer dizer|ou melhor)\b[ ,]+"
                             r"(?P<tail>(?:\S+ ?){1,4})$")
_SIZE_THEN_SIZE = re.compile(r"\b(\d{2}|pp|p|m|g|gg|xg) (?:nao|digo|ou melhor) (?:o |a )?(\d{2}|pp|p|m|g|gg|xg)\b")


def restate(text: str) -> str:
    """The message as the rest of the engine reads it: a wearer's size said as a size, a change of mind
    reduced to what the shopper settled on."""
    clean = normalize(text)
    changed = _WEARS.sub(lambda m: f"no {m.group(1)}", clean)
    changed = _SIZE_THEN_SIZE.sub(lambda m: m.group(2), changed)
    mind = _CHANGE_OF_MIND.match(changed)
    if mind and not mind.group("head").startswith(("nao", "eu nao")) and "quero mais" not in changed:
        tail = extract(mind.group("tail"))
        if tail.size or tail.color or tail.refs:  # "ta bom, nao precisa" is no change of mind
            changed = mind.group("tail")
    return text if changed == clean else changed


def is_faq(intent: str) -> bool:
    return intent in SHIPPED_FAQ or intent.startswith(CUSTOM_PREFIX)


class _Conversation:
    def __init__(self, session: Session, client: redis.Redis, keys: Keys, settings: Settings, customer: Customer,
                 now: datetime, trace: list[str] | None) -> None:
        self.session, self.redis, self.settings, self.customer, self.now = session, client, settings, customer, now
        self.trace = trace
        self._text = ""  # the message being answered (what a reference's words are read from)
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
        if self.trace is not None:
            self.trace.append(key)
        return [texts.render(self.session, key, store_name=self.settings.store_name, **variables)]

    # --- what the shopper is looking at ------------------------------------------------------------------

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

    @property
    def focus(self) -> dict:
        value = self.state.get("focus")
        return value if isinstance(value, dict) else {}

    def set_focus(self, kind: str, **values) -> None:
        self.state["focus"] = {"k": kind, **values}

    def product_at(self, number: int) -> tuple[Product, list[Variant]] | None:
        """The product at 1-based ``number`` of the last list and the variants the search narrowed it to (all
        its active variants when the search named no size or colour)."""
        entries = self.results
        if not 1 <= number <= len(entries):
            return None
        return self._product(entries[number - 1]["p"], entries[number - 1]["v"])

    def _product(self, product_id, variant_ids) -> tuple[Product, list[Variant]] | None:
        product = self.session.get(Product, product_id) if isinstance(product_id, int) else None
        if product is None or not product.active:
            return None
        wanted = {v for v in variant_ids or [] if isinstance(v, int)}
        variants = [v for v in product.variants if v.active and (not wanted or v.id in wanted)]
        return product, variants or [v for v in product.variants if v.active]

    @cached_property
    def followup(self) -> Followup | None:
        return recent_followup(self.session, self.customer, self.now)

    def focus_product(self, *, cart_too: bool = False) -> tuple[Product, list[Variant]] | None:
        """The one product the shopper is looking at: its details, a size offered or asked about, the only item
        of the list, or the only product of the cart a recovery message was about."""
        focus = self.focus
        if focus.get("k") in ("product", "offer"):
            found = self._product(focus.get("p"), focus.get("v"))
            if found is not None:
                return found
        pending = self.state.get("pending")
        if isinstance(pending, dict) and (found := self._product(pending.get("p"), pending.get("v"))):
            return found
        if focus.get("k") == "list" and len(self.results) == 1:
            return self.product_at(1)
        cart = self.followup.cart if self.followup is not None and focus.get("k") in (None, "followup") else None
        if cart is None and cart_too and focus.get("k") in (None, "cart", "checkout"):
            cart = self.chat_cart()  # "e o G dele tem?" about the one thing in the cart
        if cart is not None:
            products = {item.product_id for item in cart.items if item.product_id}
            if len(products) == 1:
                return self._product(products.pop(), [i.variant_id for i in cart.items if i.variant_id])
        return None

    def chat_cart(self) -> Cart | None:
        cart = carts.open_cart(self.session, self.customer, create=False, now=self.now)
        return cart if cart is not None and cart.items else None

    def any_cart(self) -> Cart | None:
        """The chat cart, or else the cart the recovery message was about (a web cart, say)."""
        return self.chat_cart() or (self.followup.cart if self.followup is not None else None)

    def first_name(self) -> str:
        return (self.customer.name or "").strip().split(" ")[0]

    # --- deciding ----------------------------------------------------------------------------------------

    def act(self, reading: Reading, text: str) -> list[str]:
        guesses = reading.guesses
        intent = reading.intent
        clean = normalize(text)
        numbered = [ref.index for ref in reading.entities.refs if ref.index is not None]
        if len(numbered) >= 2 and _COMPARE.search(clean) and self.results:
            # "qual a diferença entre o 1 e o 2?": both, side by side
            return [reply for n in numbered[:3] for reply in self.details(n)]
        last = self.state.get("last")
        if _CORRECTION.match(clean) and last in ("details", "add") and (numbered or reading.entities.color):
            intent = last  # "não, o 2" after the details of the 1: the same, for the 2
            return self.run(intent, reading, text)
        if numbered and intent == "add" and self.results and numbered[0] > len(self.results) \
                and (self.focus_product() is not None) and _QUANTITY_BEFORE_SIZE.search(clean):
            # "me vê 3 no M" with one product in view: three of it, not the third item
            entities = replace(reading.entities, refs=(), quantity=numbered[0])
            return self.run("add", replace(reading, entities=entities), text)
        if self.results and intent in PICK_READINGS and not (intent in ("remove", "cart") and self.chat_cart()) \
                and (_indexes_item(reading.entities) or (not _asks(text) and self.picked(text, reading.entities))):
            return self.run("add", reading, text)  # "o primeiro no 40", "o rosa 37/38": a pick from the list
        if (intent not in PRODUCT_INTENTS and (reading.confidence < CONFIDENT or intent in SMALL_TALK)
              and not (intent in ("affirm", "deny") and self.focus)) or self.out_of_context(intent):
            named = self.named_products(text)
            if named is not None:
                return named  # "bolsa tiracolo caramelo", "boné": the catalog knows these words
        if is_faq(intent) and _points_at_item(reading.entities) and (self.results or self.chat_cart()):
            # "quero o 1 tamanho único", "e o 2 tem frete?": the item in view wins over a topic word.
            intent = next((g.intent for g in guesses[1:] if g.intent in COMMANDS and g.confidence > 0.05), intent)
        elif reading.confidence < CONFIDENT:
            options = [g.intent for g in guesses[:2]]
            if not reading.known_words:  # "xyzzy plugh": no word the model knows, not even mistyped
                return self.named_products(text) or self.miss()
            if "search" in options or reading.confidence < GUESS_FLOOR:
                found = self.show_search(text, hits_only=True)
                if found is not None:
                    return found
            if (named := self.named_products(text)) is not None:
                return named
            if reading.confidence < GUESS_FLOOR:
                return self.miss()
            if all(o in ASK_PHRASES or o.startswith(CUSTOM_PREFIX) for o in options) \
                    and guesses[1].confidence >= reading.confidence / 2:
                return self.clarify(options, text, reading)
        return self.run(intent, reading, text)

    def picked(self, text: str, entities: Entities) -> int | None:
        """The one item of the list the message's product, colour or attribute words point to, if exactly one."""
        colour = normalize(entities.color or "").split()
        items = [found for n in range(1, len(self.results) + 1) if (found := self.product_at(n)) is not None]
        named = product_words(text)
        for words in (named + colour, [] if named and self.named_elsewhere(named, items) else colour):
            if words:  # "o cinza mescla GG"; "rápido, o lilás M" (a word that names no product is filler)
                positions = resolve(ItemRef(attributes=tuple(words)), items, _describe)
                if len(positions) == 1:
                    return positions[0]
        return None

    def named_elsewhere(self, words: list[str], items: list[tuple[Product, list[Variant]]]) -> bool:
        """Whether these words name catalog products other than the listed ones ("agora uma bolsa preta")."""
        listed = {product.id for product, _ in items}
        return any(hit.product.id not in listed for hit in search(self.session, " ".join(words), limit=3).hits)

    def out_of_context(self, intent: str) -> bool:
        """A command about an item with no item to be about: nothing shown ("boné" read as "add"), or "remove"
        with an empty cart."""
        if intent == "remove":
            return self.chat_cart() is None
        return intent in ("add", "details", "availability") and not self.results and not self.focus_product()

    def named_products(self, text: str) -> list[str] | None:
        """The search results when the message's content words name products of the catalog (the best hit's
        name, brand or category holds every one of them); None otherwise."""
        words = product_words(text)
        if not words:
            return None
        found = search(self.session, search_text(text))
        if not found.hits or not _names(found.hits[0].product, words):
            return None
        return self.show_search(text, hits_only=True)

    def run(self, intent: str, reading: Reading, text: str) -> list[str]:
        self._text = text
        entities = size_and_colour(text, reading.entities)
        simple = {
            "greeting": self.greeting, "help": lambda: self.with_menu(self.say("help")),
            "thanks": lambda: self.say("thanks_reply", nome=self.first_name()),
            "ack": lambda: self.say("ack_reply"), "goodbye": lambda: self.say("goodbye", nome=self.first_name()),
            "cart": self.cart, "checkout": self.checkout, "order_status": self.order_status,
            "handoff": self.handoff, "complaint": self.complaint, "opt_out": self.ask_opt_out,
            "opt_in": lambda: self.say("opt_in_hint", descadastrado=self.customer.opted_out_at is not None),
            "affirm": self.affirm, "deny": self.deny,
        }
        if intent == "ack" and set(normalize(text).split()) & _THANKS:
            intent = "thanks"  # "tá bom, obg": the thanks is what to answer
        elif intent == "ack" and self.focus.get("k") in ("offer", "offer_person"):
            intent = "affirm"  # "Quer que eu coloque?" - "ok"
        if intent == "checkout" and "?" in text and set(normalize(text).split()) & _PAYMENT_WORDS:
            intent = "faq_pagamento"  # "quero pagar no pix, tem desconto?": the answer, then the link
        if intent in simple:
            return simple[intent]()
        if intent in ("search", "availability", "details") and _OTHER_COLOURS.search(normalize(text)) \
                and not product_words(text):
            colours = self.other_colours()
            if colours is not None:
                return colours  # "tem de outra cor?": every colour of the model in view
        focused = self.focus_product()
        words = product_words(text)
        if intent in ("search", "availability") and (entities.size or entities.color) and (
                not words or (focused is not None and _names(focused[0], words))):
            if focused is not None:
                return self.availability(entities, text)  # "e o preto tem 41?": about the product in view
            if self.focus.get("k") == "list" and isinstance(self.state.get("query"), str):
                return self.search_or_prompt(f"{self.state['query']} {entities.color or ''} {entities.size or ''}")
        if intent == "search":
            return self.search_or_prompt(text)
        if intent == "availability":
            return self.availability(entities, text)
        if intent == "add":
            self.state["last"] = "add"
            return self.add_reference(entities, text)
        if intent == "details":
            self.state["last"] = "details"
            return self.details_reference(entities, text)
        if intent == "remove":
            return self.remove_reference(entities, text)
        if intent == "coupon":
            return self.coupon(text)
        if is_faq(intent):
            return self.faq(intent, reading)
        return self.miss()

    def clarify(self, options: list[str], text: str, reading: Reading) -> list[str]:
        self.state["clarify"] = {"o": options, "t": text[:300]}
        labels = [ASK_PHRASES.get(o) or f"saber sobre {reading.topics[o].title}" for o in options]
        return self.say("clarify", opcoes=labels)

    def clarified(self, text: str) -> tuple[str, str] | None:
        """The answer to "você quer A ou B?": (the intent chosen, the message that was unclear), or None."""
        asked = self.state.pop("clarify", None)
        if not isinstance(asked, dict) or not isinstance(asked.get("o"), list) or len(asked["o"]) != 2:
            return None
        clean = normalize(text)
        original = str(asked.get("t") or "")
        if clean in _FIRST:
            return asked["o"][0], original
        if clean in _SECOND:
            return asked["o"][1], original
        return None

    # --- replies -----------------------------------------------------------------------------------------

    def greeting(self) -> list[str]:
        return self.with_menu(self.say("greeting", nome=self.first_name()))

    def with_menu(self, replies: list[str]) -> list[str]:
        """The main menu as a tappable list too, unless the merchant rewrote the menu (its options could then
        differ from these)."""
        if not replies or texts.current_source(self.session, "menu")[1]:
            return replies
        return [*replies[:-1], with_options(replies[-1], MENU_OPTIONS, button="Ver opções", section="Menu")]

    def ask_variant(self, product: Product, variants: list[Variant]) -> list[str]:
        labels = _option_labels(variants)
        [text] = self.say("choose_variant", produto=product.name, opcoes=labels)
        return [with_options(text, [(label, label, None) for label in labels], button="Escolher",
                             section=product.name[:24])]

    def search_or_prompt(self, text: str) -> list[str]:
        query = parse_query(text)
        if not (query.words or query.size or query.color or query.brand):
            return self.say("search_prompt")
        return self.show_search(text) or self.say("search_prompt")

    def show_search(self, text: str, *, hits_only: bool = False) -> list[str] | None:
        asked = extract(text)
        ceiling = asked.money if asked.money_max else None
        found = search(self.session, search_text(text), limit=PRICED_CANDIDATES if ceiling else RESULTS_SHOWN)
        if ceiling is not None:  # "até 100 reais": what costs that or less, cheapest first
            def within(hits):
                return sorted((h for h in hits if _price_of(h.product, h.variants) <= ceiling),
                              key=lambda h: _price_of(h.product, h.variants))
            found.hits, found.out_of_size = within(found.hits), within(found.out_of_size)
            found.other_sizes, found.other_colors = within(found.other_sizes), within(found.other_colors)
        notes = {"tamanho_indisponivel": found.size if found.out_of_size else None,
                 "sem_tamanho": [_with_sizes(hit) for hit in found.out_of_size],
                 "marca_ausente": found.unknown_brand, "tamanho_inexistente": None, "cor_inexistente": None}
        shown = found.shown[:RESULTS_SHOWN]
        if not found.hits and not found.out_of_size:  # nothing in that size (colour) at all: say so plainly
            notes["tamanho_inexistente"] = found.size if found.other_sizes else None
            notes["cor_inexistente"] = found.color if not found.other_sizes and found.other_colors else None
        if not shown:
            if hits_only:
                return None
            return self.say("no_results", busca=text.strip()[:60], categorias=categories(self.session),
                            tamanho_indisponivel=notes["tamanho_indisponivel"], sem_tamanho=notes["sem_tamanho"],
                            marca_ausente=found.unknown_brand)
        if hits_only and not found.hits:
            return None
        self.state["results"] = [{"p": hit.product.id, "v": [v.id for v in hit.variants]} for hit in shown]
        self.state["list_shown"] = True
        self.state["query"] = " ".join(parse_query(search_text(text)).words)[:200]  # "e em azul?" refines it
        self.customer.last_search = {"query": text.strip()[:120], "products": [hit.product.id for hit in shown],
                                     "at": self.now.isoformat()}
        self.state.pop("wanted", None)
        self.set_focus("list")
        produtos = [{"nome": hit.product.name, "preco": brl(_price_of(hit.product, hit.variants)),
                     "link": hit.product.url or "", "tamanhos": hit.available_sizes} for hit in shown]
        replies = self.say("search_results", produtos=produtos, **notes)
        options = [(str(n), p["nome"], p["preco"]) for n, p in enumerate(produtos, 1)]
        return [*replies[:-1], with_options(replies[-1], options, button="Ver produtos", section="Encontrei")]

    def other_colours(self) -> list[str] | None:
        """The model in view (or the list's first) in every colour the shop has it."""
        focused = self.focus_product() or (self.product_at(1) if self.results else None)
        if focused is None:
            return None
        product = focused[0]
        own = set(normalize(" ".join(v.color or "" for v in product.variants)).split())
        base = [w for w in normalize(product.name).split() if w not in own and w not in COLOUR_WORDS]
        return self.show_search(" ".join(base), hits_only=True) if base else None

    def details(self, number: int) -> list[str]:
        found = self.product_at(number)
        if found is None:
            return self.say("invalid_choice", numero=number, total_opcoes=len(self.results))
        self.state["list_shown"] = True  # still choosing among the results: a bare number picks again
        return self.details_of(found[0], found[1], number)

    def details_of(self, product: Product, variants: list[Variant], number: int | None) -> list[str]:
        available = [v for v in product.variants if v.available]
        self.set_focus("product", p=product.id, v=[v.id for v in variants])
        return self.say("product_details", numero=number, produto={
            "nome": product.name, "preco": brl(_price_of(product, available)), "descricao": product.description or "",
            "cor": ", ".join(dict.fromkeys(v.color for v in available if v.color)),
            "tamanhos": list(dict.fromkeys(v.size for v in available if v.size)),
            "link": product.url or "",
        })

    def target(self, entities: Entities) -> tuple[str, object]:
        """What an item reference points to: ("number", n) in the list, ("product", (product, variants)),
        ("ambiguous", n of candidates) or ("none", None)."""
        results = self.results
        focused = self.focus_product()
        for ref in entities.refs:
            if ref.index is not None:
                return "number", ref.index
            if ref.last and results:
                return "number", len(results)
            if (ref.cheapest or ref.priciest or ref.attributes) and results:
                if focused is not None and self.focus.get("k") in ("product", "offer") \
                        and _only_variant_words(ref, entities):
                    return "product", focused  # "a azul" while looking at one product: its blue one
                loaded = [self.product_at(n) for n in range(1, len(results) + 1)]
                items = [found for found in loaded if found is not None]
                positions = resolve(ref, items, _describe, price=lambda found: _price_of(*found))
                if len(positions) == 1:
                    return "product", items[positions[0] - 1]
                if (picked := self.picked(self._text, entities)) is not None:
                    return "number", picked  # "a de cor off-white, no M": the colour decides
                if positions:
                    return "ambiguous", len(results)
            if ref.demonstrative or ref.attributes:
                if focused is not None:
                    return "product", focused
        if focused is not None:
            return "product", focused
        if len(results) == 1:
            return "number", 1
        return ("ambiguous", len(results)) if results else ("none", None)

    def add_reference(self, entities: Entities, text: str) -> list[str]:
        cart = self.chat_cart()
        if cart is not None and not _indexes_item(entities) and _MORE_OF_THE_SAME.search(normalize(text)):
            line = cart.items[-1]  # "coloca mais um igual": the last line once more
            variant = self.session.get(Variant, line.variant_id) if line.variant_id else None
            if variant is not None:
                return self._put(variant.product, [variant], max(1, entities.quantity or 1))
        kind, value = self.target(entities)
        quantity = max(1, min(carts.MAX_QUANTITY, entities.quantity or 1))
        if kind == "number":
            found = self.product_at(value)
            if found is None:
                return self.say("invalid_choice", numero=value, total_opcoes=len(self.results))
        elif kind == "product":
            found = value
        elif kind == "ambiguous":
            return self.say("which_item", total_opcoes=value)
        else:
            if product_words(text):  # "quero um tênis preto": nothing was shown, so it is a search
                return self.search_or_prompt(text)
            return self.say("which_item", total_opcoes=0)
        product, candidates = found
        if _asks(text) and (entities.size or entities.color):
            return self.offer(product, entities, quantity)  # "e a vinho no G?": say if there is, then add on a yes
        chosen = _narrow(product, candidates, entities)
        if not chosen and entities.color and (sibling := self.sibling(product, entities.color)) is not None:
            product, chosen = sibling, _narrow(sibling, [], entities)  # "quero a vinho no G": its twin product
        return self._put(product, chosen, quantity)

    def details_reference(self, entities: Entities, text: str) -> list[str]:
        kind, value = self.target(entities)
        if kind == "number":
            return self.details(value)
        if kind == "product":
            return self.details_of(value[0], value[1], None)
        if kind == "ambiguous":
            return self.say("which_item", total_opcoes=value)
        return self.search_or_prompt(text) if product_words(text) else self.say("which_item", total_opcoes=0)

    def availability(self, entities: Entities, text: str) -> list[str]:
        """'tem no 42?', 'e na cor branca?', 'ainda tem o M?' about the product in view."""
        focused = self.focus_product(cart_too=True)
        words = product_words(text)
        if focused is not None and words and not _names(focused[0], words) and search(
                self.session, " ".join(words), limit=1).hits:
            focused = None  # "tem camiseta no M?" while looking at a tênis: a new search
        if focused is None or not (entities.size or entities.color):
            if focused is not None:
                return self.details_of(focused[0], focused[1], None)  # "ainda tem?": what it has
            return self.search_or_prompt(text)
        product, _ = focused
        return self.offer(product, entities)

    def offer(self, product: Product, entities: Entities, quantity: int = 1) -> list[str]:
        wanted = self.state.get("wanted") if isinstance(self.state.get("wanted"), dict) else {}
        if not entities.size and wanted.get("s"):  # "tem no G?" ... "e em rosa?": still the G
            entities = replace(entities, size=str(wanted["s"]))
        if entities.size:
            self.state["wanted"] = {"s": entities.size}
        active = [v for v in product.variants if v.active]
        matching = [v for v in active if _fits(v, entities.size, entities.color)]
        if not matching and entities.color and (sibling := self.sibling(product, entities.color)) is not None:
            product, active = sibling, [v for v in sibling.variants if v.active]  # "e na branca?": its twin
            matching = [v for v in active if _fits(v, entities.size, entities.color)]
        available = [v for v in matching if v.available]
        asked = " ".join(p for p in (entities.color, entities.size) if p)
        if not available:
            return self.say("variant_sold_out", produto=product.name, tamanho=asked or None,
                            disponiveis=_option_labels([v for v in active if v.available]))
        self.set_focus("offer", p=product.id, v=[v.id for v in available], q=quantity)
        return self.say("variant_available", produto=product.name, opcao=_labels_of(available),
                        preco=brl(_price_of(product, available)))

    def sibling(self, product: Product, colour: str) -> Product | None:
        """The same model in another colour, when the shop lists each colour as its own product ("Tênis
        Corrida Preto" / "Tênis Corrida Branco")."""
        own = set(normalize(" ".join(v.color or "" for v in product.variants)).split())
        base = [w for w in normalize(product.name).split() if w not in own and w not in COLOUR_WORDS]
        if not base:
            return None
        found = search(self.session, " ".join(base + [colour]), limit=3)
        for hit in found.hits:
            if hit.product.id != product.id and _names(hit.product, base):
                return hit.product
        return None

    def _put(self, product: Product, candidates: list[Variant], quantity: int) -> list[str]:
        available = [v for v in candidates if v.available]
        if not available:
            self.set_focus("product", p=product.id, v=[])  # "e o preto no G?" is still about this model
            others = [v for v in product.variants if v.available]
            return self.say("variant_sold_out", produto=product.name,
                            tamanho=", ".join(dict.fromkeys(v.size or v.color or "" for v in candidates)) or None,
                            disponiveis=_option_labels(others))
        if len(available) > 1:
            self.state["pending"] = {"p": product.id, "q": quantity, "v": [v.id for v in available]}
            self.set_focus("product", p=product.id, v=[v.id for v in available])
            return self.ask_variant(product, available)
        variant = available[0]
        cart = carts.open_cart(self.session, self.customer, create=True, now=self.now)
        added = carts.add_variant(cart, variant, quantity, self.now)
        self.session.flush()
        self.set_focus("cart")
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
        if not chosen and not product_words(text):
            entities = size_and_colour(text, extract(text))
            if entities.size or entities.color:  # "tem GG?", "manda o M então"
                chosen = [v for v in product.variants if v.active and _fits(v, entities.size, entities.color)]
        if chosen:
            if not any(v.available for v in chosen):
                self.state["pending"] = pending  # sold out: the question stays open for another size
            return self._put(product, chosen, quantity)  # a sold-out one is said so, with what is left
        entities = size_and_colour(text, extract(text))
        if entities.color and not product_words(text) and (sibling := self.sibling(product, entities.color)):
            return self._put(sibling, _narrow(sibling, [], entities), quantity)  # "digo, o marrom": its twin
        if _looks_like_an_option(text):  # a size or colour this product does not have: ask again
            self.state["pending"] = pending
            return self.ask_variant(product, [v for v in offered if v.available])
        return None

    def remove(self, number: int, quantity: int | None = None) -> list[str]:
        cart = self.chat_cart()
        if cart is None:
            return self.say("cart_empty")
        removed = carts.remove_item(cart, number, self.now, quantity)
        if removed is None:
            return self.say("invalid_choice", numero=number, total_opcoes=len(cart.items))
        self.session.flush()
        if not cart.items:
            return self.say("cart_empty")
        self.set_focus("cart")
        return self.say("cart_summary", adicionado=None, removido=removed.name, **carts.summary_variables(cart))

    def remove_reference(self, entities: Entities, text: str) -> list[str]:
        cart = self.chat_cart()
        if cart is None:
            return self.say("cart_empty")
        clean = normalize(text)
        keep = _KEEP_ONLY.search(clean)  # "deixa só uma", "2 tá bom": the quantity that stays
        fewer = _FEWER.search(clean)  # "tira um", "tira 2": that many less
        quantity = entities.quantity if keep is None and fewer is None else None
        if fewer is not None:
            quantity = _count(fewer.group(1))
        refs = list(entities.refs)
        if words := product_words(text):
            refs.append(ItemRef(attributes=tuple(words)))  # "tira a camiseta", "não quero mais o tênis"
        if entities.size:
            refs.append(ItemRef(attributes=(normalize(entities.size),)))  # "tira a 42"
        if keep is not None:
            return self.keep_only(cart, refs, _count(next(g for g in keep.groups() if g)))
        if _KEEP_LINE.search(clean) and refs:
            return self.keep_lines(cart, refs)
        for ref in refs:
            if ref.index is not None:
                return self.remove(ref.index, quantity)
            if ref.last:
                return self.remove(len(cart.items), quantity)
            if ref.attributes:
                positions = resolve(ref, cart.items, lambda item: item.name)
                if len(positions) == 1:
                    return self.remove(positions[0], quantity)
        if set(normalize(text).split()) & _CLEAR_CART:
            names = ", ".join(item.name for item in cart.items)
            while cart.items:
                carts.remove_item(cart, 1, self.now)
            self.session.flush()
            return self.say("cart_summary", adicionado=None, removido=names, **carts.summary_variables(cart))
        if len(cart.items) == 1:
            return self.remove(1)
        self.set_focus("cart")
        return self.say("which_item", total_opcoes=len(cart.items))

    def keep_lines(self, cart: Cart, refs: list[ItemRef]) -> list[str]:
        """'deixa só a calça': every other line goes."""
        kept: set[int] = set()
        for ref in refs:
            if ref.index is not None:
                kept.add(ref.index)
            elif ref.attributes:
                kept.update(resolve(ref, cart.items, lambda item: item.name))
        if not kept:
            self.set_focus("cart")
            return self.say("which_item", total_opcoes=len(cart.items))
        gone = [item for position, item in enumerate(cart.items, 1) if position not in kept]
        for item in gone:
            carts.remove_item(cart, cart.items.index(item) + 1, self.now)
        self.session.flush()
        self.set_focus("cart")
        return self.say("cart_summary", adicionado=None, removido=", ".join(i.name for i in gone) or None,
                        **carts.summary_variables(cart))

    def keep_only(self, cart: Cart, refs: list[ItemRef], quantity: int) -> list[str]:
        """'deixa só uma camiseta': the line (named, or the only one) keeps ``quantity``."""
        positions = [1] if len(cart.items) == 1 else []
        for ref in refs:
            if ref.index is not None and 1 <= ref.index <= len(cart.items):
                positions = [ref.index]
                break
            if ref.attributes and len(found := resolve(ref, cart.items, lambda item: item.name)) == 1:
                positions = found
                break
        if not positions:
            self.set_focus("cart")
            return self.say("which_item", total_opcoes=len(cart.items))
        line = cart.items[positions[0] - 1]
        return self.remove(positions[0], line.quantity - quantity) if line.quantity > quantity else self.cart()

    def cart(self) -> list[str]:
        cart = self.any_cart()
        if cart is None:
            return self.say("cart_empty")
        self.set_focus("cart")
        return self.say("cart_summary", adicionado=None, removido=None, **carts.summary_variables(cart))

    def checkout(self) -> list[str]:
        cart = self.any_cart()
        if cart is None:
            return self.say("cart_empty")
        builder = shop_links(self.settings)
        coupon = self.followup.coupon.code if self.followup is not None and self.followup.coupon else None
        if cart.source == "bot":
            cart.checkout_url = builder.cart_link(cart)
            cart.updated_at = self.now
        self.set_focus("checkout")
        return self.say("checkout", total=brl(cart.total), link=restore_link(builder, cart, coupon), cupom=coupon)

    def coupon(self, text: str) -> list[str]:
        followup = self.followup
        coupon = followup.coupon if followup is not None else None
        if coupon is None:
            return self.say("coupon_info", cupom=None, desconto=None, validade=None, link=None)
        cart = self.any_cart()
        if cart is not None and not set(normalize(text).split()) & _COUPON_QUESTION:
            return self.checkout()  # "quero usar o cupom": the link with it applied
        link = restore_link(shop_links(self.settings), cart, coupon.code) if cart else None
        expires = coupon.expires_at.astimezone(self.settings.store_timezone)
        return self.say("coupon_info", cupom=coupon.code, desconto=followup.coupon_text,
                        validade=expires.strftime("%d/%m às %Hh%M").replace("h00", "h"), link=link)

    def order_status(self) -> list[str]:
        found = orders.recent_orders(self.session, self.customer, self.settings.store_timezone)
        return self.say("order_status", pedidos=found) if found else self.say("no_orders")

    def faq_list(self) -> list[str]:
        return self.say("faq_list", topicos=[entry.title for entry in faq.entries(self.session)])

    def faq(self, intent: str, reading: Reading) -> list[str]:
        topic = reading.topics.get(intent)
        entry = self.session.scalar(select(FaqEntry).where(FaqEntry.topic == topic.topic)) if topic else None
        if entry is not None and entry.active:
            answer = self.say("faq_answer", titulo=entry.title, resposta=entry.answer)
            if intent == "faq_pagamento" and self.chat_cart() is not None:
                return answer + self.checkout()  # "como pago?" with a cart: the ways, and the link to do it
            return answer
        if intent == "faq_horario":
            opening = hours.store_hours(self.session)
            return self.say("faq_answer", titulo="Horário de atendimento",
                            resposta=f"Atendemos {hours.describe(opening)}.")
        self.set_focus("offer_person")
        return self.say("faq_unknown", assunto=FAQ_SUBJECTS.get(intent, "isso"))

    def _when(self) -> dict:
        tz = self.settings.store_timezone
        opening = hours.store_hours(self.session)
        is_open = hours.is_open(opening, self.now, tz)
        return {"quando": hours.when_someone_answers(self.session, self.now, tz), "aberto": is_open,
                "horario": hours.describe(opening)}

    def handoff(self, reason: str = "asked_for_person") -> list[str]:
        _, created = request_handoff(self.session, self.customer, reason=reason, now=self.now,
                                     tz=self.settings.store_timezone)
        self.set_focus("handoff")
        return self.say("handoff_created" if created else "handoff_existing", **self._when())

    def complaint(self) -> list[str]:
        if active_handoff(self.session, self.customer.id) is not None:
            self.set_focus("handoff")  # "ninguém me respondeu ainda": when someone will
            return self.say("handoff_existing", **self._when())
        request_handoff(self.session, self.customer, reason="complaint", now=self.now, tz=self.settings.store_timezone)
        self.set_focus("handoff")
        return self.say("complaint_reply", nome=self.first_name(), **self._when())

    def ask_opt_out(self) -> list[str]:
        """The model read "stop messaging me" where the consent rules were not sure enough: ask, once (the
        channel reads the answer, as for the rules' own question)."""
        if self.customer.opted_out_at is not None:
            return self.say("opt_out_again")
        self.customer.opt_out_asked_at = self.now
        return self.say("opt_out_question")

    def affirm(self) -> list[str]:
        focus = self.focus
        kind = focus.get("k")
        if kind == "offer" and (found := self._product(focus.get("p"), focus.get("v"))):
            return self._put(found[0], found[1], int(focus.get("q") or 1))
        if kind == "product" and (found := self._product(focus.get("p"), focus.get("v"))):
            return self._put(found[0], found[1], 1)
        if kind == "offer_person":
            return self.handoff()
        if kind == "cart" and self.any_cart() is not None:
            return self.checkout()
        if kind in (None, "followup") and self.followup is not None and self.followup.cart is not None:
            return self.checkout()  # "sim" to the recovery message: the cart, with its coupon
        return self.say("ack_reply")

    def deny(self) -> list[str]:
        if self.focus.get("k") in ("offer", "offer_person", "product", "followup"):
            self.state.pop("focus", None)
        return self.say("deny_reply")

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

    def short_answer(self, text: str, choosing: bool) -> list[str] | None:
        """A bare number or a lone size ("2", "42", "M", "tamanho G", "então o 42", "tem no 40?"): read from the
        context, never sent to the model (a one-letter message matches anything). A size alone picks it for the
        product in view; asked as a question ("tem M?") it says whether there is one."""
        clean = normalize(text)
        if self.focus.get("k") == "offer" and (quantity := _QUANTITY_ANSWER.match(clean)):
            found = self._product(self.focus.get("p"), self.focus.get("v"))
            if found is not None:  # "Temos sim! Quer?" - "manda 2": two of it
                return self._put(found[0], found[1], _count(quantity.group(1)))
        if clean.isdigit() and len(clean) <= 3:
            number = int(clean)
            if number == 0:
                return self.greeting()
            focused = self.focus_product()
            is_size = focused is not None and any(size_keys(clean) & size_keys(v.size) for v in focused[0].variants)
            if choosing and (number <= len(self.results) or not is_size):
                return self.details(number)
            if is_size:
                return self._put(focused[0], _narrow(focused[0], [], Entities(size=clean)), 1)
            return self.menu_option(number)
        entities = size_and_colour(text, extract(text))
        if not entities.size or entities.refs or len(clean.split()) > 4 or product_words(text):
            return None
        size_words = set(normalize(entities.size).split())
        if any(w not in _SIZE_ANSWER_WORDS and w not in size_words for w in clean.split()):
            return None  # "tira a 42", "troca o 40": a command about a size, for the model to read
        focused = self.focus_product(cart_too=_asks(text))
        if focused is None:
            return self.say("which_item", total_opcoes=len(self.results) if choosing else 0)
        if _asks(text):
            return self.offer(focused[0], entities)
        return self._put(focused[0], _narrow(focused[0], [], entities), entities.quantity or 1)

    def miss(self) -> list[str]:
        misses = int(self.state.get("misses") or 0) + 1
        self.state["misses"] = misses
        if misses >= 2:
            self.set_focus("offer_person")
            return self.say("fallback_offer_person")
        return self.say("fallback")


def respond(session: Session, redis: redis.Redis, keys: Keys, settings: Settings, customer: Customer, text: str, *,
            media_count: int = 0, consent_transition: Literal["opt_out", "opt_in", "ask_out", "stay"] | None = None,
            now: datetime, trace: list[str] | None = None) -> list[str]:
    """The reply texts, in order, for one inbound message from ``customer``. Never sends; may write to the
    session (cart, handoff request) and to Redis (conversation state) but does not commit. ``trace`` receives
    the key of each text sent (the evaluation reads it)."""
    conversation = _Conversation(session, redis, keys, settings, customer, now, trace)
    if consent_transition == "opt_out":
        return conversation.say("opt_out_confirmed")
    if consent_transition == "opt_in":
        return conversation.say("opt_in_confirmed")
    if consent_transition == "ask_out":
        # The message may have meant "stop": ask once rather than guess (channel.inbound reads the answer).
        return conversation.say("opt_out_question")
    if consent_transition == "stay":
        return conversation.say("opt_out_kept")
    text = text or ""
    if read_consent(text) == "opt_out" or (customer.opted_out_at is not None
                                           and read(session, text).intent == "opt_out"):
        return conversation.say("opt_out_again")  # already out: say so, briefly, rather than stay silent

    misses_before = conversation.state.get("misses", 0)
    replies = _reply(conversation, text, media_count)
    if conversation.state.get("misses", 0) == misses_before:
        conversation.state["misses"] = 0  # understood: the next miss is a first miss again
    conversation.save()
    return replies


def _reply(conversation: _Conversation, text: str, media_count: int) -> list[str]:
    text = restate(text)
    if conversation.state.get("pending"):
        answered = conversation.choose(text)
        if answered is not None:
            return answered
    # A bare number picks from the result list only while that list is what the shopper is looking at;
    # otherwise it is a menu option (or a size of the product in view).
    choosing = bool(conversation.state.pop("list_shown", False)) and bool(conversation.results)
    if not normalize(text):
        if media_count:
            return conversation.say("media_received")
        if text.strip():  # emoji only: "👍", "🙏", "😂"
            return conversation.say("thanks_reply" if set(text) & _THANKS_EMOJI else "ack_reply",
                                    nome=conversation.first_name())
        return conversation.greeting()
    clarified = conversation.clarified(text)
    if clarified is not None:
        intent, original = clarified
        reading = read(conversation.session, original, today=_today(conversation))
        return conversation.run(intent, reading, original)
    short = conversation.short_answer(text, choosing)
    if short is not None:
        return short
    reading = read(conversation.session, text, today=_today(conversation))
    return conversation.act(reading, reading.request or text)


def _today(conversation: _Conversation):
    return conversation.now.astimezone(conversation.settings.store_timezone).date()


_QUESTION_WORDS = {"tem", "teria", "ainda", "chegou", "existe", "sobrou", "acabou", "disponivel", "ha"}


# The words a bare size answer comes with: "tem no 42?", "então o M mesmo", "pode ser o G".
_SIZE_ANSWER_WORDS = {"ele", "ela", "tem", "no", "na", "o", "a", "tamanho", "tam", "numero", "num", "n", "entao",
                      "msm", "mesmo",
                      "ainda", "e", "ai", "pode", "ser", "quero", "qro", "manda", "me", "ve", "esse", "essa", "sim",
                      "ok", "so", "um", "uma", "em", "de", "pra", "mim", "por", "favor", "pf", "pfv", "calco", "uso",
                      "visto", "serve", "tb", "tambem", "teria", "chegou", "sobrou", "disponivel"}
_PAYMENT_WORDS = {"pix", "cartao", "credito", "debito", "boleto", "parcela", "parcelas", "parcelar", "parcelado",
                  "juros", "vezes", "desconto"}
_THANKS_EMOJI = set("🙏❤💖💕😘🥰")
_THANKS = {"obrigado", "obrigada", "obg", "brigado", "brigada", "valeu", "vlw", "agradeco", "grato", "grata", "obgd"}
_NUMBERS = {"um": 1, "uma": 1, "dois": 2, "duas": 2, "tres": 3, "quatro": 4, "cinco": 5}
_COUNT = r"(\d{1,2}|um|uma|dois|duas|tres|quatro|cinco)"
_KEEP_ONLY = re.compile(rf"\b(?:deixa|deixe|fica|quero|manda|leva|levo) (?:so|somente|apenas) (?:com )?(?:o |a )?"
                        rf"{_COUNT}\b|\b{_COUNT} (?:ta|esta) bom\b|\bso {_COUNT}(?: entao)?$")
_KEEP_LINE = re.compile(r"\b(?:deixa|deixe|fica|quero|mantem|mantenha) (?:so|somente|apenas)\b")
_FEWER = re.compile(rf"\b(?:tira|tire|tirar|remove|remova|diminui|diminua|menos) {_COUNT}\b(?! (?:do|da|de) )")
_QUANTITY_ANSWER = re.compile(rf"^(?:(?:manda|mande|quero|coloca|coloque|vou querer|me ve|pode ser|pode mandar|"
                              rf"leva|levo|separa|pode colocar) )?{_COUNT}"
                              rf"(?: (?:entao|unidades?|pecas?|pares?|por favor|pf|pfv))*$")
_MORE_OF_THE_SAME = re.compile(r"\b(?:mais (?:um|uma|1)|outro igual|outra igual|mais outro|mais outra|igual)\b")


def _count(word: str | None) -> int:
    if not word:
        return 1
    return int(word) if word.isdigit() else _NUMBERS.get(word, 1)


def _asks(text: str) -> bool:
    return "?" in text or bool(set(normalize(text).split()) & _QUESTION_WORDS)


def _indexes_item(entities: Entities) -> bool:
    return any(ref.index is not None or ref.last for ref in entities.refs)


def _points_at_item(entities: Entities) -> bool:
    return any(ref.index is not None or ref.last or ref.demonstrative for ref in entities.refs)


def _only_variant_words(ref: ItemRef, entities: Entities) -> bool:
    """'a azul', 'o 42', 'a preta M': the reference names a colour or size, not a product."""
    words = set(" ".join(ref.attributes).split())
    allowed = set(normalize(entities.color or "").split()) | {normalize(entities.size or "")}
    return bool(words) and words <= allowed | {"cor", "tamanho"}


def _describe(found: tuple[Product, list[Variant]]) -> str:
    product, variants = found
    return " ".join([product.name, product.brand or "", product.category or "",
                     *dict.fromkeys(v.color or "" for v in variants)])


def _names(product: Product, words: list[str]) -> bool:
    """Whether the search words describe this product (its name, brand, category), typos and plurals allowed."""
    own = set(normalize(f"{product.name} {product.brand or ''} {product.category or ''}").split())
    return all(any(stem(w) == stem(o) or (len(w) >= 5 and similarity(w, o) >= 0.85) for o in own) for w in words)


def size_and_colour(text: str, entities: Entities) -> Entities:
    """The entities with the size and colour as the search reads them when the extractors found none ("tem 110
    ainda?": a belt size)."""
    if entities.size and entities.color:
        return entities
    query = parse_query(text)
    size = query.size if query.size and not (query.size.isdigit() and int(query.size) <= 10) else None
    return replace(entities, size=entities.size or size, color=entities.color or query.color)


def _fits(variant: Variant, size: str | None, color: str | None) -> bool:
    if size and not size_keys(size) & size_keys(variant.size):
        return False
    if color:
        asked, own = normalize(color), normalize(variant.color or "")
        if not (own.startswith(asked) or asked.startswith(own) or  # "azul claro" is not "azul escuro"
                (" " not in asked and own.split()[:1] and own.split()[0][:4] == asked[:4])):  # preto ~ Preta
            return False
    return True


def _narrow(product: Product, candidates: list[Variant], entities: Entities) -> list[Variant]:
    """The candidates of the size and colour the message names (any variant of the product when the list's
    narrowing left them out), or all of them when it names none."""
    if not (entities.size or entities.color):
        return candidates
    chosen = [v for v in candidates if _fits(v, entities.size, entities.color)]
    return chosen or [v for v in product.variants if v.active and _fits(v, entities.size, entities.color)]


def _labels_of(variants: list[Variant]) -> str:
    return ", ".join(_option_labels(variants))


def _price_of(product: Product, variants: list[Variant]) -> Decimal:
    prices = [v.price for v in variants if v.active]
    return min(prices) if prices else product.price


# The default menu's options, as the shopper would type them (templates/messages/menu.txt).
MENU_OPTIONS = [("1", "Buscar produtos", None), ("2", "Meu carrinho", None), ("3", "Status do pedido", None),
                ("4", "Dúvidas", "frete, pagamento, trocas, horário"), ("5", "Falar com um vendedor", None)]


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
