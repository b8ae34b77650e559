"""The one-host scheduler: cron times in fake time, missed runs, the overlap lock, the log."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chaosmesh_ext.gameday.cron import CronExpression
from chaosmesh_ext.gameday.lock import Locked, PlanLock
from chaosmesh_ext.gameday.scheduler import Scheduler
from tests.support.cli import chaosmesh
from tests.support.gameday_plans import healthy, run_dirs, write_plan


class FakeTime:
    """A clock whose sleep advances it: the schedule runs in no real time."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def at(hhmm: str) -> datetime:
    return datetime(2026, 11, 26, int(hhmm[:2]), int(hhmm[3:]), tzinfo=UTC)


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_fires_at_each_cron_time(tmp_path: Path) -> None:
    fake = FakeTime(at("10:02"))
    fired: list[datetime] = []

    def run_once(scheduled: datetime) -> bool:
        fired.append(fake.clock())
        fake.sleep(30)  # a run takes a while
        return True

    log = tmp_path / "schedule.log"
    sched = Scheduler(
        CronExpression.parse("*/5 * * * *"),
        run_once,
        log,
        fake.clock,
        fake.sleep,
        echo=lambda m: None,
    )
    stats = sched.run(max_runs=3)
    assert fired == [at("10:05"), at("10:10"), at("10:15")]
    assert stats.runs == 3 and stats.missed == 0
    runs = [e for e in events(log) if e["event"] == "run"]
    assert [e["scheduled"] for e in runs] == [t.isoformat() for t in fired]
    assert all(e["ok"] for e in runs)


def test_fires_in_the_plan_time_zone_across_a_dst_change(tmp_path: Path) -> None:
    """03:00 in Paris is 01:00 UTC in summer and 02:00 UTC in winter: the schedule follows
    the plan's zone, as the CronJob's spec.timeZone does."""
    fake = FakeTime(datetime(2026, 10, 23, 12, 0, tzinfo=UTC))
    fired: list[datetime] = []

    def run_once(scheduled: datetime) -> bool:
        fired.append(fake.clock())
        return True

    sched = Scheduler(
        CronExpression.parse("0 3 * * fri", "Europe/Paris"),
        run_once,
        tmp_path / "schedule.log",
        fake.clock,
        fake.sleep,
        echo=lambda m: None,
    )
    sched.run(max_runs=2)
    assert fired == [
        datetime(2026, 10, 30, 2, 0, tzinfo=UTC),  # after the change (25 October): winter time
        datetime(2026, 11, 6, 2, 0, tzinfo=UTC),
    ]
    scheduled = [e["scheduled"] for e in events(tmp_path / "schedule.log") if e["event"] == "run"]
    assert scheduled == ["2026-10-30T03:00:00+01:00", "2026-11-06T03:00:00+01:00"]
    fake = FakeTime(datetime(2026, 10, 16, 12, 0, tzinfo=UTC))
    fired.clear()
    sched.clock, sched.sleep = fake.clock, fake.sleep
    sched.run(max_runs=1)
    assert fired == [datetime(2026, 10, 23, 1, 0, tzinfo=UTC)]  # summer time


def test_runs_never_overlap_and_missed_times_are_reported(tmp_path: Path) -> None:
    fake = FakeTime(at("10:02"))
    fired: list[datetime] = []

    def long_run(scheduled: datetime) -> bool:
        fired.append(scheduled)
        fake.sleep(12 * 60)  # runs past the next two times
        return False

    log = tmp_path / "schedule.log"
    stats = Scheduler(
        CronExpression.parse("*/5 * * * *"),
        long_run,
        log,
        fake.clock,
        fake.sleep,
        echo=lambda m: None,
    ).run(max_runs=2)
    # 10:05 runs until 10:17; 10:10 and 10:15 come round meanwhile: missed, not run late.
    assert fired == [at("10:05"), at("10:20")]
    missed = [e for e in events(log) if e["event"] == "missed"]
    assert [e["scheduled"] for e in missed][:2] == [
        at("10:10").isoformat(),
        at("10:15").isoformat(),
    ]
    assert missed[0]["reason"] == "the previous run was still going"
    assert stats.failed == 2


