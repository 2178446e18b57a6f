"""The period of a page (``de``/``ate`` in the query string), as the period form sends it: days typed as
dd/mm/aaaa (or ISO yyyy-mm-dd from links and bookmarks), in the store's calendar.

A day that cannot be read is a 400 page with the period form and the field's error (``PeriodInvalid``, answered
in web/__init__.py), never a silent fallback and never a 500. Absent days take the page's default."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from flask import request

from core.inputs import InputError, format_typed_day, parse_typed_day
from models import utcnow

MAX_PERIOD_DAYS = 366
FIELDS = {"de": "De", "ate": "Até"}


class PeriodInvalid(InputError):
    """One or both days of the period cannot be used: ``errors`` by field, ``values`` as typed."""

    def __init__(self, errors: dict[str, str], values: dict[str, str]) -> None:
        field = next(iter(errors))
        super().__init__(field, errors[field])
        self.errors = errors
        self.values = values


def requested_days(tz, default_days: int | None = None) -> tuple[date, date]:
    """The ``de``/``ate`` days of the query string. Absent: this month so far, or the last ``default_days``
    days (an absent ``de`` with an ``ate`` before the default start: the ``ate`` day alone)."""
    today = utcnow().astimezone(tz).date()
    default_first = today - timedelta(days=default_days - 1) if default_days else today.replace(day=1)
    values = {name: request.args.get(name, "") for name in FIELDS}
    errors: dict[str, str] = {}
    days: dict[str, date | None] = {}
    for name in FIELDS:
        try:
            days[name] = parse_typed_day(values[name], name)
        except InputError as exc:
            errors[name] = exc.message
    if not errors:
        last = days["ate"] or today
        first = days["de"] or min(default_first, last)
        if last < first:
            errors["ate"] = "a data final deve ser igual ou posterior à inicial"
        elif (last - first).days + 1 > MAX_PERIOD_DAYS:
            errors["ate"] = f"o período pode ter no máximo {MAX_PERIOD_DAYS} dias"
    if errors:
        raise PeriodInvalid(errors, values)
    return first, last


def period_from_args(tz, default_days: int | None = None) -> tuple[datetime, datetime, str, str]:
    """``requested_days`` as UTC instants [start, end) plus the days as the form shows them (dd/mm/aaaa)."""
    first, last = requested_days(tz, default_days)
    start = datetime.combine(first, time.min, tzinfo=tz).astimezone(timezone.utc)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz).astimezone(timezone.utc)
    return start, end, format_typed_day(first), format_typed_day(last)
