"""Load generator for the webhook benchmark, run in its own process: N inbound WhatsApp messages signed exactly
as Twilio signs them, C at a time, over plain HTTP/1.1 (one connection per request, as Twilio does).

    python -m bench.loadgen BASE_URL AUTH_TOKEN N C   ->  one JSON line: throughput, p50/p99 latency, statuses
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

PATH = "/webhooks/whatsapp"
SHOPPERS = 500


def signed_requests(base_url: str, token: str, count: int) -> list[bytes]:
    """Every request prepared (and signed) before the clock starts: the generator only sends."""
    validator = RequestValidator(token)
    host = urlsplit(base_url).netloc
    prepared = []
    for i in range(count):
        phone = f"+55119{(i % SHOPPERS):08d}"
        form = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "1" * 32, "From": f"whatsapp:{phone}",
                "To": "whatsapp:+14155238886", "Body": ["oi", "tem tênis preto 42?", "quero o 1", "carrinho"][i % 4],
                "NumMedia": "0", "ProfileName": f"Cliente {i % SHOPPERS}", "WaId": phone[1:]}
        body = urlencode(form).encode()
        signature = validator.compute_signature(base_url.rstrip("/") + PATH, form)
        head = (f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        prepared.append(head.encode() + body)
    return prepared


async def _send(host: str, port: int, payload: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(payload)
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()  # until the server closes
    writer.close()
    status = int(status_line.split()[1]) if status_line else 0
    return status, time.perf_counter() - started


async def _run(base_url: str, payloads: list[bytes], concurrency: int) -> dict:
    parts = urlsplit(base_url)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)
    latencies: list[float] = []
    statuses: Counter = Counter()

    async def client() -> None:
        while not queue.empty():
            payload = queue.get_nowait()
            try:
                status, seconds = await _send(parts.hostname, parts.port, payload)
            except OSError:
                status, seconds = 0, 0.0
            statuses[status] += 1
            if status == 200:
                latencies.append(seconds)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def at(fraction: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1000, 1) if latencies else 0.0

    return {"requests": len(payloads), "concurrency": concurrency, "seconds": round(elapsed, 2),
            "per_s": round(statuses[200] / elapsed, 1), "p50_ms": at(0.50), "p99_ms": at(0.99),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}}


def main(argv: list[str]) -> int:
    base_url, token, count, concurrency = argv[0], argv[1], int(argv[2]), int(argv[3])
    payloads = signed_requests(base_url, token, count)
    print(json.dumps(asyncio.run(_run(base_url, payloads, concurrency))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
