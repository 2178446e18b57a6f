"""The store's opening hours: when a person can answer a shopper, and how long a handoff may wait.

Plain Python over a Session. The hours are stored in ``crm_settings.opening_hours`` as JSON,
``{"mon": [["09:00", "21:00"]], ..., "sun": [["14:00", "20:00"]]}``: up to three non-overlapping intervals per
day, each within the day (no interval crosses midnight); ``[]`` is a closed day. Times are wall-clock times in
the store's time zone; every computation converts through UTC, so a time zone with daylight saving works too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from models import CrmSettings

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
DAY_NAMES = ("segunda", "terça", "quarta", "quinta", "sexta", "sábado", "domingo")
# "na segunda", "no sábado"
DAY_ARTICLES = ("na", "na", "na", "na", "na", "no", "no")
MAX_INTERVALS = 3
RESPONSE_MINUTES = (5, 1440)  # the allowed range of crm_settings.handoff_response_minutes

DEFAULT_HOURS: dict = {**{day: [["09:00", "21:00"]] for day in DAYS[:6]}, "sun": [["14:00", "20:00"]]}

_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


class HoursInvalid(ValueError):
    """Refused hours, with a pt-BR message per field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _minutes(text) -> int | None:
    """Minutes since midnight of an "HH:MM" text, or None."""
    if not isinstance(text, str):
        return None
    found = _TIME.fullmatch(text.strip())
    if not found:
        return None
    return int(found.group(1)) * 60 + int(found.group(2))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _check_day(intervals: list[tuple[int, int]]) -> str | None:
    """The problem with one day's intervals (already parsed, start < end each), or None."""
    if len(intervals) > MAX_INTERVALS:
        return f"no máximo {MAX_INTERVALS} intervalos por dia"
    ordered = sorted(intervals)
    for (_, end), (start, _) in zip(ordered, ordered[1:]):
        if start < end:
            return "os intervalos do dia não podem se sobrepor"
    return None


def validate(raw) -> dict:
    """The stored JSON shape, normalised ("HH:MM", intervals in order, every day present; a missing day is
    closed). Raises HoursInvalid with one message per day key ("mon", ...) or "opening_hours"."""
    if not isinstance(raw, Mapping):
        raise HoursInvalid({"opening_hours": "informe os horários por dia da semana"})
    unknown = [key for key in raw if key not in DAYS]
    if unknown:
        raise HoursInvalid({"opening_hours": f"dia desconhecido: {str(unknown[0])[:20]}"})
    errors: dict[str, str] = {}
    result: dict[str, list[list[str]]] = {}
    for index, day in enumerate(DAYS):
        value = raw.get(day) or []
        if not isinstance(value, (list, tuple)):
            errors[day] = f"{DAY_NAMES[index]}: informe uma lista de intervalos"
            continue
        parsed: list[tuple[int, int]] = []
        problem = None
        for interval in value:
            if not isinstance(interval, (list, tuple)) or len(interval) != 2:
                problem = "cada intervalo tem abertura e fechamento"
                break
            start, end = _minutes(interval[0]), _minutes(interval[1])
            if start is None or end is None:
                problem = "horário inválido; use HH:MM, de 00:00 a 23:59"
                break
            if start >= end:
                problem = "o fechamento deve ser depois da abertura (no mesmo dia)"
                break
            parsed.append((start, end))
        problem = problem or _check_day(parsed)
        if problem:
            errors[day] = f"{DAY_NAMES[index]}: {problem}"
            continue
        result[day] = [[_hhmm(start), _hhmm(end)] for start, end in sorted(parsed)]
    if errors:
        raise HoursInvalid(errors)
    return result


def form_field(day: str, part: str) -> str:
    """The settings page's field names: hours_mon_open (checkbox), hours_mon_opens, hours_mon_closes."""
    return f"hours_{day}_{part}"


