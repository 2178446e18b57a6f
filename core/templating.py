"""The one sandboxed Jinja environment for every text a merchant can edit (bot texts, recovery messages).

Sandboxed because merchants write these templates; StrictUndefined because a misspelt variable must be an
error at save time, not an empty gap in a message a shopper receives.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from babel.numbers import format_currency
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment, SecurityError


def brl(value: Decimal | int | str) -> str:
    """R$ 1.234,56"""
    return format_currency(Decimal(str(value)), "BRL", locale="pt_BR")


MAX_SEQUENCE_RESULT = 10_000  # characters or items a merchant's expression may build with `*`
MAX_EXPONENT = 100


class MerchantSandbox(SandboxedEnvironment):
    """Jinja's sandbox blocks unsafe attribute access; this also stops expressions that would eat the worker's
    memory or CPU (``{{ "a" * 10**10 }}``), which the stock sandbox allows."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"expoente grande demais (máximo {MAX_EXPONENT})")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and len(seq) * count > MAX_SEQUENCE_RESULT:
                    raise SecurityError("texto ou lista grande demais")
        return super().call_binop(context, operator, left, right)


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    env = MerchantSandbox(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True,
                               keep_trailing_newline=False)
    env.filters["brl"] = brl
    return env


class TemplateRenderError(ValueError):
    """A merchant template does not compile or render; ``message`` is shown to them next to the field."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def render_text(source: str, variables: dict) -> str:
    try:
        return environment().from_string(source).render(**variables).strip()
    except TemplateError as exc:
        raise TemplateRenderError(_describe(exc)) from None
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        # A merchant's template can fail like any expression ({{ 1/0 }}, {{ itens[9] }}): their input error.
        raise TemplateRenderError(f"o texto falha ao ser montado: {type(exc).__name__}: {exc}"[:300]) from None


def _describe(exc: TemplateError) -> str:
    text = str(exc.message if getattr(exc, "message", None) else exc)
    lineno = getattr(exc, "lineno", None)
    if "is undefined" in text:
        text = f"variável desconhecida: {text.split(' is undefined')[0]}"
    return f"linha {lineno}: {text}" if lineno else text
