"""A one-host scheduler: fires a plan at the times of its cron expression, in its time zone.

Runs never overlap: each run takes the plan's lock (``lock.PlanLock``), and a time that
comes round while the previous run is still going — or while another process holds the
lock, or while the scheduler was not running at all — is reported as missed, not caught up
(as cron does). Every event goes to ``schedule.log`` (JSON lines) in the plan's journals
directory. The clock and the sleep are parameters so tests run the schedule in fake time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chaosmesh_ext.gameday.cron import CronExpression
from chaosmesh_ext.gameday.lock import Locked

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
# run_once(scheduled_time) -> ok. Raising lock.Locked means "skipped: another run holds it".
RunOnce = Callable[[datetime], bool]
# Do not sleep longer than this in one go, so a changed wall clock (suspend, NTP) is noticed.
MAX_NAP = 30.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SchedulerStats:
    runs: int = 0
    failed: int = 0
    missed: int = 0
    skipped: int = 0


class Scheduler:
    """Fires ``run_once`` at each time of ``cron``; see the module docstring."""

    def __init__(
        self,
        cron: CronExpression,
        run_once: RunOnce,
        log_path: Path,
        clock: Clock = _utcnow,
        sleep: Sleep | None = None,
        echo: Callable[[str], None] = print,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.cron = cron
        self.run_once = run_once
        self.log_path = log_path
        self.clock = clock
        self.echo = echo
        self.should_stop = should_stop
        self.sleep = sleep or time.sleep
        self.stats = SchedulerStats()

    def log(self, event: str, **fields: Any) -> None:
        record = {"event": event, "at": self.clock().isoformat(), **fields}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")
        detail = " ".join(f"{k}={v}" for k, v in fields.items())
        self.echo(f"{record['at']} {event} {detail}".rstrip())

    def last_fired(self) -> datetime | None:
        """The scheduled time of the last run this log records (to report downtime misses)."""
        if not self.log_path.exists():
            return None
        last = None
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("event") in ("run", "missed", "skipped") and record.get("scheduled"):
                last = record["scheduled"]
        return datetime.fromisoformat(last) if last else None

    def _report_missed(self, after: datetime, until: datetime, why: str) -> None:
        for when in self.cron.between(after, until):
            self.stats.missed += 1
            self.log("missed", scheduled=when.isoformat(), reason=why)

    def run(self, max_runs: int | None = None, run_now: bool = False) -> SchedulerStats:
        """Loop until ``max_runs`` runs (or skips) have happened or ``should_stop()``."""
        now = self.clock()
        self.log("started", schedule=self.cron.text, next=self.cron.next_after(now).isoformat())
        previous = self.last_fired()
        if previous is not None:
            self._report_missed(previous, now, "the scheduler was not running")
        fired = 0
        if run_now:
            self._fire(now)
            fired += 1
            now = max(self.clock(), now)
        while (max_runs is None or fired < max_runs) and not self.should_stop():
            due = self.cron.next_after(now)
            while not self.should_stop():
                left = (due - self.clock()).total_seconds()
                if left <= 0:
                    break
                self.sleep(min(left, MAX_NAP))
            if self.should_stop():
                break
            late = self.clock()
            # Woken far past the time (suspended host): that time was missed, run the latest.
            if (late - due).total_seconds() > 60:
                self._report_missed(
                    due.astimezone(UTC) - timedelta(minutes=1), late, "the host was busy or asleep"
                )
                now = late
                continue
            self._fire(due)
            fired += 1
            end = self.clock()
            # Times that came round while that run was going were not run: report them.
            self._report_missed(due, end, "the previous run was still going")
            now = max(end, due)
        self.log("stopped", runs=self.stats.runs, missed=self.stats.missed)
        return self.stats

    def _fire(self, scheduled: datetime) -> None:
        started = self.clock()
        try:
            ok = self.run_once(scheduled)
        except Locked as exc:
            self.stats.skipped += 1
            self.log("skipped", scheduled=scheduled.isoformat(), reason=str(exc))
            return
        self.stats.runs += 1
        if not ok:
            self.stats.failed += 1
        self.log(
            "run",
            scheduled=scheduled.isoformat(),
            started=started.isoformat(),
            ended=self.clock().isoformat(),
            ok=ok,
        )
