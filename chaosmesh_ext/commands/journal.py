"""``chaosmesh journal``: review journals in the terminal (``show``) or as HTML (``report``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from chaosmesh_ext.journal import Journal, JournalError, load_journal
from chaosmesh_ext.journal.report import render_html
from chaosmesh_ext.journal.summary import render


def use_colour(choice: bool | None, stream: object = None) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (no-color.org)."""
    if choice is not None:
        return choice
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _load_all(paths: tuple[str, ...]) -> list[Journal]:
    try:
        return [load_journal(p) for p in paths]
    except JournalError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("journal")
def command() -> None:
    """Review journals: terminal summary or HTML report."""


@command.command("show")
@click.argument("journals", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--color/--no-color", "colour", default=None, help="Force colour on or off.")
def show(journals: tuple[str, ...], colour: bool | None) -> None:
    """Summarise JOURNAL: outcome, hypothesis, method, rollbacks, safety net, load."""
    loaded = _load_all(journals)
    paint = use_colour(colour)
    for index, journal in enumerate(loaded):
        if index:
            click.echo("")
        click.echo(render(journal, colour=paint), nl=False, color=paint)


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
    """Write one self-contained HTML report for one or more JOURNALS."""
    loaded = _load_all(journals)
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(loaded), encoding="utf-8")
    click.echo(f"wrote {target} ({len(loaded)} journal(s))")
