"""`chaosmesh gameday run`: real `chaos run` processes, journals, summary, stop/continue,
time limits, interruption and restore, the overlap lock, and bad plans."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from chaosmesh_ext.gameday.cron import CronExpression
from chaosmesh_ext.gameday.lock import PlanLock
from chaosmesh_ext.gameday.plan import KEYS, PLAN_FORMAT, load_plan
from chaosmesh_ext.gameday.runner import GameDayRunner, new_run_directory
from tests.support.cli import chaosmesh
from tests.support.gameday_plans import deviating, healthy, holding, run_dirs, write_plan


def three(base: Path, on_deviation: str) -> Path:
    work = base / "work"
    work.mkdir()
    return write_plan(
        base,
        {
            "first": healthy(work, "first"),
            "second": deviating(work),
            "third": healthy(work, "third"),
        },
        on_deviation=on_deviation,
    )


def summary_of(base: Path) -> dict:
    (run,) = run_dirs(base)
    return json.loads((run / "summary.json").read_text())


def test_stop_on_deviation_never_runs_the_third(tmp_path: Path) -> None:
    plan = three(tmp_path, "stop")
    done = chaosmesh("gameday", "run", str(plan), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    summary = summary_of(tmp_path)
    assert [o["status"] for o in summary["outcomes"]] == ["completed", "deviated", "skipped"]
    assert summary["ok"] is False
    assert [Path(p).name for p in summary["deviated"]] == ["second.json"]
    second = summary["outcomes"][1]
    assert (
        second["reason"] == "steady state not met after the method: marker-absent (true vs false)"
    )
    (run,) = run_dirs(tmp_path)
    assert sorted(p.name for p in run.glob("*.json")) == [
        "01-first.json",
        "02-second.json",
        "summary.json",
    ]
    assert not (tmp_path / "work" / "third-made").exists()
    page = (run / "report.html").read_text()
    assert page.count('<section class="journal"') == 2
    # The verdict heads the report, the experiment that never ran included.
    assert '<td>third.json</td><td><span class="badge warn">skipped</span>' in page
    assert "marker-absent (true vs false)" in page
    assert "deviated — steady state not met after the method: marker-absent" in done.stdout


def test_continue_runs_all_three(tmp_path: Path) -> None:
    plan = three(tmp_path, "continue")
    done = chaosmesh("gameday", "run", str(plan), cwd=tmp_path)
    assert done.returncode == 1  # one deviated
    summary = summary_of(tmp_path)
    assert [o["status"] for o in summary["outcomes"]] == ["completed", "deviated", "completed"]
    for outcome in summary["outcomes"]:
        journal = json.loads(Path(outcome["journal"]).read_text())
        assert journal["experiment"]["title"]  # a real chaostoolkit journal
    assert (Path(summary["directory"]) / "report.html").read_text().count(
        '<section class="journal"'
    ) == 3


def test_all_healthy_exits_zero_and_passes_target_vars_and_run_id(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "embedded").mkdir(parents=True)
    experiment = healthy(work, "one")
    # ${base}/${target} only exists when the plan's variables and target reach chaos run.
    experiment["configuration"] = {
        "base": "/nonexistent",
        "target": "nowhere",
        "run": {"type": "env", "key": "CHAOSMESH_RUN_ID", "default": "none"},
        "mesh_target": {"type": "env", "key": "MESH_TARGET", "default": "none"},
    }
    experiment["steady-state-hypothesis"]["probes"][0]["provider"]["arguments"]["path"] = (
        "${base}/${target}"
    )
    experiment["method"][0]["provider"]["arguments"]["name"] = "${base}/runs/${run}-${mesh_target}"
    plan = write_plan(
        tmp_path, {"one": experiment}, target="embedded", variables={"base": str(work)}
    )
    done = chaosmesh("gameday", "run", str(plan), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = summary_of(tmp_path)
    assert summary["ok"] is True
    run_id = summary["outcomes"][0]["run_id"]
    assert run_id.startswith("demo-") and run_id.endswith("-01")
    assert (work / "runs" / f"{run_id}-embedded").is_dir()


def _recorder(tmp_path: Path) -> tuple[list[str], Path]:
    """A stand-in `chaosmesh restore` (a real process) that records how it was called."""
    record = tmp_path / "restore-calls.txt"
    script = tmp_path / "restore.py"
    script.write_text(
        "import sys\n"
        f"open({str(record)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "print('restored 1 object')\n"
    )
    return [sys.executable, str(script)], record


def test_time_limit_stops_the_run_and_restores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # journals/<plan>/ is relative to where the game day starts
    plan_path = write_plan(
        tmp_path, {"hold": holding(60), "later": healthy(tmp_path, "x")}, time_limit="2s"
    )
    plan = load_plan(plan_path)
    restore, record = _recorder(tmp_path)
    directory = new_run_directory(plan)
    result = GameDayRunner(plan, directory, restore=restore, grace=15, log=lambda m: None).run()
    first, second = result.outcomes
    assert first.status == "timed out"
    assert first.reason == "ran past its time limit of 2.00 s; stopped"
    assert record.read_text() == f"--run {first.run_id}\n"
    assert first.restore and "restored 1 object" in first.restore
    assert second.status == "skipped"  # on_deviation defaults to stop
    assert not result.ok
    # chaostoolkit got SIGTERM, not SIGKILL: it wrote its journal.
    journal = json.loads(Path(first.journal or "").read_text())
    assert journal["status"] == "interrupted"


def test_the_restore_after_a_time_limit_gets_the_restore_environment_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `chaosmesh run` on the embedded mesh hands the mesh's kubeconfig to the restore it runs
    # after a time limit; without it the restore would go to ~/.kube/config.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    seen_by_experiment = tmp_path / "experiment-kubeconfig.txt"
    experiment = holding(60)
    experiment["method"][0]["provider"] = {
        "type": "process",
        "path": "sh",
        "arguments": ["-c", f'echo "[$KUBECONFIG]" > {seen_by_experiment}; exec sleep 60'],
    }
    plan = load_plan(write_plan(tmp_path, {"hold": experiment}, time_limit="3s"))
    record = tmp_path / "restore-env.txt"
    script = tmp_path / "restore.py"
    script.write_text(
        "import os, sys\n"
        f"open({str(record)!r}, 'w').write(os.environ.get('KUBECONFIG', '<unset>'))\n"
    )
    mesh_kubeconfig = str(tmp_path / ".chaosmesh" / "kubeconfig")
    result = GameDayRunner(
        plan,
        new_run_directory(plan),
        restore=[sys.executable, str(script)],
        grace=15,
        log=lambda m: None,
        restore_env={"KUBECONFIG": mesh_kubeconfig},
    ).run()
    (outcome,) = result.outcomes
    assert outcome.status == "timed out"
    assert record.read_text() == mesh_kubeconfig
    assert seen_by_experiment.read_text().strip() == "[]"  # experiments keep their own env


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_signal_stops_cleanly_and_restores(tmp_path: Path, signum: int) -> None:
    plan = write_plan(tmp_path, {"hold": holding(120), "next": healthy(tmp_path, "n")})
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaosmesh_ext.cli", "gameday", "run", str(plan)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # Wait until chaos is inside the long action (its log says so).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            logs = list((tmp_path / "journals" / "demo").glob("*/01-hold.log"))
            if logs and "Action: hold-fault" in logs[0].read_text(errors="replace"):
                break
            time.sleep(0.2)
        else:
            pytest.fail("chaos run never reached the action")
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == 130, out + err
    summary = summary_of(tmp_path)
    assert summary["interrupted"] is True
    first, second = summary["outcomes"]
    assert first["status"] == "interrupted"
    assert f"restore --run {first['run_id']}" in first["restore"] or (
        "chaosmesh restore is not available" in first["restore"]
    )
    assert second["status"] == "skipped"
    assert json.loads(Path(first["journal"]).read_text())["status"] == "interrupted"
    assert _processes_mentioning(str(tmp_path / "experiments")) == []  # nothing left running


def test_a_second_run_of_the_same_plan_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    plan_path = write_plan(tmp_path, {"one": healthy(tmp_path, "one")})
    plan = load_plan(plan_path)
    with PlanLock(plan.journals_root / ".lock"):
        done = chaosmesh("gameday", "run", str(plan_path), cwd=tmp_path)
    assert done.returncode != 0
    assert f"another run of this plan is in progress (pid {os.getpid()}" in done.stderr
    assert run_dirs(tmp_path) == []


@pytest.mark.parametrize(
    ("plan_text", "message"),
    [
        ("name: demo\nexperiments: [experiments/*.json]\nretries: 3\n", "unknown key(s) 'retries'"),
        (
            "name: demo\nexperiments: [experiments/*.json]\nschedule: '61 * * * *'\n",
            "schedule: cron expression '61 * * * *': minute: 61 is out of range 0-59",
        ),
        (
            "name: demo\nexperiments: [experiments/missing.json]\n",
            "experiments: 'experiments/missing.json' does not exist",
        ),
        (
            "name: demo\nexperiments: [nowhere/*.json]\n",
            "experiments: 'nowhere/*.json' matches no file",
        ),
        (
            "name: demo\nexperiments: [experiments/*.json]\non_deviation: panic\n",
            "on_deviation: expected 'stop' or 'continue', got 'panic'",
        ),
        ("name: Demo Day\nexperiments: [experiments/*.json]\n", "name: must be 1-52 lowercase"),
        (
            "name: demo\nexperiments: [experiments/*.json]\ntarget: cluster\n",
            "target: expected one of embedded, kubernetes, got 'cluster'",
        ),
        (
            "name: demo\nexperiments: [experiments/*.json]\ntime_limit: soon\n",
            "time_limit: expected a duration",
        ),
        ("name: demo\nexperiments: [experiments/*.json\n", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping of keys"),
    ],
)
def test_bad_plans_are_refused_and_nothing_runs(
    tmp_path: Path, plan_text: str, message: str
) -> None:
    write_plan(tmp_path, {"one": healthy(tmp_path, "one")})
    plan = tmp_path / "bad.yaml"
    plan.write_text(plan_text)
    for args in (
        ("run", str(plan)),
        ("schedule", "--once", "--run-now", str(plan)),
        ("cronjob", str(plan)),
    ):
        done = chaosmesh("gameday", *args, cwd=tmp_path)
        assert done.returncode != 0
        assert f"plan {plan}" in done.stderr and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "journals").exists()
    assert not (tmp_path / "one-made").exists()


def test_the_safety_net_control_gets_the_game_days_run_id(tmp_path: Path) -> None:
    experiment = healthy(tmp_path, "one")
    experiment["controls"] = [
        {
            "name": "chaosmesh-safety-net",
            "provider": {"type": "python", "module": "chaosmesh_ext.control"},
        }
    ]
    plan = write_plan(tmp_path, {"one": experiment})
    env = {"CHAOSMESH_LEDGER_DIR": str(tmp_path / "ledger")}
    done = chaosmesh("gameday", "run", str(plan), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    (outcome,) = summary_of(tmp_path)["outcomes"]
    journal = json.loads(Path(outcome["journal"]).read_text())
    (section,) = [e for e in journal["experiment"]["extensions"] if e["name"] == "chaosmesh"]
    assert section["run_id"] == outcome["run_id"]
    shown = chaosmesh("journal", "show", outcome["journal"]).stdout
    assert "Safety net\n  nothing left to restore" in shown


def test_chaosmesh_run_says_which_experiment_starts_before_it_ends(tmp_path: Path) -> None:
    """`make run` / `chaosmesh run`: a line per experiment as it starts, not only at its end.

    The experiment waits for a file the test writes only once it has read that line.
    """
    go = tmp_path / "go"
    waiting = {
        "title": "waits for the test",
        "description": "holds until the file 'go' exists",
        "method": [
            {
                "type": "action",
                "name": "wait-for-go",
                "provider": {
                    "type": "process",
                    "path": "sh",
                    "arguments": ["-c", f"while [ ! -e {go} ]; do sleep 0.1; done"],
                },
            }
        ],
    }
    experiment = tmp_path / "waiting.json"
    experiment.write_text(json.dumps(waiting))
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("chaosmesh")), "run", "--target", "kubernetes",
         "--time-limit", "120s", "--journals", str(tmp_path / "journals"), str(experiment)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "waiting.json: running" in line:
                break
        assert seen and seen[-1].startswith("[1/1] waiting.json: running (run id run-"), seen
        assert proc.poll() is None  # still running: it cannot end before `go` exists
        go.touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
    assert "[1/1] waiting.json: completed" in err
    assert re.search(r"^waiting\s+completed\s+no\s", out, re.M), out


def _writes_marker(work: Path) -> dict:
    """Creates the directory its configuration's ``marker`` names (env GAMEDAY_MARKER)."""
    experiment = healthy(work, "marker")
    experiment["configuration"] = {
        "marker": {"type": "env", "key": "GAMEDAY_MARKER", "default": str(work / "default")},
        "suffix": "plain",
    }
    experiment["method"][0]["provider"]["arguments"]["name"] = "${marker}-${suffix}"
    experiment["rollbacks"] = []
    return experiment


