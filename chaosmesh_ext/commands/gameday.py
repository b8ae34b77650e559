"""``chaosmesh gameday``: run a plan now (``run``), on a schedule on this host (``schedule``),
or emit the Kubernetes CronJob that runs it in a cluster (``cronjob``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chaosmesh_ext.gameday import cronjob
from chaosmesh_ext.gameday.lock import Locked
from chaosmesh_ext.gameday.plan import Plan, PlanError, load_plan
from chaosmesh_ext.gameday.runner import GameDayResult, default_chaos, run_plan
from chaosmesh_ext.gameday.scheduler import Scheduler
from chaosmesh_ext.gameday.stopping import Stopper, stop_on_signals

EXIT_INTERRUPTED = 130


def _plan(path: str) -> Plan:
    try:
        return load_plan(path)
    except PlanError as exc:
        raise click.ClickException(str(exc)) from None


def _print_result(result: GameDayResult) -> None:
    click.echo(f"game day {result.plan}: {'OK' if result.ok else 'NOT OK'} — {result.directory}")
    for o in result.outcomes:
        line = f"  {o.status:<11} {Path(o.experiment).name}"
        if o.reason:
            line += f" — {o.reason}"
        click.echo(line)
        if o.restore:
            click.echo(f"              {o.restore}")


@click.group("gameday")
def command() -> None:
    """Run, schedule or export game-day plans."""


@command.command("run")
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--grace", default=30.0, show_default=True, help="Seconds a stopped run may take.")
def run(plan_file: str, grace: float) -> None:
    """Run every experiment of PLAN; exit 1 if any deviated or failed."""
    plan = _plan(plan_file)
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
            )
        except Locked as exc:
            raise click.ClickException(str(exc)) from None
    _print_result(result)
    if result.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    if not result.ok:
        sys.exit(1)


@command.command("schedule")
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--once", is_flag=True, help="Stop after one run (same as --max-runs 1).")
@click.option("--max-runs", type=click.IntRange(min=1), default=None, help="Stop after N runs.")
@click.option("--run-now", is_flag=True, help="Run once right away, then follow the schedule.")
def schedule(plan_file: str, once: bool, max_runs: int | None, run_now: bool) -> None:
    """Run PLAN at the times of its cron schedule, on this host, never two at once."""
    plan = _plan(plan_file)
    if plan.schedule is None:
        raise click.ClickException(f"plan {plan.path}: schedule: no cron schedule is set")
    if once:
        max_runs = 1
    stopper = Stopper()

    def run_once(scheduled: object) -> bool:
        result = run_plan(plan, on_runner=stopper.attach, log=lambda m: click.echo(m))
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
    help="The chaostoolkit image with chaostoolkit-mesh installed.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the YAML here instead of standard output.",
)
def cronjob_command(plan_file: str, namespace: str, image: str, output: str | None) -> None:
    """Emit a CronJob, ServiceAccount, Role, RoleBinding and ConfigMap for PLAN."""
    plan = _plan(plan_file)
    try:
        text = cronjob.render(plan, namespace=namespace, image=image)
    except PlanError as exc:
        raise click.ClickException(str(exc)) from None
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)
