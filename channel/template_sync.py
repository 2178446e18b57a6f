"""Sync the merchant's WhatsApp message templates from the provider into ``WhatsAppTemplate``.

Twilio: ``GET {TWILIO_CONTENT_API_URL}/v1/ContentAndApprovals?PageSize=100`` (HTTP basic auth with the account
SID and auth token), following ``meta.next_page_url``. Each content has ``sid`` (HX…), ``friendly_name``,
``language``, ``variables`` (sample values), ``types`` (``twilio/text``, ``twilio/quick-reply``,
``twilio/call-to-action``, ``twilio/media``, ``twilio/card``, ``whatsapp/card``, …) and ``approval_requests``
(WhatsApp's review: ``name``, ``category``, ``content_type``, ``status``, ``rejection_reason``).

Meta: ``GET {META_GRAPH_URL}/{META_WABA_ID}/message_templates?fields=…&limit=100`` with
``Authorization: Bearer {META_ACCESS_TOKEN}``, following ``paging.next``. Each template has ``id``, ``name``,
``language``, ``status``, ``category``, ``rejected_reason`` and ``components`` (HEADER, BODY, FOOTER, BUTTONS).

Every page is fetched before anything is written, and the writes happen in one savepoint: an HTTP error, a
refusal, a time-out, a body that is not the expected JSON or too many pages raise `TemplateSyncError` (a message
in Portuguese for the console) and leave the table exactly as it was. Templates are upserted by
(provider, external_id); one of this provider's templates that the provider no longer lists becomes
``REMOVED``, never deleted (sent messages refer to it). Running the sync twice changes nothing but
``synced_at`` (when the provider last listed the template); ``updated_at`` moves only when the content or
review state did.

Status mapping (anything not listed maps to PENDING, which is never sent, and is logged):

==============================  ===============  ===========================================================
provider status                 TemplateStatus   why
==============================  ===============  ===========================================================
Twilio approved                 APPROVED
Twilio received, pending        PENDING          submitted to WhatsApp, review not finished
Twilio rejected                 REJECTED
Twilio paused / disabled        PAUSED/DISABLED  WhatsApp paused or disabled it after shoppers' feedback
Twilio unsubmitted, no review   UNSUBMITTED      content exists but was never sent to WhatsApp for approval
Meta APPROVED                   APPROVED
Meta FLAGGED, REINSTATED        APPROVED         still sendable (low quality / reinstated after appeal)
Meta PENDING, IN_APPEAL         PENDING          under review
Meta REJECTED                   REJECTED
Meta LIMIT_EXCEEDED             REJECTED         the account is at its template limit: never reviewed, must act
Meta PAUSED                     PAUSED
Meta DISABLED, ARCHIVED         DISABLED         cannot be sent until re-enabled / unarchived
Meta PENDING_DELETION, DELETED  REMOVED          the merchant deleted it; it can no longer be sent
==============================  ===============  ===========================================================

Secrets never reach a log line or an error message (the provider's own error text is scrubbed of them).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import requests
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from channel.templates import PLACEHOLDER, placeholders_in
from core.phones import mask_phones_in
from core.settings import Settings
from models import TemplateStatus, WhatsAppTemplate, utcnow

log = logging.getLogger(__name__)

# (connect, read) seconds for every request.
TIMEOUT = (5.0, 15.0)
# More pages than this (5,000 templates at 100 a page) means a ``next`` link that loops: stop, write nothing.
MAX_PAGES = 50
PAGE_SIZE = 100
META_FIELDS = "id,name,language,status,category,components,rejected_reason"

TWILIO_STATUS = {
    "approved": TemplateStatus.APPROVED,
    "received": TemplateStatus.PENDING,
    "pending": TemplateStatus.PENDING,
    "rejected": TemplateStatus.REJECTED,
    "paused": TemplateStatus.PAUSED,
    "disabled": TemplateStatus.DISABLED,
    "unsubmitted": TemplateStatus.UNSUBMITTED,
}
META_STATUS = {
    "APPROVED": TemplateStatus.APPROVED,
    "FLAGGED": TemplateStatus.APPROVED,
    "REINSTATED": TemplateStatus.APPROVED,
    "PENDING": TemplateStatus.PENDING,
    "IN_APPEAL": TemplateStatus.PENDING,
    "REJECTED": TemplateStatus.REJECTED,
    "LIMIT_EXCEEDED": TemplateStatus.REJECTED,
    "PAUSED": TemplateStatus.PAUSED,
    "DISABLED": TemplateStatus.DISABLED,
    "ARCHIVED": TemplateStatus.DISABLED,
    "PENDING_DELETION": TemplateStatus.REMOVED,
    "DELETED": TemplateStatus.REMOVED,
}
# Button types as stored (lower case); both providers' spellings.
BUTTON_TYPES = {"URL": "url", "QUICK_REPLY": "quick_reply", "PHONE_NUMBER": "phone_number", "PHONE": "phone_number",
                "COPY_CODE": "copy_code", "VOICE_CALL": "voice_call", "OTP": "otp", "FLOW": "flow",
                "CATALOG": "catalog", "MPM": "mpm"}

# Column limits (PostgreSQL enforces them; a long value must not fail the whole sync).
_LIMITS = {"external_id": 64, "name": 512, "language": 16, "category": 32, "rejection_reason": 255}
_CONTENT_FIELDS = ("name", "language", "category", "status", "rejection_reason", "header", "body", "footer",
                   "placeholders", "buttons")


class TemplateSyncError(RuntimeError):
    """The sync failed and nothing was written; the message (Portuguese) says why, for the console."""


@dataclass(frozen=True)
class SyncResult:
    provider: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0  # no longer listed by the provider, marked REMOVED by this sync
    total: int = 0  # templates the provider listed
    approved: int = 0  # of those, approved (sendable)

    def as_json(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """'3 modelos sincronizados: 1 novo, 2 atualizados.' (the console's message and the CLI's line)."""
        head = _plural(self.total, "modelo sincronizado", "modelos sincronizados") if self.total \
            else "Nenhum modelo encontrado no provedor"
        parts = [_plural(count, one, many) for count, one, many in (
            (self.created, "novo", "novos"), (self.updated, "atualizado", "atualizados"),
            (self.unchanged, "sem mudança", "sem mudança"),
            (self.removed, "removido no provedor", "removidos no provedor")) if count]
        return f"{head}: {', '.join(parts)}." if parts else f"{head}."


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@dataclass
class _Template:
    """One template as the provider lists it, ready to store."""

    external_id: str
    name: str
    language: str
    category: str | None
    status: TemplateStatus
    rejection_reason: str | None
    header: str | None
    body: str
    footer: str | None
    buttons: list[dict]
    # Sample values by (component, button index, placeholder name), stored with each placeholder.
    examples: dict[tuple[str, int | None, str], str] = field(default_factory=dict)
    placeholders: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class _Provider:
    name: str  # as the merchant knows it
    the: str  # with its article: "o Twilio", "a Meta"
    with_the: str  # "com o Twilio", "com a Meta"


_PROVIDERS = {"twilio": _Provider("Twilio", "o Twilio", "com o Twilio"),
              "meta": _Provider("Meta", "a Meta", "com a Meta")}


def missing_credentials(settings: Settings) -> list[str]:
    """The environment variables the sync still needs for the configured provider (empty: it can run)."""
    if settings.whatsapp_provider == "meta":
        wanted = {"META_ACCESS_TOKEN": settings.meta_access_token, "META_WABA_ID": settings.meta_waba_id}
    else:
        wanted = {"TWILIO_ACCOUNT_SID": settings.twilio_account_sid, "TWILIO_AUTH_TOKEN": settings.twilio_auth_token}
    return [name for name, value in wanted.items() if not value]


def sync_templates(session: Session, settings: Settings, *, http: requests.Session | None = None,
                   now: datetime | None = None) -> SyncResult:
    """Fetch every template of the configured provider and upsert them (see the module docstring).

    Writes inside a savepoint of ``session``'s transaction and flushes; committing is the caller's (the CLI and the
    job use ``Database.transaction``). Raises TemplateSyncError, having written nothing, on any failure."""
    provider = settings.whatsapp_provider
    if provider not in _PROVIDERS:
        raise TemplateSyncError(f"provedor desconhecido: {provider!r}")
    missing = missing_credentials(settings)
    if missing:
        raise TemplateSyncError(f"sem credenciais do provedor: defina {' e '.join(missing)} "
                                "(no modo outbox não há modelos para sincronizar)")
    now = now or utcnow()
    own_http = http is None
    http = http or requests.Session()
    try:
        fetched = _fetch_twilio(http, settings) if provider == "twilio" else _fetch_meta(http, settings)
    finally:
        if own_http:
            http.close()
    listed = _deduplicated(fetched, provider)
    try:
        with session.begin_nested():
            result = _store(session, provider, listed, now)
    except IntegrityError:
        raise TemplateSyncError("outra sincronização gravou os mesmos modelos ao mesmo tempo; tente de novo") from None
    except SQLAlchemyError as exc:
        raise TemplateSyncError(f"não foi possível gravar os modelos no banco ({type(exc).__name__})") from None
    log.info("templates synced from %s: %d listed, %d created, %d updated, %d unchanged, %d removed", provider,
             result.total, result.created, result.updated, result.unchanged, result.removed)
    return result


# --- storing ---------------------------------------------------------------------------------------------

def _deduplicated(templates: list[_Template], provider: str) -> list[_Template]:
    """One entry per external id (a listing that shifted between pages may repeat one; the last one wins)."""
    by_id: dict[str, _Template] = {}
    for template in templates:
        template.placeholders = _placeholders(template, provider)
        by_id.pop(template.external_id, None)
        by_id[template.external_id] = template
    return list(by_id.values())


def _store(session: Session, provider: str, listed: list[_Template], now: datetime) -> SyncResult:
    existing = {t.external_id: t for t in session.scalars(
        select(WhatsAppTemplate).where(WhatsAppTemplate.provider == provider))}
    created = updated = unchanged = removed = 0
    for item in listed:
        values = {name: getattr(item, name) for name in _CONTENT_FIELDS}
        row = existing.pop(item.external_id, None)
        if row is None:
            session.add(WhatsAppTemplate(provider=provider, external_id=item.external_id, synced_at=now, **values))
            created += 1
            continue
        changed = {name: value for name, value in values.items() if getattr(row, name) != value}
        for name, value in changed.items():
            setattr(row, name, value)
        row.synced_at = now
        if changed:
            updated += 1
        else:
            # Only synced_at moves: keep updated_at (its onupdate fires unless the column is in the UPDATE).
            row.updated_at = row.updated_at
            flag_modified(row, "updated_at")
            unchanged += 1
    for row in existing.values():
        if row.status is not TemplateStatus.REMOVED:
            row.status = TemplateStatus.REMOVED
            removed += 1
    session.flush()
    return SyncResult(provider=provider, created=created, updated=updated, unchanged=unchanged, removed=removed,
                      total=len(listed), approved=sum(1 for t in listed if t.status is TemplateStatus.APPROVED))


def _placeholders(template: _Template, provider: str) -> list[dict]:
    found = placeholders_in(template.header, template.body, template.buttons, provider=provider)
    for placeholder in found:
        where = (placeholder["component"], placeholder["index"], placeholder["name"])
        placeholder["example"] = template.examples.get(where)
    return found


# --- HTTP ------------------------------------------------------------------------------------------------

def _pages(http: requests.Session, settings: Settings, first_url: str, *, base: str, next_of,
           **request) -> Iterator[dict]:
    """Each page's JSON object, following the provider's next link within the configured origin, at most
    MAX_PAGES pages; raises TemplateSyncError on anything unexpected."""
    who = _PROVIDERS[settings.whatsapp_provider]
    url: str | None = first_url
    seen: set[str] = set()
    while url:
        if len(seen) >= MAX_PAGES:
            raise TemplateSyncError(f"{who.the} listou mais de {MAX_PAGES} páginas de modelos; sincronização "
                                    "interrompida sem gravar nada")
        if url in seen:
            raise TemplateSyncError(f"{who.the} repetiu uma página da listagem de modelos; sincronização "
                                    "interrompida sem gravar nada")
        seen.add(url)
        page = _get_json(http, settings, url, **request)
        yield page
        following = next_of(page)
        if following is not None and not isinstance(following, str):
            raise TemplateSyncError(f"{who.the} respondeu uma listagem de modelos em formato inesperado "
                                    "(link da próxima página)")
        url = _same_origin(following, base) if following else None


def _same_origin(url: str, base: str) -> str:
    """The next-page URL on the configured origin: credentials are only ever sent where the settings point
    (the real API, or the local fake tests and benchmarks use)."""
    target, origin = urlsplit(url), urlsplit(base)
    return urlunsplit((origin.scheme, origin.netloc, target.path, target.query, ""))


def _get_json(http: requests.Session, settings: Settings, url: str, **request) -> dict:
    who = _PROVIDERS[settings.whatsapp_provider]
    try:
        response = http.get(url, timeout=TIMEOUT, **request)
    except requests.Timeout:
        raise TemplateSyncError(f"{who.the} não respondeu a tempo ao listar os modelos; tente de novo") from None
    except requests.RequestException as exc:
        raise TemplateSyncError(f"não foi possível falar {who.with_the} para listar os modelos "
                                f"({type(exc).__name__})") from None
    status = response.status_code
    try:
        data = response.json()
    except ValueError:
        data = None
    if status >= 300 or (isinstance(data, dict) and isinstance(data.get("error"), dict)):
        raise _http_error(settings, who, status, data)
    if not isinstance(data, dict):
        raise TemplateSyncError(f"{who.the} respondeu algo que não é a listagem de modelos esperada (HTTP {status}, "
                                "não é um objeto JSON)")
    return data


def _http_error(settings: Settings, who: _Provider, status: int, data) -> TemplateSyncError:
    code, text = _provider_error(data)
    detail = f": {_scrub(text, settings)}" if text else ""
    status_and_code = f"{status}, código {code}" if code else f"{status}"
    if status in (401, 403) or code == "190":  # Meta: 190 is an invalid or expired access token
        return TemplateSyncError(f"{who.the} recusou as credenciais ({status_and_code}){detail}")
    if status == 429:
        return TemplateSyncError(f"{who.the} limitou as requisições (429); tente de novo em alguns minutos")
    if status >= 500:
        return TemplateSyncError(f"{who.the} está com problemas (HTTP {status}); tente de novo mais tarde")
    if status == 404 or code == "100":
        setting = "META_WABA_ID" if settings.whatsapp_provider == "meta" else "TWILIO_CONTENT_API_URL"
        return TemplateSyncError(f"{who.the} não encontrou a lista de modelos (HTTP {status}){detail} "
                                 f"(confira {setting})")
    return TemplateSyncError(f"{who.the} recusou a listagem de modelos (HTTP {status_and_code}){detail}")


def _provider_error(data) -> tuple[str | None, str | None]:
    """(code, message) from Twilio's ``{"code", "message"}`` or Meta's ``{"error": {"code", "message"}}``."""
    if not isinstance(data, dict):
        return None, None
    error = data.get("error") if isinstance(data.get("error"), dict) else data
    code, message = error.get("code"), error.get("message")
    return (str(code) if code not in (None, "") else None), (str(message)[:200] if message else None)


def _scrub(text: str, settings: Settings) -> str:
    for secret in settings.secret_values():
        text = text.replace(secret, "***")
    return mask_phones_in(text)


# --- Twilio ----------------------------------------------------------------------------------------------

def _fetch_twilio(http: requests.Session, settings: Settings) -> list[_Template]:
    base = settings.twilio_content_api_url.rstrip("/")
    templates = []
    pages = _pages(http, settings, f"{base}/v1/ContentAndApprovals?PageSize={PAGE_SIZE}", base=base,
                   next_of=_twilio_next, auth=(settings.twilio_account_sid, settings.twilio_auth_token))
    for page in pages:
        contents = page.get("contents")
        if not isinstance(contents, list):
            raise TemplateSyncError("o Twilio respondeu uma listagem de modelos sem 'contents'")
        for content in contents:
            template = _twilio_template(content)
            if template is not None:
                templates.append(template)
    return templates


def _twilio_next(page: dict):
    meta = page.get("meta")
    return meta.get("next_page_url") if isinstance(meta, dict) else None


def _twilio_approval(raw) -> dict:
    """WhatsApp's approval request: ``approval_requests`` is that object; tolerate it nested under ``whatsapp``
    or as a list of per-channel requests."""
    if isinstance(raw, list):
        raw = next((r for r in raw if isinstance(r, dict) and (r.get("type") or "whatsapp") == "whatsapp"), None)
    if isinstance(raw, dict) and isinstance(raw.get("whatsapp"), dict):
        raw = raw["whatsapp"]
    return raw if isinstance(raw, dict) else {}


def _twilio_template(content) -> _Template | None:
    if not isinstance(content, dict) or not _text(content.get("sid")):
        log.warning("twilio content without a sid skipped")
        return None
    sid = _text(content["sid"])
    types = content.get("types") if isinstance(content.get("types"), dict) else {}
    types = {name: spec for name, spec in types.items() if isinstance(spec, dict)}
    approval = _twilio_approval(content.get("approval_requests"))
    raw_status = (_text(approval.get("status")) or "").lower()
    if not raw_status:
        status = TemplateStatus.UNSUBMITTED
    else:
        status = TWILIO_STATUS.get(raw_status, TemplateStatus.PENDING)
        if raw_status not in TWILIO_STATUS:
            log.warning("twilio content %s: unknown approval status %r stored as pending", sid, raw_status[:40])
    # The type WhatsApp reviewed, else the first one: its header, footer and buttons.
    primary = types.get(_text(approval.get("content_type")) or "") or next(iter(types.values()), {})
    body = next((b for b in (_text(primary.get("body")), *(_text(s.get("body")) for s in types.values())) if b), None)
    header = _text(primary.get("header_text"))
    title = _text(primary.get("title"))  # twilio/card: the title is the text; with a body it heads it
    if title and body is None:
        body = title
    elif title and header is None:
        header = title
    footer = _text(primary.get("footer")) or _text(primary.get("subtitle"))
    actions = primary.get("actions")
    if not isinstance(actions, list):
        actions = next((s["actions"] for s in types.values() if isinstance(s.get("actions"), list)), [])
    buttons = [button for button in (_twilio_button(a) for a in actions) if button is not None]
    template = _Template(
        external_id=_clip(sid, "external_id"),
        name=_clip(_text(content.get("friendly_name")) or _text(approval.get("name")) or sid, "name"),
        language=_clip(_text(content.get("language")) or "pt_BR", "language"),
        category=_category(approval.get("category")),
        status=status,
        rejection_reason=_reason(approval.get("rejection_reason")),
        header=header, body=body or "", footer=footer, buttons=buttons)
    variables = content.get("variables") if isinstance(content.get("variables"), dict) else {}
    # Twilio numbers its variables across the whole content: one sample per name, wherever it appears.
    template.examples = {(component, index, name): _text(variables.get(name))
                          for component, index, name in _positions(template) if _text(variables.get(name))}
    return template


def _twilio_button(action) -> dict | None:
    if not isinstance(action, dict):
        return None
    raw_type = (_text(action.get("type")) or ("QUICK_REPLY" if action.get("id") is not None else "")).upper()
    kind = BUTTON_TYPES.get(raw_type, raw_type.lower() or "unknown")
    button = {"type": kind, "text": _text(action.get("title"))}
    if kind == "url":
        button["url"] = _text(action.get("url"))
    elif kind == "phone_number":
        button["phone_number"] = _text(action.get("phone")) or _text(action.get("phone_number"))
    elif kind == "quick_reply" and action.get("id") is not None:
        button["id"] = str(action["id"])
    return button


# --- Meta ------------------------------------------------------------------------------------------------

def _fetch_meta(http: requests.Session, settings: Settings) -> list[_Template]:
    base = settings.meta_graph_url.rstrip("/")
    first = f"{base}/{settings.meta_waba_id}/message_templates?fields={META_FIELDS}&limit={PAGE_SIZE}"
    templates = []
    pages = _pages(http, settings, first, base=base, next_of=_meta_next,
                   headers={"Authorization": f"Bearer {settings.meta_access_token}"})
    for page in pages:
        data = page.get("data")
        if not isinstance(data, list):
            raise TemplateSyncError("a Meta respondeu uma listagem de modelos sem 'data'")
        for item in data:
            template = _meta_template(item)
            if template is not None:
                templates.append(template)
    return templates


def _meta_next(page: dict):
    paging = page.get("paging")
    return paging.get("next") if isinstance(paging, dict) else None


def _meta_template(item) -> _Template | None:
    if not isinstance(item, dict) or not _text(item.get("id")):
        log.warning("meta template without an id skipped")
        return None
    template_id = _text(item["id"])
    raw_status = (_text(item.get("status")) or "").upper()
    status = META_STATUS.get(raw_status, TemplateStatus.PENDING)
    if raw_status not in META_STATUS:
        log.warning("meta template %s: unknown status %r stored as pending", template_id, raw_status[:40])
    reason = _reason(item.get("rejected_reason"))
    if raw_status == "LIMIT_EXCEEDED" and reason is None:
        reason = "LIMIT_EXCEEDED"
    components = [c for c in _list(item.get("components")) if isinstance(c, dict)]

    def component(kind: str) -> dict:
        return next((c for c in components if (_text(c.get("type")) or "").upper() == kind), {})

    header_spec = component("HEADER")
    # A media or location header has no text (and no text placeholders).
    header = _text(header_spec.get("text")) if (_text(header_spec.get("format")) or "TEXT").upper() == "TEXT" else None
    raw_buttons = _list(component("BUTTONS").get("buttons"))
    buttons = [_meta_button(raw) for raw in raw_buttons]  # all of them, in order: Meta addresses them by index
    template = _Template(
        external_id=_clip(template_id, "external_id"),
        name=_clip(_text(item.get("name")) or template_id, "name"),
        language=_clip(_text(item.get("language")) or "pt_BR", "language"),
        category=_category(item.get("category")),
        status=status, rejection_reason=reason,
        header=header, body=_text(component("BODY").get("text")) or "", footer=_text(component("FOOTER").get("text")),
        buttons=buttons)
    template.examples = _meta_examples(template, header_spec, component("BODY"), raw_buttons)
    return template


def _meta_button(raw) -> dict:
    if not isinstance(raw, dict):
        return {"type": "unknown", "text": None}  # keeps the position
    raw_type = (_text(raw.get("type")) or "").upper()
    kind = BUTTON_TYPES.get(raw_type, raw_type.lower() or "unknown")
    button = {"type": kind, "text": _text(raw.get("text"))}
    if kind == "url":
        button["url"] = _text(raw.get("url"))
    elif kind == "phone_number":
        button["phone_number"] = _text(raw.get("phone_number"))
    return button


def _meta_examples(template: _Template, header: dict, body: dict, raw_buttons: list) -> dict:
    """Meta's sample values by (component, index, name): ``header_text`` / ``body_text`` (positional) or
    ``…_named_params`` (named), and a URL button's sample URL (its variable is the part after the fixed prefix)."""
    examples: dict = {}

    def positional_and_named(spec: dict, component: str, positional_key: str, named_key: str) -> None:
        example = spec.get("example") if isinstance(spec.get("example"), dict) else {}
        values = example.get(positional_key)
        if isinstance(values, list) and values and isinstance(values[0], list):
            values = values[0]  # body_text is a list of one list
        if isinstance(values, list):
            for position, value in enumerate(values, 1):
                if _text(value):
                    examples[(component, None, str(position))] = _text(value)
        for param in _list(example.get(named_key)):
            if isinstance(param, dict) and _text(param.get("param_name")) and _text(param.get("example")):
                examples[(component, None, _text(param["param_name"]))] = _text(param["example"])

    positional_and_named(header, "header", "header_text", "header_text_named_params")
    positional_and_named(body, "body", "body_text", "body_text_named_params")
    for index, (button, raw) in enumerate(zip(template.buttons, raw_buttons)):
        url, sample = button.get("url"), raw.get("example") if isinstance(raw, dict) else None
        sample = sample[0] if isinstance(sample, list) and sample else sample
        match = PLACEHOLDER.search(url or "")
        if button["type"] == "url" and match and isinstance(sample, str) and sample.startswith(url[:match.start()]):
            examples[("button", index, match.group(1))] = sample[match.start():] or None
    return examples


# --- small helpers ---------------------------------------------------------------------------------------

def _positions(template: _Template) -> list[tuple[str, int | None, str]]:
    return [(p["component"], p["index"], p["name"])
            for p in placeholders_in(template.header, template.body, template.buttons, provider="twilio")]


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _text(value) -> str | None:
    """A non-empty string, or None (numbers, as Meta's ids sometimes are, become strings)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def _clip(value: str, column: str) -> str:
    return value[:_LIMITS[column]]


def _category(value) -> str | None:
    text = _text(value)
    return text.strip().lower()[:_LIMITS["category"]] if text else None


def _reason(value) -> str | None:
    text = _text(value)
    if not text or text.strip().upper() == "NONE":
        return None
    return text.strip()[:_LIMITS["rejection_reason"]]
