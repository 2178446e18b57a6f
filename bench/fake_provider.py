"""A minimal stand-in for Twilio's Messages API for the send benchmark, served over real HTTP from a thread.

POST /2010-04-01/Accounts/<SID>/Messages.json answers 201 {"sid": "SM...", "status": "queued"} and records
the recipient and the arrival time, so the benchmark can compute the send rate the provider actually saw.
HTTP/1.1 keep-alive, as Twilio's API offers, and no Nagle delay: the fake must not be the bottleneck it measures.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})/Messages\.json$")


class FakeProvider:
    def __init__(self) -> None:
        self.arrivals: list[float] = []  # time.monotonic() of each accepted message, in arrival order
        self.recipients: Counter = Counter()
        self.refused = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-provider", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self.arrivals)

    def __enter__(self) -> "FakeProvider":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes; with Nagle on, the second waits for the client's delayed
            # ACK (40 ms on Linux) on a kept-alive connection, and the fake would cap the sender at ~25/s.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # keep the benchmark's stderr readable
                pass

            def _answer(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if not _MESSAGES_PATH.match(self.path) or not form.get("To"):
                    with fake._lock:
                        fake.refused += 1
                    self._answer(404, {"code": 20404, "message": "not found", "status": 404})
                    return
                with fake._lock:
                    fake.arrivals.append(time.monotonic())
                    fake.recipients[form["To"]] += 1
                self._answer(201, {"sid": "SM" + uuid.uuid4().hex, "status": "queued", "to": form["To"]})

        return Handler
