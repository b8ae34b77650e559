"""``chaosmesh gameday``: run a plan now (``run``), on a schedule on this host (``schedule``),
list when it will fire (``schedule --next``), or emit the Kubernetes CronJob that runs it in
a cluster (``cronjob``)."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from chaosmesh_ext.commands.options import state_dir_option
from chaosmesh_ext.commands.shared_mesh import shared_mesh
from chaosmesh_ext.gameday import cronjob
from chaosmesh_ext.gameday.lock import Locked
from chaosmesh_ext.gameday.plan import (
    KUBERNETES,
    PLAN_FORMAT,
    Plan,
    PlanError,
    load_plan,
    read_experiment,
)
from chaosmesh_ext.gameday.runner import GameDayResult, Surround, default_chaos, run_plan
from chaosmesh_ext.gameday.scheduler import Scheduler
from chaosmesh_ext.gameday.settings import empty_settings
from chaosmesh_ext.gameday.stopping import Stopper, stop_on_signals
from chaosmesh_ext.mesh import target as mesh_target

EXIT_INTERRUPTED = 130


def _plan(path: str, journals: Path | None = None) -> Plan:
    try:
        plan = load_plan(path)
    except PlanError as exc:
        raise click.ClickException(str(exc)) from None
    if journals is not None:
        plan = dataclasses.replace(plan, journals=journals.resolve())
    return plan


def _check_settings(plan: Plan) -> None:
    """Against a cluster, refuse a plan whose experiments would read an empty setting."""
    target = plan.target_in(os.environ)
    if target != KUBERNETES:
        return  # on the embedded mesh the control fills in gateway and Prometheus URLs
    variables, env = plan.settings(target)
    try:
        experiments = {p: read_experiment(p) for p in plan.experiments}
    except PlanError as exc:
        raise click.ClickException(str(exc)) from None
    problems = empty_settings(experiments, variables, {**os.environ, **env})
    if problems:
        raise click.ClickException(
            f"plan {plan.path}: against the cluster these settings would be empty:\n  "
            + "\n  ".join(problems)
        )


def _shared_mesh(plan: Plan, state_dir: Path) -> Surround:
    """One embedded mesh in ``state_dir`` for the plan's experiments that want one."""
    return functools.partial(
        shared_mesh,
        state_dir,
        plan.experiments,
        echo=lambda m: click.echo(m),
        run_id=f"gameday-{plan.name}",
    )


def _print_result(result: GameDayResult) -> None:
    click.echo(f"game day {result.plan}: {'OK' if result.ok else 'NOT OK'} — {result.directory}")
    for o in result.outcomes:
        line = f"  {o.status:<11} {Path(o.experiment).name}"
        if o.reason:
            line += f" — {o.reason}"
        click.echo(line)
        if o.restore:
            click.echo(f"              {o.restore}")


@click.group(
    "gameday",
    help="Run, schedule or export game-day plans.\n\nA plan is a YAML file; every key:\n\n\b\n"
    + PLAN_FORMAT,
)
def command() -> None:
    pass


@command.command("run")
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--grace", default=30.0, show_default=True, help="Seconds a stopped run may take.")
@click.option(
    "--journals",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Put the runs here instead of the plan's journals directory.",
)
@click.option(
    "--journal-lines",
    is_flag=True,
    help="Also print each journal as one JSON line on standard output (for a pod's log).",
)
@state_dir_option
def run(
    plan_file: str, grace: float, journals: Path | None, journal_lines: bool, state_dir: Path
) -> None:
    """Run every experiment of PLAN; exit 1 if any deviated or failed."""
    plan = _plan(plan_file, journals)
    _check_settings(plan)
    chaos = default_chaos()
    stopper = Stopper()
    with stop_on_signals(stopper):
        try:
            result = run_plan(
                plan,
                chaos=chaos,
                on_runner=stopper.attach,
                grace=grace,
                log=lambda m: click.echo(m),
                surround=_shared_mesh(plan, state_dir),
                journal_lines=(lambda line: click.echo(line)) if journal_lines else None,
            )
        except (Locked, mesh_target.TargetError) as exc:
            raise click.ClickException(str(exc)) from None
    _print_result(result)
    if result.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    if not result.ok:
        sys.exit(1)


