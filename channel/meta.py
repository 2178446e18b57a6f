"""Meta's WhatsApp Cloud API: sends through ``POST {META_GRAPH_URL}/{META_PHONE_NUMBER_ID}/messages`` with
``requests`` (text, approved templates with their components, reply buttons and lists).

Meta answers most refusals with HTTP 400 and ``{"error": {"code": …, "message": …, "error_data": …}}``; the
code says what it means here (see MEANINGS and RETRYABLE_CODES).
"""

from __future__ import annotations

import requests

from channel.transport import MARKETING_LIMIT, MARKETING_OPTED_OUT, OUTSIDE_WINDOW, UNDELIVERABLE, Outbound, \
    OutboundTemplate, ProviderError, ProviderReceipt, unreachable_or_unknown
from core.settings import Settings

# 131047: more than 24 h since the shopper last wrote ("re-engagement message"); 131049: Meta's per-user cap on
# marketing messages ("healthy ecosystem engagement"), not to be retried; 131050: the shopper stopped marketing
# messages; 131026: the message cannot be delivered (no WhatsApp, old app, terms not accepted).
MEANINGS = {"131047": OUTSIDE_WINDOW, "131049": MARKETING_LIMIT, "131050": MARKETING_OPTED_OUT,
            "131026": UNDELIVERABLE}
# 130429: throughput rate; 80007: the account's rate limit; 131056: too many messages to one shopper in a short
# time; 131000/131016: something went wrong / service unavailable on Meta's side; 4, 613: API call rate.
RETRYABLE_CODES = frozenset({"130429", "80007", "131056", "131000", "131016", "4", "613"})

# Meta's limits for interactive messages.
MAX_BUTTONS, BUTTON_TITLE = 3, 20
MAX_ROWS, ROW_TITLE, ROW_DESCRIPTION, LIST_BUTTON = 10, 24, 72, 20
MAX_BUTTONS_BODY, MAX_LIST_BODY = 1024, 4096


class MetaTransport:
    name = "meta"

    def __init__(self, settings: Settings, timeout: tuple[float, float] = (5.0, 10.0)) -> None:
        self._url = f"{settings.meta_graph_url}/{settings.meta_phone_number_id}/messages"
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {settings.meta_access_token}"
        self._timeout = timeout

    def send(self, message: Outbound) -> ProviderReceipt:
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": message.wa_id or message.phone.lstrip("+"), **content_of(message)}
        try:
            response = self._session.post(self._url, json=payload, timeout=self._timeout)
        except requests.RequestException as exc:
            raise unreachable_or_unknown(exc) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 300 or not isinstance(answer, dict) or "error" in answer:
            raise _error(response.status_code, answer)
        try:
            sid = str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            # Accepted (2xx) but unreadable: it may well have been sent; at most once means not again.
            raise ProviderError("Meta accepted the message without an id", status=response.status_code, code=None,
                                retryable=False, maybe_sent=True) from None
        contacts = answer.get("contacts") or [{}]
        wa_id = contacts[0].get("wa_id") if isinstance(contacts[0], dict) else None
        return ProviderReceipt(sid=sid, status="accepted", wa_id=str(wa_id) if wa_id else None)


def _error(status: int, answer) -> ProviderError:
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        return ProviderError(f"Meta answered HTTP {status}", status=status, code=None,
                             retryable=status == 429 or status >= 500)
    code = str(error.get("code") or "") or None
    details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    text = str(error.get("message") or "error") + (f" ({details})" if details else "")
    return ProviderError(text[:250], status=status, code=code,
                         retryable=status >= 500 or status == 429 or code in RETRYABLE_CODES,
                         meaning=MEANINGS.get(code or ""))


def content_of(message: Outbound) -> dict:
    """The ``type`` and its object for Meta's messages endpoint."""
    if message.template is not None:
        return {"type": "template", "template": template_payload(message.template)}
    if message.interactive:
        interactive = interactive_payload(message.body or "", message.interactive)
        if interactive is not None:
            return {"type": "interactive", "interactive": interactive}
    return {"type": "text", "text": {"preview_url": True, "body": message.body or ""}}


def template_payload(template: OutboundTemplate) -> dict:
    """name, language and one component per part that has placeholders (header, body, each URL button)."""
    groups: dict[tuple[str, int | None], list[dict]] = {}
    for placeholder in template.placeholders:
        value = template.values[placeholder["key"]]
        parameter = {"type": "text", "text": value}
        if not placeholder["name"].isdigit():
            parameter["parameter_name"] = placeholder["name"]  # named parameters ({{first_name}})
        groups.setdefault((placeholder["component"], placeholder.get("index")), []).append((placeholder, parameter))
    components = []
    for (component, index), found in groups.items():
        # Meta fills positional {{1}}, {{2}}… from a component's parameters by position, whatever the reading
        # order of the text (named ones keep theirs).
        found.sort(key=lambda pair: int(pair[0]["name"]) if pair[0]["name"].isdigit() else 0)
        parameters = [parameter for _, parameter in found]
        if component == "button":
            components.append({"type": "button", "sub_type": "url", "index": str(index), "parameters": parameters})
        else:
            components.append({"type": component, "parameters": parameters})
    payload = {"name": template.name, "language": {"code": template.language}}
    if components:
        payload["components"] = components
    return payload


def interactive_payload(body: str, interactive: dict) -> dict | None:
    """Reply buttons (up to 3) or a list (up to 10 rows) within Meta's limits; None when the options do not fit
    (the text version goes instead)."""
    options = interactive.get("options") or []
    if not options or not body.strip():
        return None
    if len(options) <= MAX_BUTTONS and all(len(o["title"]) <= BUTTON_TITLE for o in options) \
            and len(body) <= MAX_BUTTONS_BODY:
        return {"type": "button", "body": {"text": body}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": o["id"], "title": o["title"]}} for o in options]}}
    if len(options) > MAX_ROWS or len(body) > MAX_LIST_BODY:
        return None  # cutting the text would lose what the options refer to
    rows = []
    for option in options:
        title = option["title"]
        row = {"id": option["id"], "title": title if len(title) <= ROW_TITLE else title[:ROW_TITLE - 1] + "…"}
        description = option.get("description") or (title if len(title) > ROW_TITLE else None)
        if description:
            row["description"] = description[:ROW_DESCRIPTION]
        rows.append(row)
    button = (interactive.get("button") or "Ver opções")[:LIST_BUTTON]
    return {"type": "list", "body": {"text": body},
            "action": {"button": button, "sections": [{"title": (interactive.get("section") or "Opções")[:24],
                                                       "rows": rows}]}}