def parse_form(form: Mapping[str, str]) -> dict:
    """The hours from the settings page: per day an "open" checkbox and one interval (opens, closes). Errors
    are keyed by the form field they concern."""
    errors: dict[str, str] = {}
    result: dict[str, list[list[str]]] = {}
    for day in DAYS:
        if (form.get(form_field(day, "open")) or "").strip().lower() not in ("on", "1", "true", "yes"):
            result[day] = []
            continue
        opens_field, closes_field = form_field(day, "opens"), form_field(day, "closes")
        opens_text = (form.get(opens_field) or "").strip()
        closes_text = (form.get(closes_field) or "").strip()
        start, end = _minutes(opens_text), _minutes(closes_text)
        if not opens_text:
            errors[opens_field] = "informe a hora de abertura"
        elif start is None:
            errors[opens_field] = "hora inválida; use HH:MM, de 00:00 a 23:59"
        if not closes_text:
            errors[closes_field] = "informe a hora de fechamento"
        elif end is None:
            errors[closes_field] = "hora inválida; use HH:MM, de 00:00 a 23:59"
        if start is not None and end is not None:
            if start >= end:
                errors[closes_field] = "o fechamento deve ser depois da abertura (no mesmo dia)"
            else:
                result[day] = [[_hhmm(start), _hhmm(end)]]
    if errors:
        raise HoursInvalid(errors)
    return validate(result)


@dataclass(frozen=True)
class OpeningHours:
    """Per weekday (Monday first), the open intervals as minutes since midnight, in order."""

    days: tuple[tuple[tuple[int, int], ...], ...]

    @classmethod
    def from_json(cls, raw) -> OpeningHours:
        """From the stored JSON; raises HoursInvalid."""
        clean = validate(raw)
        return cls(tuple(tuple((_minutes(a), _minutes(b)) for a, b in clean[day]) for day in DAYS))

    def to_json(self) -> dict:
        return {day: [[_hhmm(a), _hhmm(b)] for a, b in self.days[i]] for i, day in enumerate(DAYS)}

    @property
    def never_open(self) -> bool:
        return not any(self.days)


def default_hours() -> OpeningHours:
    return OpeningHours.from_json(DEFAULT_HOURS)


def store_hours(session: Session) -> OpeningHours:
    """The hours in crm_settings; the default ones when unset or unreadable. Reads only (creates no row)."""
    row = session.get(CrmSettings, 1)
    raw = row.opening_hours if row is not None else None
    if raw is None:
        return default_hours()
    try:
        return OpeningHours.from_json(raw)
    except HoursInvalid:
        return default_hours()


def response_minutes(session: Session) -> int:
    row = session.get(CrmSettings, 1)
    value = row.handoff_response_minutes if row is not None else None
    return value if isinstance(value, int) and value > 0 else 30


# --- time arithmetic ----------------------------------------------------------------------------------------

