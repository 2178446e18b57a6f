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
