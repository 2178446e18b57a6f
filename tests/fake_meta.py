"""A local stand-in for Meta's WhatsApp Cloud API (Graph API), served over real HTTP, with the interface of
tests.fake_twilio.FakeTwilio so a test can run against either provider.

Point ``META_GRAPH_URL`` at ``server.url`` (it carries a Graph version, like https://graph.facebook.com/v21.0).
``POST /{phone_number_id}/messages`` with ``Authorization: Bearer <token>`` and a JSON body answers as Meta
documents it::

    200 {"messaging_product": "whatsapp", "contacts": [{"input": "<to>", "wa_id": "<wa_id>"}],
         "messages": [{"id": "wamid.<base64>"}]}

and refusals with the Graph API's error object (trimmed to the documented fields)::

    400 {"error": {"message": "(#131047) Re-engagement message", "type": "OAuthException", "code": 131047,
                   "error_data": {"messaging_product": "whatsapp", "details": "..."}, "fbtrace_id": "..."}}

A wrong or missing token is 401 (code 190), a path that is not this number's messages edge 400 (code 100,
GraphMethodException), a body that is not a message 400 (code 100). Failures can be scripted (``fail_next``), and
an accepted message can be made to answer late (``stall_next``: the client's read timeout fires after Meta took
the message). HTTP/1.1 keep-alive and no Nagle delay, like FakeTwilio.

`fake_provider` / `provider_overrides` build either fake and the settings that point at it, for tests that run
against both providers.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Iterator

PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
ACCESS_TOKEN = "EAAG" + "x" * 60
GRAPH_VERSION = "v21.0"

_MESSAGES_PATH = re.compile(r"^(?:/v\d+\.\d+)?/([^/?]+)/messages/?(?:\?.*)?$")

# Titles Meta puts in ``message`` as "(#code) title", and a detail for ``error_data.details``
# (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
ERRORS: dict[int, tuple[str, str]] = {
    131047: ("Re-engagement message",
             ("Message failed to send because more than 24 hours have passed since the customer last replied to "
              "this number.")),
    131049: ("This message was not delivered to maintain healthy ecosystem engagement.",
             "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."),
    131050: (("Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on "
              "WhatsApp from your business."), "This recipient has chosen to stop receiving marketing messages."),
    131026: ("Message undeliverable",
             ("Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone "
              "number.")),
    130429: ("Rate limit hit",
             ("Message failed to send because there were too many messages sent from this phone number in a short "
              "period of time")),
    80007: ("Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    131056: ("(Business Account, Consumer Account) pair rate limit hit",
             ("Message failed to send because there were too many messages sent from this phone number to the same "
              "phone number in a short period of time.")),
    131000: ("Something went wrong", "Message failed to send due to an unknown error."),
    131016: ("Service unavailable", "A service is temporarily unavailable."),
    131009: ("Parameter value is not valid", "One or more parameter values are invalid."),
    132018: ("There was an issue with the parameters in your template.",
             "The parameters of a template may not contain new lines, tabs or more than 4 consecutive spaces."),
    100: ("Invalid parameter", "The request included one or more unsupported or misspelled parameters."),
}


def error_body(code: int, *, message: str | None = None, with_data: bool = True,
               error_type: str = "OAuthException") -> dict:
    """The Graph API's error object for ``code``, as Meta's Cloud API answers a refused send (``error_data`` is
    the Cloud API's; Graph-level errors such as a bad token come without it)."""
    title, detail = ERRORS.get(code, (f"Error {code}", f"Error {code}"))
    error = {"message": message or f"(#{code}) {title}", "type": error_type, "code": code}
    if with_data:
        error["error_data"] = {"messaging_product": "whatsapp", "details": detail}
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
    return {"error": error}


def new_wamid(to: str) -> str:
    """An id shaped like Meta's (``wamid.`` and base64 of an opaque blob that carries the recipient)."""
    blob = b"\x1c\x18\x0d" + to.encode() + b"\x15\x02\x00\x11\x18\x12" + uuid.uuid4().hex.upper()[:18].encode()
    return "wamid." + base64.b64encode(blob).decode()


class FakeMeta:
    def __init__(self, *, delay: float = 0.0, phone_number_id: str = PHONE_NUMBER_ID,
                 access_token: str = ACCESS_TOKEN, wa_ids: dict[str, str] | None = None) -> None:
        self.delay = delay
        self.phone_number_id = phone_number_id
        self.access_token = access_token
        # What Meta answers as ``wa_id`` for a ``to`` (a Brazilian mobile may come back without its ninth digit).
        self.wa_ids = dict(wa_ids or {})
        self.accepted: list[dict] = []  # the JSON payloads Meta took, in arrival order
        self.ids: list[str] = []  # the wamid answered for each accepted payload
        self.arrivals: list[float] = []  # time.monotonic() of each accepted message
        self.received: list[dict] = []  # every JSON payload posted to the messages edge, accepted or not
        self.requests = 0
        self.failures: deque[tuple[int, int | None]] = deque()  # (HTTP status, Meta error code), in order
        self.stalls: deque[float] = deque()  # seconds to hold the answer of the next accepted messages
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A short poll so that shutdown (every test's teardown) takes milliseconds, not half a second.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/{GRAPH_VERSION}"

    def settings_env(self) -> dict[str, str]:
        """The settings that make the project send through this fake."""
        return {"WHATSAPP_PROVIDER": "meta", "META_ACCESS_TOKEN": self.access_token,
                "META_PHONE_NUMBER_ID": self.phone_number_id, "META_WABA_ID": WABA_ID,
                "META_APP_SECRET": "s" * 32, "META_VERIFY_TOKEN": "verify-" + "v" * 16, "META_GRAPH_URL": self.url}

    def __enter__(self) -> FakeMeta:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, count: int, status: int, code: int | None) -> None:
        """The next ``count`` sends are refused with HTTP ``status`` and Meta's error object for ``code``
        (``code=None``: a body that is not Graph JSON, as a gateway in front of Meta answers)."""
        with self._lock:
            self.failures.extend([(status, code)] * count)

    def stall_next(self, count: int, seconds: float) -> None:
        """The next ``count`` messages are accepted, but the answer leaves only after ``seconds``."""
        with self._lock:
            self.stalls.extend([seconds] * count)

    def per_recipient(self) -> Counter:
        """Accepted messages per recipient, keyed like FakeTwilio's (``whatsapp:+<E.164>``)."""
        with self._lock:
            return Counter(f"whatsapp:+{m['to']}" for m in self.accepted)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # see FakeTwilio: headers and body leave in two writes

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                self._answer(400, error_body(100, message="Unsupported get request.", with_data=False,
                                             error_type="GraphMethodException"))

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if fake.delay:
                    time.sleep(fake.delay)
                status, body, stall = self._decide(raw)
                if stall:
                    time.sleep(stall)
                self._answer(status, body)

            def _decide(self, raw: bytes):
                with fake._lock:
                    fake.requests += 1
                match = _MESSAGES_PATH.match(self.path)
                if self.headers.get("Authorization") != f"Bearer {fake.access_token}":
                    return 401, error_body(190, message="Invalid OAuth access token - Cannot parse access token",
                                           with_data=False), 0
                if match is None or match.group(1) != fake.phone_number_id:
                    object_id = match.group(1) if match else self.path
                    return 400, error_body(100, message=(
                        f"Unsupported post request. Object with ID '{object_id}' does not exist, cannot be loaded "
                        "due to missing permissions, or does not support this operation."),
                        with_data=False, error_type="GraphMethodException"), 0
                try:
                    payload = json.loads(raw or b"null")
                except ValueError:
                    payload = None
                problem = _invalid(payload, self.headers.get("Content-Type") or "")
                if problem:
                    code, message = problem
                    return 400, error_body(code, message=message), 0
                with fake._lock:
                    fake.received.append(payload)
                    failure = fake.failures.popleft() if fake.failures else None
                    if failure is not None:
                        status, code = failure
                        if code is None:
                            return status, f"<html><body>{status}</body></html>", 0
                        return status, error_body(code), 0
                    to = payload["to"]
                    wamid = new_wamid(to)
                    fake.accepted.append(payload)
                    fake.ids.append(wamid)
                    fake.arrivals.append(time.monotonic())
                    stall = fake.stalls.popleft() if fake.stalls else 0
                    wa_id = fake.wa_ids.get(to, to)
                return 200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": wa_id}],
                             "messages": [{"id": wamid}]}, stall

            def _answer(self, status: int, body) -> None:
                if isinstance(body, str):
                    payload, content_type = body.encode(), "text/html"
                else:
                    payload, content_type = json.dumps(body).encode(), "application/json; charset=UTF-8"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (read timeout)
                    self.close_connection = True

        return Handler


