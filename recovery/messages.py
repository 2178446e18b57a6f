"""The recovery message: variables a merchant can use, rendered in the shared sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from core.templating import brl, render_text

# Shown as clickable chips in the console; the sample is what the live preview renders with.
VARIABLES: dict[str, str] = {
    "nome": "primeiro nome do cliente",
    "loja": "nome da loja",
    "itens": "itens do carrinho (lista com nome, quantidade e preço)",
    "total": "total do carrinho, em R$",
    "link_checkout": "link para finalizar a compra",
    "cupom": "código do cupom (vazio quando não há cupom)",
    "desconto": "o que o cupom vale, por exemplo 10% de desconto",
    "link_cupom": "link que aplica o cupom",
    "validade_cupom": "data e hora em que o cupom expira",
}


@dataclass(frozen=True)
class CartLine:
    nome: str
    quantidade: int
    preco: str


def build_variables(
    *, name: str | None, store_name: str, items: list[tuple[str, int, Decimal]], total: Decimal | None,
    checkout_url: str | None, coupon_code: str | None, coupon_description: str | None, coupon_url: str | None,
    coupon_expires_at: datetime | None, timezone: ZoneInfo,
) -> dict:
    first_name = (name or "").strip().split(" ")[0] or "tudo bem"
    return {
        "nome": first_name,
        "loja": store_name,
        "itens": [CartLine(n, q, brl(p)) for n, q, p in items],
        "total": brl(total) if total is not None else "",
        "link_checkout": checkout_url or "",
        "cupom": coupon_code or "",
        "desconto": coupon_description or "",
        "link_cupom": coupon_url or "",
        "validade_cupom": format_expiry(coupon_expires_at, timezone) if coupon_expires_at else "",
    }


def format_expiry(moment: datetime, timezone: ZoneInfo) -> str:
    """'23/11/2026 às 14:30' in the store's time zone."""
    local = moment.astimezone(timezone)
    return format_datetime(local, "dd/MM/yyyy 'às' HH:mm", locale="pt_BR")


def sample_variables(timezone: ZoneInfo, store_name: str = "Loja Demo") -> dict:
    from datetime import timedelta

    from models import utcnow

    return build_variables(
        name="Ana Souza", store_name=store_name,
        items=[("Tênis Corrida Preto", 1, Decimal("299.90")), ("Camiseta Básica Branca", 2, Decimal("59.90"))],
        total=Decimal("419.70"), checkout_url="https://loja.example/checkout/c-123", coupon_code="VOLTA-7K2M9QX4",
        coupon_description="10% de desconto", coupon_url="https://loja.example/cupom/VOLTA-7K2M9QX4",
        coupon_expires_at=utcnow() + timedelta(hours=24), timezone=timezone,
    )


def render_message(template: str, variables: dict) -> str:
    return render_text(template, variables)


# A shopper whose message carries no coupon (no rule set, or the rule disabled): a template must work for them too.
NO_COUPON = {"cupom": "", "link_cupom": "", "validade_cupom": "", "desconto": ""}


def validate_template(template: str, sample: dict | None = None) -> str:
    """Render with a sample shopper (``sample``, by default a generic one), with and without a coupon. Returns
    the text with the coupon; raises TemplateRenderError on any problem, the coupon-less one prefixed
    "sem cupom:". Saving and the console's live preview both use it, so the preview shows what saving refuses."""
    from core.templating import TemplateRenderError

    sample = sample if sample is not None else sample_variables(ZoneInfo("America/Sao_Paulo"))
    rendered = render_message(template, sample)
    if not rendered.strip():
        raise TemplateRenderError("a mensagem ficou vazia")
    try:
        render_message(template, {**sample, **NO_COUPON})
    except TemplateRenderError as exc:
        raise TemplateRenderError(f"sem cupom: {exc.message}") from None
    return rendered
