"""A local stand-in for Twilio's Messages API, served over real HTTP (for multi-process tests and benchmarks).

Point ``TWILIO_API_URL`` at ``server.url``. POST /2010-04-01/Accounts/<SID>/Messages.json answers 201 with a new
sid; every accepted message is recorded with its arrival time; failures can be scripted. HTTP/1.1 keep-alive, as
Twilio's API offers, and no Nagle delay, so the fake is not the bottleneck a benchmark measures.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})/Messages\.json$")


class FakeTwilio:
    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.accepted: list[dict] = []
        self.arrivals: list[float] = []  # time.monotonic() of each accepted message, in arrival order
        self.requests = 0
        self.failures: deque[tuple[int, int]] = deque()  # (HTTP status, Twilio error code), consumed in order
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeTwilio":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, count: int, status: int, code: int) -> None:
        with self._lock:
            self.failures.extend([(status, code)] * count)

    def per_recipient(self) -> Counter:
        with self._lock:
            return Counter(m["To"] for m in self.accepted)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes; with Nagle on, the second waits for the client's delayed
            # ACK (40 ms on Linux) on a kept-alive connection, and the fake would cap the sender at ~25/s.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if fake.delay:
                    time.sleep(fake.delay)
                with fake._lock:
                    fake.requests += 1
                    if not _MESSAGES_PATH.match(self.path) or not form.get("To"):
                        failure = (404, 20404)
                    else:
                        failure = fake.failures.popleft() if fake.failures else None
                    if failure is None:
                        sid = "SM" + uuid.uuid4().hex
                        fake.accepted.append({**form, "sid": sid})
                        fake.arrivals.append(time.monotonic())
                if failure is not None:
                    status, code = failure
                    body = {"code": code, "message": f"scripted failure {code}", "status": status}
                else:
                    status, body = 201, {"sid": sid, "status": "queued", "to": form.get("To"), "body": form.get("Body")}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