def _at(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a local day."""
    local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz)
    return local.astimezone(timezone.utc)


def _intervals(hours: OpeningHours, when: datetime, tz: ZoneInfo) -> Iterator[tuple[datetime, datetime]]:
    """The open intervals (UTC instants) that end after ``when``, in order, without end. Empty when the store
    is never open."""
    if hours.never_open:
        return
    moment = when.astimezone(timezone.utc)
    day = when.astimezone(tz).date() - timedelta(days=1)  # a time zone change may shift a day's edge
    while True:
        for start, end in hours.days[day.weekday()]:
            start_at, end_at = _at(day, start, tz), _at(day, end, tz)
            if end_at > moment and end_at > start_at:
                yield start_at, end_at
        day += timedelta(days=1)


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("naive datetime; attach a time zone")
    return when


def is_open(hours: OpeningHours, when: datetime, tz: ZoneInfo) -> bool:
    moment = _aware(when).astimezone(timezone.utc)
    for start, _end in _intervals(hours, moment, tz):
        return start <= moment
    return False


def next_opening(hours: OpeningHours, when: datetime, tz: ZoneInfo) -> datetime | None:
    """The first moment at or after ``when`` at which the store is open (``when`` itself when open), in the
    store's time zone; None when it is never open."""
    moment = _aware(when).astimezone(timezone.utc)
    for start, _end in _intervals(hours, moment, tz):
        return max(start, moment).astimezone(tz)
    return None


def add_open_minutes(hours: OpeningHours, start: datetime, minutes: int, tz: ZoneInfo) -> datetime:
    """``start`` plus ``minutes`` of open time (closed time does not count), in the store's time zone. A store
    that is never open counts plain time: ``start + minutes``."""
    _aware(start)
    if hours.never_open:
        return start + timedelta(minutes=minutes)
    remaining = timedelta(minutes=max(minutes, 0))
    cursor = start.astimezone(timezone.utc)
    for opens, closes in _intervals(hours, cursor, tz):
        cursor = max(cursor, opens)
        available = closes - cursor
        if available >= remaining:
            return (cursor + remaining).astimezone(tz)
        remaining -= available
        cursor = closes
    raise AssertionError("unreachable: a store open some day has intervals without end")


# --- words ----------------------------------------------------------------------------------------------------

def _clock(minutes: int) -> str:
    """9h, 9h30, 0h."""
    hour, minute = divmod(minutes, 60)
    return f"{hour}h{minute:02d}" if minute else f"{hour}h"


def _from(minutes: int) -> str:
    """ "das 9h", "da 1h", "da meia-noite" (the article agrees with the hour)."""
    if minutes == 0:
        return "da meia-noite"
    return f"{'da' if minutes // 60 == 1 else 'das'} {_clock(minutes)}"


def _to(minutes: int) -> str:
    return f"{'à' if minutes // 60 == 1 else 'às'} {_clock(minutes)}"


def _days(first: int, last: int) -> str:
    if first == last:
        return DAY_NAMES[first]
    if last == first + 1:
        return f"{DAY_NAMES[first]} e {DAY_NAMES[last]}"
    return f"{DAY_NAMES[first]} a {DAY_NAMES[last]}"


def describe(hours: OpeningHours) -> str:
    """pt-BR: "segunda a sábado, das 9h às 21h; domingo, das 14h às 20h". Consecutive days with the same hours
    are grouped; closed days are left out."""
    if hours.never_open:
        return "fechado todos os dias"
    parts = []
    index = 0
    while index < len(DAYS):
        intervals = hours.days[index]
        last = index
        while last + 1 < len(DAYS) and hours.days[last + 1] == intervals:
            last += 1
        if intervals:
            times = " e ".join(f"{_from(a)} {_to(b)}" for a, b in intervals)
            parts.append(f"{_days(index, last)}, {times}")
        index = last + 1
    return "; ".join(parts)


def wait_phrase(minutes: int) -> str:
    """ "em até 30 minutos", "em até 1 hora", "em até 1h30", "em até 2 horas"."""
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"em até {minutes} minuto{'s' if minutes != 1 else ''}"
    if not rest:
        return f"em até {hours} hora{'s' if hours != 1 else ''}"
    return f"em até {hours}h{rest:02d}"


def when_someone_answers(session: Session, now: datetime, tz: ZoneInfo) -> str:
    """A phrase that completes "Um vendedor vai falar com você {phrase}.": "em até 30 minutos" while the store
    is open, "hoje a partir das 14h" / "amanhã (segunda) a partir das 9h" / "na quarta a partir das 9h" while
    it is closed, "assim que possível" when no hours are set at all."""
    hours = store_hours(session)
    if is_open(hours, now, tz):
        return wait_phrase(response_minutes(session))
    opening = next_opening(hours, now, tz)
    if opening is None:
        return "assim que possível"
    today = _aware(now).astimezone(tz).date()
    local = opening.astimezone(tz)
    at = f"a partir {_from(local.hour * 60 + local.minute)}"
    days = (local.date() - today).days
    weekday = local.weekday()
    if days == 0:
        return f"hoje {at}"
    if days == 1:
        return f"amanhã ({DAY_NAMES[weekday]}) {at}"
    if days < 7:
        return f"{DAY_ARTICLES[weekday]} {DAY_NAMES[weekday]} {at}"
    following = "próximo" if DAY_ARTICLES[weekday] == "no" else "próxima"
    return f"{DAY_ARTICLES[weekday]} {following} {DAY_NAMES[weekday]} {at}"
