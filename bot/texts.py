"""Every text the bot sends: a Jinja template in templates/messages/, or the merchant's override of it.

Rendered in the shared sandbox. Every text gets ``loja`` (the store's name) and ``menu`` (the rendered menu,
itself overridable) besides its own variables.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from sqlalchemy.orm import Session

from core.settings import PROJECT_ROOT
from core.templating import TemplateRenderError, render_text
from models import BotText

MESSAGES_DIR = PROJECT_ROOT / "templates" / "messages"
log = logging.getLogger(__name__)


def available_keys() -> list[str]:
    return sorted(path.stem for path in MESSAGES_DIR.glob("*.txt"))


@lru_cache(maxsize=None)
def default_source(key: str) -> str:
    if key not in available_keys():
        raise KeyError(key)
    return (MESSAGES_DIR / f"{key}.txt").read_text(encoding="utf-8")


def _source(session: Session, key: str) -> tuple[str, bool]:
    override = session.get(BotText, key)
    if override is not None and override.body.strip():
        return override.body, True
    return default_source(key), False


def _render(session: Session, key: str, variables: dict) -> str:
    source, overridden = _source(session, key)
    try:
        return render_text(source, variables)
    except TemplateRenderError as exc:
        if not overridden:
            raise
        # Overrides are checked when saved; should one still fail, the shopper gets the default text.
        log.error("bot text override %r failed to render (%s); using the default", key, exc.message)
        return render_text(default_source(key), variables)


def render(session: Session, key: str, *, store_name: str, **variables) -> str:
    base = {"loja": store_name}
    menu = _render(session, "menu", base)
    return _render(session, key, {**base, "menu": menu, **variables})


# What each text is for (shown to the merchant) and the sample values its preview is rendered with: the same
# variables bot/engine.py passes. A test renders every default text with its sample, so they cannot drift apart.
_PRODUCTS = [{"nome": "Tênis Corrida Preto", "preco": "R$ 299,90", "link": "https://loja.example/p/tenis"},
             {"nome": "Camiseta Básica Branca", "preco": "R$ 59,90", "link": "https://loja.example/p/camiseta"}]
DESCRIPTIONS: dict[str, str] = {
    "menu": "Menu principal (aparece dentro de outras mensagens como {{ menu }})",
    "greeting": "Boas-vindas", "fallback": "Quando o robô não entende",
    "fallback_offer_person": "Quando o robô não entende pela segunda vez",
    "search_prompt": "Pedido de busca", "search_results": "Resultado de busca", "no_results": "Busca sem resultado",
    "product_details": "Detalhes do produto", "invalid_choice": "Número de item inválido",
    "cart_summary": "Resumo do carrinho", "cart_empty": "Carrinho vazio", "checkout": "Link de pagamento",
    "order_status": "Status dos pedidos", "no_orders": "Cliente sem pedidos", "faq_list": "Lista de dúvidas",
    "faq_answer": "Resposta de uma dúvida", "handoff_created": "Pedido de atendimento registrado",
    "handoff_existing": "Pedido de atendimento já existente", "media_received": "Cliente enviou um arquivo",
    "opt_out_confirmed": "Confirmação de descadastro (SAIR)", "opt_in_confirmed": "Confirmação de volta (VOLTAR)",
}
SAMPLES: dict[str, dict] = {
    "menu": {}, "fallback": {}, "fallback_offer_person": {}, "search_prompt": {}, "cart_empty": {},
    "no_orders": {}, "handoff_created": {}, "handoff_existing": {}, "media_received": {},
    "opt_out_confirmed": {}, "opt_in_confirmed": {},
    "greeting": {"nome": "Ana"},
    "search_results": {"produtos": _PRODUCTS, "tamanho_indisponivel": None, "sem_tamanho": []},
    "no_results": {"busca": "sandália azul", "categorias": ["Calçados", "Camisetas"], "tamanho_indisponivel": "44",
                   "sem_tamanho": ["Tênis Corrida Preto"]},
    "product_details": {"numero": 1, "produto": {"nome": "Tênis Corrida Preto", "preco": "R$ 299,90",
                                                 "descricao": "Leve e confortável.", "cor": "Preto",
                                                 "tamanhos": ["38", "39", "40"], "link": "https://loja.example/p/tenis"}},
    "invalid_choice": {"numero": 7, "total_opcoes": 3},
    "cart_summary": {"adicionado": "Tênis Corrida Preto", "removido": None, "total": "R$ 419,70",
                     "itens": [{"nome": "Tênis Corrida Preto", "quantidade": 1, "subtotal": "R$ 299,90"},
                               {"nome": "Camiseta Básica Branca", "quantidade": 2, "subtotal": "R$ 119,80"}]},
    "checkout": {"total": "R$ 419,70", "link": "https://loja.example/checkout/c-123"},
    "order_status": {"pedidos": [{"numero": "o-1001", "data": "20/11/2026", "total": "R$ 159,80", "status": "pago"}]},
    "faq_list": {"topicos": ["Frete", "Pagamento", "Trocas"]},
    "faq_answer": {"titulo": "Frete", "resposta": "Frete grátis acima de R$ 199,00."},
}
MAX_TEXT_LENGTH = 1500  # WhatsApp allows 1600 characters per message; leave room for the variables


def description(key: str) -> str:
    return DESCRIPTIONS.get(key, key)


def variables_of(key: str) -> list[str]:
    return ["loja", *([] if key == "menu" else ["menu"]), *SAMPLES[key]]


def preview(session: Session, key: str, source: str, *, store_name: str) -> str:
    """``source`` rendered as the shopper would see it; raises TemplateRenderError with the reason."""
    if key not in SAMPLES:
        raise KeyError(key)
    if not source.strip():
        raise TemplateRenderError("o texto não pode ficar vazio")
    if len(source) > MAX_TEXT_LENGTH:
        raise TemplateRenderError(f"no máximo {MAX_TEXT_LENGTH} caracteres")
    base = {"loja": store_name}
    menu = render_text(source, base) if key == "menu" else _render(session, "menu", base)
    rendered = render_text(source, {**base, "menu": menu, **SAMPLES[key]})
    if not rendered.strip():
        raise TemplateRenderError("o texto ficou vazio")
    return rendered


def save_override(session: Session, key: str, source: str, *, store_name: str) -> BotText:
    """Checked with the sample first: a text that would fail in a conversation is refused now."""
    preview(session, key, source, store_name=store_name)
    override = session.get(BotText, key) or BotText(key=key, body=source)
    override.body = source
    session.add(override)
    session.flush()
    return override


def reset_override(session: Session, key: str) -> None:
    override = session.get(BotText, key)
    if override is not None:
        session.delete(override)
        session.flush()


def current_source(session: Session, key: str) -> tuple[str, bool]:
    """The text in use and whether it is the merchant's own."""
    return _source(session, key)
