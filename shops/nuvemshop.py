"""nuvemshop connector (being written)."""

from __future__ import annotations

from typing import Mapping

from core.settings import Settings
from shops.base import Received


class _Connector:
    name = "nuvemshop"
    signature_header = "?"

    def verify(self, raw: bytes, headers: Mapping[str, str], settings: Settings) -> bool:
        return False

    def receive(self, raw: bytes, headers: Mapping[str, str], settings: Settings) -> Received:
        raise NotImplementedError


CONNECTOR = _Connector()
