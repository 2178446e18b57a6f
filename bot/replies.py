"""A reply of the bot: its text and, where the provider can show them (Meta's reply buttons and lists), the
options the shopper can tap instead of typing.

A `Reply` is a `str`, so everything that reads replies as text keeps working; Twilio sends the text, which
already lists the options with their numbers. A tapped option comes back as its id (``opt:2``), which
channel.meta_inbound turns into the text the shopper would have typed (``2``).
"""

from __future__ import annotations

from channel.transport import OPTION_PREFIX


class Reply(str):
    interactive: dict | None

    def __new__(cls, text: str, interactive: dict | None = None) -> "Reply":
        reply = super().__new__(cls, text)
        reply.interactive = interactive
        return reply


def with_options(text: str, options: list[tuple[str, str, str | None]], *, button: str, section: str) -> Reply:
    """``options``: (what the shopper would type, title, description or None), in the order the text lists them."""
    return Reply(text, {
        "button": button, "section": section,
        "options": [{"id": OPTION_PREFIX + typed, "title": title, **({"description": d} if d else {})}
                    for typed, title, d in options],
    })


def interactive_of(reply: str) -> dict | None:
    return getattr(reply, "interactive", None)