@command.command("schedule")
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option(
    "--next",
    "show_next",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Only print the next N fire times (ISO 8601, the plan's time zone); run nothing.",
)
@click.option("--once", is_flag=True, help="Stop after one run (same as --max-runs 1).")
@click.option("--max-runs", type=click.IntRange(min=1), default=None, help="Stop after N runs.")
@click.option("--run-now", is_flag=True, help="Run once right away, then follow the schedule.")
@state_dir_option
def schedule(
    plan_file: str,
    show_next: int | None,
    once: bool,
    max_runs: int | None,
    run_now: bool,
    state_dir: Path,
) -> None:
    """Run PLAN at the times of its cron schedule, on this host, never two at once."""
    plan = _plan(plan_file)
    if plan.schedule is None:
        raise click.ClickException(f"plan {plan.path}: schedule: no cron schedule is set")
    if show_next is not None:
        when = datetime.now(UTC)
        for _ in range(show_next):
            when = plan.schedule.next_after(when)
            click.echo(when.isoformat())
        return
    _check_settings(plan)
    if once:
        max_runs = 1
    stopper = Stopper()

    def run_once(scheduled: object) -> bool:
        try:
            result = run_plan(
                plan,
                on_runner=stopper.attach,
                log=lambda m: click.echo(m),
                surround=_shared_mesh(plan, state_dir),
            )
        except mesh_target.TargetError as exc:
            click.echo(f"game day {plan.name}: NOT RUN — {exc}", err=True)
            return False
        _print_result(result)
        return result.ok

    scheduler = Scheduler(
        plan.schedule,
        run_once,
        plan.journals_root / "schedule.log",
        sleep=stopper.nap,
        echo=lambda m: click.echo(m),
        should_stop=stopper.event.is_set,
    )
    with stop_on_signals(stopper):
        stats = scheduler.run(
            max_runs=(max_runs - 1 if run_now and max_runs else max_runs), run_now=run_now
        )
    if stopper.signal is not None:
        sys.exit(EXIT_INTERRUPTED)
    if stats.failed:
        sys.exit(1)


@command.command("cronjob")
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option(
    "-n",
    "--namespace",
    default="default",
    show_default=True,
    help="Namespace of the CronJob and its ServiceAccount.",
)
@click.option(
    "--image",
    default=cronjob.DEFAULT_IMAGE,
    show_default=True,
    help="The image the repository's Dockerfile builds (chaosmesh, chaostoolkit, chaosk8s).",
)
@click.option(
    "--journals-claim",
    metavar="NAME",
    default=None,
    help="Keep journals on this PersistentVolumeClaim. Without one they live in the pod's "
    "log only (one JSON line each).",
)
@click.option(
    "--journals-claim-size",
    metavar="SIZE",
    default=None,
    help="Also emit the claim, of this size (e.g. 1Gi).",
)
@click.option(
    "--allow-embedded",
    is_flag=True,
    help="Emit a plan with target: embedded (a mesh of its own inside the pod) anyway.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the YAML here instead of standard output.",
)
def cronjob_command(
    plan_file: str,
    namespace: str,
    image: str,
    journals_claim: str | None,
    journals_claim_size: str | None,
    allow_embedded: bool,
    output: str | None,
) -> None:
    """Emit a CronJob, ServiceAccount, Role, RoleBinding and ConfigMap (and with
    --journals-claim-size a PersistentVolumeClaim) that run PLAN in a cluster."""
    plan = _plan(plan_file)
    try:
        text = cronjob.render(
            plan,
            cronjob.Options(
                namespace=namespace,
                image=image,
                journals_claim=journals_claim,
                claim_size=journals_claim_size,
                allow_embedded=allow_embedded,
            ),
        )
    except PlanError as exc:
        raise click.ClickException(str(exc)) from None
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)
