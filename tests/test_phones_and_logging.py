import http.client
import logging
import os
import re
import runpy
import signal
import socket
import subprocess
import sys
import time
import timeit
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from core.logging import MaskingGunicornLogger, RedactingFormatter, configure_logging
from core.phones import InvalidPhone, location_of, mask_phone, mask_phones_in, normalize_phone
from core.settings import PROJECT_ROOT
from tests.live_server import free_port


@pytest.mark.parametrize(
    "raw",
    ["+5511999990001", "whatsapp:+5511999990001", "(11) 99999-0001", "5511999990001", "+55 11 99999 0001",
     "551199990001"],  # the last: a WhatsApp id without the ninth digit
)
def test_brazilian_numbers_normalise_to_e164(raw):
    assert normalize_phone(raw) == "+5511999990001"


@pytest.mark.parametrize("raw", ["", "abc", "+55 11", "whatsapp:", "+5500000000000"])
def test_invalid_numbers_are_refused(raw):
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_location_from_ddd():
    loc = location_of("+5531988887777")
    assert (loc.ddd, loc.state, loc.city) == ("31", "MG", "Belo Horizonte")
    assert location_of("+14155238886").ddd is None


def test_masking():
    assert mask_phone("+5511999990001") == "+55 11 9****-0001"
    assert mask_phone("+551133334444") == "+55 11 3***-4444"


def test_log_lines_mask_phones_and_secrets_and_stay_on_one_line():
    formatter = RedactingFormatter(secrets=["tok_abcdefghijkl"])
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "sent to %s with tok_abcdefghijkl",
                                   ("whatsapp:+5511999990001",), sys.exc_info())
    line = formatter.format(record)
    assert "+55 11 9****-0001" in line
    assert "5511999990001" not in line
    assert "tok_abcdefghijkl" not in line and "[redacted]" in line
    assert "\n" not in line


# --- mask_phones_in: a phone number however a log line writes it ---------------------------------------------

MASKED_BR = "+55 11 9****-0001"  # +5511999990001, as mask_phone writes it
IN_URL = "+55-11-9****-0001"  # the same in a URL or form body: no spaces, the request line keeps its fields

