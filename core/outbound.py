"""Signed outbound webhooks: the transport of a segment's "send a webhook" action, with the SSRF defences.

An admin types the URL, so the URL is hostile until proven otherwise: it must never reach the service's own
network (loopback, RFC 1918, link-local and its cloud metadata at 169.254.169.254, CGNAT, …), neither by its
literal form nor after DNS resolution, nor by a DNS answer that changes between the check and the connection.

- ``check_url`` validates the URL's form (https only in production, no credentials, an IDNA hostname, a port),
  resolves the hostname once and refuses it if *any* address is not a public unicast one. Integer, octal and hex
  host forms (``http://2130706433/``, ``http://0x7f.1/``) are refused outright.
- ``deliver`` posts the signed JSON to the address that was checked, never resolving the name again (DNS
  rebinding): the TCP connection goes to the pinned IP, while the ``Host`` header, the TLS SNI and the certificate
  check use the hostname. Redirects are not followed, timeouts are short, and at most ``max_response_bytes`` of
  the answer are read.
- ``verify_signature`` is what a receiver (and our tests) runs; ``backoff_delays`` is the retry schedule.

Signature (for receivers)::

    X-Webhook-Timestamp: 1767225600                      # unix seconds when the request was signed
    X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
    X-Webhook-Id: <delivery id>                          # same value on every retry of one delivery, when given

Verify it on the raw bytes of the body (before parsing the JSON), compare in constant time, and refuse a
timestamp more than five minutes from your clock (replays). Each retry is signed afresh with its own timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

USER_AGENT = "whatsapp-recovery-webhooks/1.0"
DEFAULT_TIMEOUT = (3.0, 5.0)  # (connect, read) seconds
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024
MAX_URL_LENGTH = 2048
SIGNATURE_TOLERANCE_SECONDS = 300

INTERNAL_NETWORK = "o endereço aponta para a rede interna"

# Addresses ipaddress does not flag by itself on every Python we run (3.11's ``is_global`` is coarse).
_ALSO_FORBIDDEN = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # CGNAT, shared address space
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "240.0.0.0/4",  # reserved, and 255.255.255.255
        "fc00::/7",  # unique local
        "fec0::/10",  # deprecated site-local
        "fe80::/10",  # link-local
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, …)
        "2001:db8::/32",  # documentation
        "100::/64",  # discard-only
    )
)
# IPv6 prefixes that carry an IPv4 address a gateway would reach on our behalf.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class OutboundRefused(ValueError):
    """The URL may not be called. ``field`` names the form field, ``message`` is shown to the merchant (pt-BR).

    ``transient`` is set when the refusal may pass by itself (the name did not resolve right now): a queue may
    retry those, never the others."""

    def __init__(self, field: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class ValidatedUrl:
    """A URL that passed ``check_url``: where to connect (``address``, the first resolved one) and what to say."""

    url: str  # normalised: lower-case scheme, IDNA (ASCII) hostname, no fragment
    scheme: str
    hostname: str  # ASCII (IDNA) form, without brackets
    port: int
    path: str  # path and query, at least "/"
    addresses: tuple[str, ...]  # every address the name resolved to, all checked
    address: str  # the pinned one: the connection goes there and nowhere else

    @property
    def host_header(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class Delivery:
    """The outcome of one POST. ``error`` is a pt-BR reason for the merchant's delivery log, None when ``ok``.

    ``retryable`` tells the queue whether another attempt may succeed (timeouts, connection failures, 408, 429,
    5xx, a name that did not resolve); a refused address, a redirect, another 4xx, an oversized answer or a bad
    certificate will not change by retrying."""

    url: str
    attempt: int
    ok: bool
    status_code: int | None
    error: str | None
    retryable: bool
    duration_ms: int
    address: str | None = None  # the IP the request went to
    response_excerpt: str = ""  # the first characters of the answer, for the log
    truncated: bool = False  # the answer was longer than max_response_bytes and was cut


# --- addresses -------------------------------------------------------------------------------------------------


def forbidden_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why this address may not be called (pt-BR), or None for a public unicast address.

    An IPv6 address that embeds an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``, NAT64
    ``64:ff9b::/96``) is judged by the embedded address as well."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour]
        if any(address in network for network in _NAT64):
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        for inner in embedded:
            if inner is not None and forbidden_reason(inner):
                return INTERNAL_NETWORK
        if address.is_site_local:
            return INTERNAL_NETWORK
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
        or any(address.version == network.version and address in network for network in _ALSO_FORBIDDEN)
    ):
        return INTERNAL_NETWORK
    return None


def _ascii_hostname(hostname: str) -> str:
    """The IDNA (punycode) form of a hostname, or OutboundRefused. Rejects integer/hex/octal IPv4 forms."""
    hostname = hostname.rstrip(".")
    if not hostname:
        raise OutboundRefused("url", "Informe o endereço (host) do webhook.")
    try:
        ascii_name = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise OutboundRefused("url", "O nome do servidor não é válido.") from None
    if len(ascii_name) > 253:
        raise OutboundRefused("url", "O nome do servidor é longo demais.")
    labels = ascii_name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise OutboundRefused("url", "O nome do servidor não é válido.")
    # A name whose last label is a number is an IPv4 address to URL parsers and to inet_aton (2130706433,
    # 0x7f.1, 0177.0.0.1, 127.1): never a real hostname, and a classic way around address filters.
    if _NUMERIC_LABEL.match(labels[-1]):
        try:
            as_ipv4 = ipaddress.IPv4Address(socket.inet_aton(ascii_name))
        except OSError:
            as_ipv4 = None
        if as_ipv4 is not None and forbidden_reason(as_ipv4):
            raise OutboundRefused("url", INTERNAL_NETWORK)
        raise OutboundRefused("url", "Use um nome de servidor ou um IP no formato comum (ex.: 203.0.113.10).")
    if ascii_name == "localhost" or ascii_name.endswith(".localhost"):
        raise OutboundRefused("url", INTERNAL_NETWORK)
    return ascii_name


def _resolve(hostname: str, port: int) -> tuple[str, ...]:
    try:
        answers = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        raise OutboundRefused(
            "url", f"Não foi possível encontrar o servidor {hostname} (DNS).", transient=True
        ) from None
    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundRefused("url", f"Não foi possível encontrar o servidor {hostname} (DNS).", transient=True)
    return tuple(addresses)


def check_url(url: str, *, production: bool, allow_private: bool = False) -> ValidatedUrl:
    """Validate and resolve a webhook URL; OutboundRefused("url", pt-BR message) when it may not be called.

    ``allow_private`` lets tests reach a server on 127.0.0.1; it is refused in production, and application code
    never passes it."""
    if allow_private and production:
        raise ValueError("allow_private is for tests and is refused in production")
    if not isinstance(url, str) or not url.strip():
        raise OutboundRefused("url", "Informe o endereço do webhook.")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise OutboundRefused("url", "O endereço do webhook é longo demais.")
    if any(ord(char) < 0x21 or ord(char) == 0x7F or char == "\\" for char in url):
        raise OutboundRefused("url", "O endereço do webhook tem caracteres inválidos.")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise OutboundRefused("url", "O endereço do webhook não é válido.") from None
    scheme = parts.scheme.lower()
    allowed = ("https",) if production else ("https", "http")
    if scheme not in allowed:
        raise OutboundRefused(
            "url", "Use um endereço https://." if production else "Use um endereço https:// (ou http:// em testes)."
        )
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise OutboundRefused("url", "Não coloque usuário ou senha no endereço; o webhook é assinado (HMAC).")
    try:
        port = parts.port
    except ValueError:
        raise OutboundRefused("url", "A porta do endereço não é válida.") from None
    if port == 0:
        raise OutboundRefused("url", "A porta do endereço não é válida.")
    port = port or (443 if scheme == "https" else 80)
    host = parts.hostname or ""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if isinstance(literal, ipaddress.IPv6Address) and literal.scope_id:
            raise OutboundRefused("url", INTERNAL_NETWORK)
        hostname = literal.compressed
        addresses: tuple[str, ...] = (hostname,)
    else:
        hostname = _ascii_hostname(host)
        addresses = _resolve(hostname, port)
    if not allow_private:
        for address in addresses:
            if forbidden_reason(ipaddress.ip_address(address)):
                raise OutboundRefused("url", INTERNAL_NETWORK)
    netloc_host = f"[{hostname}]" if ":" in hostname else hostname
    default_port = 443 if scheme == "https" else 80
    netloc = netloc_host if port == default_port else f"{netloc_host}:{port}"
    path = parts.path or "/"
    normalised = urlunsplit((scheme, netloc, path, parts.query, ""))
    return ValidatedUrl(
        url=normalised,
        scheme=scheme,
        hostname=hostname,
        port=port,
        path=path + (f"?{parts.query}" if parts.query else ""),
        addresses=addresses,
        address=addresses[0],
    )


# --- transport -------------------------------------------------------------------------------------------------


class PinnedAdapter(HTTPAdapter):
    """A requests adapter that connects only to the address pinned on the request by ``deliver``.

    The URL keeps the hostname; the urllib3 pool is opened on the pinned IP (so nothing resolves the name
    again), with ``server_hostname`` (SNI) and ``assert_hostname`` (certificate check) set to the hostname. Pools
    are keyed on (scheme, IP, port, SNI name), so reusing one adapter across deliveries is safe. A request
    without a pin, or whose URL does not match its pin, is refused: this adapter never resolves anything."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pin: ValidatedUrl | None = getattr(request, "outbound_pin", None)
        if pin is None:
            raise ValueError("PinnedAdapter only sends requests prepared by core.outbound.deliver")
        default_port = 443 if pin.scheme == "https" else 80
        if (
            host_params.get("scheme") != pin.scheme
            or (host_params.get("host") or "").strip("[]").lower() != pin.hostname
            or (host_params.get("port") or default_port) != pin.port
        ):
            raise ValueError("the request's URL does not match its pinned address")
        host_params = {"scheme": pin.scheme, "host": pin.address, "port": pin.port}
        if pin.scheme == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": pin.hostname, "assert_hostname": pin.hostname}
        return host_params, pool_kwargs


def new_session() -> requests.Session:
    """A session for webhooks: the pinned adapter on http(s)://, no proxies, .netrc or cookies from the
    environment. Pass it to ``deliver`` to reuse connections across deliveries (one per worker thread)."""
    session = requests.Session()
    session.trust_env = False
    adapter = PinnedAdapter(max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def signature(secret: str, timestamp: int | str, raw_body: bytes) -> str:
    """The X-Webhook-Signature value: ``sha256=`` + hex HMAC-SHA256 of ``b"<timestamp>." + raw_body``."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + raw_body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(
    secret: str,
    timestamp: int | str | None,
    raw_body: bytes,
    header: str | None,
    *,
    now: float,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: the signature matches the raw body and the timestamp is within ``tolerance``
    seconds of ``now`` (either way). Constant-time; any malformed input is simply False."""
    if not secret or header is None or timestamp is None:
        return False
    timestamp = str(timestamp).strip()
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    given = header.strip()
    if not given.isascii() or not given.lower().startswith("sha256="):
        return False
    return hmac.compare_digest(signature(secret, timestamp, raw_body), "sha256=" + given[7:].lower())


def encode_body(body: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact UTF-8 JSON with sorted keys."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str).encode("utf-8")


def deliver(
    url: str,
    body: dict[str, Any],
    secret: str,
    *,
    production: bool,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    session: requests.Session | None = None,
    attempt: int = 1,
    delivery_id: str | None = None,
    allow_private: bool = False,
    ca_bundle: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Delivery:
    """POST ``body`` as signed JSON to ``url`` once; never raises for network or HTTP failures.

    The URL is checked (``check_url``) and resolved here, at send time, and the connection goes to the first
    checked address. ``session`` must come from ``new_session`` (its adapter does the pinning); without one a
    throwaway session is used. ``ca_bundle`` replaces the system's CA certificates (tests); certificates are
    always verified. ``allow_private`` is for tests only (see ``check_url``)."""
    if not secret:
        raise ValueError("a webhook needs a signing secret")
    started = time.monotonic()

    def outcome(**fields: Any) -> Delivery:
        fields.setdefault("status_code", None)
        fields.setdefault("retryable", False)
        duration_ms = int((time.monotonic() - started) * 1000)
        return Delivery(url=url, attempt=attempt, duration_ms=duration_ms, **fields)

    try:
        target = check_url(url, production=production, allow_private=allow_private)
    except OutboundRefused as refused:
        return outcome(ok=False, error=refused.message, retryable=refused.transient)

    raw = encode_body(body)
    timestamp = int(clock())
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "Accept-Encoding": "identity",  # no decompression: the size bound applies to what we read
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": signature(secret, timestamp, raw),
    }
    if delivery_id:
        headers["X-Webhook-Id"] = str(delivery_id)
    prepared = requests.Request("POST", target.url, headers=headers, data=raw).prepare()
    prepared.outbound_pin = target  # type: ignore[attr-defined]  # read by PinnedAdapter

    own_session = session is None
    if own_session:
        session = new_session()
    elif not isinstance(session.get_adapter(target.url), PinnedAdapter):
        raise ValueError("deliver needs a session from core.outbound.new_session()")
    assert session is not None
    address = target.address
    try:
        try:
            response = session.send(
                prepared,
                allow_redirects=False,
                stream=True,
                timeout=timeout,
                verify=ca_bundle or True,
                proxies={},
            )
        except requests.exceptions.ConnectTimeout:
            return outcome(ok=False, error="tempo esgotado ao conectar", retryable=True, address=address)
        except requests.exceptions.ReadTimeout:
            return outcome(ok=False, error="tempo esgotado esperando a resposta", retryable=True, address=address)
        except requests.exceptions.SSLError as error:
            reason = "certificado TLS inválido" if _is_certificate_error(error) else "falha na conexão segura (TLS)"
            return outcome(ok=False, error=f"{reason} para {target.hostname}", address=address)
        except requests.exceptions.ConnectionError as error:
            return outcome(ok=False, error=_connection_reason(error), retryable=True, address=address)
        except requests.exceptions.RequestException:
            return outcome(ok=False, error="falha ao enviar a requisição", retryable=True, address=address)
        try:
            status = response.status_code
            deadline = started + sum(timeout)
            content, truncated = _bounded_read(response, max_response_bytes, deadline)
        finally:
            response.close()
    finally:
        if own_session:
            session.close()

    excerpt = content[:500].decode("utf-8", errors="replace")
    common = {"status_code": status, "address": address, "response_excerpt": excerpt, "truncated": truncated}
    if 300 <= status < 400:
        location = (response.headers.get("Location") or "")[:200]
        where = f" para {location}" if location else ""
        return outcome(ok=False, error=f"redirecionamento não é seguido (HTTP {status}{where})", **common)
    if truncated:
        limit = f"{max_response_bytes // 1024} KiB" if max_response_bytes >= 1024 else f"{max_response_bytes} bytes"
        return outcome(ok=False, error=f"resposta grande demais (mais de {limit})", **common)
    if 200 <= status < 300:
        return outcome(ok=True, error=None, **common)
    retryable = status in (408, 425, 429) or status >= 500
    return outcome(ok=False, error=f"o servidor respondeu HTTP {status}", retryable=retryable, **common)


def _bounded_read(response: requests.Response, limit: int, deadline: float) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body (raw, undecoded) and whether there was more. Reading stops at
    ``deadline`` or on a broken connection: the status line has already decided the outcome, the body is only
    kept for the log (and an oversized one is refused)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            if time.monotonic() > deadline:
                break
            chunk = response.raw.read1(min(8192, limit + 1 - size), decode_content=False)  # what has arrived
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException):  # a reset or timeout mid-body
        pass
    content = b"".join(chunks)
    return content[:limit], size > limit


def _is_certificate_error(error: BaseException) -> bool:
    text = repr(error).lower()
    return "certificate" in text or "hostname" in text


def _connection_reason(error: BaseException) -> str:
    text = repr(error).lower()
    if "refused" in text:
        return "conexão recusada pelo servidor"
    if "reset" in text or "aborted" in text or "remotedisconnected" in text:
        return "o servidor fechou a conexão sem responder"
    if "timed out" in text or "timeout" in text:
        return "tempo esgotado ao conectar"
    if "unreachable" in text:
        return "servidor inacessível (rede)"
    return "falha de conexão com o servidor"


# --- retries ---------------------------------------------------------------------------------------------------


def backoff_delays(
    attempts: int = 6,
    base: float = 30.0,
    factor: float = 4.0,
    cap: float = 6 * 3600.0,
    jitter: float = 0.1,
    *,
    key: str = "",
) -> list[float]:
    """Seconds to wait before each retry after a failed delivery: ``attempts`` delays, so one delivery is tried
    at most ``attempts + 1`` times.

    Delay n (from 0) is ``min(cap, base * factor**n)``, then spread by ±``jitter`` (a fraction) and capped again.
    With the defaults: 30 s, 2 min, 8 min, 32 min, ~2 h 8 min, 6 h (≈ 8 h 50 min in all), each ±10 %. The
    jitter is derived from ``key`` (the delivery's id), so this is a pure function: one delivery always gets the
    same schedule, while many deliveries failing together spread out instead of retrying in one burst."""
    if attempts < 0 or base < 0 or factor < 1 or cap < 0 or not 0 <= jitter < 1:
        raise ValueError("invalid backoff parameters")
    delays = []
    for n in range(attempts):
        delay = min(cap, base * factor**n)
        if jitter:
            digest = hashlib.sha256(f"{key}:{n}".encode()).digest()
            unit = int.from_bytes(digest[:8], "big") / 2**64  # [0, 1)
            delay = min(cap, delay * (1 + jitter * (2 * unit - 1)))
        delays.append(round(delay, 3))
    return delays

