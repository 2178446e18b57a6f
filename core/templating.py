"""The one sandboxed Jinja environment for every text a merchant can edit (bot texts, recovery messages).

Sandboxed because merchants write these templates; StrictUndefined because a misspelt variable must be an
error at save time, not an empty gap in a message a shopper receives.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from babel.numbers import format_currency
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment


def brl(value: Decimal | int | str) -> str:
    """R$ 1.234,56"""
    return format_currency(Decimal(str(value)), "BRL", locale="pt_BR")


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True,
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


def _describe(exc: TemplateError) -> str:
    text = str(exc.message if getattr(exc, "message", None) else exc)
    lineno = getattr(exc, "lineno", None)
    if "is undefined" in text:
        text = f"variável desconhecida: {text.split(' is undefined')[0]}"
    return f"linha {lineno}: {text}" if lineno else text