PHONES_IN_TEXT = [
    # E.164, bare digits, with and without country code
    ("+5511999990001", MASKED_BR),
    ("5511999990001", MASKED_BR),
    ("11999990001", MASKED_BR),
    ("to +5521988887777 now", "to +55 21 9****-7777 now"),
    # formatted
    ("+55 (11) 99999-0001", MASKED_BR),
    ("(11) 99999-0001", MASKED_BR),
    ("11 99999-0001", MASKED_BR),
    ("+55 11 9 9999 0001", MASKED_BR),
    ("55-11-99999-0001", MASKED_BR),
    ("11.99999.0001", MASKED_BR),
    ("+55.11.99999.0001", MASKED_BR),
    ("+55 11 99999 0001", MASKED_BR),
    ("011 99999-0001", MASKED_BR),  # trunk prefix
    ("0055 11 99999 0001", MASKED_BR),  # international prefix instead of '+'
    ("11\u00a099999-0001", MASKED_BR),  # NBSP
    # without the ninth digit (old WhatsApp ids), and landlines
    ("1199990001", MASKED_BR),
    ("+551199990001", MASKED_BR),
    ("(11) 9999-0001", MASKED_BR),
    ("551199990001", MASKED_BR),
    ("+55 11 3333-4444", "+55 11 3***-4444"),
    ("1133334444", "+55 11 3***-4444"),
    ("tel: (21) 3333-4444", "tel: +55 21 3***-4444"),
    ("+55 11 1234-5678", "+55 11 1***-5678"),  # '+' and a possible length: masked though not a valid number
    # WhatsApp addresses
    ("whatsapp:+5511999990001", "whatsapp:" + MASKED_BR),
    ("whatsapp:5511999990001", "whatsapp:" + MASKED_BR),
    ("whatsapp:551199990001", "whatsapp:" + MASKED_BR),
    ("whatsapp:14155238886", "whatsapp:+*******8886"),  # foreign, no '+': a WhatsApp address says it is a phone
    # URL-encoded: query strings and paths, single and double encoding
    ("GET /simulator/messages?phone=%2B5511999990001 HTTP/1.1", f"GET /simulator/messages?phone={IN_URL} HTTP/1.1"),
    ("GET /console/conversas?q=%2B55+21+98888+7777 HTTP/1.1", "GET /console/conversas?q=+55-21-9****-7777 HTTP/1.1"),
    ("?phone=%2B55%2011%2099999-0001", f"?phone={IN_URL}"),
    ("?q=%2811%29+99999-0001", f"?q={IN_URL}"),
    ("?q=%2811%29%2099999-0001&p=2", f"?q={IN_URL}&p=2"),
    ("?phone=%252B5511999990001", f"?phone={IN_URL}"),
    ("?phone=%2B55%252011%252099999-0001", f"?phone={IN_URL}"),
    ("/api/customers/%2B5511999990001", f"/api/customers/{IN_URL}"),
    ("/api/customers/+55%2011%2098888-1001", "/api/customers/+55-11-9****-1001"),
    ("/api/customers/+5511988887777/orders", "/api/customers/+55-11-9****-7777/orders"),
    ("/api/customers/5511988887777", "/api/customers/+55-11-9****-7777"),
    # JSON and form bodies
    ('{"phone": "+55 11 99999-0001"}', '{"phone": "+55 11 9****-0001"}'),
    ('{"wa_id":"5511999990001"}', '{"wa_id":"' + MASKED_BR + '"}'),
    ('{"to": "whatsapp:+5511999990001", "sent": 950}', '{"to": "whatsapp:' + MASKED_BR + '", "sent": 950}'),
    ("From=whatsapp%3A%2B5511999990001&To=whatsapp%3A%2B14155238886",
     f"From=whatsapp%3A{IN_URL}&To=whatsapp%3A+*******8886"),
    ("WaId=5511999990001&Body=oi", f"WaId={IN_URL}&Body=oi"),
    ("phone=%2B5500000000000", "phone=+55-00-0****-0000"),  # a phone field: masked though not a valid number
    ("phone=12345678901", "phone=+*******8901"),
    # foreign E.164
    ("+14155238886", "+*******8886"),
    ("+1 (415) 523-8886", "+*******8886"),
    ("+44 7911 123456", "+********3456"),
    ("+351 912 345 678", "+********5678"),
    # several numbers, and numbers next to other numbers
    ("11 99999-0001 21 98888-7777", "+55 11 9****-0001 +55 21 9****-7777"),
    ("+55 11 99999-0001 +55 21 98888-7777", "+55 11 9****-0001 +55 21 9****-7777"),
    ("sent 950 11999990001", "sent 950 " + MASKED_BR),
    ("[5511999990001, 5521988887777]", f"[{MASKED_BR}, +55 21 9****-7777]"),
    ("key wa:cart_5511999990001_x", f"key wa:cart_{MASKED_BR}_x"),  # '_' is a gap, not a letter
    ("(+5511999990001).", f"({MASKED_BR})."),
    ("2026-12-01 11999990001", "2026-12-01 " + MASKED_BR),  # a date and a phone: the date is not joined in
    # a bare 13-digit number starting with 55 is a phone, even next to a time word
    ("due 5511999990001", "due " + MASKED_BR),
    ("ts=5511999990001", f"ts={IN_URL}"),
    # epoch seconds in the DDD 11-14 range are never epoch-shaped: numbers without the ninth digit
    ("due 1199990001", "due " + MASKED_BR),
]


@pytest.mark.parametrize(("text", "expected"), PHONES_IN_TEXT)
def test_phone_numbers_are_masked_however_written(text, expected):
    masked = mask_phones_in(text)
    assert masked == expected
    assert mask_phones_in(masked) == masked  # idempotent


NOT_PHONES = [
    # timestamps and dates
    "2026-12-01 09:15:33,123",
    "2026-12-01T09:15:33.123456+00:00",
    "2026-12-01T09:15:33Z",
    "01/12/2026 09:15",
    "[01/Dec/2026:09:15:33 +0000]",
    # ids
    "SM" + "0123456789" * 3 + "ab",
    "AC" + "1" * 32,
    "MM5511999990001abcdef5511999990001a",
    "123e4567-e89b-12d3-a456-426614174000",
    "550e8400-e29b-41d4-a716-551199999000",
    "wa-deliver-12-0",
    "rq:job:wa-deliver-1234567-0",
    "high: bot.jobs.deliver(12) (wa-deliver-12-1764582933)",
    "x11999990001",
    "11999990001abc",
    "0x7f3a1b2c3d4e",
    # money, counts, durations
    "R$ 1.234,56",
    "R$ 12.345.678,90",
    "159.80",
    '{"claimed": 1000, "sent": 950}',
    '{"claimed": 1000, "sent": 950, "skipped": 50, "elapsed_ms": 1234}',
    "retry in 300s",
    "0.123456789012",
    "pid 12345",
    "order #100234",
    "error 63016",
    "CEP 01310-100",
    "CNPJ 12.345.678/0001-90",
    # network
    "127.0.0.1",
    "10.0.0.12",
    "127.0.0.1:5000",
    "listening at http://0.0.0.0:8000 (12345)",
    "Chrome/120.0.0.0 Safari/537.36",
    '127.0.0.1 - - [01/Dec/2026:09:15:33 +0000] "POST /webhooks/twilio/inbound HTTP/1.1" 200 15432 "-" "curl/8.5.0"',
    '127.0.0.1 - - [01/Dec/2026 09:15:33] "GET /healthz HTTP/1.1" 503 -',
    "+00:00",
    # epoch values: milliseconds never; seconds next to a time word, a unit or a fraction, or ending an id
    "1764582933123",
    "due 1764582933123",
    "ts=1764582933123",
    "took 1764582933123ms",
    '{"due": 1764582933123}',
    "due=1764582933",
    "created_at 1764582933",
    "last_ts_1764582933",
    "score 1764582933.123",
    "1764582933 s",
    "rq:job:1764582933",
    "1764582933123456",  # microseconds
    # already masked
    MASKED_BR,
    IN_URL,
    "+*******8886",
]


