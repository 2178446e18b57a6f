"""Approved WhatsApp templates as the sender uses them: their placeholders, values that WhatsApp accepts, the
text the shopper reads.

A template's placeholders (``{{1}}`` or Meta's named ``{{first_name}}``) are found in its header, body and URL
buttons by `placeholders_in`; `fill` turns values by key into what the provider needs and the rendered text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from channel.transport import OutboundTemplate
from core.settings import Settings
from models import WhatsAppTemplate

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]{1,64})\s*\}\}")
# WhatsApp refuses a parameter with a line break, a tab or more than four spaces in a row (Meta error 132018),
# and a body longer than 1024 characters once filled (132005).
MAX_VALUE = 500
MAX_BODY = 1024


def placeholders_in(header: str | None, body: str, buttons: list[dict], *, provider: str) -> list[dict]:
    """Every placeholder in reading order: header, body, then each URL button.

    Meta scopes positions per component (the header's {{1}} is not the body's {{1}}), so its keys carry the
    component; Twilio numbers variables across the whole content, so its keys are the bare names."""
    found: list[dict] = []
    seen: set[str] = set()

    def add(text: str | None, component: str, index: int | None = None) -> None:
        for match in PLACEHOLDER.finditer(text or ""):
            name = match.group(1)
            if provider == "meta" and component != "body":
                key = f"{component}:{name}" if index is None else f"{component}:{index}:{name}"
            else:
                key = name
            if key not in seen:
                seen.add(key)
                found.append({"key": key, "name": name, "component": component, "index": index})

    add(header, "header")
    add(body, "body")
    for index, button in enumerate(buttons):
        if (button.get("type") or "").lower() == "url":
            add(button.get("url"), "button", index)
    return found


class MissingValue(KeyError):
    """A placeholder would be empty: WhatsApp refuses the template (and a blank would read badly)."""


def clean_value(value: object) -> str:
    """One line, no runs of spaces, at most MAX_VALUE characters: what WhatsApp accepts in a parameter."""
    text = re.sub(r"\s+", " ", str(value if value is not None else "")).strip()
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1].rstrip() + "…"


@dataclass(frozen=True)
class Filled:
    values: dict[str, str]  # by placeholder key
    text: str  # header, body and footer as the shopper reads them


def fill(template: WhatsAppTemplate, mapping: dict[str, str], sources: dict[str, object]) -> Filled:
    """Values for every placeholder: ``mapping`` names, per key, which of ``sources`` fills it.
    Raises MissingValue naming the first placeholder left empty."""
    values: dict[str, str] = {}
    for placeholder in template.placeholders:
        key = placeholder["key"]
        source = mapping.get(key)
        value = clean_value(sources.get(source)) if source else ""
        if not value:
            raise MissingValue(f"{{{{{placeholder['name']}}}}} ({source or 'sem variável'})")
        values[key] = value
    return Filled(values, render(template, values))


def render(template: WhatsAppTemplate, values: dict[str, str]) -> str:
    """The template's text with its values, as the shopper reads it (buttons listed by their labels)."""
    def part(text: str | None, component: str) -> str:
        def replace(match: re.Match) -> str:
            name = match.group(1)
            key = name if template.provider != "meta" or component == "body" else f"{component}:{name}"
            return values.get(key, match.group(0))
        return PLACEHOLDER.sub(replace, text or "")

    pieces = [f"*{part(template.header, 'header')}*" if template.header else "", part(template.body, "body"),
              f"_{template.footer}_" if template.footer else ""]
    labels = [b.get("text") for b in template.buttons if b.get("text")]
    if labels:
        pieces.append(" · ".join(f"[{label}]" for label in labels))
    return "\n".join(p for p in pieces if p).strip()


def outbound_template(template: WhatsAppTemplate, values: dict[str, str]) -> OutboundTemplate:
    return OutboundTemplate(external_id=template.external_id, name=template.name, language=template.language,
                            placeholders=list(template.placeholders), values=dict(values))


def sendable(template: WhatsAppTemplate | None, settings: Settings) -> bool:
    """May this template go out now: approved (a template can be paused or disabled after it was chosen) and the
    current provider's (after a switch from Twilio to Meta a ContentSid means nothing to Meta). Outbox mode sends
    nothing, so any approved template shows in the simulator (the demo's included)."""
    return (template is not None and template.approved
            and (settings.outbox_mode or template.provider == settings.whatsapp_provider))
