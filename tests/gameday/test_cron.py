"""The cron parser: the fields, lists, ranges, steps and names a plan's schedule may use."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chaosmesh_ext.gameday.cron import CronError, CronExpression


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("* * * * *", "2026-11-26 23:14:30", "2026-11-26 23:15:00"),
        ("*/15 * * * *", "2026-11-26 23:14:00", "2026-11-26 23:15:00"),
        ("*/15 * * * *", "2026-11-26 23:15:00", "2026-11-26 23:30:00"),
        ("5/20 * * * *", "2026-11-26 23:26:00", "2026-11-26 23:45:00"),
        ("0 3 * * mon-fri", "2026-11-27 03:00:00", "2026-11-30 03:00:00"),  # Fri -> Mon
        ("0 3 * * 0", "2026-11-26 00:00:00", "2026-11-29 03:00:00"),  # Sunday
        ("0 3 * * 7", "2026-11-26 00:00:00", "2026-11-29 03:00:00"),  # 7 is Sunday too
        ("30 9,17 * * *", "2026-11-26 10:00:00", "2026-11-26 17:30:00"),
        ("0 0 1 jan,jul *", "2026-11-26 00:00:00", "2027-01-01 00:00:00"),
        ("0 0 29 feb *", "2026-03-01 00:00:00", "2028-02-29 00:00:00"),
        # Both day fields restricted: either matches (1st of the month, or a Monday).
        ("0 12 1 * mon", "2026-11-26 00:00:00", "2026-11-30 12:00:00"),
        ("10-20/5 8 * * *", "2026-11-26 08:12:00", "2026-11-26 08:15:00"),
        # `*/n` in a day field is a restriction (robfig/cron clears its star bit for n > 1):
        # every other weekday from Sunday -> Sun/Tue/Thu/Sat, never Friday (Thu 26 -> Sat 28).
        ("0 3 * * */2", "2026-11-26 03:00:00", "2026-11-28 03:00:00"),
        # ... and with the day of month restricted too, either matches (the 1st, or Sat 28).
        ("0 3 1 * */2", "2026-11-26 03:00:00", "2026-11-28 03:00:00"),
        # `*/1` still is a star: only the day of month counts.
        ("0 3 1 * */1", "2026-11-26 03:00:00", "2026-12-01 03:00:00"),
        # Odd days of the month, or Mondays: Fri 27 is odd.
        ("0 3 */2 * mon", "2026-11-26 03:00:00", "2026-11-27 03:00:00"),
        ("0 3 2-30/2 * mon", "2026-11-26 03:00:00", "2026-11-28 03:00:00"),
        ("@hourly", "2026-11-26 23:14:00", "2026-11-27 00:00:00"),
        ("@daily", "2026-12-31 12:00:00", "2027-01-01 00:00:00"),
    ],
)
def test_next_after(expr: str, after: str, expected: str) -> None:
    assert CronExpression.parse(expr).next_after(at(after)) == at(expected)


def test_between_lists_each_time_once() -> None:
    cron = CronExpression.parse("*/5 * * * *")
    times = list(cron.between(at("2026-11-26 10:02:00"), at("2026-11-26 10:20:00")))
    assert times == [at(f"2026-11-26 10:{m}:00") for m in ("05", "10", "15", "20")]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day of month: 0 is out of range 1-31"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("* * * * 8", "day of week: 8 is out of range 0-7"),
        ("* * * * funday", "day of week: 'funday' is not a number or a name"),
        ("*/0 * * * *", "minute: bad step '0'"),
        ("30-10 * * * *", "minute: range '30-10' runs backwards"),
        ("1,,2 * * * *", "minute: empty list item"),
        ("0 0 31 feb,apr *", "never fires"),
        ("", "empty"),
    ],
)
def test_bad_expressions_name_the_field(expr: str, message: str) -> None:
    with pytest.raises(CronError, match=message.replace("(", r"\(").replace("*", r"\*")):
        CronExpression.parse(expr)