@pytest.mark.parametrize("text", NOT_PHONES)
def test_other_numbers_are_left_alone(text):
    assert mask_phones_in(text) == text


def test_enough_cases():
    assert len(PHONES_IN_TEXT) >= 40 and len(NOT_PHONES) >= 30


def test_masking_a_plain_line_is_cheap():
    """It runs on every log line; most have no phone number and stop at one regex search."""
    line = '127.0.0.1 - - [01/Dec/2026:09:15:33 +0000] "GET /simulator/messages?phone=%2B5511999990001 HTTP/1.1" 200 16'
    runs = 2000
    seconds = min(timeit.repeat(lambda: mask_phones_in(line), number=runs, repeat=3)) / runs
    assert seconds < 0.001  # ~20 us on a laptop; generous for loaded CI machines


@pytest.mark.parametrize("text", ["9" * 20000, "1 " * 10000, "%2B" * 7000, "11-" * 7000, "(11) 9-" * 3000,
                                  "11 99999-0001 " * 1500, "%252B55%2520" * 1500, "1." * 10000, "(" * 5000 + "1" * 20])
def test_pathological_lines_take_linear_time(text):
    started = time.perf_counter()
    mask_phones_in(text)
    assert time.perf_counter() - started < 2  # ~0.1 s at most on a laptop: no catastrophic backtracking


# --- RedactingFormatter ---------------------------------------------------------------------------------------

def _record(msg, args=(), exc_info=None, name="app", created=None):
    record = logging.LogRecord(name, logging.INFO if exc_info is None else logging.ERROR, __file__, 1, msg, args,
                               exc_info)
    if created is not None:
        record.created = created
        record.msecs = 0
    return record


def test_formatter_masks_an_encoded_phone_in_the_message_and_its_arguments():
    formatter = RedactingFormatter()
    line = formatter.format(_record("GET %s", ("/simulator/messages?phone=%2B5511999990001",)))
    assert line.endswith(f"GET /simulator/messages?phone={IN_URL}")
    assert "999990001" not in line
    # a message without arguments is not %-formatted a second time after masking
    assert formatter.format(_record("q=%2B55+21+98888+7777 100%")).endswith("q=+55-21-9****-7777 100%")


def test_formatter_never_masks_its_own_timestamp():
    """asctime is the layout's, not the record's: even a timestamp that reads as a phone number stays intact."""
    formatter = RedactingFormatter(datefmt="+55 %m 9%d%H-%M%S")  # 29 Nov, 23:59:59 -> "+55 11 92923-5959"
    formatter.converter = time.gmtime
    created = datetime(2026, 11, 29, 23, 59, 59, tzinfo=timezone.utc).timestamp()
    line = formatter.format(_record("sent to %s", ("+5511999990001",), created=created))
    assert line == f"+55 11 92923-5959 INFO app sent to {MASKED_BR}"
    assert mask_phones_in("+55 11 92923-5959") != "+55 11 92923-5959"  # the date format does read as a phone


def test_formatter_keeps_real_timestamps_intact():
    formatter = RedactingFormatter()
    formatter.converter = time.gmtime
    created = datetime(2026, 12, 1, 9, 15, 33, tzinfo=timezone.utc).timestamp()
    line = formatter.format(_record("claimed %s", (1000,), created=created))
    assert line == "2026-12-01 09:15:33,000 INFO app claimed 1000"