def _invalid(payload, content_type: str) -> tuple[int, str] | None:
    """Why Meta would refuse this body, as (error code, message): 100 for a malformed request, 131009 for a
    value outside Meta's limits (text length, reply buttons, list rows). None when Meta takes it."""
    if "application/json" not in content_type:
        return 100, "(#100) Content-Type must be application/json"
    if not isinstance(payload, dict) or payload.get("messaging_product") != "whatsapp":
        return 100, "(#100) The parameter messaging_product is required."
    to = payload.get("to")
    if not isinstance(to, str) or not to.isdigit():
        return 100, "(#100) Invalid parameter: to must be a phone number or a WhatsApp id (digits)."
    kind = payload.get("type", "text")
    if kind not in ("text", "template", "interactive") or not isinstance(payload.get(kind), dict):
        return 100, f"(#100) Param {kind} must be an object."
    if kind == "text":
        body = payload["text"].get("body")
        if not isinstance(body, str) or not body.strip():
            return 100, "(#100) The parameter text['body'] is required."
        if len(body) > 4096:
            return 131009, "(#131009) Parameter value is not valid: text['body'] is longer than 4096 characters."
    if kind == "template":
        template = payload["template"]
        if not template.get("name") or not (template.get("language") or {}).get("code"):
            return 100, "(#100) The parameters template['name'] and template['language']['code'] are required."
        for component in template.get("components") or []:
            for parameter in component.get("parameters") or []:
                text = parameter.get("text") if parameter.get("type") == "text" else "x"
                if not isinstance(text, str) or not text.strip() or "\n" in text or "\t" in text or "     " in text:
                    return 132018, "(#132018) There was an issue with the parameters in your template."
    if kind == "interactive":
        return _invalid_interactive(payload["interactive"])
    return None


