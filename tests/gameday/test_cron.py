"""The cron parser reads schedules as Kubernetes does (robfig/cron v3, ``ParseStandard``).

croniter is the independent oracle: with its defaults (``day_or=True``,
``implement_cron_bug=False``) it ORs the day fields only when both are restricted and counts
``*/n`` as restricted, as robfig does. Where the two libraries differ, the table says so and
compares with croniter on the spelling robfig means.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from chaosmesh_ext.gameday.cron import CronError, CronExpression

START = datetime(2026, 11, 26, 13, 7, 30, tzinfo=UTC)  # a Thursday
FIRES = 50

# (expression, zone): each must give the same next 50 fire times as croniter.
AGREE = [
    # The two: */2 in day-of-week is restricted, and with a star day-of-month it is
    # ANDed -> Sun, Tue, Thu, Sat (not every day).
    ("0 0 * * */2", "UTC"),
    # Both day fields restricted (*/2 counts) -> odd days of the month OR Mondays.
    ("0 0 */2 * 1", "UTC"),
    ("0 0 1/2 * 1", "UTC"),
    ("0 3 1 * */2", "UTC"),  # the 1st, or Sun/Tue/Thu/Sat
    ("0 3 2-30/2 * mon", "UTC"),
    ("0 0 */10 * sun", "UTC"),
    ("0 12 1 * mon", "UTC"),
    ("15 10 1-7 * 2", "UTC"),
    ("0 0 13 * 5", "UTC"),
    # '?' is '*'.
    ("0 0 ? * 1", "UTC"),
    ("0 0 1 * ?", "UTC"),
    # A full range is not a star: OR with every day.
    ("0 0 1-31 * 1", "UTC"),
    ("0 0 *,5 * 1", "UTC"),  # a list holding * is a star
    ("0 0 * * 0-6", "UTC"),
    ("0 0 * * 1/2", "UTC"),
    ("*/15 9-17 * * 1-5", "UTC"),
    ("*/7 */5 * * *", "UTC"),
    ("5/20 * * * *", "UTC"),
    ("10-20/5 8 * * *", "UTC"),
    ("30 9,17 * * *", "UTC"),
    ("0 3 * * mon-fri", "UTC"),
    ("0 2 * JAN-MAR,oct *", "UTC"),
    ("0 0 1 jan,jul *", "UTC"),
    ("0 0 29 feb *", "UTC"),
    ("@yearly", "UTC"),
    ("@annually", "UTC"),
    ("@monthly", "UTC"),
    ("@weekly", "UTC"),
    ("@daily", "UTC"),
    ("@midnight", "UTC"),
    ("@hourly", "UTC"),
    # In a zone with DST, at times no DST change skips.
    ("0 3 * * *", "Europe/Paris"),
    ("30 1 * * *", "America/New_York"),  # 01:30 repeats in November: fires twice
    ("0 * * * *", "America/New_York"),
    ("0 9 * * mon-fri", "Asia/Tokyo"),
]

# (expression, what robfig means in croniter's spelling, why they differ).
DIFFER = [
    # getRange keeps the star bit for a step of 1: "*/1" is a star, so Mondays only;
    # croniter counts it as restricted and ORs (every day).
    ("0 0 */1 * 1", "0 0 * * 1", "*/1 is a star in robfig"),
    ("0 0 1 * */1", "0 0 1 * *", "*/1 is a star in robfig"),
]


def fire_times(expr: CronExpression, start: datetime, count: int) -> list[float]:
    out, t = [], start
    for _ in range(count):
        t = expr.next_after(t)
        out.append(t.timestamp())
    return out


def croniter_times(text: str, zone: str, start: datetime, count: int) -> list[float]:
    it = croniter(text, start.astimezone(ZoneInfo(zone)))
    return [it.get_next(datetime).timestamp() for _ in range(count)]


@pytest.mark.parametrize(("text", "zone"), AGREE)
def test_next_50_fire_times_agree_with_croniter(text: str, zone: str) -> None:
    ours = fire_times(CronExpression.parse(text, zone), START, FIRES)
    assert ours == croniter_times(text, zone, START, FIRES)


@pytest.mark.parametrize(("text", "robfig_means", "why"), DIFFER)
def test_where_croniter_differs_robfig_rules(text: str, robfig_means: str, why: str) -> None:
    ours = fire_times(CronExpression.parse(text), START, FIRES)
    assert ours == croniter_times(robfig_means, "UTC", START, FIRES), why
    assert ours != croniter_times(text, "UTC", START, FIRES), f"croniter now agrees: {why}"


def test_the_two_day_field_cases_fire_on_the_days_kubernetes_does() -> None:
    every_other = CronExpression.parse("0 0 * * */2")
    days = [every_other.next_after(START + timedelta(days=i)).strftime("%a") for i in range(7)]
    assert set(days) == {"Sun", "Tue", "Thu", "Sat"}
    either = CronExpression.parse("0 0 */2 * 1")
    dates = {either.next_after(START + timedelta(days=i)).date() for i in range(40)}
    assert all(d.day % 2 == 1 or d.isoweekday() == 1 for d in dates)
    assert any(d.day % 2 == 0 for d in dates)  # an even-day Monday
    assert any(d.isoweekday() != 1 for d in dates)  # an odd day that is no Monday


# robfig/cron spec_test.go TestNext, America/New_York: (after, spec, expected).
ROBFIG_DST = [
    ("2012-03-11T00:00:00-05:00", "0 2 * * *", "2012-03-12T02:00:00-04:00"),  # skipped
    ("2012-03-11T00:00:00-05:00", "30 2 11 mar *", "2013-03-11T02:30:00-04:00"),
    ("2012-03-11T01:00:00-05:00", "0 * * * *", "2012-03-11T03:00:00-04:00"),
    ("2012-03-11T01:00:00-05:00", "0 1 * * *", "2012-03-12T01:00:00-04:00"),
    ("2012-11-04T00:00:00-04:00", "0 1 * * *", "2012-11-04T01:00:00-04:00"),  # runs twice
    ("2012-11-04T01:00:00-04:00", "0 1 * * *", "2012-11-04T01:00:00-05:00"),
    ("2012-11-04T01:00:00-05:00", "0 1 * * *", "2012-11-05T01:00:00-05:00"),
    ("2012-11-04T01:45:00-04:00", "30 1 4 nov *", "2012-11-04T01:30:00-05:00"),
    ("2012-11-04T00:00:00-04:00", "30 2 4 nov *", "2012-11-04T02:30:00-05:00"),
    ("2012-11-04T00:00:00-04:00", "0 3 3 * *", "2012-12-03T03:00:00-05:00"),
]


@pytest.mark.parametrize(("after", "text", "expected"), ROBFIG_DST)
def test_dst_as_robfig(after: str, text: str, expected: str) -> None:
    got = CronExpression.parse(text, "America/New_York").next_after(datetime.fromisoformat(after))
    assert got.isoformat() == expected


def test_a_time_dst_skips_is_where_croniter_differs() -> None:
    """croniter moves 02:30 on the spring-forward day to 03:00; robfig (and Kubernetes)
    skip that day."""
    after = datetime(2026, 3, 7, 12, 0, tzinfo=ZoneInfo("America/New_York"))
    ours = CronExpression.parse("30 2 * * *", "America/New_York").next_after(after)
    assert ours.isoformat() == "2026-03-09T02:30:00-04:00"
    theirs = croniter("30 2 * * *", after).get_next(datetime)
    assert theirs.isoformat() == "2026-03-08T03:00:00-04:00"


def test_fire_times_are_in_the_schedule_zone() -> None:
    expr = CronExpression.parse("0 3 * * *", "Europe/Paris")
    summer = expr.next_after(datetime(2026, 7, 1, tzinfo=UTC))
    winter = expr.next_after(datetime(2026, 12, 1, tzinfo=UTC))
    assert summer.isoformat() == "2026-07-01T03:00:00+02:00"
    assert winter.isoformat() == "2026-12-01T03:00:00+01:00"


def test_cron_tz_prefix_names_the_zone() -> None:
    expr = CronExpression.parse("CRON_TZ=Asia/Tokyo 0 9 * * *")
    assert (expr.text, expr.timezone) == ("0 9 * * *", "Asia/Tokyo")
    assert CronExpression.parse("TZ=Asia/Tokyo @daily").timezone == "Asia/Tokyo"
    assert CronExpression.parse("CRON_TZ=Asia/Tokyo 0 9 * * *", "Asia/Tokyo").text == "0 9 * * *"


def test_between_lists_each_time_once_even_across_a_repeated_hour() -> None:
    cron = CronExpression.parse("*/30 * * * *", "America/New_York")
    after = datetime(2026, 11, 1, 0, 40, tzinfo=ZoneInfo("America/New_York"))
    until = datetime(2026, 11, 1, 7, 10, tzinfo=UTC)  # 02:10 EST
    times = [t.isoformat() for t in cron.between(after, until)]
    assert times == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* * * *", "expected 5 fields"),
        (
            "0 * * * * *",
            "expected 5 fields (minute hour day-of-month month day-of-week), got 6 "
            "(Kubernetes takes no seconds field)",
        ),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day of month: 0 is out of range 1-31"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("0 3 * * 7", "day of week: 7 is out of range 0-6 (Sunday is 0; Kubernetes does not"),
        ("* * * * funday", "day of week: 'funday' is not a number or a name"),
        ("0 0 L * *", "'L' is not a number (L, W and # are not supported by Kubernetes)"),
        ("0 0 * * 5#3", "not supported by Kubernetes"),
        ("*/0 * * * *", "minute: step '0' must be a positive number"),
        ("1/2/3 * * * *", "minute: too many slashes"),
        ("1-2-3 * * * *", "minute: too many hyphens"),
        ("30-10 * * * *", "minute: range '30-10' runs backwards"),
        ("1,,2 * * * *", "minute: empty list item"),
        ("0 0 31 feb,apr *", "never fires"),
        ("0 0 30 2 ?", "never fires"),
        ("@every 1h", "@every is not supported"),
        ("@DAILY", "unknown descriptor"),
        ("@fortnightly", "unknown descriptor"),
        ("CRON_TZ=Mars/Olympus 0 0 * * *", "time zone 'Mars/Olympus': unknown time zone"),
        ("TZ=Local 0 0 * * *", "time zone 'Local': name an explicit zone"),
        ("CRON_TZ=Europe/Paris", "a time zone but no schedule"),
        ("", "empty"),
    ],
)
def test_bad_expressions_name_the_field(expr: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        CronExpression.parse(expr)
    assert message in str(caught.value)


def test_two_zones_for_one_schedule_are_refused() -> None:
    with pytest.raises(CronError, match="names time zone 'Asia/Tokyo' but the time zone is"):
        CronExpression.parse("CRON_TZ=Asia/Tokyo 0 9 * * *", "Europe/Paris")
