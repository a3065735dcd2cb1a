"""NCRONTAB schedules of the timer functions, validated field by field before the host sees them.

Six fields, seconds first (Azure Functions' timer trigger); each a `*`, a value, a range `a-b`,
any of those with a step `/n`, or a comma-separated list of them. Month and weekday also take
names (`Jan`, `Mon`, or longer prefixes of the English names), as NCrontab does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MONTHS: tuple[str, ...] = ("january", "february", "march", "april", "may", "june", "july")
_MONTHS += ("august", "september", "october", "november", "december")
_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


# The ranges of NCrontab's CrontabFieldImpl (atifaziz/NCrontab), which the Functions host uses.
_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("weekday", 0, 6, _WEEKDAYS),
)
_TERM = re.compile(r"^(?P<range>\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>\d+))?$")
_MAX_TEXT = 200


def _value(field: _Field, token: str) -> int:
    if token.isdigit():
        number = int(token)
    else:
        lowered = token.lower()
        matches = [
            i
            for i, name in enumerate(field.names)
            if len(lowered) >= 3 and name.startswith(lowered)
        ]
        if not matches:
            kind = f"a number or a {field.name} name" if field.names else "a number"
            raise ValueError(f"{field.name} field: {token!r} is not {kind}")
        number = matches[0] + field.low
    if not field.low <= number <= field.high:
        raise ValueError(f"{field.name} field: {token} is outside {field.low}-{field.high}")
    return number


def _check_field(field: _Field, text: str) -> None:
    for term in text.split(","):
        match = _TERM.match(term)
        if not match:
            raise ValueError(f"{field.name} field: {term!r} is not *, a value, a range or a step")
        span, step = match["range"], match["step"]
        if step is not None and int(step) == 0:
            raise ValueError(f"{field.name} field: step 0 in {term!r}")
        if span == "*":
            continue
        low, _, high = span.partition("-")
        first = _value(field, low)
        if high and _value(field, high) < first:
            raise ValueError(f"{field.name} field: range {span!r} runs backwards")


def ncrontab(value: object) -> str:
    """A six-field NCRONTAB expression, kept as written when every field is valid."""
    schedule = str(value).strip()
    if len(schedule) > _MAX_TEXT:
        raise ValueError(f"NCRONTAB expression longer than {_MAX_TEXT} characters")
    fields = schedule.split()
    if len(fields) != len(_FIELDS):
        # A five-field Unix cron (no seconds) is the usual mistake.
        raise ValueError(
            "NCRONTAB needs 6 fields (second minute hour day month weekday), "
            f"got {len(fields)}: {schedule!r}"
        )
    for field, part in zip(_FIELDS, fields, strict=True):
        try:
            _check_field(field, part)
        except ValueError as exc:
            raise ValueError(f"{exc} in {schedule!r}") from None
    return schedule
