"""fortio's text report, produced from a result dict alone.

Because it reads only the JSON, the same report comes out for a local run, a run on our REST
server and a result fetched from real fortio in a cluster. The lines users grep for are
``Code 200 : 17 (85.0 %)`` and ``# target 99% 0.0123``.
"""

from __future__ import annotations

from typing import Any

from .periodic import format_go_duration
from .stats import counter_line, go_g, print_histogram


def _b(v: object) -> str:
    return "true" if v else "false"


def text_report(result: dict[str, Any]) -> str:
    """The report fortio prints on stderr after a run."""
    lines: list[str] = []
    if result.get("error"):
        lines.append(
            f"Aborting because of error: {result.get('message')}: {result.get('exception')}"
        )
    threads = result.get("NumThreads", 0)
    qps = result.get("RequestedQPS", "max")
    lines.append(
        f"Fortio {result.get('Version', '')} running at {qps} queries per second,"
        f" for {result.get('RequestedDuration', '')}: {result.get('URL', '')}"
    )
    open_loop = result.get("OpenLoop")
    if open_loop:
        lines.append(
            f"Open loop at {go_g(open_loop['RequestedQPS'])} qps on up to"
            f" {open_loop['MaxConnections']} connections ({open_loop['Connections']} used);"
            " latency measured from the scheduled send time"
        )
    dur = result.get("DurationHistogram") or {}
    count = dur.get("Count", 0)
    elapsed_ns = int(result.get("ActualDuration", 0))
    lines.append(
        f"Ended after {format_go_duration(elapsed_ns / 1e9)} : {count} calls."
        f" qps={go_g(float(result.get('ActualQPS', 0.0)), 5)}"
    )
    if dur:
        lines.extend(print_histogram(dur, "Aggregated Function Time"))
    err = result.get("ErrorsDurationHistogram")
    if err:
        lines.extend(print_histogram(err, "Error cases"))
    sockets = result.get("Sockets") or []
    if sockets:
        lines.append("# Socket and IP used for each connection:")
        ips = ", ".join(f"{ip} ({n})" for ip, n in (result.get("IPCountMap") or {}).items())
        for i, n in enumerate(sockets):
            lines.append(f"[{i}] {n:3d} socket used, resolved to {ips or 'n/a'}")
    lines.append(
        f"Sockets used: {result.get('SocketCount', 0)} (for perfect keepalive, would be {threads})"
    )
    lines.append(
        f"Uniform: {_b(result.get('Uniform', False))}, Jitter: {_b(result.get('Jitter', False))},"
        f" Catchup allowed: {_b(not result.get('NoCatchUp', False))}"
    )
    lines.append("IP addresses distribution:")
    for ip, n in (result.get("IPCountMap") or {}).items():
        lines.append(f"{ip}: {n}")
    total = count or 1
    for code, n in sorted(((int(k), v) for k, v in (result.get("RetCodes") or {}).items())):
        lines.append(f"Code {code:3d} : {n} ({100.0 * n / total:.1f} %)")
    lines.append(counter_line("Response Header Sizes", result.get("HeaderSizes")))
    lines.append(counter_line("Response Body/Total Sizes", result.get("Sizes")))
    if open_loop and open_loop.get("Warning"):
        lines.append(f"WARNING {open_loop['Warning']}")
    if result.get("Note"):
        lines.append(f"NOTE {result['Note']}")
    warmup = 0 if result.get("Exactly") or open_loop else threads
    avg_ms = float(dur.get("Avg", 0.0)) * 1000
    lines.append(
        f"All done {count} calls (plus {warmup} warmup) {avg_ms:.3f} ms avg,"
        f" {float(result.get('ActualQPS', 0.0)):.1f} qps"
    )
    return "\n".join(lines) + "\n"
