"""What a WhatsApp provider is to the rest of the project: one `send` of an `Outbound` message, a receipt or a
`ProviderError` that says whether retrying can help and what the failure means for the shopper.

Providers live beside this module (`channel.twilio`, `channel.meta`); `make_transport` picks the configured one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from core.settings import Settings

# What a provider failure means, whichever provider said it (ProviderError.meaning).
OUTSIDE_WINDOW = "outside_window"  # free-form text outside the 24 h window: send the approved template instead
MARKETING_LIMIT = "marketing_limit"  # Meta's per-shopper cap on marketing messages: recorded, never retried
MARKETING_OPTED_OUT = "marketing_opted_out"  # the shopper stopped this business's marketing messages
OPTED_OUT = "opted_out"  # the shopper blocked the number / replied STOP
UNDELIVERABLE = "undeliverable"  # not a WhatsApp user, or the message cannot reach them: permanent


# The id of a tappable option (Outbound.interactive) is this prefix and the text the shopper would have typed; a
# tap comes back as that text (channel.meta_inbound).
OPTION_PREFIX = "opt:"


class ProviderError(Exception):
    def __init__(self, message: str, *, status: int | None, code: str | None, retryable: bool,
                 maybe_sent: bool = False, meaning: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.retryable = retryable
        self.maybe_sent = maybe_sent
        self.meaning = meaning


@dataclass(frozen=True)
class ProviderReceipt:
    sid: str
    status: str
    wa_id: str | None = None  # Meta: the WhatsApp id the message went to


@dataclass(frozen=True)
class OutboundTemplate:
    """An approved template and its values, by placeholder key (see models.WhatsAppTemplate.placeholders)."""

    external_id: str  # Twilio ContentSid, Meta template id
    name: str  # Meta sends templates by name and language
    language: str
    placeholders: list[dict]
    values: dict[str, str]


@dataclass(frozen=True)
class Outbound:
    phone: str  # E.164
    wa_id: str | None = None  # Meta's id for the shopper as Meta gave it; replies go there
    body: str | None = None
    template: OutboundTemplate | None = None
    interactive: dict | None = field(default=None)


class Transport(Protocol):
    name: str

    def send(self, message: Outbound) -> ProviderReceipt: ...


def unreachable_or_unknown(exc: requests.RequestException) -> ProviderError:
    """A transport-level failure: retryable only when the request certainly never left (at most once)."""
    if never_reached_provider(exc):
        return ProviderError(f"provider unreachable: {type(exc).__name__}", status=None, code=None, retryable=True)
    return ProviderError(f"no answer from the provider: {type(exc).__name__}", status=None, code=None,
                         retryable=False, maybe_sent=True)


def never_reached_provider(exc: BaseException) -> bool:
    """True only when the connection itself failed, so the request was certainly not sent."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (NewConnectionError, NameResolutionError, ConnectionRefusedError)):
            return True
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None),
                        *[a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]])
    return False


def make_transport(settings: Settings) -> Transport | None:
    """None in outbox mode (no credentials): messages are stored, shown in the simulator, never sent."""
    if settings.outbox_mode:
        return None
    if settings.whatsapp_provider == "meta":
        from channel.meta import MetaTransport

        return MetaTransport(settings)
    from channel.twilio import TwilioTransport

    return TwilioTransport(settings)
