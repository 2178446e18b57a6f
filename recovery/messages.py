"""The recovery message: variables a merchant can use, rendered in the shared sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from core.templating import CountedList, brl, render_text, validate
from models import utcnow

# Shown as clickable chips in the console; the sample is what the live preview renders with.
VARIABLES: dict[str, str] = {
    "nome": "primeiro nome do cliente",
    "loja": "nome da loja",
    "itens": "a lista pronta do carrinho, um item por linha: 1x Tênis Corrida Preto (R$ 299,90); até 10 itens, "
             "depois \"e mais 3 itens\"",
    "outros_itens": "quantos itens do carrinho ficaram fora da lista (0 quando cabem todos; a lista já avisa)",
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
    preco: str  # the unit price, formatted

    def __str__(self) -> str:
        """'1x Tênis Corrida Preto (R$ 299,90)', '2x Camiseta Básica Branca (R$ 59,90 cada)'."""
        each = " cada" if self.quantidade > 1 else ""
        return f"{self.quantidade}x {self.nome} ({self.preco}{each})"


class CartLines(CountedList):
    """``itens``: a loop ({% for item in itens %}) sees each CartLine; printed as it is ({{ itens }}) it is the
    ready list, one line per item, and "e mais 3 itens" when the cart had more than the message lists."""

    __slots__ = ("more",)

    def __init__(self, lines=(), more: int = 0) -> None:
        super().__init__(lines)
        self.more = more

    def __str__(self) -> str:
        lines = [str(line) for line in self._items]
        if self.more:
            lines.append(f"e mais {self.more} {'item' if self.more == 1 else 'itens'}")
        return "\n".join(lines)


# A message lists at most this many cart lines: a web cart of 200 products would not fit a WhatsApp message.
LISTED_ITEMS = 10
# The variables offered as chips: each inserted as it is reads well. outros_itens (a bare count, "0" for most
# carts) is left to the table of variables: the printed itens already ends with "e mais 3 itens".
CHIPS = tuple(name for name in VARIABLES if name != "outros_itens")


def build_variables(
    *, name: str | None, store_name: str, items: list[tuple[str, int, Decimal]], total: Decimal | None,
    checkout_url: str | None, coupon_code: str | None, coupon_description: str | None, coupon_url: str | None,
    coupon_expires_at: datetime | None, timezone: ZoneInfo,
) -> dict:
    first_name = (name or "").strip().split(" ")[0] or "tudo bem"
    return {
        "nome": first_name,
        "loja": store_name,
        "itens": CartLines([CartLine(n, q, brl(p)) for n, q, p in items[:LISTED_ITEMS]],
                           more=max(0, len(items) - LISTED_ITEMS)),
        "outros_itens": max(0, len(items) - LISTED_ITEMS),
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
    """Check the template's structure against the recovery variables, then render it for several shoppers:
    ``sample`` (by default a generic one), one without a name, without a coupon, without a cart, with an empty
    cart, with a long cart and without cart nor coupon. Returns the text for ``sample``; raises
    TemplateRenderError on any problem, prefixed with the shopper it failed for ("sem cupom: ..."). Saving and
    the console's live preview both use it, so the preview shows what saving refuses."""
    sample = sample if sample is not None else sample_variables(ZoneInfo("America/Sao_Paulo"))
    shapes = validation_shapes(sample)
    return validate(template, sample, [variables for _, variables in shapes], [label for label, _ in shapes],
                    empty_message="a mensagem ficou vazia")


LONG_CART_LINES = 30


def validation_shapes(sample: dict) -> list[tuple[str, dict]]:
    """(label, variables): the shoppers a recovery template must work for, the sample first."""
    no_cart = {"itens": [], "total": ""}
    quantities = [n % 3 + 1 for n in range(LONG_CART_LINES)]
    long_cart = CartLines([CartLine(f"Produto de exemplo {n}", q, brl(Decimal("49.90")))
                           for n, q in enumerate(quantities, 1)])
    return [
        ("", sample),
        ("para um cliente sem nome", {**sample, "nome": "tudo bem"}),
        ("sem cupom", {**sample, **NO_COUPON}),
        ("para um cliente sem carrinho", {**sample, **no_cart}),
        ("para um carrinho vazio", {**sample, "itens": [], "total": brl(0)}),
        (f"para um carrinho com {LONG_CART_LINES} itens",
         {**sample, "itens": long_cart, "total": brl(Decimal("49.90") * sum(quantities))}),
        ("para um cliente sem carrinho e sem cupom", {**sample, **no_cart, **NO_COUPON}),
    ]
