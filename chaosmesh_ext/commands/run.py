"""``chaosmesh run EXPERIMENT...``: run several experiments, one journal each, and a table.

``chaos run`` takes one file at a time; this runs each with ``chaos run`` in its own bounded
process (the game-day runner: SIGTERM forwarded, ``chaosmesh restore`` after a kill), writes
``<journals>/<experiment>.json`` plus ``summary.json`` and ``report.html``, and prints one
row per experiment with the numbers people look at first. On the embedded target the whole
set shares one mesh (``gameday.embedded``). Exit code 1 when any experiment did not complete,
or deviated.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import click

from chaosmesh_ext.commands.options import state_dir_option
from chaosmesh_ext.commands.shared_mesh import shared_mesh
from chaosmesh_ext.experiment_check import check_file
from chaosmesh_ext.gameday.plan import Plan, PlanError, parse_duration
from chaosmesh_ext.gameday.runner import TARGET_ENV, ExperimentOutcome, GameDayRunner
from chaosmesh_ext.gameday.stopping import Stopper, stop_on_signals
from chaosmesh_ext.journal import Journal, digest
from chaosmesh_ext.mesh import target as mesh_target


def key_numbers(journal: Journal) -> dict[str, str]:
    """The worst p99 and error rate of any load the run made (a rollout's guard loads too),
    and the last traffic split."""
    loads = digest.all_loads(journal)
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


def _say(line: str) -> None:
    click.echo(line, err=True)


def _check_arguments(experiments: Sequence[Path]) -> None:
    """Refuse to run anything when a step's arguments do not fit its function (a typo in a
    step that runs late would cost the whole run); print warnings and go on otherwise."""
    errors = 0
    for path in experiments:
        for problem in check_file(path) or []:
            errors += problem.severity == "error"
            click.echo(f"{path}: {problem.severity}: {problem}", err=True)
    if errors:
        raise click.ClickException(
            f"{errors} argument problem(s): nothing was run (chaosmesh lint -f FILE checks them)"
        )


def next_step(outcomes: Sequence[ExperimentOutcome]) -> str | None:
    """``chaosmesh journal show <journal>`` for a journal this run wrote: the first that did
    not pass, else the first; None when no experiment wrote one."""
    written = [o for o in outcomes if o.journal and Path(o.journal).exists()]
    if not written:
        return None
    first = next((o for o in written if not o.ok), written[0])
    return f"chaosmesh journal show {first.journal}"


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
@state_dir_option
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
@click.option(
    "--reapply",
    is_flag=True,
    help="On a mesh already running, replace objects that differ from an experiment's "
    "manifests (the safety net puts the Istio ones back afterwards) instead of refusing.",
)
def command(
    experiments: tuple[Path, ...],
    journals: Path,
    target: str,
    state_dir: Path,
    time_limit: str,
    stop_on_deviation: bool,
    keep_mesh: bool,
    reapply: bool,
) -> None:
    """Run EXPERIMENT files with chaos run, one journal each, and print a summary table."""
    try:
        limit = parse_duration(time_limit, "--time-limit")
    except PlanError as exc:
        raise click.BadParameter(str(exc)) from None
    for path in experiments:
        if path.suffix.lower() not in (".json", ".yaml", ".yml"):
            raise click.BadParameter(f"{path}: not an experiment file (.json, .yaml)")
    _check_arguments(experiments)

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
    environ = {**os.environ, TARGET_ENV: target}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stopper = Stopper()
    try:
        with shared_mesh(
            state_dir,
            plan.experiments,
            environ,
            keep=keep_mesh,
            echo=_say,
            run_id=f"run-{stamp}",
            reapply=reapply,
        ) as mesh:
            runner = GameDayRunner(
                plan,
                journals,
                env={**os.environ, **mesh.env},
                log=_say,
                file_stem=lambda index, experiment: experiment.stem,
                run_prefix=f"run-{stamp}",  # ledger run ids run-<stamp>-NN, unique per invocation
                restore_env=mesh.restore_env,
            )
            stopper.attach(runner)
            with stop_on_signals(stopper):
                _say(f"run {stamp}: {len(plan.experiments)} experiment(s), target {target}")
                result = runner.run()
    except mesh_target.TargetError as exc:
        raise click.ClickException(str(exc)) from None

    click.echo(render_table(result.outcomes, runner.journals))
    hint = next_step(result.outcomes)
    click.echo(f"\njournals: {journals}" + (f"  (next: {hint})" if hint else ""))
    if result.interrupted:
        sys.exit(130)
    if not result.ok:
        sys.exit(1)
