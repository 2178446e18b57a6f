"""One line per event, phone numbers masked, secrets scrubbed: the app's own log, the dev server's access log
(werkzeug, under ``flask run``) and gunicorn's access and error logs (``gunicorn.conf.py``)."""

from __future__ import annotations

import logging
import sys
from typing import Iterable

from gunicorn import glogging

from core.phones import mask_phones_in

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# The secrets configure_logging() was given, for formatters built without their own list (gunicorn's, which are
# made in the master process before the app, and so its settings, is loaded in each worker).
_process_secrets: list[str] = []


def _usable(secrets: Iterable[str]) -> list[str]:
    return [s for s in secrets if s and len(s) >= 8]


class RedactingFormatter(logging.Formatter):
    """Formats a record with its personal data masked and its secrets replaced by ``[redacted]``.

    Only what a record carries from the code that logged it is redacted: the message with its arguments, the
    exception text and the stack. The layout's own fields (``asctime``, ``levelname``, ``name``, ``process``)
    are not, so a timestamp is never mistaken for a phone number. Newlines are folded into `` | `` so a
    traceback stays one line for log shippers.

    ``secrets=None`` uses the ones given to :func:`configure_logging` in this process, whenever that happens.
    """

    def __init__(self, secrets: Iterable[str] | None = (), fmt: str | None = DEFAULT_FORMAT,
                 datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)
        self._secrets = None if secrets is None else _usable(secrets)

    def redact(self, text: str) -> str:
        for secret in _process_secrets if self._secrets is None else self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return mask_phones_in(text)

    def format(self, record: logging.LogRecord) -> str:
        # logging.Formatter.format, with the record's own text redacted before the layout is applied. The
        # record keeps its raw exc_text cache (as logging does); record.message is the redacted text, which
        # any other formatter recomputes anyway.
        record.message = self.redact(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = f"{text.rstrip()}\n{self.redact(record.exc_text)}"
        if record.stack_info:
            text = f"{text.rstrip()}\n{self.redact(self.formatStack(record.stack_info))}"
        # One event, one line.
        return text.rstrip("\r\n").replace("\r\n", "\n").replace("\r", "\n").replace("\n", " | ")


def configure_logging(secrets: Iterable[str] = (), level: int = logging.INFO) -> None:
    """Log to stderr through RedactingFormatter, from the root logger (idempotent: one handler however often
    it is called). Loggers that propagate to root, as werkzeug's and RQ's do, are masked with it."""
    secrets = list(secrets)
    _process_secrets[:] = _usable(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing.formatter, RedactingFormatter):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # The dev server's access log (`flask run`): werkzeug gives the `werkzeug` logger a handler of its own, which
    # does not mask, only when no handler would take its records; with ours on root it propagates to root. Drop
    # one werkzeug added before this ran, so its lines are not printed twice, once unmasked.
    werkzeug_log = logging.getLogger("werkzeug")
    for existing in list(werkzeug_log.handlers):
        if type(existing).__module__.startswith("werkzeug"):
            werkzeug_log.removeHandler(existing)


class MaskingGunicornLogger(glogging.Logger):
    """gunicorn's logger (``logger_class`` in gunicorn.conf.py) with its access and error lines masked.

    gunicorn's loggers, ``gunicorn.access`` and ``gunicorn.error``, have their own handlers and do not propagate
    to root. After gunicorn sets them up (at start and on every reload), each handler's formatter is replaced by
    a RedactingFormatter with the same layout (the access log format is unchanged: the request line, with its
    query string, is the record's message and is masked; gunicorn's own timestamp atom ``%(t)s`` is left intact
    by the masking rule). An access log sent to ``-`` goes to stderr, where gunicorn's error log and the app's
    log go, so a process has one ordered stream (gunicorn alone would write it to stdout).
    """

    def setup(self, cfg) -> None:
        super().setup(cfg)
        if cfg.accesslog == "-":
            for handler in self.access_log.handlers:
                if getattr(handler, "_gunicorn", False) and isinstance(handler, logging.StreamHandler) \
                        and handler.stream is sys.stdout:
                    handler.setStream(sys.stderr)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                current = handler.formatter
                if isinstance(current, RedactingFormatter):
                    continue
                layout = getattr(current, "_fmt", None) or "%(message)s"
                handler.setFormatter(RedactingFormatter(None, layout, getattr(current, "datefmt", None)))