def test_plan_env_reaches_experiments_and_the_kubernetes_section_only_a_cluster(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    plan = write_plan(
        tmp_path,
        {"marker": _writes_marker(work)},
        env={"GAMEDAY_MARKER": str(work / "everywhere")},
        kubernetes={
            "env": {"GAMEDAY_MARKER": str(work / "cluster")},
            "variables": {"suffix": "cluster-var"},
        },
    )
    done = chaosmesh("gameday", "run", str(plan), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in work.iterdir()) == ["everywhere-plain"]
    # Against a cluster (MESH_TARGET=kubernetes, as in the CronJob) the section applies.
    done = chaosmesh("gameday", "run", str(plan), cwd=tmp_path, env={"MESH_TARGET": "kubernetes"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in work.iterdir()) == ["cluster-cluster-var", "everywhere-plain"]


def test_against_a_cluster_an_empty_setting_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    experiment = _writes_marker(work)
    experiment["configuration"]["gateway_url"] = {
        "type": "env",
        "key": "MESH_GATEWAY_URL",
        "default": "",
    }
    plan = write_plan(tmp_path, {"canary": experiment}, target="kubernetes")
    done = chaosmesh("gameday", "run", str(plan), cwd=tmp_path, env={"MESH_GATEWAY_URL": ""})
    assert done.returncode == 1
    assert "canary.json: configuration 'gateway_url' reads environment variable " in done.stderr
    assert run_dirs(tmp_path) == [] and list(work.iterdir()) == []
    # The shell's environment counts on this machine.
    done = chaosmesh(
        "gameday", "run", str(plan), cwd=tmp_path, env={"MESH_GATEWAY_URL": "http://gw"}
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_journal_lines_and_the_journals_option(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    plan = write_plan(
        tmp_path, {"a": healthy(work, "a"), "b": deviating(work)}, on_deviation="continue"
    )
    elsewhere = tmp_path / "elsewhere"
    done = chaosmesh(
        "gameday", "run", str(plan), "--journals", str(elsewhere), "--journal-lines", cwd=tmp_path
    )
    assert done.returncode == 1  # b deviates
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [(r["kind"], r["gameday"], r["file"]) for r in records] == [
        ("chaosmesh.io/journal", "demo", "01-a.json"),
        ("chaosmesh.io/journal", "demo", "02-b.json"),
    ]
    (run,) = [p for p in elsewhere.iterdir() if p.is_dir()]
    assert all(r["run"] == run.name for r in records)
    # Each line is the journal file, whole.
    assert records[1]["journal"] == json.loads((run / "02-b.json").read_text())
    assert records[1]["journal"]["deviated"] is True
    assert run_dirs(tmp_path) == []  # not the plan's default journals directory


def test_schedule_next_prints_fire_times_in_the_plan_zone(tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path,
        {"a": healthy(tmp_path, "a")},
        schedule="0 3 * * mon-fri",
        timezone="Europe/Paris",
    )
    before = datetime.now(UTC)
    done = chaosmesh("gameday", "schedule", str(plan), "--next", "7", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    times = [datetime.fromisoformat(line) for line in done.stdout.splitlines()]
    assert len(times) == 7
    paris = ZoneInfo("Europe/Paris")
    for t in times:
        assert t.utcoffset() == t.astimezone(paris).utcoffset()  # written in Paris time
        assert (t.hour, t.minute) == (3, 0) and t.isoweekday() <= 5
    assert before < times[0] and times == sorted(times)
    cron = CronExpression.parse("0 3 * * mon-fri", "Europe/Paris")
    assert times[1:] == [cron.next_after(t) for t in times[:-1]]
    assert run_dirs(tmp_path) == []  # nothing ran


def test_schedule_next_of_the_two_day_field_cases(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, {"a": healthy(tmp_path, "a")}, schedule="0 0 * * */2")
    done = chaosmesh("gameday", "schedule", str(plan), "--next", "8", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    days = {datetime.fromisoformat(line).strftime("%a") for line in done.stdout.splitlines()}
    assert days == {"Sun", "Tue", "Thu", "Sat"}
    assert all(line.endswith("T00:00:00+00:00") for line in done.stdout.splitlines())


def test_gameday_help_shows_every_plan_key() -> None:
    done = chaosmesh("gameday", "--help")
    assert done.returncode == 0
    for key in KEYS:
        assert f"\n  {key}:" in done.stdout, key


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone: time zone 'Mars/Olympus': unknown time zone"),
        (
            {"schedule": "CRON_TZ=Asia/Tokyo @daily", "timezone": "UTC"},
            "names time zone 'Asia/Tokyo' but the time zone is 'UTC'",
        ),
        ({"kubernetes": {"envs": {}}}, "kubernetes: expected a mapping with env and/or variables"),
        ({"env": {"BAD-NAME": "x"}}, "env: bad name 'BAD-NAME'"),
        ({"env": {"OK": None}}, "env.OK: expected a string or number"),
    ],
)
def test_bad_new_plan_keys_are_refused(tmp_path: Path, extra: dict, message: str) -> None:
    plan = write_plan(tmp_path, {"a": healthy(tmp_path, "a")}, **extra)
    done = chaosmesh("gameday", "run", str(plan), cwd=tmp_path)
    assert done.returncode == 1
    assert message in done.stderr
    assert run_dirs(tmp_path) == []


def test_experiments_without_the_safety_net_start_no_mesh(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    plan = write_plan(tmp_path, {"a": healthy(work, "a")}, target="embedded")
    state = tmp_path / "mesh-state"
    done = chaosmesh("gameday", "run", str(plan), "--state-dir", str(state), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "starting the embedded mesh" not in done.stdout
    assert not state.exists()


def test_readme_game_days_section_shows_the_plan_format_and_the_seed_plan() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Game days") :]
    assert PLAN_FORMAT in section  # the same text as `gameday --help`
    for command in ("gameday run", "gameday schedule", "--next", "gameday cronjob"):
        assert command in section
    assert "gamedays/seed-nightly.yaml" in section and "kubectl -n chaos cp" in section
    assert "chaosmesh journal report" in section and "kubectl -n chaos logs" in section
