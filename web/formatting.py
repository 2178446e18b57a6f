"""pt-BR presentation for pages: money, counts, dates in the store's time zone, and labels of CRM values."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent
from flask import Flask
from markupsafe import Markup, escape

from core.phones import format_phone

LABELS = {
    "behavior": "Comportamento", "segment": "Segmento", "manual": "Manual", "contact": "Contato",
    "backlog": "Na fila", "assigned": "Atribuída", "in_progress": "Em conversa", "finished": "Finalizada",
    "positive": "Positivo", "neutral": "Neutro", "negative": "Negativo",
    "cart_abandoned": "Carrinho abandonado", "product_browsing": "Navegou em produtos",
    "repeated_visits": "Visitas sem compra", "strategic_search": "Busca por termo estratégico",
    "asked_for_person": "Pediu para falar com uma pessoa", "recovery_replied": "Respondeu a mensagem de recuperação",
    "recovery_not_converted": "Não comprou após a mensagem de recuperação", "seller_contact": "Contato do vendedor",
    "campaign": "Campanha",
    "inbound": "Cliente", "bot": "Robô", "recovery": "Recuperação", "order": "Pedido",
    "seller": "Equipe da loja", "system": "Sistema",
    # recovery skip reasons (recovery/eligibility.py)
    "disabled": "Recuperação desligada", "opted_out": "Cliente pediu para sair", "purchased": "Já comprou",
    "handoff": "Com um vendedor", "frequency_limit": "Limite de frequência", "recent_coupon_use": "Usou cupom há pouco",
    "too_old": "Interação antiga demais", "outside_24h_window": "Fora da janela de 24 h do WhatsApp",
    "invalid_number": "Número inválido", "quiet_hours": "Horário de silêncio", "unknown": "Outro motivo",
    "recent_purchase": "Comprou há pouco", "opt_out_asked": "Perguntamos se quer sair (sem resposta ainda)",
    # WhatsApp templates outside the 24 h window (recovery/eligibility.py, channel/sender.py, recovery/stats.py)
    "no_template_mapped": "Fora da janela de 24 h, sem modelo aprovado escolhido",
    "template_not_approved": "O modelo escolhido não está aprovado pelo WhatsApp",
    "marketing_opted_out": "Cliente parou as mensagens de marketing da loja no WhatsApp",
    "template_variables_missing": "Um marcador do modelo ficaria vazio para o cliente",
    "outside_24h_window_no_template": "Fora da janela de 24 h, sem modelo para enviar",
    "marketing_limit": "Recusada pelo limite de mensagens de marketing da Meta",
    # attempts that could not be built (recovery/send.py)
    "template_error": "A mensagem falha com os dados do cliente", "error": "Erro inesperado (ver registro)",
    "coupon_platform_unavailable": "A plataforma da loja não criou o cupom a tempo (nova tentativa em 10 min)",
    "coupon_platform_refused": "A plataforma da loja recusou o cupom (ver chave de API)",
    # coupon problems on orders (recovery/coupons.py)
    "already_used": "Cupom já usado em outro pedido", "expired": "Cupom vencido", "wrong_customer": "Cupom de outro cliente",
    # message statuses (models/messaging.py)
    "pending": "Na fila", "sending": "Enviando", "sent": "Enviada", "delivered": "Entregue", "read": "Lida",
    "failed": "Falhou", "undelivered": "Não entregue", "blocked": "Bloqueada", "received": "Recebida",
    "outbox": "Simulador", "accepted": "Aceita", "queued": "Na fila do WhatsApp",
    # coupon kinds
    "percent": "Percentual", "fixed": "Valor fixo", "free_shipping": "Frete grátis",
}
# Delivery ticks as WhatsApp shows them: (symbol, css class, label).
TICKS = {
    "pending": ("🕓", "wait", "Na fila"), "accepted": ("🕓", "wait", "Aceita pelo provedor"),
    "queued": ("🕓", "wait", "Na fila do WhatsApp"), "sending": ("🕓", "wait", "Enviando"),
    "sent": ("✓", "sent", "Enviada"), "delivered": ("✓✓", "delivered", "Entregue"), "read": ("✓✓", "read", "Lida"),
    "failed": ("✗", "failed", "Falhou"), "undelivered": ("✗", "failed", "Não entregue"),
    "blocked": ("⊘", "failed", "Bloqueada antes do envio"), "outbox": ("✉", "wait", "Simulador (não enviada)"),
    "unknown": ("?", "wait", "Incerta: o envio foi interrompido"), "received": ("", "in", "Recebida"),
}
PRIORITY_LABELS = {1: "Baixa", 2: "Normal", 3: "Alta"}
PLATFORM_LABELS = {"generic": "Loja própria (contrato genérico)", "shopify": "Shopify", "nuvemshop": "Nuvemshop",
                   "woocommerce": "WooCommerce"}


# WhatsApp's formatting: *bold*, _italic_, ~strikethrough~ and ```monospace```. A marker opens after the start, a
# space or punctuation and before a non-space, and closes after a non-space and before the end, a space or
# punctuation (so snake_case, 2*3*4 and URLs with underscores stay as they are); never across lines.
_MONO = re.compile(r"```(.+?)```", re.S)
_INLINE = re.compile(r"(?<![\w*_~])([*_~])(?=\S)([^\n]*?\S)\1(?![\w*_~])")
_INLINE_TAGS = {"*": "strong", "_": "em", "~": "s"}
_MAX_NESTING = 3  # *_~x~_* at most; deeper markers are shown as typed (and no recursion runs away)


def _inline(text: str, depth: int = 0) -> str:
    if depth >= _MAX_NESTING:
        return str(escape(text))
    out, pos = [], 0
    while (match := _INLINE.search(text, pos)) is not None:
        tag = _INLINE_TAGS[match.group(1)]
        out.append(str(escape(text[pos:match.start()])))
        out.append(f"<{tag}>{_inline(match.group(2), depth + 1)}</{tag}>")
        pos = match.end()
    out.append(str(escape(text[pos:])))
    return "".join(out)


def whatsapp_html(text: str | None) -> Markup:
    """A message body as WhatsApp shows it, as safe HTML: every piece of the text is escaped, and only our own
    <strong>, <em>, <s> and <code> tags are added around it. Line breaks are kept as they are (the thread's CSS
    preserves them)."""
    if not text:
        return Markup("")
    out, pos = [], 0
    for match in _MONO.finditer(text):
        out.append(_inline(text[pos:match.start()]))
        out.append(f"<code>{escape(match.group(1))}</code>")
        pos = match.end()
    out.append(_inline(text[pos:]))
    return Markup("".join(out))


def register(app: Flask, timezone) -> None:
    app.add_template_filter(whatsapp_html, "whatsapp")

    @app.template_filter("reais")
    def reais(value: Decimal | int | None) -> str:
        return format_currency(value or 0, "BRL", locale="pt_BR")

    @app.template_filter("datahora")
    def datahora(value: datetime | str | None) -> str:
        if isinstance(value, str):  # an ISO instant from a JSON-shaped result
            value = datetime.fromisoformat(value)
        return format_datetime(value, "dd/MM/yyyy HH:mm", tzinfo=timezone, locale="pt_BR") if value else "—"

    @app.template_filter("telefone")
    def telefone(value: str | None) -> str:
        return format_phone(value) if value else "—"

    @app.template_filter("tique")
    def tique(status) -> tuple[str, str, str]:
        return TICKS.get(getattr(status, "value", status), ("", "", str(status)))

    @app.template_filter("numero")
    def numero(value: int | Decimal | None) -> str:
        """1.234 (a count as a Brazilian reads it)."""
        return format_decimal(value or 0, locale="pt_BR")

    @app.template_filter("dia")
    def dia(value: datetime | str | None) -> str:
        """The day of an instant in the store's calendar (DD/MM/AAAA)."""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return format_datetime(value, "dd/MM/yyyy", tzinfo=timezone, locale="pt_BR") if value else "—"

    @app.template_filter("data")
    def data(value: date | None) -> str:
        return format_date(value, "dd/MM/yyyy", locale="pt_BR") if value else "—"

    @app.template_filter("percentual")
    def percentual(value: Decimal | float) -> str:
        return format_percent(value, "#,##0.0%", locale="pt_BR")

    @app.template_filter("rotulo")
    def rotulo(value) -> str:
        raw = getattr(value, "value", value)
        return LABELS.get(raw, str(raw))

    @app.template_filter("prioridade")
    def prioridade(value: int) -> str:
        return PRIORITY_LABELS.get(value, "Normal")
