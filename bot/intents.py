"""What a shopper's message asks for. Typo- and accent-tolerant: phrases are matched with rapidfuzz on
unidecoded, lower-cased text."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from channel.consent import consent_change
from core.text import normalize

PHRASE_CUTOFF = 86


class Intent(enum.Enum):
    EMPTY = "empty"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    GREETING = "greeting"
    MENU_OPTION = "menu_option"
    PICK = "pick"  # a bare number right after a result list
    DETAILS = "details"
    ADD = "add"
    REMOVE = "remove"
    CART = "cart"
    CHECKOUT = "checkout"
    ORDER_STATUS = "order_status"
    HANDOFF = "handoff"
    TEXT = "text"  # anything else: FAQ, then catalog search, then fallback


@dataclass(frozen=True)
class Parsed:
    intent: Intent
    number: int | None = None  # item number (1-based) or menu option
    quantity: int = 1
    rest: str = ""  # what follows the item number: "tamanho G", "a azul" (the variant asked for)


GREETINGS = {"oi", "oii", "oiii", "ola", "olaa", "opa", "eai", "e ai", "bom dia", "boa tarde", "boa noite", "menu",
             "inicio", "comecar", "hello", "hi", "hey", "salve", "tudo bem", "oi tudo bem", "ola tudo bem", "voltar ao menu"}
HANDOFF_PHRASES = ["falar com vendedor", "falar com vendedora", "falar com atendente", "falar com uma pessoa",
                   "falar com alguem", "falar com humano", "quero um vendedor", "atendimento humano", "atendente",
                   "humano", "vendedor", "vendedora", "pessoa de verdade", "falar com a loja"]
CART_PHRASES = ["carrinho", "meu carrinho", "ver carrinho", "sacola", "minha sacola", "ver sacola"]
CHECKOUT_PHRASES = ["finalizar", "finalizar compra", "finalizar pedido", "fechar pedido", "fechar compra", "checkout",
                    "pagar", "quero pagar", "comprar", "link de pagamento", "concluir compra"]
ORDER_PHRASES = ["meu pedido", "meus pedidos", "status do pedido", "status do meu pedido", "cade meu pedido",
                 "onde esta meu pedido", "rastrear", "rastrear pedido", "rastreio", "acompanhar pedido", "pedido"]

_NUMBER = r"(\d{1,3})"
ADD = [re.compile(p) for p in (
    rf"^(?:eu )?(?:quero|qro|kero|queria|vou querer|adiciona|adicionar|adicione|coloca|colocar|coloque|add|pode colocar|"
    rf"manda|compra|comprar|leva|levar|levo|pega|pegar)(?: (?:o|a|os|as|no|item|produto|opcao|numero|n))* "
    rf"(?:{_NUMBER} (?:unidades?|un|pares?|pecas?) )?(?:(?:do|da|de) (?:item |produto |opcao |numero )?)?{_NUMBER}"
    rf"(?P<rest>(?: [a-z0-9]+){{0,5}}?)(?: no carrinho| na sacola| pra mim)?$",
)]
QUANTITY_OF = re.compile(rf"^(?:eu )?(?:quero|qro|kero|queria|adiciona|adicionar|coloca|colocar|add|manda|levo|leva) "
                         rf"{_NUMBER} (?:unidades? |un |pares? |pecas? )?(?:do|da|de) (?:item |produto |opcao |numero )?{_NUMBER}"
                         rf"(?P<rest>(?: [a-z0-9]+){{0,5}}?)(?: no carrinho| na sacola| pra mim)?$")
REMOVE = re.compile(rf"^(?:remover|remove|remova|tirar|tira|tire|excluir|exclui|apagar|apaga)(?: (?:o|a|item))* {_NUMBER}"
                    rf"(?: do carrinho| da sacola)?$")
DETAILS = re.compile(rf"^(?:detalhes?|mais sobre|mais info(?:rmacoes|rmacao)?|info|ver|sobre|fotos?|descricao)"
                     rf"(?: (?:do|da|de|o|a|item|produto|opcao|numero))* {_NUMBER}$")


def _matches(text: str, phrases: list[str]) -> bool:
    """Whole-message fuzzy match: short messages only, so a long sentence mentioning "pedido" is not captured."""
    return any(fuzz.ratio(text, phrase) >= PHRASE_CUTOFF for phrase in phrases)


def _contains(text: str, phrases: list[str]) -> bool:
    return any(len(phrase) > 6 and fuzz.partial_ratio(phrase, text) >= 92 for phrase in phrases)


def parse(text: str, *, has_results: bool) -> Parsed:
    if consent := consent_change(text):
        return Parsed(Intent.OPT_OUT if consent == "opt_out" else Intent.OPT_IN)
    clean = normalize(text[:500])
    if not clean:
        return Parsed(Intent.EMPTY)
    if clean.isdigit() and len(clean) <= 3:
        number = int(clean)
        if number == 0:
            return Parsed(Intent.GREETING)
        if has_results:
            return Parsed(Intent.PICK, number=number)
        return Parsed(Intent.MENU_OPTION, number=number)
    if match := QUANTITY_OF.match(clean):
        return Parsed(Intent.ADD, number=int(match.group(2)), quantity=max(1, int(match.group(1))),
                      rest=(match.group("rest") or "").strip())
    for pattern in ADD:
        if match := pattern.match(clean):
            quantity = int(match.group(1)) if match.group(1) else 1
            return Parsed(Intent.ADD, number=int(match.group(2)), quantity=max(1, quantity),
                          rest=(match.group("rest") or "").strip())
    if match := REMOVE.match(clean):
        return Parsed(Intent.REMOVE, number=int(match.group(1)))
    if match := DETAILS.match(clean):
        return Parsed(Intent.DETAILS, number=int(match.group(1)))
    if clean in GREETINGS or _matches(clean, sorted(GREETINGS)):
        return Parsed(Intent.GREETING)
    if _matches(clean, HANDOFF_PHRASES) or _contains(clean, HANDOFF_PHRASES[:9]):
        return Parsed(Intent.HANDOFF)
    if _matches(clean, CART_PHRASES):
        return Parsed(Intent.CART)
    if _matches(clean, CHECKOUT_PHRASES):
        return Parsed(Intent.CHECKOUT)
    if _matches(clean, ORDER_PHRASES) or _contains(clean, ORDER_PHRASES[:-1]):
        return Parsed(Intent.ORDER_STATUS)
    return Parsed(Intent.TEXT)
