"""A small cron expression parser: 5 fields, lists, ranges, steps, month and day names.

Semantics follow robfig/cron v3 (what Kubernetes CronJobs use): fields are minute, hour,
day of month, month, day of week (0 or 7 = Sunday); when both day fields are restricted a
time matches if either matches. A day field is unrestricted only when it is ``*`` (or
``*/1``): ``*/2`` is a restriction like any list, as in robfig/cron (which clears the "star"
bit for a step above 1). ``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly``
are accepted. Pure: no clock of its own, callers pass times in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from chaosmesh_ext.errors import GameDayError

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# (name, low, high, names for low..)
FIELDS = [
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
]
# How far ahead to look for the next time before calling an expression one that never
# fires (e.g. "0 0 30 2 *"); leap days recur within 8 years.
_HORIZON_DAYS = 366 * 8 + 2


def _is_star(part: str) -> bool:
    """robfig/cron's star bit: some list item is ``*`` with no step above 1."""
    for item in part.split(","):
        base, _, step = item.partition("/")
        if base == "*" and (not step or step.strip() == "1"):
            return True
    return False


class CronError(GameDayError, ValueError):
    """A bad cron expression; the message names the field and the problem."""


@dataclass(frozen=True)
class CronExpression:
    """A parsed expression; ``next_after(t)`` gives the next firing time after ``t``."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        if not isinstance(text, str) or not text.strip():
            raise CronError("cron expression is empty")
        source = text.strip()
        expanded = MACROS.get(source.lower(), source)
        parts = expanded.split()
        if len(parts) != 5:
            raise CronError(
                f"cron expression {source!r}: expected 5 fields (minute hour day-of-month "
                f"month day-of-week), got {len(parts)}"
            )
        sets = [
            _field(source, part, name, lo, hi, names)
            for part, (name, lo, hi, names) in zip(parts, FIELDS, strict=True)
        ]
        weekdays = frozenset(d % 7 for d in sets[4])
        expr = cls(
            text=source,
            minutes=sets[0],
            hours=sets[1],
            days=sets[2],
            months=sets[3],
            weekdays=weekdays,
            days_restricted=not _is_star(parts[2]),
            weekdays_restricted=not _is_star(parts[4]),
        )
        expr._check_fires()
        return expr

    def _check_fires(self) -> None:
        # A day-of-month no chosen month has (30 February) would never fire.
        longest = {
            1: 31,
            2: 29,
            3: 31,
            4: 30,
            5: 31,
            6: 30,
            7: 31,
            8: 31,
            9: 30,
            10: 31,
            11: 30,
            12: 31,
        }
        if (
            self.days_restricted
            and not self.weekdays_restricted
            and all(d > longest[m] for d in self.days for m in self.months)
        ):
            raise CronError(
                f"cron expression {self.text!r}: never fires (no such day in those months)"
            )

    def day_matches(self, when: datetime) -> bool:
        if when.month not in self.months:
            return False
        dom = when.day in self.days
        dow = (when.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        # An unrestricted field holds every day, so this is the other field's own verdict.
        return dom and dow

    def matches(self, when: datetime) -> bool:
        return self.day_matches(when) and when.hour in self.hours and when.minute in self.minutes

    def next_after(self, when: datetime) -> datetime:
        """The first firing time strictly after ``when`` (same tzinfo, whole minutes)."""
        start = when.replace(second=0, microsecond=0)
        day = start.replace(hour=0, minute=0)
        for _ in range(_HORIZON_DAYS):
            if self.day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate > when:
                            return candidate
            day = (day + timedelta(days=1)).replace(hour=0, minute=0)
        raise CronError(f"cron expression {self.text!r}: never fires")

    def between(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Firing times ``t`` with ``after < t <= until``."""
        t = self.next_after(after)
        while t <= until:
            yield t
            t = self.next_after(t)


def _value(source: str, token: str, name: str, lo: int, hi: int, names: list[str] | None) -> int:
    if names and token.lower() in names:
        return names.index(token.lower()) + (1 if name == "month" else 0)
    if not token.isdigit():
        raise CronError(
            f"cron expression {source!r}: {name}: {token!r} is not a number"
            + (f" or a name ({', '.join(names)})" if names else "")
        )
    value = int(token)
    if not lo <= value <= hi:
        raise CronError(f"cron expression {source!r}: {name}: {value} is out of range {lo}-{hi}")
    return value


def _field(
    source: str, part: str, name: str, lo: int, hi: int, names: list[str] | None
) -> frozenset[int]:
    values: set[int] = set()
    for item in part.split(","):
        if not item:
            raise CronError(f"cron expression {source!r}: {name}: empty list item in {part!r}")
        body, _, step_text = item.partition("/")
        step = 1
        if _:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"cron expression {source!r}: {name}: bad step {step_text!r}")
            step = int(step_text)
        if body == "*":
            first, last = lo, hi
        elif "-" in body:
            a, _, b = body.partition("-")
            first = _value(source, a, name, lo, hi, names)
            last = _value(source, b, name, lo, hi, names)
            if first > last:
                raise CronError(
                    f"cron expression {source!r}: {name}: range {body!r} runs backwards"
                )
        else:
            first = _value(source, body, name, lo, hi, names)
            # "5/15" means from 5 to the end in steps of 15 (as Vixie cron and Kubernetes).
            last = hi if _ else first
        values.update(range(first, last + 1, step))
    return frozenset(values)
