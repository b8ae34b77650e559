"""The terminal summary of one journal: what a person reads in ten seconds.

Pure: takes a ``Journal`` and returns text. Colour is an input (the command decides from
NO_COLOR and whether the stream is a terminal), so the same text is testable.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from chaosmesh_ext.journal import text
from chaosmesh_ext.journal.model import Hypothesis, Journal, RunRecord

_GOOD = {
    "succeeded",
    "completed",
    "met",
    "restored",
    "deleted",
    "already-restored",
    "never-applied",
}
_BAD = {"failed", "aborted", "deviated", "refused", "conflict", "not met", "interrupted"}

Paint = Callable[[str, str], str]


def _painter(colour: bool) -> Paint:
    def paint(word: str, tone: str) -> str:
        if not colour:
            return word
        fg = {"good": "green", "bad": "red", "warn": "yellow", "dim": "bright_black"}.get(tone)
        return click.style(word, fg=fg, bold=tone == "title")

    return paint


def _tone(word: str) -> str:
    if word in _GOOD:
        return "good"
    if word in _BAD:
        return "bad"
    return "warn"


def _mark(record: RunRecord) -> str:
    if record.tolerance_met is False or record.status == "failed":
        return "✗"
    if record.status == "interrupted":
        return "!"
    return "✓"


def render(journal: Journal, colour: bool = False) -> str:
    """The summary as text lines joined by newlines."""
    paint = _painter(colour)
    out: list[str] = [paint(journal.title, "title")]
    when = journal.start.strftime("%Y-%m-%d %H:%M:%S") if journal.start else "?"
    outcome = journal.outcome
    head = [
        paint(outcome.upper(), _tone(outcome)),
        f"status {journal.status}",
        f"deviated {'yes' if journal.deviated else 'no'}",
        f"duration {text.seconds(journal.duration)}",
        f"started {when}",
    ]
    if journal.chaoslib_version:
        head.append(f"chaoslib {journal.chaoslib_version}")
    out.append("  " + " · ".join(head))
    if journal.interruption:
        out.append("  " + paint(f"interrupted: {journal.interruption}", "bad"))

    title = f' "{journal.hypothesis_title}"' if journal.hypothesis_title else ""
    out.append("")
    out.append(f"Steady state{title}")
    if journal.before is None and journal.after is None and not journal.during:
        out.append("  (no steady-state hypothesis)")
    for label, hyp in (("before", journal.before), ("after", journal.after)):
        if hyp is not None:
            out += _hypothesis(label, hyp, paint)
    for i, hyp in enumerate(journal.during):
        out += _hypothesis(f"during #{i + 1}", hyp, paint)
    if journal.before is not None and journal.after is None and journal.has_method:
        out.append("  after: " + paint("not checked", "warn"))

    out.append("")
    out.append("Method")
    if not journal.has_method:
        out.append("  (no method: only the hypothesis was checked)")
    elif not journal.method:
        out.append("  (not run)")
    out += [_activity(r, paint) for r in journal.method]

    out.append("")
    out.append("Rollbacks")
    if not journal.rollbacks:
        out.append("  (none ran)")
    out += [_activity(r, paint) for r in journal.rollbacks]

    if journal.safety_net or journal.restored:
        out.append("")
        out.append("Safety net")
        if not journal.restored:
            out.append("  nothing left to restore")
        for item in journal.restored:
            detail = f"  {item.detail}" if item.detail else ""
            # Pad before painting: escape codes would count as width.
            action = paint(f"{item.action:<10}", _tone(item.action))
            out.append(f"  {action} {item.label}{detail}")

    loads = journal.load_results()
    if loads:
        out.append("")
        out.append("Load")
        out += _load_table(loads)
    splits = journal.splits()
    if splits:
        out.append("")
        out.append("Traffic split")
        for phase, rec in splits:
            parts = " ".join(f"{k} {v * 100:.1f}%" for k, v in (rec.split or {}).items())
            out.append(f"  {phase:<7} {rec.name:<28} {parts}")
    return "\n".join(out) + "\n"


def _hypothesis(label: str, hyp: Hypothesis, paint: Paint) -> list[str]:
    state = "met" if hyp.met else ("not met" if hyp.met is False else "unknown")
    lines = [f"  {label}: {paint(state, _tone(state))}"]
    for probe in hyp.probes:
        mark = _mark(probe)
        tone = "bad" if mark == "✗" else ("warn" if mark == "!" else "good")
        lines.append(f"    {paint(mark, tone)} {probe.name:<28} {text.tolerance(probe)}")
    return lines


def _activity(record: RunRecord, paint: Paint) -> str:
    status = record.status
    line = (
        f"  {paint(_mark(record), _tone(status))} {record.type:<6} {record.name:<28} "
        f"{paint(status, _tone(status))} {text.seconds(record.duration)}"
    )
    call = record.provider
    if record.arguments:
        call += f"({text.arguments(record.arguments)})"
    line += f"\n      {paint(call, 'dim')}"
    if record.error:
        line += f"\n      {paint('error: ' + record.error, 'bad')}"
    return line


def _load_table(loads: list[tuple[str, RunRecord]]) -> list[str]:
    header = ("phase", "probe", "reqs", "qps", "p50 ms", "p90 ms", "p99 ms", "errors", "codes")
    rows = [header]
    for phase, rec in loads:
        load = rec.load
        assert load is not None
        rows.append(
            (
                phase,
                text.short(rec.name, 28),
                "-" if load.count is None else str(load.count),
                "-" if load.qps is None else f"{load.qps:.1f}",
                text.ms(load.p50_ms),
                text.ms(load.p90_ms),
                text.ms(load.p99_ms),
                text.percent(load.error_rate),
                text.codes(load),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(w) if i < 2 or i == len(row) - 1 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines
