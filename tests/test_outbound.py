"""core.outbound: the signed-webhook transport and its SSRF defences, against real local HTTP(S) servers."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import urllib3.util.connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import outbound
from core.outbound import INTERNAL_NETWORK, OutboundRefused, check_url, deliver, verify_signature

SECRET = "s3gredo-do-webhook"
REAL_GETADDRINFO = socket.getaddrinfo


# --- a fake DNS ------------------------------------------------------------------------------------------------


class FakeDns:
    """Answers for made-up names; IP literals go to the real resolver (that is how sockets connect)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}  # name -> successive answers (the last one repeats)
        self.lookups: list[str] = []

    def set(self, name: str, *answers: list[str]) -> None:
        self.answers[name] = [list(answer) for answer in answers]

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(host_text)
        except ValueError:
            pass
        else:
            return REAL_GETADDRINFO(host, port, family, type, proto, flags)
        self.lookups.append(host_text)
        queue = self.answers.get(host_text)
        if not queue:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        port_number = int(port or 0)
        results = []
        for address in answer:
            if ":" in address:
                results.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port_number, 0, 0)))
            else:
                results.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port_number)))
        return results


@pytest.fixture
def dns(monkeypatch) -> FakeDns:
    fake = FakeDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


# --- a local webhook receiver ----------------------------------------------------------------------------------


class Receiver:
    """A real HTTP server in a thread. Paths choose the answer: /ok, /redirect, /big, /big-unsized, /slow, /error."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[dict] = []
        self.sni: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": raw, "server": self.server.server_address}
                )
                path = self.path.split("?")[0]
                if path == "/redirect":
                    self._answer(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
                elif path == "/big":
                    self._answer(200, b"x" * (200 * 1024))
                elif path == "/big-unsized":
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    for _ in range(50):
                        try:
                            self.wfile.write(b"y" * 8192)
                        except OSError:
                            return
                elif path == "/slow":
                    time.sleep(1.5)
                    self._answer(200, b"late")
                elif path == "/trickle":  # a 200 whose body drips one byte every 0.2 s
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    for _ in range(100):
                        try:
                            self.wfile.write(b"z")
                            self.wfile.flush()
                        except OSError:
                            return
                        time.sleep(0.2)
                elif path == "/error":
                    self._answer(500, b"boom")
                else:
                    self._answer(200, b'{"recebido": true}')

            def _answer(self, status, content, headers=None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: receiver.sni.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def local_deliver(url: str, **kwargs) -> outbound.Delivery:
    kwargs.setdefault("production", False)
    kwargs.setdefault("allow_private", True)  # test-only: the receiver listens on 127.0.0.1
    return deliver(url, {"evento": "entrou_no_segmento", "cliente": {"nome": "Ana Lúcia"}}, SECRET, **kwargs)


# --- check_url: form -------------------------------------------------------------------------------------------


def test_https_only_in_production(dns):
    dns.set("hooks.example.com", ["93.184.216.34"])
    with pytest.raises(OutboundRefused) as refused:
        check_url("http://hooks.example.com/x", production=True)
    assert refused.value.field == "url" and "https" in refused.value.message
    assert check_url("https://hooks.example.com/x", production=True).address == "93.184.216.34"
    assert check_url("http://hooks.example.com/x", production=False).port == 80


@pytest.mark.parametrize(
    "url",
    ["ftp://hooks.example.com/", "file:///etc/passwd", "gopher://hooks.example.com/", "javascript:alert(1)", "", "   "],
)
def test_other_schemes_and_empty_urls_are_refused(url, dns):
    with pytest.raises(OutboundRefused):
        check_url(url, production=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:senha@hooks.example.com/",
        "https://user@hooks.example.com/",
        "https://:senha@hooks.example.com/",
        "https://hooks.example.com@169.254.169.254/",
    ],
)
def test_credentials_in_the_url_are_refused(url, dns):
    dns.set("hooks.example.com", ["93.184.216.34"])
    with pytest.raises(OutboundRefused) as refused:
        check_url(url, production=True)
    assert "senha" in refused.value.message


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com:0/", "https://hooks.example.com:99999/", "https://hooks.example.com:abc/",
     "https://hooks.exa mple.com/", "https://hooks.example.com/\r\nX: y", "https:///path", "https://-bad-.com/"],
)
def test_malformed_hosts_and_ports_are_refused(url, dns):
    dns.set("hooks.example.com", ["93.184.216.34"])
    with pytest.raises(OutboundRefused):
        check_url(url, production=True)


def test_an_idna_hostname_is_resolved_in_its_ascii_form(dns):
    dns.set("xn--lojadajos-j4a.com.br", ["93.184.216.34"])
    checked = check_url("https://LojaDaJosé.com.br:8443/ganchos?x=1#frag", production=True)
    assert checked.hostname == "xn--lojadajos-j4a.com.br"
    assert checked.url == "https://xn--lojadajos-j4a.com.br:8443/ganchos?x=1"
    assert checked.host_header == "xn--lojadajos-j4a.com.br:8443"
    assert checked.path == "/ganchos?x=1"
    assert dns.lookups == ["xn--lojadajos-j4a.com.br"]


def test_an_unresolvable_name_is_a_transient_refusal(dns):
    with pytest.raises(OutboundRefused) as refused:
        check_url("https://nao-existe.example.com/", production=True)
    assert refused.value.transient and "DNS" in refused.value.message


def test_allow_private_is_refused_in_production():
    with pytest.raises(ValueError):
        check_url("https://127.0.0.1/", production=True, allow_private=True)


# --- check_url: addresses --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
        "http://169.254.0.1/",
        "http://127.0.0.1:5000/",
        "http://127.8.9.10/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[fc00::abcd]/",
        "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 around 169.254.169.254
        "http://10.0.0.1/",
        "http://10.255.255.255/",
        "http://192.168.0.1/",
        "http://192.168.255.254/",
        "http://172.16.0.1/",
        "http://172.31.255.255/",
        "http://100.64.0.1/",  # CGNAT
        "http://100.127.255.254/",
        "http://0.0.0.0/",
        "http://0.1.2.3/",
        "http://[::]/",
        "http://224.0.0.1/",  # multicast
        "http://239.255.255.250/",
        "http://[ff02::1]/",
        "http://240.0.0.1/",  # reserved
        "http://255.255.255.255/",
        "http://198.18.0.1/",
        "http://localhost/",
        "http://api.localhost/",
    ],
)
def test_internal_addresses_are_refused(url, dns):
    with pytest.raises(OutboundRefused) as refused:
        check_url(url, production=False)
    assert refused.value.field == "url"
    assert refused.value.message == INTERNAL_NETWORK
    assert dns.lookups == []  # judged by its form, no DNS needed


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # 127.0.0.1 as one integer
        "http://0x7f000001/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",  # octal
        "http://127.1/",
        "http://0x7f.0.0.1/",
        "http://017700000001/",
        "http://2852039166/",  # 169.254.169.254
        "http://0xa9fea9fe/",
        "http://167772161/",  # 10.0.0.1
        "http://3232235521/",  # 192.168.0.1
        "http://0/",
    ],
)
def test_integer_octal_and_hex_hosts_to_internal_addresses_are_refused(url, dns):
    with pytest.raises(OutboundRefused) as refused:
        check_url(url, production=False)
    assert refused.value.message == INTERNAL_NETWORK
    assert dns.lookups == []


@pytest.mark.parametrize("url", ["http://134744072/", "http://0x08080808/", "http://010.010.010.010/", "http://shop.123/"])
def test_nonstandard_numeric_hosts_are_refused_even_when_public(url, dns):
    with pytest.raises(OutboundRefused):
        check_url(url, production=False)
    assert dns.lookups == []


@pytest.mark.parametrize(
    "address", ["10.1.2.3", "192.168.1.10", "172.20.0.5", "127.0.0.1", "169.254.169.254", "100.64.1.1", "::1",
                "fd12:3456::1", "fe80::abcd", "::ffff:192.168.0.1", "0.0.0.0"],
)
def test_a_hostname_resolving_to_an_internal_address_is_refused(address, dns):
    dns.set("interno.example.com", [address])
    with pytest.raises(OutboundRefused) as refused:
        check_url("https://interno.example.com/gancho", production=True)
    assert refused.value.message == INTERNAL_NETWORK


def test_a_hostname_resolving_to_public_and_private_addresses_is_refused(dns):
    dns.set("misto.example.com", ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(OutboundRefused):
        check_url("https://misto.example.com/", production=True)
    dns.set("misto6.example.com", ["2606:2800:220:1:248:1893:25c8:1946", "::1"])
    with pytest.raises(OutboundRefused):
        check_url("https://misto6.example.com/", production=True)


def test_a_hostname_resolving_to_public_addresses_is_accepted_and_pins_the_first(dns):
    dns.set("publico.example.com", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
    checked = check_url("https://publico.example.com/a", production=True)
    assert checked.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert checked.address == "93.184.216.34"


def _internal(address) -> bool:
    """The test's own oracle, from ipaddress's flags and the ranges the brief lists."""
    named = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
             "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "::1/128", "::/128", "fc00::/7", "fe80::/10", "ff00::/8",
             # special-purpose blocks (RFC 6890) refused whole, even where a Python version calls a part global
             "192.0.0.0/24", "198.18.0.0/15", "2001::/23", "2001:db8::/32", "100::/64", "fec0::/10"]
    if address.version == 6:
        embedded = [address.ipv4_mapped, address.sixtofour]
        if address in ipaddress.ip_network("64:ff9b::/96") or address in ipaddress.ip_network("64:ff9b:1::/48"):
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if any(inner is not None and _internal(inner) for inner in embedded):
            return True
    in_named = any(
        address.version == network.version and address in network for network in map(ipaddress.ip_network, named)
    )
    flags = (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
             or address.is_reserved or address.is_unspecified or not address.is_global)
    if address.version == 6:
        flags = flags or address.is_site_local
    return in_named or flags


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(address=st.one_of(
    st.ip_addresses(),
    st.ip_addresses(v=4).map(lambda a: ipaddress.IPv6Address("::ffff:" + str(a))),
    st.sampled_from(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10",
                     "127.0.0.0/8", "fc00::/7", "fe80::/10"]).flatmap(lambda n: st.ip_addresses(network=n)),
))
def test_a_literal_ip_is_refused_iff_it_is_internal(address, dns):
    host = f"[{address}]" if address.version == 6 else str(address)
    try:
        checked = check_url(f"http://{host}/", production=False)
    except OutboundRefused as refused:
        assert _internal(address), (str(address), refused.message)
    else:
        assert not _internal(address), str(address)
        assert checked.address == address.compressed
    assert dns.lookups == []


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(addresses=st.lists(st.ip_addresses(), min_size=1, max_size=4, unique=True))
def test_a_hostname_is_refused_iff_any_resolved_address_is_internal(addresses, dns):
    dns.set("qualquer.example.com", [str(a) for a in addresses])
    try:
        checked = check_url("https://qualquer.example.com/", production=True)
    except OutboundRefused:
        assert any(_internal(a) for a in addresses)
    else:
        assert not any(_internal(a) for a in addresses)
        assert checked.address == str(addresses[0])


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=st.integers(min_value=0, max_value=2**32 - 1), form=st.sampled_from(["{:d}", "0x{:x}", "0{:o}"]))
def test_any_integer_host_is_refused(number, form, dns):
    with pytest.raises(OutboundRefused):
        check_url(f"http://{form.format(number)}/", production=False)
    assert dns.lookups == []


# --- signatures ------------------------------------------------------------------------------------------------


def test_signature_verification():
    raw = outbound.encode_body({"a": 1, "nome": "Conceição"})
    now = 1_767_225_600
    header = outbound.signature(SECRET, now, raw)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature(SECRET, str(now), raw, header, now=now + 10)
    assert verify_signature(SECRET, now, raw, header.upper().replace("SHA256=", "sha256="), now=now)


def test_signature_verification_rejects_a_wrong_secret_a_changed_body_and_an_old_timestamp():
    raw = outbound.encode_body({"pedido": 123})
    now = 1_767_225_600
    header = outbound.signature(SECRET, now, raw)
    assert not verify_signature("outro-segredo", now, raw, header, now=now)
    assert not verify_signature(SECRET, now, raw.replace(b"123", b"124"), header, now=now)
    assert not verify_signature(SECRET, now, raw, header, now=now + 301)  # a replay, six minutes later
    assert not verify_signature(SECRET, now, raw, header, now=now - 301)  # from the future
    assert not verify_signature(SECRET, now + 1, raw, header, now=now)  # timestamp is part of what is signed
    for bad in (None, "", "sha1=" + header[7:], header[7:], "sha256=zz", "sha256=ção"):
        assert not verify_signature(SECRET, now, raw, bad, now=now)
    for bad_timestamp in (None, "", "-1", "1e9", "１２３"):
        assert not verify_signature(SECRET, bad_timestamp, raw, header, now=now)


# --- deliver, against a real local server ----------------------------------------------------------------------


def test_delivery_posts_signed_json_that_the_receiver_verifies(receiver):
    result = local_deliver(f"http://127.0.0.1:{receiver.port}/gancho?loja=1", delivery_id="entrega-42", attempt=2)
    assert result.ok and result.status_code == 200 and result.error is None
    assert result.attempt == 2 and result.address == "127.0.0.1" and result.duration_ms >= 0
    assert result.response_excerpt == '{"recebido": true}'
    [got] = receiver.requests
    headers = got["headers"]
    assert got["path"] == "/gancho?loja=1"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == outbound.USER_AGENT
    assert headers["Host"] == f"127.0.0.1:{receiver.port}"
    assert headers["X-Webhook-Id"] == "entrega-42"
    assert verify_signature(SECRET, headers["X-Webhook-Timestamp"], got["body"], headers["X-Webhook-Signature"],
                            now=time.time())
    assert not verify_signature("outro", headers["X-Webhook-Timestamp"], got["body"], headers["X-Webhook-Signature"],
                                now=time.time())
    assert json.loads(got["body"]) == {"evento": "entrou_no_segmento", "cliente": {"nome": "Ana Lúcia"}}
    assert "Authorization" not in headers and "Cookie" not in headers


def test_a_redirect_is_not_followed(receiver):
    result = local_deliver(f"http://127.0.0.1:{receiver.port}/redirect")
    assert not result.ok and result.status_code == 302 and not result.retryable
    assert result.error.startswith("redirecionamento não é seguido (HTTP 302")
    assert "169.254.169.254" in result.error
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("path", ["/big", "/big-unsized"])
def test_an_oversized_response_is_cut_and_reported(receiver, path):
    result = local_deliver(f"http://127.0.0.1:{receiver.port}{path}", max_response_bytes=4096)
    assert not result.ok and result.status_code == 200 and result.truncated
    assert result.error == "resposta grande demais (mais de 4 KiB)"
    assert len(result.response_excerpt) <= 500


def test_a_timeout_is_reported(receiver):
    result = local_deliver(f"http://127.0.0.1:{receiver.port}/slow", timeout=(1, 0.3))
    assert not result.ok and result.status_code is None and result.retryable
    assert result.error == "tempo esgotado esperando a resposta"
    assert result.duration_ms < 1400


def test_a_dripping_body_is_read_for_a_bounded_time(receiver):
    result = local_deliver(f"http://127.0.0.1:{receiver.port}/trickle", timeout=(0.5, 0.5))
    assert result.ok and result.status_code == 200  # the status decides; the body is only logged
    assert 0 < len(result.response_excerpt) < 100
    assert result.duration_ms < 2500


def test_a_server_error_is_reported_and_retryable(receiver):
    result = local_deliver(f"http://127.0.0.1:{receiver.port}/error")
    assert not result.ok and result.status_code == 500 and result.retryable
    assert result.error == "o servidor respondeu HTTP 500" and result.response_excerpt == "boom"


def test_a_refused_connection_is_reported():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = local_deliver(f"http://127.0.0.1:{port}/")
    assert not result.ok and result.retryable and result.error == "conexão recusada pelo servidor"


def test_delivery_to_an_internal_address_is_refused_without_connecting(receiver, dns):
    dns.set("interno.example.com", ["127.0.0.1"])
    for url in (f"http://127.0.0.1:{receiver.port}/", f"http://interno.example.com:{receiver.port}/",
                f"http://2130706433:{receiver.port}/"):
        result = deliver(url, {"a": 1}, SECRET, production=False)
        assert not result.ok and not result.retryable and result.error == INTERNAL_NETWORK
        assert result.status_code is None and result.address is None
    assert receiver.requests == []


def test_deliver_insists_on_a_pinning_session(receiver):
    with pytest.raises(ValueError):
        local_deliver(f"http://127.0.0.1:{receiver.port}/", session=requests.Session())
    session = outbound.new_session()
    try:
        for _ in range(2):  # one session, connections reused across deliveries
            assert local_deliver(f"http://127.0.0.1:{receiver.port}/", session=session).ok
    finally:
        session.close()
    assert len(receiver.requests) == 2


def test_the_pinned_adapter_refuses_an_unpinned_request():
    session = outbound.new_session()
    with pytest.raises(requests.exceptions.InvalidURL):
        session.post("http://127.0.0.1:9/", data=b"{}")
    session.close()


# --- DNS rebinding: the connection goes to the checked address -------------------------------------------------


def test_rebinding_dns_cannot_move_the_connection(monkeypatch, dns):
    """The name answers a public address when checked, then a private one: the socket still goes to the first."""
    dns.set("rebind.example.com", ["93.184.216.34"], ["10.0.0.5"])
    connected = []

    def fake_create_connection(address, *args, **kwargs):
        connected.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", fake_create_connection)
    result = deliver("https://rebind.example.com/gancho", {"a": 1}, SECRET, production=True)
    assert result.address == "93.184.216.34" and not result.ok
    assert connected == [("93.184.216.34", 443)]
    assert dns.lookups == ["rebind.example.com"]  # resolved once, by the check


def test_rebinding_dns_over_real_sockets_reaches_only_the_checked_server(monkeypatch, dns):
    """Two real servers on one port: 127.0.0.1 stands for the checked public address, 127.0.0.2 for the internal
    one the name switches to after the check. Only the first may receive the webhook."""
    good = Receiver("127.0.0.1")
    try:
        trap = Receiver("127.0.0.2", good.port)
    except OSError:
        good.close()
        pytest.skip("127.0.0.2 is not available here")
    try:
        monkeypatch.setattr(
            outbound, "forbidden_reason", lambda address: None if str(address) == "127.0.0.1" else INTERNAL_NETWORK
        )
        dns.set("rebind.example.com", ["127.0.0.1"], ["127.0.0.2"])
        url = f"http://rebind.example.com:{good.port}/gancho"
        assert check_url(url, production=False).address == "127.0.0.1"
        with pytest.raises(OutboundRefused):  # the name now answers the trap: a fresh check refuses it
            check_url(url, production=False)
        dns.set("rebind.example.com", ["127.0.0.1"], ["127.0.0.2"])
        dns.lookups.clear()
        result = deliver(url, {"a": 1}, SECRET, production=False)
        assert result.ok and result.address == "127.0.0.1"
        assert len(good.requests) == 1 and trap.requests == []
        assert good.requests[0]["headers"]["Host"] == f"rebind.example.com:{good.port}"
        assert dns.lookups == ["rebind.example.com"]
    finally:
        good.close()
        trap.close()


# --- TLS: SNI and the certificate are checked against the hostname, not the pinned IP --------------------------


def _certificates(tmp_path, names: list[str]):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = tmp_path / "ca.pem", tmp_path / "leaf.pem", tmp_path / "leaf.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return str(ca_path), context


def test_tls_to_the_pinned_ip_uses_the_hostname_for_sni_and_the_certificate(tmp_path, dns):
    ca_path, context = _certificates(tmp_path, ["hooks.loja.test"])
    server = Receiver(tls=context)
    try:
        dns.set("hooks.loja.test", ["127.0.0.1"])
        result = local_deliver(f"https://hooks.loja.test:{server.port}/gancho", ca_bundle=ca_path)
        assert result.ok, result.error
        assert result.address == "127.0.0.1"
        assert server.sni == ["hooks.loja.test"]
        [got] = server.requests
        assert got["headers"]["Host"] == f"hooks.loja.test:{server.port}"
        assert verify_signature(SECRET, got["headers"]["X-Webhook-Timestamp"], got["body"],
                                got["headers"]["X-Webhook-Signature"], now=time.time())
    finally:
        server.close()


def test_tls_with_a_certificate_for_another_name_fails(tmp_path, dns):
    ca_path, context = _certificates(tmp_path, ["outro.loja.test"])
    server = Receiver(tls=context)
    try:
        dns.set("hooks.loja.test", ["127.0.0.1"])
        result = local_deliver(f"https://hooks.loja.test:{server.port}/gancho", ca_bundle=ca_path)
        assert not result.ok and not result.retryable
        assert result.error == "certificado TLS inválido para hooks.loja.test"
        assert server.requests == []
        # and an untrusted CA (the system's bundle) fails the same way
        result = local_deliver(f"https://hooks.loja.test:{server.port}/gancho")
        assert not result.ok and result.error.startswith("certificado TLS inválido")
    finally:
        server.close()


# --- retry schedule --------------------------------------------------------------------------------------------


def test_backoff_schedule_without_jitter():
    assert outbound.backoff_delays(jitter=0) == [30, 120, 480, 1920, 7680, 21600]
    assert outbound.backoff_delays(3, base=10, factor=2, jitter=0) == [10, 20, 40]
    assert outbound.backoff_delays(0) == []


@given(key=st.text(max_size=20), attempts=st.integers(0, 12), jitter=st.floats(0, 0.5))
def test_backoff_jitter_is_bounded_capped_and_deterministic(key, attempts, jitter):
    plain = outbound.backoff_delays(attempts, jitter=0)
    spread = outbound.backoff_delays(attempts, jitter=jitter, key=key)
    assert spread == outbound.backoff_delays(attempts, jitter=jitter, key=key)
    assert len(spread) == attempts
    for exact, delay in zip(plain, spread):
        assert exact * (1 - jitter) - 0.01 <= delay <= min(6 * 3600, exact * (1 + jitter)) + 0.01


def test_backoff_jitter_spreads_deliveries():
    firsts = {outbound.backoff_delays(1, key=f"entrega-{n}")[0] for n in range(50)}
    assert len(firsts) > 40 and all(27 <= d <= 33 for d in firsts)
    with pytest.raises(ValueError):
        outbound.backoff_delays(3, jitter=1.5)
