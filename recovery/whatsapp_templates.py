"""The approved WhatsApp template a recovery variant sends outside the 24-hour window, and the recovery value
that fills each of its placeholders.

The merchant maps ``{{1}}…{{n}}`` to the variables below. A mapping is refused when some shopper the template
can reach would leave a placeholder empty (WhatsApp refuses such a send, and a blank reads badly): a coupon
variable without a coupon rule for that variant, say. `check_mapping` walks those shoppers; the console's
preview and the API's validation both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from channel import templates
from models import RecoverySettings, TemplateStatus, WhatsAppTemplate
from recovery.messages import LONG_CART_LINES, NO_COUPON, CartLine, validation_shapes

# What a placeholder can be filled with, and how the console describes it.
VARIABLES: dict[str, str] = {
    "nome": "primeiro nome do cliente (\"cliente\" quando não sabemos)",
    "loja": "nome da loja",
    "itens": "itens do carrinho numa linha: 1x Tênis Corrida (R$ 299,90), …",
    "total": "total do carrinho, em R$",
    "link": "link para finalizar a compra (com o cupom, quando há)",
    "cupom": "código do cupom",
    "desconto": "o que o cupom vale, por exemplo 10% de desconto",
    "validade": "data e hora em que o cupom expira",
    "link_cupom": "link que aplica o cupom",
}
COUPON_VARIABLES = frozenset({"cupom", "desconto", "validade", "link_cupom"})
ITEMS_LINE_LIMIT = 300  # characters of the one-line cart list, so the filled body stays under WhatsApp's 1024
NO_NAME = "cliente"
# Statuses a merchant may map: an approved template, or one still in review (sent once it is approved).
MAPPABLE = frozenset({TemplateStatus.APPROVED, TemplateStatus.PENDING})


def items_line(lines: list[CartLine], others: int) -> str:
    """'1x Tênis Corrida Preto (R$ 299,90), 2x Camiseta (R$ 59,90) e mais 3 itens', within ITEMS_LINE_LIMIT."""
    parts = [f"{line.quantidade}x {line.nome} ({line.preco})" for line in lines]
    shown: list[str] = []
    for part in parts:
        rest = len(parts) - len(shown) - 1 + others
        candidate = ", ".join([*shown, part]) + (f" e mais {rest} {'item' if rest == 1 else 'itens'}" if rest else "")
        if len(candidate) > ITEMS_LINE_LIMIT and shown:
            break
        shown.append(part)
    hidden = len(parts) - len(shown) + others
    text = ", ".join(shown)
    if hidden:
        text += f" e mais {hidden} {'item' if hidden == 1 else 'itens'}"
    return templates.clean_value(text)


def sources(variables: dict, customer_name: str | None) -> dict[str, str]:
    """Template values from the recovery message's variables (recovery.messages.build_variables)."""
    first_name = (customer_name or "").strip().split(" ")[0]
    return {
        "nome": first_name or NO_NAME,
        "loja": variables["loja"],
        "itens": items_line(variables["itens"], variables["outros_itens"]) if variables["itens"] else "",
        "total": variables["total"],
        "link": variables["link_checkout"],
        "cupom": variables["cupom"],
        "desconto": variables["desconto"],
        "validade": variables["validade_cupom"],
        "link_cupom": variables["link_cupom"],
    }


@dataclass(frozen=True)
class VariantTemplate:
    template: WhatsAppTemplate | None
    params: dict[str, str]


def for_variant(session: Session, settings: RecoverySettings, variant: str) -> VariantTemplate:
    template_id = settings.variant_b_whatsapp_template_id if variant == "B" else settings.whatsapp_template_id
    params = settings.variant_b_whatsapp_template_params if variant == "B" else settings.whatsapp_template_params
    template = session.get(WhatsAppTemplate, template_id) if template_id else None
    return VariantTemplate(template, dict(params or {}))


class MappingInvalid(ValueError):
    pass


def shopper_shapes(sample: dict, *, has_coupon: bool) -> list[tuple[str, dict, str | None]]:
    """(label, variables, customer name) for every shopper a template may be sent to. Outside the window a
    recovery always comes from a cart the shop reported, so cart-less shapes are not among them; a variant
    without a coupon rule never has a coupon."""
    shapes = dict(validation_shapes(sample))
    out = [("", sample, "Ana Souza"), ("para um cliente sem nome", sample, None),
           (f"para um carrinho com {LONG_CART_LINES} itens", shapes[f"para um carrinho com {LONG_CART_LINES} itens"],
            "Ana Souza")]
    if not has_coupon:
        out = [(label or "sem cupom", {**variables, **NO_COUPON}, name) for label, variables, name in out]
    return out


def check_mapping(template: WhatsAppTemplate, params: dict[str, str], *, has_coupon: bool, sample: dict) -> str:
    """The preview text for ``sample``; raises MappingInvalid (in Portuguese) when the mapping is incomplete or
    would leave a placeholder empty, or the text too long, for some shopper."""
    if template.status not in MAPPABLE:
        raise MappingInvalid(f"o modelo {template.name} não está aprovado pelo WhatsApp ({_status_pt(template)})")
    unknown = sorted(set(params) - set(template.keys))
    if unknown:
        raise MappingInvalid(f"o modelo não tem {', '.join('{{' + k + '}}' for k in unknown)}")
    for placeholder in template.placeholders:
        source = params.get(placeholder["key"])
        label = _label(placeholder)
        if not source:
            raise MappingInvalid(f"escolha o que vai em {label}")
        if source not in VARIABLES:
            raise MappingInvalid(f"{label}: variável desconhecida {source!r}")
        if source in COUPON_VARIABLES and not has_coupon:
            raise MappingInvalid(f"{label} ({source}) ficaria vazio: esta variante não tem regra de cupom")
    preview = ""
    for shape_label, variables, name in shopper_shapes(sample, has_coupon=has_coupon):
        try:
            filled = templates.fill(template, params, sources(variables, name))
        except templates.MissingValue as exc:
            raise MappingInvalid(f"{exc.args[0]} ficaria vazio {shape_label}".strip()) from None
        if len(filled.text) > templates.MAX_BODY:
            raise MappingInvalid(f"a mensagem passaria de {templates.MAX_BODY} caracteres {shape_label}".strip())
        preview = preview or filled.text
    return preview


def _label(placeholder: dict) -> str:
    where = {"header": " do título", "button": " do botão"}.get(placeholder["component"], "")
    return "{{" + placeholder["name"] + "}}" + where


STATUS_PT = {
    TemplateStatus.APPROVED: "aprovado", TemplateStatus.PENDING: "em análise", TemplateStatus.REJECTED: "rejeitado",
    TemplateStatus.PAUSED: "pausado pelo WhatsApp", TemplateStatus.DISABLED: "desativado",
    TemplateStatus.UNSUBMITTED: "não enviado para aprovação", TemplateStatus.REMOVED: "removido no provedor",
}


def _status_pt(template: WhatsAppTemplate) -> str:
    return STATUS_PT.get(template.status, template.status.value)
