"""The terminal summary of one journal: what a person reads in ten seconds.

Pure: takes a ``Journal`` and returns text. Colour is an input (the command decides from
NO_COLOR and whether the stream is a terminal), so the same text is testable.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from chaosmesh_ext.journal import digest, text
from chaosmesh_ext.journal.digest import BreakerReading
from chaosmesh_ext.journal.model import Hypothesis, Journal, RunRecord

_GOOD = {
    "succeeded",
    "completed",
    "met",
    "restored",
    "deleted",
    "already-restored",
    "never-applied",
    "moot",  # its embedded mesh stopped: nothing left to put back
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
    if not journal.ok and journal.reason:
        # Why this is not a pass, first: a run that tested nothing must not read as one.
        out.append("  " + paint(journal.reason, "bad"))
    if journal.phases:
        # Where the time outside the activities went (starting the mesh is most of it).
        spent = " · ".join(f"{p.what} {text.seconds(p.duration)}" for p in journal.phases)
        out.append("  " + paint(f"control: {spent}", "dim"))

    # One name column for every section, as wide as the longest name (within reason).
    names = [r.name for r in _records(journal)]
    width = min(max((len(n) for n in names), default=10), NAME_WIDTH)
    breakers = {id(b.record): b for b in digest.breaker_readings(journal)}

    title = f' "{journal.hypothesis_title}"' if journal.hypothesis_title else ""
    out.append("")
    out.append(f"Steady state{title}")
    if journal.before is None and journal.after is None and not journal.during:
        out.append("  (no steady-state hypothesis)")
    for label, hyp in (("before", journal.before), ("after", journal.after)):
        if hyp is not None:
            out += _hypothesis(label, hyp, paint, width)
    for i, hyp in enumerate(journal.during):
        out += _hypothesis(f"during #{i + 1}", hyp, paint, width)
    if journal.before is not None and journal.after is None and journal.has_method:
        out.append("  after: " + paint("not checked", "warn"))

    out.append("")
    out.append("Method")
    if not journal.has_method:
        out.append("  (no method: only the hypothesis was checked)")
    elif not journal.method:
        out.append("  (not run)")
    out += [_activity(r, paint, width, breakers.get(id(r))) for r in journal.method]

    out.append("")
    out.append("Rollbacks")
    if not journal.rollbacks:
        out.append("  (none ran)")
    out += [_activity(r, paint, width) for r in journal.rollbacks]

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
        out += _load_table(loads, width)
    if breakers:
        out.append("")
        out.append("Circuit-breaker counters (cumulative; change since the previous reading)")
        out += _breaker_table(list(breakers.values()), width)
    splits = journal.splits()
    if splits:
        out.append("")
        out.append("Traffic split")
        for phase, rec in splits:
            check = digest.split_check(rec.output)
            if check is not None:
                parts = digest.split_sides(check)
            else:
                parts = " ".join(f"{k} {v * 100:.1f}%" for k, v in (rec.split or {}).items())
            out.append(f"  {phase:<7} {rec.name:<{width}} {parts}")
    return "\n".join(out) + "\n"


# Names longer than this are cut in tables rather than pushing every column right.
NAME_WIDTH = 40


def _records(journal: Journal) -> list[RunRecord]:
    hyps = [h for h in (journal.before, journal.after, *journal.during) if h is not None]
    return [r for h in hyps for r in h.probes] + journal.method + journal.rollbacks


def _breaker_table(readings: list[BreakerReading], width: int) -> list[str]:
    keys: list[str] = []
    for reading in readings:
        keys += [k for k in reading.shown() if k not in keys]
    header = ["phase", "probe", "host", *keys, "calls", "retries/call"]
    rows = [header]
    for r in readings:
        cells = [r.phase, text.short(r.record.name, width), r.host]
        for key in keys:
            value = r.counters.get(key)
            cell = "-" if value is None else str(value)
            if r.delta is not None and value is not None:
                cell += f" ({r.delta.get(key, 0):+d})"
            cells.append(cell)
        per = r.per_call("rq_retry")
        cells += [
            "-" if r.delta is None else str(r.calls or 0),
            "-" if per is None else f"{per:.1f}",
        ]
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "  "
        + "  ".join(
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _hypothesis(label: str, hyp: Hypothesis, paint: Paint, width: int) -> list[str]:
    state = "met" if hyp.met else ("not met" if hyp.met is False else "unknown")
    lines = [f"  {label}: {paint(state, _tone(state))}"]
    for probe in hyp.probes:
        mark = _mark(probe)
        tone = "bad" if mark == "✗" else ("warn" if mark == "!" else "good")
        name = text.short(probe.name, width)
        lines.append(f"    {paint(mark, tone)} {name:<{width}} {digest.tolerance(probe)}")
        if mark == "✗" and probe.load and probe.load.url:
            # Which URL the load really called: a wrong path shows as 404s here.
            lines.append(f"      {' ' * width} {paint('url ' + probe.load.url, 'dim')}")
    return lines


def _activity(
    record: RunRecord, paint: Paint, width: int, breaker: BreakerReading | None = None
) -> str:
    status = record.status
    name = text.short(record.name, width)
    line = (
        f"  {paint(_mark(record), _tone(status))} {record.type:<6} {name:<{width}} "
        f"{paint(status, _tone(status))} {text.seconds(record.duration)}"
    )
    call = record.provider
    if record.arguments:
        call += f"({text.arguments(record.arguments, 90)})"
    line += f"\n      {paint(call, 'dim')}"
    if record.error:
        line += f"\n      {paint('error: ' + record.error, 'bad')}"
    for said in digest.lines(record, breaker):
        line += f"\n      → {said}"
    return line


def _load_table(loads: list[tuple[str, RunRecord]], width: int) -> list[str]:
    header = ("phase", "probe", "reqs", "qps", "p50 ms", "p90 ms", "p99 ms", "errors", "codes")
    rows = [header]
    for phase, rec in loads:
        load = rec.load
        assert load is not None
        rows.append(
            (
                phase,
                text.short(rec.name, width),
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
