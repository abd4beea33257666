"""Cron strings for project schedules, checked when params.yaml is read (not when a scheduler first fires).

Five fields, as in crontab(5): minute, hour, day of month, month, day of week. Each field is ``*`` or a
comma-separated list of values and ranges, each with an optional ``/step``; months and weekdays may be named
(``jan``, ``mon``), Sunday is 0 or 7. The macros ``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``
and ``@yearly``/``@annually`` are accepted too. This is the subset Prefect's CronSchedule accepts everywhere;
Prefect's random/hashed extensions (``R``, ``H``) are not. A schedule that can never fire (``0 3 31 2 *``:
no 31 February) is refused too. Plain Python, so components/ need no Prefect.
"""

from __future__ import annotations

MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
FIELDS = [  # name, lowest, highest, names (numbered from `lowest`)
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day of month", 1, 31, []),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, WEEKDAYS),
]


def _value(text: str, field: str, low: int, high: int, names: list[str]) -> int:
    if text.lower() in names:
        return names.index(text.lower()) + low
    if not text.isdigit():
        raise ValueError(f"{field} {text!r} is not a number" + (f" or one of {', '.join(names)}" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{field} {value} is outside {low}-{high}")
    return value


def _check_field(text: str, field: str, low: int, high: int, names: list[str]) -> set[int]:
    """The values the field matches, after checking each part of it."""
    values: set[int] = set()
    for part in text.split(","):
        span, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"{field} step {step!r} must be a positive whole number")
        if span == "*":
            start, end = low, high
        else:
            first, dash, last = span.partition("-")
            start = _value(first, field, low, high, names)
            end = _value(last, field, low, high, names) if dash else (high if step else start)
            if start > end:
                raise ValueError(f"{field} range {span!r} runs backwards")
        values.update(range(start, end + 1, int(step or 1)))
    return values


DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]  # February: 29 in leap years


def _fires(days: str, day_set: set[int], month_set: set[int]) -> bool:
    """Whether some month of the schedule has one of its days of the month. Prefect's croniter refuses the
    schedule ("failed to find next date") when none has, whatever the day of week says; any other schedule
    fires within about four years (a 29 February)."""
    return days == "*" or any(day <= DAYS_IN_MONTH[month - 1] for month in month_set for day in day_set)


def validate_cron(expression: str) -> str:
    """Return ``expression`` unchanged if it is a valid cron string; raise ValueError saying what is wrong."""
    text = expression.strip()
    if text.lower() in MACROS:
        return expression
    parts = text.split()
    if len(parts) != len(FIELDS):
        raise ValueError(
            f"cron string {expression!r} has {len(parts)} field(s); expected 5 "
            "(minute hour day-of-month month day-of-week) or one of " + ", ".join(sorted(MACROS))
        )
    matched = []
    for part, (field, low, high, names) in zip(parts, FIELDS):
        try:
            matched.append(_check_field(part, field, low, high, names))
        except ValueError as exc:
            raise ValueError(f"cron string {expression!r}: {exc}") from None
    if not _fires(parts[2], matched[2], matched[3]):
        raise ValueError(
            f"cron string {expression!r} never fires: no month it names has day {parts[2]} "
            "(February has at most 29 days; April, June, September and November 30)"
        )
    return expression
