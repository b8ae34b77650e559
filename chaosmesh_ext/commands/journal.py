"""``chaosmesh journal``: review journals in the terminal (``show``) or as HTML (``report``).

Each argument is a journal, a run's ``summary.json``, or a log holding journal lines
(``kubectl logs`` of a game day's pod, ``journal.lines``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from chaosmesh_ext.journal import Journal, JournalError, load_journal, run_outcomes
from chaosmesh_ext.journal.lines import journals_in_log
from chaosmesh_ext.journal.report import render_html
from chaosmesh_ext.journal.summary import render
from chaosmesh_ext.journal.verdict import verdict


def use_colour(choice: bool | None, stream: object = None) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (no-color.org)."""
    if choice is not None:
        return choice
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _load_all(paths: tuple[str, ...]) -> tuple[list[Journal], list[tuple[str, str, str]]]:
    """The journals among ``paths``, and the outcome rows of any run summary among them."""
    journals: list[Journal] = []
    outcomes: list[tuple[str, str, str]] = []
    for path in paths:
        try:
            journals.append(load_journal(path))
        except JournalError as exc:
            rows = run_outcomes(path)
            if rows is None:
                try:
                    logged = journals_in_log(path)
                except JournalError as bad_line:
                    raise click.ClickException(str(bad_line)) from None
                if logged is None:
                    raise click.ClickException(str(exc)) from None
                journals += logged
                continue
            # `dir/*.json` picks up the summary written beside the journals: use it.
            click.echo(
                f"{path}: a run summary, not a journal: its outcomes head the report", err=True
            )
            outcomes += rows
    if not journals:
        raise click.ClickException(f"no journal among {', '.join(paths)}")
    return journals, outcomes


def _exit_on_failures(loaded: list[Journal]) -> None:
    """Exit 1 when a journal's run did not pass (as `chaosmesh run` would have), so a script
    or CI step that reviews journals fails on a run that tested nothing or deviated."""
    failed = [j for j in loaded if not verdict(j).ok]
    if failed:
        click.echo(f"{len(failed)} of {len(loaded)} journal(s) did not pass", err=True)
        sys.exit(1)


@click.group("journal")
def command() -> None:
    """Review journals: terminal summary or HTML report."""


@command.command("show")
@click.argument("journals", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--color/--no-color", "colour", default=None, help="Force colour on or off.")
def show(journals: tuple[str, ...], colour: bool | None) -> None:
    """Summarise JOURNAL: outcome, hypothesis, method, rollbacks, safety net, load.

    Exits 1 when a journal's run did not pass (deviated, failed, nothing tested)."""
    loaded, _ = _load_all(journals)
    paint = use_colour(colour)
    for index, journal in enumerate(loaded):
        if index:
            click.echo("")
        click.echo(render(journal, colour=paint), nl=False, color=paint)
    _exit_on_failures(loaded)


@command.command("report")
@click.argument("journals", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the HTML file.",
)
def report(journals: tuple[str, ...], output: str) -> None:
    """Write one self-contained HTML report for one or more JOURNALS.

    The report is always written; exits 1 when a journal's run did not pass."""
    loaded, outcomes = _load_all(journals)
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(loaded, outcomes=outcomes), encoding="utf-8")
    click.echo(f"wrote {target} ({len(loaded)} journal(s))")
    _exit_on_failures(loaded)
