"""Every text the bot sends: a Jinja template in templates/messages/, or the merchant's override of it.

Rendered in the shared sandbox. Every text gets ``loja`` (the store's name) and ``menu`` (the rendered menu,
itself overridable) besides its own variables.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from sqlalchemy.orm import Session

from core.settings import PROJECT_ROOT
from core.templating import TemplateRenderError, render_text, validate
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
_PRODUCTS = [{"nome": "Tênis Corrida Preto", "preco": "R$ 299,90", "link": "https://loja.example/p/tenis",
              "tamanhos": ["40", "41", "42"]},
             {"nome": "Camiseta Básica Branca", "preco": "R$ 59,90", "link": "https://loja.example/p/camiseta",
              "tamanhos": []}]
DESCRIPTIONS: dict[str, str] = {
    "menu": "Menu principal (aparece dentro de outras mensagens como {{ menu }})",
    "greeting": "Boas-vindas", "fallback": "Quando o robô não entende",
    "fallback_offer_person": "Quando o robô não entende pela segunda vez",
    "search_prompt": "Pedido de busca", "search_results": "Resultado de busca", "no_results": "Busca sem resultado",
    "product_details": "Detalhes do produto", "invalid_choice": "Número de item inválido",
    "cart_summary": "Resumo do carrinho", "cart_empty": "Carrinho vazio", "checkout": "Link de pagamento",
    "order_status": "Status dos pedidos", "no_orders": "Cliente sem pedidos", "faq_list": "Lista de dúvidas",
    "faq_answer": "Resposta de uma dúvida", "handoff_created": "Pedido de atendimento registrado (o vendedor responde por este mesmo número)",
    "handoff_existing": "Pedido de atendimento já existente (o vendedor responde por este mesmo número)", "media_received": "Cliente enviou um arquivo",
    "opt_out_confirmed": "Confirmação de descadastro (SAIR)", "opt_in_confirmed": "Confirmação de volta (VOLTAR)",
    "opt_out_question": "Pergunta se o cliente quer parar de receber mensagens",
    "opt_out_kept": "Cliente respondeu que quer continuar recebendo mensagens",
    "opt_out_again": "Cliente já descadastrado pediu para sair de novo",
    "choose_variant": "Pergunta de tamanho ou cor ao colocar no carrinho",
    "variant_sold_out": "Tamanho ou cor esgotado",
    "help": "O que o robô sabe fazer", "thanks_reply": "Resposta a um agradecimento",
    "ack_reply": "Resposta a um ok, kkk, beleza", "goodbye": "Despedida",
    "which_item": "Pergunta de qual produto o cliente fala",
    "variant_available": "Tamanho ou cor disponível (oferece colocar no carrinho)",
    "faq_unknown": "Dúvida sem resposta cadastrada (oferece um vendedor)",
    "coupon_info": "Informações do cupom do cliente", "complaint_reply": "Resposta a uma reclamação",
    "clarify": "Pergunta quando o robô fica entre duas opções", "deny_reply": "Cliente respondeu não",
    "opt_in_hint": "Cliente pediu para receber mensagens",
}
SAMPLES: dict[str, dict] = {
    "menu": {}, "fallback": {}, "fallback_offer_person": {}, "search_prompt": {}, "cart_empty": {},
    "no_orders": {}, "media_received": {},
    "handoff_created": {"quando": "em até 30 minutos", "aberto": True,
                        "horario": "segunda a sábado, das 9h às 21h; domingo, das 14h às 20h"},
    "handoff_existing": {"quando": "em até 30 minutos", "aberto": True,
                         "horario": "segunda a sábado, das 9h às 21h; domingo, das 14h às 20h"},
    "help": {}, "ack_reply": {}, "deny_reply": {}, "thanks_reply": {"nome": "Ana"}, "goodbye": {"nome": "Ana"},
    "which_item": {"total_opcoes": 5},
    "variant_available": {"produto": "Tênis Corrida Preto", "opcao": "42", "preco": "R$ 299,90"},
    "faq_unknown": {"assunto": "tamanhos e medidas"},
    "coupon_info": {"cupom": "VOLTA-7K2M", "desconto": "10% de desconto", "validade": "25/11 às 18h",
                    "link": "https://loja.example/checkout?itens=SKU-1:1&cupom=VOLTA-7K2M"},
    "complaint_reply": {"nome": "Ana", "quando": "em até 30 minutos", "aberto": True,
                        "horario": "segunda a sábado, das 9h às 21h; domingo, das 14h às 20h"},
    "clarify": {"opcoes": ["ver o seu carrinho", "receber o link de pagamento"]},
    "opt_in_hint": {"descadastrado": False},
    "opt_out_confirmed": {}, "opt_in_confirmed": {}, "opt_out_question": {}, "opt_out_kept": {}, "opt_out_again": {},
    "greeting": {"nome": "Ana"},
    "search_results": {"produtos": _PRODUCTS, "tamanho_indisponivel": None, "sem_tamanho": [],
                       "marca_ausente": None, "tamanho_inexistente": None, "cor_inexistente": None},
    "no_results": {"busca": "sandália azul", "categorias": ["Calçados", "Camisetas"], "tamanho_indisponivel": "44",
                   "sem_tamanho": ["Tênis Corrida Preto (ainda tem 40, 41)"], "marca_ausente": None},
    "choose_variant": {"produto": "Tênis Corrida Preto", "opcoes": ["40", "41", "42"]},
    "variant_sold_out": {"produto": "Tênis Corrida Preto", "tamanho": "44", "disponiveis": ["40", "41"]},
    "product_details": {"numero": 1, "produto": {"nome": "Tênis Corrida Preto", "preco": "R$ 299,90",
                                                 "descricao": "Leve e confortável.", "cor": "Preto",
                                                 "tamanhos": ["38", "39", "40"], "link": "https://loja.example/p/tenis"}},
    "invalid_choice": {"numero": 7, "total_opcoes": 3},
    "cart_summary": {"adicionado": "Tênis Corrida Preto", "removido": None, "so_em_estoque": False,
                     "total": "R$ 419,70", "mais": 0,
                     "itens": [{"nome": "Tênis Corrida Preto", "quantidade": 1, "subtotal": "R$ 299,90"},
                               {"nome": "Camiseta Básica Branca", "quantidade": 2, "subtotal": "R$ 119,80"}]},
    "checkout": {"total": "R$ 419,70", "link": "https://loja.example/checkout/c-123", "cupom": None},
    "order_status": {"pedidos": [{"numero": "o-1001", "data": "20/11/2026", "total": "R$ 159,80", "status": "pago"}]},
    "faq_list": {"topicos": ["Frete", "Pagamento", "Trocas"]},
    "faq_answer": {"titulo": "Frete", "resposta": "Frete grátis acima de R$ 199,00."},
}
MAX_TEXT_LENGTH = 1500  # WhatsApp allows 1600 characters per message; leave room for the variables

# Other shapes the same variables take in a conversation (bot/engine.py): a saved text must render for each of
# them too, not only for the sample. (label, changes to the sample); the label prefixes the error.
_CART = SAMPLES["cart_summary"]["itens"]
_ORDER = SAMPLES["order_status"]["pedidos"][0]
VARIANTS: dict[str, list[tuple[str, dict]]] = {
    "greeting": [("para um cliente sem nome", {"nome": ""})],
    "search_results": [
        ("com um tamanho em falta", {"tamanho_indisponivel": "44", "sem_tamanho": ["Camiseta Básica Branca"]}),
        ("com um só produto", {"produtos": _PRODUCTS[:1]}),
        ("para uma marca que a loja não tem", {"marca_ausente": "Nike"}),
        ("para um tamanho que a loja não tem", {"tamanho_inexistente": "37"}),
        ("para uma cor que a loja não tem", {"cor_inexistente": "roxo"}),
    ],
    "no_results": [
        ("sem tamanho em falta", {"tamanho_indisponivel": None, "sem_tamanho": []}),
        ("sem categorias", {"categorias": [], "tamanho_indisponivel": None, "sem_tamanho": []}),
        ("para uma marca que a loja não tem", {"marca_ausente": "Nike", "tamanho_indisponivel": None,
                                               "sem_tamanho": []}),
    ],
    "choose_variant": [("com duas opções", {"opcoes": ["Preto 40", "Azul 40"]})],
    "variant_sold_out": [("sem outra opção", {"tamanho": None, "disponiveis": []})],
    "product_details": [
        ("para um produto sem descrição, cor nem tamanhos",
         {"produto": {**SAMPLES["product_details"]["produto"], "descricao": "", "cor": "", "tamanhos": [],
                      "link": ""}}),
        ("sem número na lista", {"numero": None}),
    ],
    "invalid_choice": [("antes de uma busca", {"total_opcoes": 0})],
    "cart_summary": [
        ("ao tirar um item", {"adicionado": None, "removido": "Camiseta Básica Branca", "itens": _CART[:1],
                              "total": "R$ 299,90"}),
        ("só mostrando o carrinho", {"adicionado": None, "removido": None}),
        ("com um carrinho vazio", {"adicionado": None, "removido": None, "itens": [], "total": "R$ 0,00"}),
        ("com mais itens do que a lista mostra", {"adicionado": None, "removido": None, "mais": 35}),
        ("com a quantidade limitada ao estoque", {"adicionado": "3x Tênis Corrida Preto 42", "so_em_estoque": True}),
    ],
    "order_status": [("com vários pedidos", {"pedidos": [{**_ORDER, "numero": f"o-10{n:02d}"} for n in range(5)]})],
    "faq_list": [("sem dúvidas cadastradas", {"topicos": []})],
    "faq_answer": [("sem título", {"titulo": ""})],
    "handoff_created": [("fora do horário", {"quando": "amanhã (segunda) a partir das 9h", "aberto": False})],
    "handoff_existing": [("fora do horário", {"quando": "amanhã (segunda) a partir das 9h", "aberto": False})],
    "complaint_reply": [("fora do horário", {"quando": "hoje a partir das 14h", "aberto": False}),
                        ("para um cliente sem nome", {"nome": ""})],
    "thanks_reply": [("para um cliente sem nome", {"nome": ""})],
    "goodbye": [("para um cliente sem nome", {"nome": ""})],
    "which_item": [("sem lista na tela", {"total_opcoes": 0})],
    "variant_available": [("sem opção a dizer", {"opcao": ""})],
    "coupon_info": [("sem carrinho", {"link": None}),
                    ("sem cupom", {"cupom": None, "desconto": None, "validade": None, "link": None})],
    "opt_in_hint": [("para um cliente descadastrado", {"descadastrado": True})],
    "checkout": [("com o cupom aplicado", {"cupom": "VOLTA-7K2M"})],
}


def description(key: str) -> str:
    return DESCRIPTIONS.get(key, key)


def variables_of(key: str) -> list[str]:
    return ["loja", *([] if key == "menu" else ["menu"]), *SAMPLES[key]]


def validation_shapes(key: str, base: dict) -> list[tuple[str, dict]]:
    """(label, variables) a text must render with: the sample first (``base`` holds loja and, except for the
    menu itself, menu), then its VARIANTS."""
    sample = {**base, **SAMPLES[key]}
    return [("", sample), *((label, {**sample, **changes}) for label, changes in VARIANTS.get(key, []))]


def preview(session: Session, key: str, source: str, *, store_name: str) -> str:
    """``source`` rendered as the shopper would see it; raises TemplateRenderError with the reason. Checked as
    saving checks it: the structure against the text's variables, then every shape of VARIANTS."""
    if key not in SAMPLES:
        raise KeyError(key)
    if not source.strip():
        raise TemplateRenderError("o texto não pode ficar vazio")
    if len(source) > MAX_TEXT_LENGTH:
        raise TemplateRenderError(f"no máximo {MAX_TEXT_LENGTH} caracteres")
    base = {"loja": store_name}
    if key != "menu":  # the menu is rendered with loja only, so it cannot use {{ menu }} itself
        base["menu"] = _render(session, "menu", base)
    shapes = validation_shapes(key, base)
    return validate(source, shapes[0][1], [variables for _, variables in shapes], [label for label, _ in shapes],
                    empty_message="o texto ficou vazio")


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
