"""The calendar days a query may name. Outside this range a period's bounds cannot be turned into instants in
every time zone (``date.max + 1 day`` overflows), and no shop has data there anyway."""

from __future__ import annotations

from datetime import date

EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2100, 12, 31)


def supported(day: date) -> bool:
    return EARLIEST_DAY <= day <= LATEST_DAY
