"""Cron schedules read exactly as a Kubernetes CronJob reads them.

The CronJob controller and the API server's validation parse ``spec.schedule`` with
robfig/cron v3's ``ParseStandard`` (github.com/robfig/cron, ``parser.go``) and compute fire
times with ``SpecSchedule.Next`` (``spec.go``), in the zone of ``spec.timeZone``
(kubernetes ``pkg/apis/batch/validation/validation.go``: ``validateScheduleFormat``,
``validateTimeZone``). This module follows those rules so that ``gameday schedule`` on one
host and the exported CronJob fire at the same times:

- 5 fields: minute, hour, day of month, month, day of week (0-6, Sunday is 0; ``7`` is out
  of range there). Lists, ranges, ``*/n``, ``n/step`` (from n to the end of the range),
  month and day names (any case). ``?`` is the same as ``*``.
- A field is a "star" only when one of its items is ``*`` or ``?`` with no step or step 1
  (``getRange`` keeps ``starBit`` only then). ``*/2`` is *not* a star. When the day-of-month
  or the day-of-week field is a star a day must match both; when neither is, either
  (``dayMatches``). So ``0 0 * * */2`` fires on Sun, Tue, Thu, Sat, and ``0 0 */2 * 1`` on odd
  days of the month *or* Mondays.
- Descriptors ``@yearly @annually @monthly @weekly @daily @midnight @hourly``, exactly so
  spelt. ``@every`` is refused: its times depend on when the CronJob was created.
- ``CRON_TZ=Zone`` / ``TZ=Zone`` in front of a schedule is read as the schedule's zone;
  Kubernetes refuses both inside ``spec.schedule`` on create ("cannot use TZ or CRON_TZ in
  schedule, use timeZone field instead"), so the CronJob carries the zone in
  ``spec.timeZone``.
- Times are wall-clock times in the zone. A time a DST change skips does not fire that day;
  a time it repeats fires twice (robfig's ``spec_test.go``: "2am nightly job (skipped)",
  "1am nightly job (runs twice)").

Stricter than robfig, with a message instead of a surprise: empty list items (``1,,2``),
``*-5`` and a schedule that can never fire (``0 0 30 2 *``, which Kubernetes accepts and never
runs) are refused. Not reproduced: robfig's special case for zones whose midnight a DST
change skips. Pure: no clock of its own, callers pass times in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chaosmesh_ext.errors import GameDayError

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# robfig's parseDescriptor, spelt exactly as it matches them (case-sensitive).
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# (name, low, high, names starting at low)
FIELDS = [
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 6, DAYS),
]
DEFAULT_ZONE = "UTC"
_ZONE_PREFIXES = ("CRON_TZ=", "TZ=")
# validateTimeZone: each '/'-separated part of an IANA name.
_ZONE_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")
_LONGEST_MONTH = dict(enumerate([31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], start=1))
# How far ahead to look before calling a schedule one that never fires; leap days recur
# within 8 years.
_HORIZON_DAYS = 366 * 8 + 2
# DST changes move wall clocks by at most 2 h: a time earlier on the wall than this before
# "now" cannot be after it.
_DST_SLACK = timedelta(hours=3)


class CronError(GameDayError, ValueError):
    """A bad cron expression or time zone; the message names the field and the problem."""


def zone_of(name: str) -> ZoneInfo:
    """The IANA zone ``name``, checked as Kubernetes checks ``spec.timeZone``."""
    parts = name.split("/") if isinstance(name, str) else [""]
    if not name or any(
        p in (".", "..") or p.startswith("-") or not _ZONE_PART.match(p) for p in parts
    ):
        raise CronError(f"time zone {name!r}: not an IANA time zone name such as Europe/Paris")
    if name.lower() == "local":
        raise CronError(
            "time zone 'Local': name an explicit zone (Kubernetes refuses Local: it would be "
            "the controller's zone, not yours)"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"time zone {name!r}: unknown time zone") from None


def split_zone(text: str) -> tuple[str | None, str]:
    """``("Europe/Paris", "0 3 * * *")`` from ``"CRON_TZ=Europe/Paris 0 3 * * *"``."""
    source = text.strip()
    for prefix in _ZONE_PREFIXES:
        if source.startswith(prefix):
            zone, _, rest = source[len(prefix) :].partition(" ")
            if not rest.strip():
                raise CronError(f"cron expression {text!r}: a time zone but no schedule after it")
            return zone, rest.strip()
    return None, source


@dataclass(frozen=True)
class CronExpression:
    """A parsed schedule in its zone; ``next_after(t)`` gives the next fire time after ``t``."""

    text: str  # the schedule without any CRON_TZ= prefix: what spec.schedule carries
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6
    days_star: bool
    weekdays_star: bool
    timezone: str = DEFAULT_ZONE

    @classmethod
    def parse(cls, text: str, timezone: str | None = None) -> CronExpression:
        """Parse ``text`` (optionally ``CRON_TZ=Zone ...``); ``timezone`` is the zone when the
        text names none (UTC when neither does). A text and a ``timezone`` naming different
        zones is an error."""
        if not isinstance(text, str) or not text.strip():
            raise CronError("cron expression is empty")
        prefixed, source = split_zone(text)
        if prefixed and timezone and prefixed != timezone:
            raise CronError(
                f"cron expression {text!r}: names time zone {prefixed!r} but the time zone "
                f"is {timezone!r}; give it once"
            )
        zone = prefixed or timezone or DEFAULT_ZONE
        zone_of(zone)
        if source.startswith("@"):
            if source.startswith("@every"):
                raise CronError(
                    f"cron expression {source!r}: @every is not supported: its times depend on "
                    "when the CronJob was created; write the times, e.g. '*/30 * * * *'"
                )
            if source not in MACROS:
                raise CronError(
                    f"cron expression {source!r}: unknown descriptor; use one of "
                    + ", ".join(MACROS)
                )
            parts = MACROS[source].split()
        else:
            parts = source.split()
        if len(parts) != 5:
            hint = " (Kubernetes takes no seconds field)" if len(parts) == 6 else ""
            raise CronError(
                f"cron expression {source!r}: expected 5 fields (minute hour day-of-month "
                f"month day-of-week), got {len(parts)}{hint}"
            )
        fields = [
            _field(source, part, name, lo, hi, names)
            for part, (name, lo, hi, names) in zip(parts, FIELDS, strict=True)
        ]
        expr = cls(
            text=source,
            minutes=fields[0][0],
            hours=fields[1][0],
            days=fields[2][0],
            months=fields[3][0],
            weekdays=fields[4][0],
            days_star=fields[2][1],
            weekdays_star=fields[4][1],
            timezone=zone,
        )
        expr._check_fires()
        return expr

    @property
    def zone(self) -> tzinfo:
        return UTC if self.timezone == DEFAULT_ZONE else zone_of(self.timezone)

    def _check_fires(self) -> None:
        # Only a day-of-month no chosen month has (30 February), with the weekday a star,
        # can never match: any restricted weekday occurs in every month.
        if self.weekdays_star and not any(
            d <= _LONGEST_MONTH.get(m, 31) for d in self.days for m in self.months
        ):
            raise CronError(
                f"cron expression {self.text!r}: never fires (no such day in those months)"
            )

    def day_matches(self, day: date) -> bool:
        """robfig's ``dayMatches`` (plus the month)."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def next_after(self, when: datetime) -> datetime:
        """The first fire time strictly after ``when``, in the schedule's zone (whole minutes).

        A naive ``when`` is read as wall-clock time in the schedule's zone.
        """
        zone = self.zone
        after = (when if when.tzinfo else when.replace(tzinfo=zone)).astimezone(UTC)
        local = after.astimezone(zone).replace(tzinfo=None)
        earliest = local - _DST_SLACK if _dst_near(after, zone) else local
        first_day = earliest.date()
        # Wall-clock order is not time order around a repeated hour (01:30 EDT comes before
        # 01:00 EST): keep the earliest instant found until the wall clock is past any DST
        # shift from it.
        best: datetime | None = None
        best_wall = earliest
        for offset in range(_HORIZON_DAYS):
            day = first_day + timedelta(days=offset)
            if not self.day_matches(day):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    wall = datetime(day.year, day.month, day.day, hour, minute)
                    if wall < earliest:
                        continue
                    if best is not None and wall > best_wall + _DST_SLACK:
                        return best.astimezone(zone)
                    for instant in _instants(wall, zone):
                        if instant > after and (best is None or instant < best):
                            best, best_wall = instant, wall
                            if not _dst_near(instant, zone):
                                return instant.astimezone(zone)
        if best is not None:
            return best.astimezone(zone)
        raise CronError(f"cron expression {self.text!r}: never fires")

    def between(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Fire times ``t`` with ``after < t <= until``."""
        t = self.next_after(after)
        # In UTC: two times of one zone compare by wall clock, which a repeated hour breaks.
        while t.astimezone(UTC) <= until.astimezone(UTC):
            yield t
            t = self.next_after(t)


def _dst_near(instant: datetime, zone: tzinfo) -> bool:
    """Whether the zone's clocks change within the DST slack of ``instant``."""
    before = (instant - _DST_SLACK).astimezone(zone).utcoffset()
    return before != (instant + _DST_SLACK).astimezone(zone).utcoffset()


def _instants(wall: datetime, zone: tzinfo) -> list[datetime]:
    """The UTC instants that show ``wall`` on the zone's clocks: none when a DST change skips
    it, two when one repeats it, else one."""
    found: list[datetime] = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall and instant not in found:
            found.append(instant)
    return sorted(found)


def _value(source: str, token: str, name: str, lo: int, hi: int, names: list[str] | None) -> int:
    if names and token.lower() in names:
        return names.index(token.lower()) + lo
    if not token.isdigit():
        special = re.search("[LW#]", token) and " (L, W and # are not supported by Kubernetes)"
        raise CronError(
            f"cron expression {source!r}: {name}: {token!r} is not a number"
            + (f" or a name ({', '.join(names)})" if names else "")
            + (special or "")
        )
    value = int(token)
    if not lo <= value <= hi:
        hint = " (Sunday is 0; Kubernetes does not accept 7)" if name == "day of week" else ""
        raise CronError(
            f"cron expression {source!r}: {name}: {value} is out of range {lo}-{hi}{hint}"
        )
    return value


def _field(
    source: str, part: str, name: str, lo: int, hi: int, names: list[str] | None
) -> tuple[frozenset[int], bool]:
    """The values a field allows, and whether robfig counts it as a star."""
    values: set[int] = set()
    star = False
    for item in part.split(","):
        if not item:
            raise CronError(f"cron expression {source!r}: {name}: empty list item in {part!r}")
        body, slash, step_text = item.partition("/")
        if "/" in step_text:
            raise CronError(f"cron expression {source!r}: {name}: too many slashes in {item!r}")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(
                    f"cron expression {source!r}: {name}: step {step_text!r} must be a "
                    "positive number"
                )
            step = int(step_text)
        if body in ("*", "?"):
            first, last = lo, hi
            # getRange: '*' and '?' set the star bit; a step above 1 clears it.
            star = star or step == 1
        else:
            bounds = body.split("-")
            if len(bounds) > 2:
                raise CronError(f"cron expression {source!r}: {name}: too many hyphens in {item!r}")
            first = _value(source, bounds[0], name, lo, hi, names)
            if len(bounds) == 2:
                last = _value(source, bounds[1], name, lo, hi, names)
            else:
                # "5/15" means from 5 to the end in steps of 15.
                last = hi if slash else first
            if first > last:
                raise CronError(
                    f"cron expression {source!r}: {name}: range {body!r} runs backwards"
                )
        values.update(range(first, last + 1, step))
    return frozenset(values), star