def test_formatter_folds_and_masks_a_traceback():
    formatter = RedactingFormatter(secrets=["tok_abcdefghijkl"])
    try:
        raise RuntimeError("Twilio: The 'To' number whatsapp:+5511999990001 is not valid\nurl=/x?to=%2B5521988887777 "
                           "token tok_abcdefghijkl")
    except RuntimeError:
        record = _record("delivery failed", exc_info=sys.exc_info())
    line = formatter.format(record)
    assert "\n" not in line
    assert " | Traceback (most recent call last): | " in line
    assert f"whatsapp:{MASKED_BR} is not valid | url=/x?to=+55-21-9****-7777" in line
    assert "999990001" not in line and "988887777" not in line
    assert "tok_abcdefghijkl" not in line and "[redacted]" in line
    # the record keeps what other handlers (pytest's caplog) need: its raw message and traceback
    assert record.getMessage() == "delivery failed" and "+5511999990001" in record.exc_text


def test_formatter_masks_stack_info():
    record = _record("where am I")
    record.stack_info = "Stack (most recent call last):\n  File 'x.py', line 1, in lookup('+5511999990001')"
    line = RedactingFormatter().format(record)
    assert "\n" not in line and MASKED_BR in line and "5511999990001" not in line


@pytest.fixture
def fresh_logging():
    """Root and werkzeug logger state, and the process secrets, restored after a test that configures logging."""
    import core.logging as core_logging

    root, werkzeug_log = logging.getLogger(), logging.getLogger("werkzeug")
    saved = (list(root.handlers), root.level, list(werkzeug_log.handlers), list(core_logging._process_secrets))
    yield
    root.handlers[:], werkzeug_log.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    core_logging._process_secrets[:] = saved[3]


def test_werkzeug_access_lines_go_through_the_masking_formatter(fresh_logging, capsys):
    from werkzeug._internal import _ColorStreamHandler, _log

    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_log.addHandler(_ColorStreamHandler())  # as werkzeug adds it when it logs before the app is built
    configure_logging(["tok_abcdefghijkl"])
    assert not any(type(h).__module__.startswith("werkzeug") for h in werkzeug_log.handlers)
    _log("info", '127.0.0.1 - - [01/Dec/2026 09:15:33] "%s" %s %s',
         "GET /simulator/messages?phone=%2B5511999990001&t=tok_abcdefghijkl HTTP/1.1", "200", "-")
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (f'INFO werkzeug 127.0.0.1 - - [01/Dec/2026 09:15:33] "GET /simulator/messages?phone={IN_URL}'
            f'&t=[redacted] HTTP/1.1" 200 -') in err


def test_configure_logging_shares_its_secrets_with_formatters_built_without_their_own(fresh_logging, capsys):
    late = RedactingFormatter(None)  # as gunicorn's are: built in the master, before the app and its settings
    configure_logging(s for s in ["tok_abcdefghijkl"])  # any iterable
    logging.getLogger("app").warning("root too: tok_abcdefghijkl")
    assert capsys.readouterr().err.endswith("root too: [redacted]\n")
    assert late.format(_record("token tok_abcdefghijkl")).endswith("token [redacted]")
    assert RedactingFormatter().format(_record("token tok_abcdefghijkl")).endswith("token tok_abcdefghijkl")


# --- gunicorn -------------------------------------------------------------------------------------------------

@pytest.fixture
def gunicorn_logger():
    """A MaskingGunicornLogger on a fresh gunicorn Config; gunicorn's (global) loggers emptied afterwards."""
    from gunicorn.config import Config

    def make(**settings):
        cfg = Config()
        for key, value in settings.items():
            cfg.set(key, value)
        return MaskingGunicornLogger(cfg)

    yield make
    for name in ("gunicorn.access", "gunicorn.error"):
        logging.getLogger(name).handlers.clear()


def test_gunicorn_conf_uses_the_masking_logger_and_leaves_workers_and_bind_to_the_command_line():
    from gunicorn.util import load_class

    conf = runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    assert load_class(conf["logger_class"]) is MaskingGunicornLogger
    assert conf["accesslog"] == "-"
    assert not {"workers", "bind", "loglevel"} & set(conf)


