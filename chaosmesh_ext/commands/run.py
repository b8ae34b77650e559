"""``chaosmesh run EXPERIMENT...``: run several experiments, one journal each, and a table.

``chaos run`` takes one file at a time; this runs each with ``chaos run`` in its own bounded
process (the game-day runner: SIGTERM forwarded, ``chaosmesh restore`` after a kill), writes
``<journals>/<experiment>.json`` plus ``summary.json`` and ``report.html``, and prints one
row per experiment with the numbers people look at first. On the embedded target it starts
one mesh for the whole set (each experiment's control loads its own manifests into it) and
stops it at the end if it started it. Exit code 1 when any experiment did not complete, or
deviated.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import click

from chaosmesh_ext._parse import parse_bool
from chaosmesh_ext.gameday.plan import Plan, PlanError, parse_duration
from chaosmesh_ext.gameday.runner import ExperimentOutcome, GameDayRunner
from chaosmesh_ext.gameday.stopping import Stopper, stop_on_signals
from chaosmesh_ext.journal import Journal
from chaosmesh_ext.mesh import target as mesh_target


def _wants_prometheus(experiment: Path) -> bool:
    """Whether an experiment asks the embedded mesh for Prometheus (``mesh_prometheus``)."""
    try:
        document = json.loads(experiment.read_text())
    except (OSError, ValueError):
        return False  # chaos run reports an unreadable experiment itself
    return parse_bool((document.get("configuration") or {}).get("mesh_prometheus"), default=False)


def key_numbers(journal: Journal) -> dict[str, str]:
    """The worst p99 and error rate any load probe saw, and the last traffic split."""
    loads = [record.load for _, record in journal.load_results() if record.load]
    p99s = [load.p99_ms for load in loads if load.p99_ms is not None]
    errors = [load.error_rate for load in loads if load.error_rate is not None]
    splits = journal.splits()
    split = ""
    if splits:
        fractions = splits[-1][1].split or {}
        split = " ".join(f"{k}={v:.2f}" for k, v in sorted(fractions.items()))
    return {
        "p99": f"{max(p99s):.1f} ms" if p99s else "-",
        "errors": f"{max(errors):.1%}" if errors else "-",
        "split": split or "-",
    }


def _row(outcome: ExperimentOutcome, journals: Mapping[str, Journal]) -> list[str]:
    numbers = {"p99": "-", "errors": "-", "split": "-"}
    journal = journals.get(outcome.journal or "")
    if journal is not None:
        numbers = key_numbers(journal)
    duration = f"{outcome.duration:.1f} s" if outcome.duration is not None else "-"
    return [
        Path(outcome.experiment).stem,
        outcome.status,
        "yes" if outcome.deviated else "no",
        duration,
        numbers["p99"],
        numbers["errors"],
        numbers["split"],
    ]


def render_table(outcomes: Sequence[ExperimentOutcome], journals: Mapping[str, Journal]) -> str:
    """A plain text table, one row per experiment (columns sized to their content).

    ``journals``: the journals the runner read, by path (unreadable ones are absent).
    """
    header = ["experiment", "status", "deviated", "duration", "worst p99", "worst errors", "split"]
    rows = [header, *(_row(o, journals) for o in outcomes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    reasons = [
        f"  {Path(o.experiment).stem}: {o.reason}" for o in outcomes if not o.ok and o.reason
    ]
    return "\n".join(lines + (["", "why:", *reasons] if reasons else []))


@click.command("run")
@click.argument(
    "experiments",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--journals",
    "journals",
    default="journals",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the journals (<experiment>.json), summary.json and report.html.",
)
@click.option(
    "--target",
    type=click.Choice(mesh_target.TARGETS),
    envvar="MESH_TARGET",
    default=mesh_target.EMBEDDED,
    show_default=True,
    help="Where the experiments run (also from MESH_TARGET).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=mesh_target.STATE_DIR_ENV,
    default=mesh_target.DEFAULT_STATE_DIR,
    show_default=True,
    help="The embedded mesh's state directory.",
)
@click.option(
    "--time-limit",
    default="300s",
    show_default=True,
    help="Longest one experiment may run before it is stopped and restored.",
)
@click.option(
    "--stop-on-deviation", is_flag=True, help="Do not run the rest once one experiment fails."
)
@click.option("--keep-mesh", is_flag=True, help="Leave the embedded mesh running afterwards.")
def command(
    experiments: tuple[Path, ...],
    journals: Path,
    target: str,
    state_dir: Path,
    time_limit: str,
    stop_on_deviation: bool,
    keep_mesh: bool,
) -> None:
    """Run EXPERIMENT files with chaos run, one journal each, and print a summary table."""
    try:
        limit = parse_duration(time_limit, "--time-limit")
    except PlanError as exc:
        raise click.BadParameter(str(exc)) from None
    for path in experiments:
        if path.suffix.lower() not in (".json", ".yaml", ".yml"):
            raise click.BadParameter(f"{path}: not an experiment file (.json, .yaml)")

    journals = journals.resolve()
    state_dir = state_dir.resolve()
    plan = Plan(
        path=Path.cwd() / "chaosmesh-run",
        name="run",
        experiments=[p.resolve() for p in experiments],
        target=target,
        on_deviation="stop" if stop_on_deviation else "continue",
        time_limit=limit,
        journals=journals,
    )
    env = dict(os.environ)
    env[mesh_target.STATE_DIR_ENV] = str(state_dir)
    env[mesh_target.KEEP_MESH_ENV] = "1"  # one mesh for the whole set, stopped below

    started_mesh: mesh_target.DaemonId | None = None
    restore_env: dict[str, str] = {}
    if target == mesh_target.EMBEDDED:
        # The game day's `chaosmesh restore` after a time limit must reach this mesh, not
        # ~/.kube/config (ledger entries also name the kubeconfig they were made with).
        restore_env["KUBECONFIG"] = str(state_dir / "kubeconfig")
    if target == mesh_target.EMBEDDED and mesh_target.read_mesh_state(state_dir) is None:
        prometheus = any(_wants_prometheus(p) for p in plan.experiments)
        click.echo(
            f"starting the embedded mesh in {state_dir}"
            + (" with Prometheus" if prometheus else "")
            + " ...",
            err=True,
        )
        try:
            started_mesh = mesh_target.mesh_up(state_dir, [], None, prometheus=prometheus)
        except mesh_target.TargetError as exc:
            raise click.ClickException(str(exc)) from None

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    runner = GameDayRunner(
        plan,
        journals,
        env=env,
        log=lambda line: click.echo(line, err=True),
        file_stem=lambda index, experiment: experiment.stem,
        run_prefix=f"run-{stamp}",  # ledger run ids run-<stamp>-NN, unique per invocation
        restore_env=restore_env,
    )
    stopper = Stopper()
    stopper.attach(runner)
    try:
        with stop_on_signals(stopper):
            click.echo(
                f"run {stamp}: {len(plan.experiments)} experiment(s), target {target}", err=True
            )
            result = runner.run()
    finally:
        if started_mesh is not None and not keep_mesh:
            try:
                # Only the daemon this command started, never one that replaced it.
                mesh_target.stop_daemon(state_dir, started_mesh)
            except mesh_target.TargetError as exc:
                click.echo(f"warning: {exc}", err=True)

    click.echo(render_table(result.outcomes, runner.journals))
    click.echo(f"\njournals: {journals}  (chaosmesh journal show {journals}/<experiment>.json)")
    if result.interrupted:
        sys.exit(130)
    if not result.ok:
        sys.exit(1)