def _invalid_interactive(interactive: dict) -> tuple[int, str] | None:
    def bad(what: str) -> tuple[int, str]:
        return 131009, f"(#131009) Parameter value is not valid: {what}"

    body = (interactive.get("body") or {}).get("text")
    action = interactive.get("action") or {}
    if not isinstance(body, str) or not body.strip():
        return 100, "(#100) The parameter interactive['body']['text'] is required."
    if interactive.get("type") == "button":
        buttons = action.get("buttons") or []
        if not 1 <= len(buttons) <= 3:
            return bad("a reply button message has 1 to 3 buttons")
        titles = [(b.get("reply") or {}).get("title") or "" for b in buttons]
        if not all(0 < len(t) <= 20 for t in titles) or len(set(titles)) != len(titles):
            return bad("button titles are unique and 1 to 20 characters")
        if len(body) > 1024:
            return bad("a reply button body is at most 1024 characters")
        return None
    if interactive.get("type") == "list":
        rows = [row for section in action.get("sections") or [] for row in section.get("rows") or []]
        if not 1 <= len(rows) <= 10:
            return bad("a list message has 1 to 10 rows")
        if not all(0 < len(row.get("title") or "") <= 24 and len(row.get("description") or "") <= 72
                   for row in rows):
            return bad("row titles are 1 to 24 characters and descriptions at most 72")
        if not 0 < len(action.get("button") or "") <= 20:
            return bad("the list button is 1 to 20 characters")
        if any(len(section.get("title") or "") > 24 for section in action["sections"]):
            return bad("section titles are at most 24 characters")
        if len(body) > 4096:
            return bad("a list body is at most 4096 characters")
        return None
    return 100, f"(#100) Unsupported interactive type {interactive.get('type')!r}"


# --- both providers ----------------------------------------------------------------------------------------

PROVIDERS = ("twilio", "meta")
TWILIO_SID, TWILIO_TOKEN = "AC" + "1" * 32, "t" * 32


def provider_overrides(name: str, fake) -> dict[str, str]:
    """Settings (environment variables) that send through ``fake``, a FakeTwilio or a FakeMeta."""
    if name == "meta":
        return fake.settings_env()
    return {"WHATSAPP_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_API_URL": fake.url}


@contextlib.contextmanager
def fake_provider(name: str, **kwargs) -> Iterator:
    """A running fake of provider ``name`` (FakeTwilio or FakeMeta, same interface)."""
    if name == "meta":
        fake = FakeMeta(**kwargs)
    else:
        from tests.fake_twilio import FakeTwilio

        fake = FakeTwilio(**kwargs)
    with fake:
        yield fake


# Provider error codes that mean the same thing, for tests run on both.
RATE_LIMITED = {"twilio": (429, 20429), "meta": (400, 130429)}
SERVER_ERROR = {"twilio": (500, 20500), "meta": (500, 131000)}
OUTSIDE_WINDOW = {"twilio": (400, 63016), "meta": (400, 131047)}
