"""The HTML report: one self-contained page for one or more journals.

Pure: ``render_html(journals)`` returns the page as a string. Charts are inline SVG
(``svg``); styles are inline; nothing is fetched when the page opens.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from chaosmesh_ext.journal import digest, markdown, svg, text
from chaosmesh_ext.journal.digest import BreakerReading
from chaosmesh_ext.journal.model import Hypothesis, Journal, LoadResult, RunRecord

STATUS_COLOUR = {
    "succeeded": "#2ca02c",
    "failed": "#d62728",
    "interrupted": "#ff7f0e",
}
CONTROL_COLOUR = "#9e9e9e"  # the control's own time (mesh start-up, safety net, mesh stop)
PERCENTILES = (("p50", "#9ecae1"), ("p90", "#4292c6"), ("p99", "#08519c"))
SPLIT_COLOURS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
# Past these counts a chart would be unreadable: summarise instead.
MAX_BARS = 24
MAX_TIMELINE_DURING = 6
GOOD_WORDS = {
    "completed",
    "passed",
    "promoted",
    "succeeded",
    "met",
    "restored",
    "deleted",
    "already-restored",
    "never-applied",
    "moot",  # its embedded mesh stopped: nothing left to put back
}
PHASE_COLOUR = {"before": "#6baed6", "during": "#d62728", "after": "#31a354"}
# Breaker counters charted per reading: what changed since the previous reading, per call.
BREAKER_SERIES = (
    ("rq_retry", "retries per call", "#9467bd"),
    ("rq_5xx", "5xx per call", "#d62728"),
    ("pending_overflow", "shed (pending overflow) per call", "#ff7f0e"),
)
DECLARED_COLOURS = ("#aec7e8", "#ffbb78", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5")

# The page uses the window's width; the font stack covers CJK titles and step names.
CSS = (
    f"body{{font-family:{svg.FONT_STACK};margin:24px;color:#222}}"
    + """
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;color:#fff;font-size:12px}
.good{background:#2ca02c}.bad{background:#d62728}.warn{background:#ff7f0e}
.muted{color:#777}code{font-size:12px}
.chart{display:block;margin:6px 0;max-width:100%;height:auto}
"""
)


def render_html(
    journals: Sequence[Journal],
    generated: datetime | None = None,
    title: str = "Chaos journal report",
    outcomes: Sequence[tuple[str, str, str]] = (),
) -> str:
    """The report page for ``journals`` (in the order given; trends sort by start time).

    ``outcomes``: (experiment, status, why) rows shown first — a game day's verdict,
    including experiments that wrote no journal or were skipped.
    """
    generated = generated or datetime.now(UTC)
    body: list[str] = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">{len(journals)} journal(s) · generated '
        f"{escape(generated.strftime('%Y-%m-%d %H:%M:%S UTC'))}</p>",
    ]
    if outcomes:
        body.append(
            '<table class="outcomes"><tr><th>experiment</th><th>outcome</th><th>why</th></tr>'
        )
        for experiment, status, why in outcomes:
            body.append(
                f"<tr><td>{escape(experiment)}</td><td>{_badge(status)}</td>"
                f"<td>{escape(why)}</td></tr>"
            )
        body.append("</table>")
    if len(journals) > 1:
        body.append(_overview(journals))
    body += _trends(journals)
    for index, journal in enumerate(journals):
        body.append(_journal(journal, index))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def _badge(word: str) -> str:
    tone = (
        "good"
        if word in GOOD_WORDS
        else ("warn" if word in ("interrupted", "unknown", "not checked", "skipped") else "bad")
    )
    return f'<span class="badge {tone}">{escape(word)}</span>'


def _when(journal: Journal) -> str:
    return journal.start.strftime("%Y-%m-%d %H:%M:%S") if journal.start else "?"


def _during_p99(journal: Journal) -> float | None:
    """The worst p99 any load probe saw while the fault was in place."""
    return _phase_p99(journal, "during")


def _phase_p99(journal: Journal, phase: str) -> float | None:
    values = [
        r.load.p99_ms
        for p, r in journal.load_results()
        if p == phase and r.load and r.load.p99_ms is not None
    ]
    return max(v for v in values if v is not None) if values else None


def _overview(journals: Sequence[Journal]) -> str:
    rows = [
        "<h2>Runs</h2><table><tr><th>experiment</th><th>started</th><th>outcome</th>"
        "<th>duration</th><th>p99 under the fault</th></tr>"
    ]
    for index, j in enumerate(journals):
        rows.append(
            f'<tr><td><a href="#journal-{index}">{escape(j.title)}</a></td><td>{_when(j)}</td>'
            f"<td>{_badge(j.outcome)}</td><td>{text.seconds(j.duration)}</td>"
            f'<td class="num">{_with_unit(text.ms(_during_p99(j)), "ms")}</td></tr>'
        )
    rows.append("</table>")
    return "".join(rows)


def _with_unit(value: str, unit: str) -> str:
    return value if value == "-" else f"{value} {unit}"


def _trends(journals: Sequence[Journal]) -> list[str]:
    """Per experiment run more than once: p99 before / under the fault / after, run by run."""
    by_title: dict[str, list[Journal]] = defaultdict(list)
    for j in journals:
        by_title[j.title].append(j)
    out: list[str] = []
    for title, runs in by_title.items():
        if len(runs) < 2:
            continue
        runs = sorted(runs, key=lambda j: j.start.timestamp() if j.start else 0.0)
        labels = [j.start.strftime("%m-%d %H:%M") if j.start else "?" for j in runs]
        series = [
            ("p99 before", PHASE_COLOUR["before"], [_phase_p99(j, "before") for j in runs]),
            ("p99 under the fault", PHASE_COLOUR["during"], [_during_p99(j) for j in runs]),
            ("p99 after", PHASE_COLOUR["after"], [_phase_p99(j, "after") for j in runs]),
        ]
        if not any(v is not None for _, _, vals in series for v in vals):
            continue
        out.append(f"<h2>Trend: {escape(title)}</h2>")
        out.append(svg.lines("trend", f"p99 across runs of {title}", labels, series, "ms"))
        out.append(_regression(runs))
    return out


def _regression(runs: list[Journal]) -> str:
    latest, previous = _during_p99(runs[-1]), None
    for j in reversed(runs[:-1]):
        previous = _during_p99(j)
        if previous is not None:
            break
    if latest is None or previous is None:
        return '<p class="muted">Not enough runs with load under the fault to compare.</p>'
    change = (latest - previous) / previous * 100 if previous else 0.0
    word = "regressed" if change > 10 else ("improved" if change < -10 else "about the same")
    return (
        f'<p class="trend-verdict">p99 under the fault, latest run: <b>{text.ms(latest)} ms</b>; '
        f"previous: {text.ms(previous)} ms ({change:+.0f}%, {word}).</p>"
    )


def _journal(journal: Journal, index: int) -> str:
    out = [f'<section class="journal" id="journal-{index}">']
    out.append(f"<h2>{escape(journal.title)} {_badge(journal.outcome)}</h2>")
    facts = [
        f"status <b>{escape(journal.status)}</b>",
        f"deviated <b>{'yes' if journal.deviated else 'no'}</b>",
        f"started {_when(journal)}",
        f"duration {text.seconds(journal.duration)}",
    ]
    if journal.chaoslib_version:
        facts.append(f"chaoslib {escape(journal.chaoslib_version)}")
    out.append(f'<p>{" · ".join(facts)}<br><span class="muted">{escape(journal.source)}</span></p>')
    if journal.description:
        out.append(f'<div class="description">{markdown.to_html(journal.description)}</div>')
    if not journal.ok and journal.reason:
        out.append(f'<p class="why">{_badge(journal.outcome)} {escape(journal.reason)}</p>')

    timeline = _timeline(journal)
    if timeline:
        out.append("<h3>Timeline</h3>" + timeline)
    out.append(_hypotheses(journal))
    breakers = digest.breaker_readings(journal)
    by_record = {id(b.record): b for b in breakers}
    out.append("<h3>Method</h3>")
    if not journal.has_method:
        out.append('<p class="muted">No method: only the hypothesis was checked.</p>')
    out.append(_activities(journal.method, by_record))
    out.append("<h3>Rollbacks</h3>")
    out.append(
        _activities(journal.rollbacks) if journal.rollbacks else '<p class="muted">None ran.</p>'
    )
    if journal.safety_net or journal.restored:
        out.append("<h3>Safety net</h3>")
        if not journal.restored:
            out.append('<p class="muted">Nothing was left to restore.</p>')
        else:
            out.append("<table><tr><th>object</th><th>outcome</th><th>detail</th></tr>")
            for item in journal.restored:
                out.append(
                    f"<tr><td>{escape(item.label)}</td><td>{_badge(item.action)}</td>"
                    f"<td>{escape(item.detail)}</td></tr>"
                )
            out.append("</table>")
    out += _load(journal)
    out += _breakers(journal, breakers)
    out += _rollouts(journal)
    out += _splits(journal)
    out.append("</section>")
    return "\n".join(out)


def _timeline(journal: Journal) -> str:
    records: list[tuple[str, RunRecord]] = []
    if journal.before:
        records += [("before", r) for r in journal.before.probes]
    records += [("method", r) for r in journal.method]
    during = [r for hyp in journal.during for r in hyp.probes]
    if len(during) <= MAX_TIMELINE_DURING:
        records += [("during", r) for r in during]
    if journal.after:
        records += [("after", r) for r in journal.after.probes]
    records += [("rollback", r) for r in journal.rollbacks]
    timed = [(phase, r) for phase, r in records if r.start]
    if not timed and not journal.phases:
        return ""
    origin = journal.start or min(
        [r.start for _, r in timed if r.start] + [p.start for p in journal.phases]
    )
    rows = []
    last = 0.0
    for item in journal.phases:
        # The control's own time: starting the mesh, the safety net, stopping the mesh.
        start = (item.start - origin).total_seconds()
        end = (item.end - origin).total_seconds()
        last = max(last, end)
        tip = f"control: {item.what}, {text.seconds(item.duration)}"
        rows.append((f"control · {item.what}", start, end, CONTROL_COLOUR, tip))
    for phase, r in timed:
        assert r.start is not None
        start = (r.start - origin).total_seconds()
        end = (r.end - origin).total_seconds() if r.end else start + (r.duration or 0.0)
        last = max(last, end)
        # A probe that ran fine but missed its tolerance is what deviated: red too.
        status = "failed" if r.tolerance_met is False else r.status
        tip = f"{phase}: {r.name} — {r.status}, {text.seconds(r.duration)}"
        rows.append((f"{phase} · {r.name}", start, end, STATUS_COLOUR.get(status, "#999"), tip))
    rows.sort(key=lambda row: row[1])
    timed_during = [r for r in during if r.start and len(during) > MAX_TIMELINE_DURING]
    if timed_during:
        # A continuous hypothesis checks hundreds of times: one row for all of them.
        starts = [r.start for r in timed_during if r.start]
        ends = [r.end or r.start for r in timed_during if r.start]
        first_at, last_at = min(starts), max(e for e in ends if e)
        bad = sum(1 for r in timed_during if r.status != "succeeded" or r.tolerance_met is False)
        rows.append(
            (
                f"hypothesis during · {len(timed_during)} checks",
                (first_at - origin).total_seconds(),
                (last_at - origin).total_seconds(),
                STATUS_COLOUR["failed" if bad else "succeeded"],
                f"{len(timed_during)} checks during the method, {bad} not met",
            )
        )
        last = max(last, (last_at - origin).total_seconds())
    total = max(journal.duration or 0.0, last)
    return svg.timeline("timeline", f"timeline of {journal.title}", rows, total)


def _hypotheses(journal: Journal) -> str:
    title = f": {escape(journal.hypothesis_title)}" if journal.hypothesis_title else ""
    out = [f"<h3>Steady state{title}</h3>"]
    shown: list[tuple[str, Hypothesis]] = []
    if journal.before:
        shown.append(("before", journal.before))
    shown += [(f"during #{i + 1}", h) for i, h in enumerate(journal.during)]
    if journal.after:
        shown.append(("after", journal.after))
    if not shown:
        return out[0] + '<p class="muted">No steady-state hypothesis.</p>'
    out.append(
        "<table><tr><th>when</th><th>probe</th><th>value vs tolerance</th><th>result</th></tr>"
    )
    for label, hyp in shown:
        for probe in hyp.probes:
            ok = probe.tolerance_met is not False and probe.status == "succeeded"
            out.append(
                f"<tr><td>{escape(label)}</td><td>{escape(probe.name)}</td>"
                f"<td><code>{escape(digest.tolerance(probe))}</code></td>"
                f"<td>{_badge('met' if ok else 'not met')}</td></tr>"
            )
    out.append("</table>")
    if journal.before and not journal.after and journal.has_method:
        out.append(f"<p>after: {_badge('not checked')}</p>")
    return "".join(out)


def _activities(
    records: Sequence[RunRecord], breakers: dict[int, BreakerReading] | None = None
) -> str:
    if not records:
        return ""
    out = [
        "<table><tr><th>activity</th><th>call</th><th>outcome</th><th>result</th>"
        "<th>duration</th></tr>"
    ]
    for r in records:
        call = r.provider + (f"({text.arguments(r.arguments, 90)})" if r.arguments else "")
        error = f"<br><code>{escape(r.error)}</code>" if r.error else ""
        said = "<br>".join(escape(line) for line in digest.lines(r, (breakers or {}).get(id(r))))
        out.append(
            f"<tr><td>{escape(r.type)} <b>{escape(r.name)}</b></td>"
            f"<td><code>{escape(call)}</code></td>"
            f"<td>{_badge(r.status)}{error}</td>"
            f'<td class="result">{said}</td>'
            f'<td class="num">{text.seconds(r.duration)}</td></tr>'
        )
    out.append("</table>")
    return "".join(out)


def _breakers(journal: Journal, readings: list[BreakerReading]) -> list[str]:
    """Breaker counters as read, what changed between readings, and that per call."""
    if not readings:
        return []
    keys: list[str] = []
    for reading in readings:
        keys += [k for k in reading.shown() if k not in keys]
    out = ["<h3>Circuit-breaker counters</h3>"]
    changed = [r for r in readings if r.delta is not None and r.calls]
    if changed:
        groups = [
            (f"{r.phase} · {r.record.name}", [r.per_call(key) for key, _, _ in BREAKER_SERIES])
            for r in changed
        ]
        series = [(label, colour) for _, label, colour in BREAKER_SERIES]
        out.append(
            svg.grouped_bars(
                "breaker",
                f"breaker counters per call of {journal.title}",
                groups,
                series,
                "per call",
            )
        )
    out.append(
        '<p class="muted">Counters are cumulative in the sidecar; (+n) is the change since the '
        "previous reading of the same host, divided by the load calls sent to it in between "
        "for the per-call figures.</p>"
    )
    out.append(
        "<table><tr><th>phase</th><th>probe</th><th>host</th>"
        + "".join(f"<th>{escape(k)}</th>" for k in keys)
        + "<th>calls since previous</th><th>retries per call</th></tr>"
    )
    for r in readings:
        cells = []
        for key in keys:
            value = r.counters.get(key)
            cell = "-" if value is None else str(value)
            if r.delta is not None and value is not None:
                cell += f" ({r.delta.get(key, 0):+d})"
            cells.append(f'<td class="num">{cell}</td>')
        per = r.per_call("rq_retry")
        out.append(
            f"<tr><td>{r.phase}</td><td>{escape(r.record.name)}</td><td>{escape(r.host)}</td>"
            + "".join(cells)
            + f'<td class="num">{"-" if r.delta is None else r.calls or 0}</td>'
            + f'<td class="num">{"-" if per is None else f"{per:.1f}"}</td></tr>'
        )
    out.append("</table>")
    return out


def _rollouts(journal: Journal) -> list[str]:
    """Each progressive rollout: verdict and its steps."""
    out: list[str] = []
    for r in journal.method:
        found = digest.rollout(r.output)
        if found is None:
            continue
        head, *_ = digest.rollout_lines(found)
        out.append(f"<h3>Progressive rollout: {escape(r.name)}</h3>")
        verdict = "promoted" if found.get("promoted") else "halted"
        out.append(f"<p>{_badge(verdict)} {escape(head)}</p>")
        out.append(
            "<table><tr><th>canary weight</th><th>error rate</th><th>p99 ms</th><th>codes</th>"
            "<th>guard</th></tr>"
        )
        for step in found.get("steps") or []:
            if not isinstance(step, dict):
                continue
            failures = "; ".join(str(f) for f in step.get("failures") or [])
            rate, p99 = step.get("error_rate"), step.get("p99_ms")
            out.append(
                f'<tr><td class="num">{escape(digest.number(step.get("canary_weight")))}%</td>'
                f'<td class="num">{text.percent(rate if isinstance(rate, int | float) else None)}'
                f'</td><td class="num">{text.ms(p99 if isinstance(p99, int | float) else None)}'
                f"</td><td>{escape(digest.step_codes(step))}</td>"
                f"<td>{_badge('passed' if step.get('passed') else 'failed')} "
                f"{escape(failures)}</td></tr>"
            )
        out.append("</table>")
    return out


def _code_colour(code: str) -> str:
    if code.startswith("2") or code == "418":
        return "#2ca02c"
    if code.startswith("3"):
        return "#17becf"
    if code.startswith("4"):
        return "#ff7f0e"
    if code.startswith("5"):
        return "#d62728"
    return "#7f7f7f"  # -1: socket error or client timeout


def _code_rows(
    labels: list[str], loads: list[tuple[str, RunRecord]]
) -> list[tuple[str, tuple[str, RunRecord]]]:
    """One codes row per result, or per phase (codes summed) when there are too many."""
    if len(loads) <= MAX_BARS:
        return list(zip(labels, loads, strict=True))
    summed: dict[str, dict[str, int]] = {}
    for phase, r in loads:
        if r.load:
            codes = summed.setdefault(phase, {})
            for code, n in r.load.codes.items():
                codes[code] = codes.get(code, 0) + n
    rows = []
    for phase, codes in summed.items():
        total = LoadResult(None, None, None, None, None, None, None, codes)
        record = RunRecord(
            f"{phase} (all results)",
            "probe",
            "",
            {},
            "succeeded",
            None,
            None,
            None,
            None,
            None,
            load=total,
        )
        rows.append((f"{phase} · all results", (phase, record)))
    return rows


def _load(journal: Journal) -> list[str]:
    loads = journal.load_results()
    if not loads:
        return []
    labels = [f"{phase} · {r.name}" for phase, r in loads]
    groups = [
        (label, [r.load.p50_ms, r.load.p90_ms, r.load.p99_ms] if r.load else [])
        for label, (_, r) in zip(labels, loads, strict=True)
    ]
    out = ["<h3>Load: latency percentiles</h3>"]
    if len(groups) <= MAX_BARS:
        out.append(
            svg.grouped_bars("latency", f"latency of {journal.title}", groups, PERCENTILES, "ms")
        )
    else:
        # Too many results for bars (a continuous hypothesis): percentiles as lines, in order.
        step = max(len(groups) // 8, 1)
        x_labels = [label if i % step == 0 else "" for i, (label, _) in enumerate(groups)]
        series = [
            (name, colour, [vals[i] if vals else None for _, vals in groups])
            for i, (name, colour) in enumerate(PERCENTILES)
        ]
        out.append(svg.lines("latency", f"latency of {journal.title}", x_labels, series, "ms"))
    rows = []
    for label, (_, r) in _code_rows(labels, loads):
        if r.load and r.load.codes:
            parts = [
                (code, float(n), _code_colour(code)) for code, n in sorted(r.load.codes.items())
            ]
            rows.append((label, parts))
    if rows:
        out.append("<h3>Load: response codes</h3>")
        out.append(svg.stacked_rows("codes", f"response codes of {journal.title}", rows))
    out.append(
        "<table><tr><th>phase</th><th>probe</th><th>requests</th><th>qps</th><th>p50 ms</th>"
        "<th>p90 ms</th><th>p99 ms</th><th>max ms</th><th>errors</th><th>codes</th></tr>"
    )
    for phase, r in loads:
        load = r.load
        assert load is not None
        out.append(
            f"<tr><td>{phase}</td><td>{escape(r.name)}</td>"
            f'<td class="num">{"-" if load.count is None else load.count}</td>'
            f'<td class="num">{"-" if load.qps is None else f"{load.qps:.1f}"}</td>'
            + "".join(
                f'<td class="num">{cell}</td>'
                for cell in (
                    text.ms(load.p50_ms),
                    text.ms(load.p90_ms),
                    text.ms(load.p99_ms),
                    text.ms(load.max_ms),
                    text.percent(load.error_rate),
                )
            )
            + f"<td>{escape(text.codes(load))}</td></tr>"
        )
    out.append("</table>")
    return out


def _splits(journal: Journal) -> list[str]:
    splits = journal.splits()
    if not splits:
        return []
    # One colour per version across every row, so v2 is the same colour everywhere.
    versions: list[str] = []
    for _, r in splits:
        check = digest.split_check(r.output)
        declared = check["declared"] if check else {}
        versions += [v for v in [*(r.split or {}), *declared] if v not in versions]
    rows = []
    for phase, r in splits:
        check = digest.split_check(r.output)
        if check is not None:
            # What the VirtualService declared, beside what was measured.
            rows.append(
                (
                    f"{phase} declared · {r.name}",
                    [
                        (str(v), float(share), DECLARED_COLOURS[versions.index(v) % 6])
                        for v, share in check["declared"].items()
                        if isinstance(share, int | float) and share > 0
                    ],
                )
            )
        parts = [
            (version, share, SPLIT_COLOURS[versions.index(version) % len(SPLIT_COLOURS)])
            for version, share in (r.split or {}).items()
        ]
        label = f"{phase} observed · {r.name}" if check else f"{phase} · {r.name}"
        rows.append((label, parts))
    return [
        "<h3>Traffic split</h3>",
        svg.stacked_rows("split", f"traffic split of {journal.title}", rows),
    ]