def test_gunicorn_access_and_error_lines_are_masked(gunicorn_logger, capsys):
    from datetime import timedelta
    from types import SimpleNamespace

    logger = gunicorn_logger(accesslog="-", loglevel="warning")  # as bench/webhook.py runs it
    for log in (logger.access_log, logger.error_log):
        assert log.handlers and all(isinstance(h.formatter, RedactingFormatter) for h in log.handlers)
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/console/conversas?q=%2B55+21+98888+7777",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.12", "HTTP_USER_AGENT": "curl/8.5.0",
               "PATH_INFO": "/console/conversas", "QUERY_STRING": "q=%2B55+21+98888+7777"}
    response = SimpleNamespace(status="302 FOUND", headers=[("Location", "/entrar")], sent=325)
    logger.access(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=12))
    try:
        raise ValueError("no customer +5511988887777")
    except ValueError:
        logger.exception("Error handling request /api/customers/%2B5511988887777")
    err = capsys.readouterr().err  # the access log, sent to "-", is on stderr with the error log
    access, error = err.splitlines()
    # gunicorn's default access format, its own [time] atom untouched
    assert re.fullmatch(r'10\.0\.0\.12 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
                        r'"GET /console/conversas\?q=\+55-21-9\*\*\*\*-7777 HTTP/1\.1" 302 325 "-" "curl/8\.5\.0"',
                        access), access
    assert re.match(r"\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}\] \[\d+\] \[ERROR\] Error handling request "
                    r"/api/customers/\+55-11-9\*\*\*\*-7777 \| Traceback", error), error
    assert "no customer +55 11 9****-7777" in error
    assert "988887777" not in err and not re.search(r"98888\D{0,3}7777", err)


# --- black box: the real servers' logs -------------------------------------------------------------------------

LEAKY_REQUESTS = [
    ("/simulator/messages?phone=%2B5511999990001", f"GET /simulator/messages?phone={IN_URL} HTTP/1.1"),
    ("/console/conversas?q=%2B55+21+98888+7777", "GET /console/conversas?q=+55-21-9****-7777 HTTP/1.1"),
    ("/api/customers/%2B5511988887777", "GET /api/customers/+55-11-9****-7777 HTTP/1.1"),
    ("/simulator/messages?phone=%2B55%2011%2099999-0001", f"GET /simulator/messages?phone={IN_URL} HTTP/1.1"),
    ("/api/customers/+55%2011%2098888-1001", "GET /api/customers/+55-11-9****-1001 HTTP/1.1"),
]
# The subscriber digits of those numbers, however separated (up to 3 characters between two digits).
RAW_DIGITS = [re.compile(r"\D{0,3}".join(digits)) for digits in ("999990001", "988887777", "988881001")]


@pytest.fixture
def server_env(tmp_path, redis_url, redis_client):
    """The environment of a served app: its own migrated SQLite database, the suite's Redis, its own key prefix."""
    from tests.conftest import delete_prefixed

    prefix = f"t{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "GUNICORN_CMD_ARGS")}
    env.update(APP_ENV="test", DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}", REDIS_URL=redis_url,
               INSTANCE_PATH=str(tmp_path), REDIS_KEY_PREFIX=prefix)
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    yield env
    delete_prefixed(redis_client, prefix)


def _serve_and_request(command: list[str], env: dict, port: int, log_path) -> str:
    """Start ``command``, make the leaky requests once it listens, stop it; return what it wrote to stderr."""
    with open(log_path, "wb") as stderr:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "server did not start: " + log_path.read_text(errors="replace")[-3000:]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        for path, _ in LEAKY_REQUESTS:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", path)  # sent as written: http.client does not re-encode
            connection.getresponse().read()
            connection.close()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
    return log_path.read_text(errors="replace")


def _assert_masked(output: str) -> None:
    for _, logged in LEAKY_REQUESTS:
        assert logged in output, output[-3000:]
    for raw in RAW_DIGITS:
        assert not raw.search(output), (raw.pattern, raw.search(output).group(), output[-3000:])


@pytest.mark.slow
def test_gunicorn_access_log_masks_phone_numbers(server_env, tmp_path):
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    port = free_port()
    # --no-control-socket: gunicorn's default control socket is one per user, shared with other gunicorns
    output = _serve_and_request([gunicorn, "-w", "1", "-b", f"127.0.0.1:{port}", "--no-control-socket",
                                 "app:create_app()"], server_env, port, tmp_path / "gunicorn.log")
    _assert_masked(output)
    # gunicorn's error log keeps its own timestamps
    assert re.search(r"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}\] \[\d+\] \[INFO\] Booting worker", output,
                     re.M), output[-3000:]


@pytest.mark.slow
def test_flask_run_access_log_masks_phone_numbers(server_env, tmp_path):
    port = free_port()
    output = _serve_and_request([sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port)],
                                server_env, port, tmp_path / "flask.log")
    _assert_masked(output)
    access = [line for line in output.splitlines() if " INFO werkzeug 127.0.0.1 - - [" in line]
    assert len(access) == len(LEAKY_REQUESTS), output[-3000:]
