"""One line per event, phone numbers masked, secrets scrubbed."""

from __future__ import annotations

import logging
import sys
from typing import Iterable

from core.phones import mask_phones_in


class RedactingFormatter(logging.Formatter):
    """Formats a record, then masks phone numbers and replaces known secret values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self._secrets = [s for s in secrets if s and len(s) >= 8]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        text = mask_phones_in(text)
        # One event, one line: tracebacks are folded so log shippers keep them together.
        return text.replace("\n", " | ")


def configure_logging(secrets: Iterable[str] = (), level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing.formatter, RedactingFormatter):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