def test_missed_while_the_scheduler_was_down(tmp_path: Path) -> None:
    log = tmp_path / "schedule.log"
    log.write_text(json.dumps({"event": "run", "scheduled": at("09:00").isoformat()}) + "\n")
    fake = FakeTime(at("11:30"))
    Scheduler(
        CronExpression.parse("0 * * * *"),
        lambda s: True,
        log,
        fake.clock,
        fake.sleep,
        echo=lambda m: None,
    ).run(max_runs=1)
    missed = [e for e in events(log) if e["event"] == "missed"]
    assert [e["scheduled"] for e in missed] == [at("10:00").isoformat(), at("11:00").isoformat()]
    assert missed[0]["reason"] == "the scheduler was not running"


def test_a_host_that_slept_past_the_time_reports_it_missed(tmp_path: Path) -> None:
    fake = FakeTime(at("10:02"))
    naps = iter([25 * 60.0])  # the first sleep lasts 25 minutes (laptop lid closed)

    def sleep(seconds: float) -> None:
        fake.sleep(next(naps, seconds))

    fired: list[datetime] = []

    def run_once(scheduled: datetime) -> bool:
        fired.append(scheduled)
        return True

    log = tmp_path / "schedule.log"
    Scheduler(
        CronExpression.parse("*/10 * * * *"), run_once, log, fake.clock, sleep, echo=lambda m: None
    ).run(max_runs=1)
    missed = [e["scheduled"] for e in events(log) if e["event"] == "missed"]
    assert missed == [at("10:10").isoformat(), at("10:20").isoformat()]
    assert fired == [at("10:30")]  # not run late in a burst


def test_a_locked_plan_is_skipped_not_run(tmp_path: Path) -> None:
    lock = tmp_path / ".lock"
    # Another process holds the plan's lock (a manual `gameday run`, say).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[2]);"
            "from pathlib import Path; from chaosmesh_ext.gameday.lock import PlanLock\n"
            "with PlanLock(Path(sys.argv[1])):\n print('held', flush=True); time.sleep(60)",
            str(lock),
            str(Path(__file__).parents[2]),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout and holder.stdout.readline().strip() == "held"
        ran: list[datetime] = []

        def run_once(scheduled: datetime) -> bool:
            with PlanLock(lock):
                ran.append(scheduled)
            return True

        fake = FakeTime(at("10:00"))
        log = tmp_path / "schedule.log"
        stats = Scheduler(
            CronExpression.parse("* * * * *"),
            run_once,
            log,
            fake.clock,
            fake.sleep,
            echo=lambda m: None,
        ).run(max_runs=1)
        assert ran == [] and stats.skipped == 1
        (skipped,) = [e for e in events(log) if e["event"] == "skipped"]
        assert f"pid {holder.pid}" in skipped["reason"]
    finally:
        holder.kill()
        holder.wait(timeout=10)
    # Once the holder is gone (even killed) the lock is free again.
    with PlanLock(lock):
        pass
    try:
        with PlanLock(lock), PlanLock(lock):
            raise AssertionError("a second holder in the same process must be refused")
    except Locked:
        pass


def test_schedule_command_runs_the_plan_and_logs_it(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, {"one": healthy(tmp_path, "one")}, schedule="0 3 * * *")
    done = chaosmesh("gameday", "schedule", "--once", "--run-now", str(plan), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = run_dirs(tmp_path)
    assert json.loads((run / "summary.json").read_text())["ok"] is True
    log = events(tmp_path / "journals" / "demo" / "schedule.log")
    assert [e["event"] for e in log] == ["started", "run", "stopped"]
    assert log[0]["schedule"] == "0 3 * * *" and log[0]["next"].endswith("03:00:00+00:00")


def test_schedule_needs_a_schedule(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, {"one": healthy(tmp_path, "one")})
    done = chaosmesh("gameday", "schedule", "--once", str(plan), cwd=tmp_path)
    assert done.returncode != 0 and "schedule: no cron schedule is set" in done.stderr
    assert run_dirs(tmp_path) == []


def test_sigterm_stops_a_waiting_scheduler(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, {"one": healthy(tmp_path, "one")}, schedule="0 3 * * *")
    log = tmp_path / "journals" / "demo" / "schedule.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaosmesh_ext.cli", "gameday", "schedule", str(plan)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait (bounded) until it is waiting for 03:00.
        for _ in range(300):
            if proc.poll() is not None or (log.exists() and "started" in log.read_text()):
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 130
    assert [e["event"] for e in events(log)] == ["started", "stopped"]
    assert run_dirs(tmp_path) == []
