"""Run a plan: each experiment with ``chaos run`` in its own bounded, interruptible process.

For every experiment the runner writes a journal (``NN-<name>.json``), the chaos log and
console output, then ``summary.json`` and ``report.html`` for the whole run. A run past the
plan's ``time_limit``, or one stopped by ``stop()`` (the command wires SIGINT/SIGTERM to
it), gets SIGTERM (chaostoolkit then writes an interrupted journal), SIGKILL after a grace
period, and then ``chaosmesh restore --run RUN_ID`` puts back what it changed: each chaos
run gets its run id in ``CHAOSMESH_RUN_ID``. Each run also gets the plan's ``env`` (and
``kubernetes.env`` against a cluster) and its ``variables`` as ``--var``. With
``journal_lines`` every journal is also handed over as one JSON line (``journal.lines``), for
a pod's log.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from chaosmesh_ext.gameday.plan import Plan
from chaosmesh_ext.journal import Journal, JournalError, load_journal
from chaosmesh_ext.journal import text as jtext
from chaosmesh_ext.journal.lines import journal_line
from chaosmesh_ext.journal.report import render_html
from chaosmesh_ext.kube.ledger import RUN_ID_ENV

TARGET_ENV = "MESH_TARGET"
RESTORE_TIMEOUT = 120.0


class Surroundings(Protocol):
    """What a whole set of runs shares while it runs (the command's embedded mesh)."""

    env: dict[str, str]  # added to every experiment's environment
    restore_env: dict[str, str]  # added to `chaosmesh restore`'s only


@dataclass
class _Nothing:
    env: dict[str, str] = field(default_factory=dict)
    restore_env: dict[str, str] = field(default_factory=dict)


# Given the environment the experiments will run in, the surroundings for the whole set.
Surround = Callable[[Mapping[str, str]], AbstractContextManager[Surroundings]]


@dataclass
class ExperimentOutcome:
    """What happened to one experiment of the plan."""

    experiment: str
    run_id: str
    # completed | deviated | failed | aborted | interrupted | timed out | error | skipped
    status: str
    reason: str = ""
    journal: str | None = None
    deviated: bool = False
    exit_code: int | None = None
    duration: float | None = None
    restore: str | None = None  # what `chaosmesh restore` said, when the game day ran it

    @property
    def ok(self) -> bool:
        return self.status == "completed"


@dataclass
class GameDayResult:
    """The whole run; ``summary.json`` is ``to_json()``."""

    plan: str
    plan_file: str
    directory: str
    on_deviation: str
    started: str
    ended: str = ""
    interrupted: bool = False
    outcomes: list[ExperimentOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(o.ok for o in self.outcomes)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["ok"] = self.ok
        data["deviated"] = [o.experiment for o in self.outcomes if o.deviated]
        data["failed"] = [
            o.experiment
            for o in self.outcomes
            if not o.ok and not o.deviated and o.status != "skipped"
        ]
        return data


def default_chaos() -> list[str]:
    """The ``chaos`` command beside this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("chaos")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("chaos")
    return [found] if found else ["chaos"]


def default_restore() -> list[str] | None:
    """``chaosmesh restore`` when this build has it (it is another layer's command)."""
    if importlib.util.find_spec("chaosmesh_ext.commands.restore") is None:
        return None
    return [sys.executable, "-m", "chaosmesh_ext.cli", "restore"]


def new_run_directory(plan: Plan, now: datetime | None = None) -> Path:
    """``<journals root>/<UTC timestamp>/``, unique even for two runs in one second."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    root = plan.journals_root
    candidate, n = root / stamp, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{stamp}-{n}"
    return candidate


class GameDayRunner:
    """Runs one plan once. ``stop()`` may be called from a signal handler or another thread."""

    def __init__(
        self,
        plan: Plan,
        directory: Path,
        chaos: Sequence[str] | None = None,
        restore: Sequence[str] | None = None,
        grace: float = 30.0,
        log: Callable[[str], None] = print,
        env: dict[str, str] | None = None,
        file_stem: Callable[[int, Path], str] | None = None,
        run_prefix: str | None = None,
        restore_env: Mapping[str, str] | None = None,
        journal_lines: Callable[[str], None] | None = None,
    ) -> None:
        self.plan = plan
        self.run_prefix = run_prefix
        # Journal/log file names; numbered by default so a plan may list one file twice.
        self.file_stem = file_stem or (lambda index, experiment: f"{index:02d}-{experiment.stem}")
        self.directory = directory
        self.chaos = list(chaos) if chaos is not None else default_chaos()
        self.restore = list(restore) if restore is not None else default_restore()
        self.grace = grace
        self.log = log
        base = dict(os.environ if env is None else env)
        # The target decides whether the plan's `kubernetes:` settings apply.
        self.target = plan.target_in(base)
        self.env = {**base, **plan.settings(self.target)[1]}
        self.journal_lines = journal_lines
        # Added for `chaosmesh restore` only (e.g. KUBECONFIG of the embedded mesh the
        # experiments ran on), never for the experiments themselves.
        self.restore_env = {**self.env, **(restore_env or {})}
        self._stopping = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        # Journals as _judge read them, by path: the summary and callers reuse them.
        self.journals: dict[str, Journal] = {}

    def stop(self) -> None:
        """Stop cleanly: the running experiment gets SIGTERM; nothing new starts."""
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def run(self) -> GameDayResult:
        self.directory.mkdir(parents=True, exist_ok=True)
        result = GameDayResult(
            plan=self.plan.name,
            plan_file=str(self.plan.path),
            directory=str(self.directory),
            on_deviation=self.plan.on_deviation,
            started=datetime.now(UTC).isoformat(),
        )
        run_base = self.run_prefix or f"{self.plan.name}-{self.directory.name}"
        halted = False
        for index, experiment in enumerate(self.plan.experiments, start=1):
            run_id = f"{run_base}-{index:02d}"
            if halted or self._stopping.is_set():
                result.outcomes.append(
                    ExperimentOutcome(
                        str(experiment),
                        run_id,
                        "skipped",
                        "not run: "
                        + (
                            "game day interrupted"
                            if self._stopping.is_set()
                            else "an earlier experiment did not complete cleanly"
                        ),
                    )
                )
                continue
            # Said as it starts, so a long experiment never looks like a hang.
            self.log(
                f"[{index}/{len(self.plan.experiments)}] {experiment.name}: running"
                f" (run id {run_id}) ..."
            )
            outcome = self._run_one(index, experiment, run_id)
            result.outcomes.append(outcome)
            self.log(
                f"[{index}/{len(self.plan.experiments)}] {experiment.name}: {outcome.status}"
                + (f" — {outcome.reason}" if outcome.reason else "")
            )
            if not outcome.ok and self.plan.on_deviation == "stop":
                halted = True
        result.interrupted = self._stopping.is_set()
        result.ended = datetime.now(UTC).isoformat()
        self._write_summary(result)
        return result

    def _run_one(self, index: int, experiment: Path, run_id: str) -> ExperimentOutcome:
        stem = self.file_stem(index, experiment)
        journal_path = self.directory / f"{stem}.json"
        log_path = self.directory / f"{stem}.log"
        out_path = self.directory / f"{stem}.out"
        cmd = [
            *self.chaos,
            "--log-file",
            str(log_path),
            "run",
            "--journal-path",
            str(journal_path),
            *self.plan.chaos_vars(self.target),
            str(experiment),
        ]
        env = dict(self.env)
        env[RUN_ID_ENV] = run_id
        if self.plan.target is not None:
            env[TARGET_ENV] = self.plan.target
        started = time.monotonic()
        timed_out = False
        with open(out_path, "wb") as out:
            # Own session: a terminal's Ctrl-C reaches only the game day, which forwards it
            # as SIGTERM, so chaostoolkit writes its journal and the runner restores after.
            proc = subprocess.Popen(
                cmd,
                cwd=experiment.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._proc = proc
            if self._stopping.is_set():
                self.stop()
            try:
                while proc.poll() is None:
                    elapsed = time.monotonic() - started
                    if (
                        self.plan.time_limit is not None
                        and elapsed > self.plan.time_limit
                        and not timed_out
                    ):
                        timed_out = True
                        self.log(
                            f"{experiment.name}: past its time limit "
                            f"({jtext.seconds(self.plan.time_limit)}), stopping it"
                        )
                        os.kill(proc.pid, signal.SIGTERM)
                        self._reap(proc)
                        break
                    if self._stopping.is_set():
                        self._reap(proc)
                        break
                    time.sleep(0.1)
            finally:
                if proc.poll() is None:
                    self._reap(proc)
                self._proc = None
        duration = time.monotonic() - started
        outcome = self._judge(experiment, run_id, journal_path, out_path, proc.returncode, duration)
        if timed_out:
            outcome.status = "timed out"
            outcome.reason = (
                f"ran past its time limit of {jtext.seconds(self.plan.time_limit)}; stopped"
            )
        elif self._stopping.is_set():
            outcome.status = "interrupted"
            outcome.reason = "game day interrupted; experiment stopped"
        if timed_out or self._stopping.is_set():
            outcome.restore = self._restore(run_id)
        if self.journal_lines is not None and journal_path.exists():
            self._print_journal(journal_path, self.journal_lines)
        return outcome

    def _print_journal(self, journal_path: Path, sink: Callable[[str], None]) -> None:
        try:
            raw = json.loads(journal_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.log(f"{journal_path.name}: not printed as a journal line: {exc}")
            return
        sink(journal_line(self.plan.name, self.directory.name, journal_path.name, raw))

    def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        """Wait the grace period for a signalled run, then kill its whole process group."""
        try:
            proc.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)

    def _restore(self, run_id: str) -> str:
        if self.restore is None:
            message = (
                f"chaosmesh restore is not available in this build; run id {run_id} not restored"
            )
            self.log(message)
            return message
        try:
            done = subprocess.run(
                [*self.restore, "--run", run_id],
                env=self.restore_env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=RESTORE_TIMEOUT,
                # Own session: a second Ctrl-C at the terminal must not cut the restore short.
                start_new_session=True,
            )
        except subprocess.TimeoutExpired:
            message = f"restore --run {run_id} did not finish in {RESTORE_TIMEOUT:.0f} s"
        except OSError as exc:
            message = f"restore --run {run_id} could not start: {exc}"
        else:
            said = (done.stdout + done.stderr).strip()
            message = f"restore --run {run_id} exited {done.returncode}" + (
                f": {said}" if said else ""
            )
        self.log(message)
        return message

    def _judge(
        self,
        experiment: Path,
        run_id: str,
        journal_path: Path,
        out_path: Path,
        exit_code: int | None,
        duration: float,
    ) -> ExperimentOutcome:
        outcome = ExperimentOutcome(
            str(experiment), run_id, "error", exit_code=exit_code, duration=round(duration, 3)
        )
        if not journal_path.exists():
            outcome.reason = (
                f"chaos run wrote no journal (exit {exit_code}): {_last_line(out_path)}"
            )
            return outcome
        outcome.journal = str(journal_path)
        try:
            journal = load_journal(journal_path)
        except JournalError as exc:
            outcome.reason = str(exc)
            return outcome
        self.journals[outcome.journal] = journal
        outcome.deviated = journal.deviated
        # The verdict, not chaoslib's status: a run whose steady state was not met before
        # the fault, or whose fault action failed, tested nothing and is not a pass.
        found = journal.verdict
        outcome.status, outcome.reason = found.word, found.reason
        return outcome

    def _write_summary(self, result: GameDayResult) -> None:
        (self.directory / "summary.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
        journals = [self.journals[o.journal] for o in result.outcomes if o.journal in self.journals]
        page = render_html(
            journals,
            title=f"Game day {result.plan} — {self.directory.name}",
            outcomes=[(Path(o.experiment).name, o.status, o.reason) for o in result.outcomes],
        )
        (self.directory / "report.html").write_text(page, encoding="utf-8")


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no output)"
    return lines[-1][-300:] if lines else "(no output)"


def run_plan(
    plan: Plan,
    chaos: Sequence[str] | None = None,
    restore: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
    on_runner: Callable[[GameDayRunner | None], None] = lambda runner: None,
    grace: float = 30.0,
    surround: Surround | None = None,
    journal_lines: Callable[[str], None] | None = None,
) -> GameDayResult:
    """Run ``plan`` once under its lock (raises ``lock.Locked`` if a run is in progress),
    inside ``surround`` (e.g. one embedded mesh for the set; what it raises propagates).

    ``on_runner`` is told the runner while it runs (and None after), so a signal handler
    can stop it.
    """
    from chaosmesh_ext.gameday.lock import PlanLock

    environ = dict(os.environ)
    target = plan.target_in(environ)
    run_env = {**environ, **plan.settings(target)[1]}
    if plan.target is not None:
        run_env[TARGET_ENV] = plan.target
    with (
        PlanLock(plan.journals_root / ".lock"),
        surround(run_env) if surround else nullcontext(_Nothing()) as around,
    ):
        runner = GameDayRunner(
            plan,
            new_run_directory(plan),
            chaos=chaos,
            restore=restore,
            log=log,
            grace=grace,
            env={**environ, **around.env},
            restore_env=around.restore_env,
            journal_lines=journal_lines,
        )
        on_runner(runner)
        try:
            return runner.run()
        finally:
            on_runner(None)
