"""Soak: the embedded mesh for minutes at 1000 qps while its configuration keeps changing.

``make soak`` (``python -m benchmarks.soak [--minutes 10] [--qps 1000] [--connections 64]``):
not part of ``make bench`` or ``make test`` — it holds the machine for its whole duration.

What runs: a real ``chaosmesh mesh up`` of the runbook's canary (ingress gateway -> v1/v2),
with its default log cap. Through the gateway, a load at ``--qps`` from this project's load
engine on ``--connections`` keep-alive connections, as ``fortio load -qps 1000 -c 64`` puts
it: the connections are opened before the clock starts and never grow (the client only
reopens one after a non-2xx answer, as fortio's does). Each request leaves at its scheduled
time if a connection is free, else as soon as one is: a stall of the machine shows up as
send lag and latency from the scheduled send (both reported), not as new connections,
which Envoy would match with upstream connections kept for an hour. The load ends when its
time is up, as ``fortio load -t`` does: requests still waiting for a connection then are
never sent, and the report counts them: the rate was not kept, unless they were all due
within the run's usual send lag of its end (the last few are always in flight). Each request's send
time and outcome is kept, which is what attributing an error to a fault window needs (hey
and wrk only count); the load runs in a process of its own. Meanwhile, through the
Kubernetes API with the official client, exactly as experiments do
(``chaosmesh_ext.actions``): the weights flip 100/0 <-> 0/100 every second
(``shift_traffic``), and every 10 s an abort fault (503 for ``FAULT_PERCENT`` % of requests)
is injected (``inject_abort``) and removed 5 s later (``remove_faults``). Each 10 s is one
run, ended by its rollback (``restore``).

Before the clock starts, a warm-up drives the load's full concurrency through each subset
(``warm_up``): every connection sends a request the echo holds for a second, all at once,
with all the weight on v1, then on v2 (three rounds each, on fresh connections). That is
what a stall does, so the connection high-water marks (Envoy's upstream connections, the
replica host's threads) are mostly reached before the RSS baseline, a minute later, rather
than whenever the machine stalls (Envoy's can still creep: see below). It is traffic like
any other: the RSS measure subtracts nothing.

What it reports, with the goals:

- unexpected errors: 0. An error is expected only when it is the fault's 503 and its
  request was sent between the start of the ``inject_abort`` call and the return of the
  ``remove_faults`` call (both return once Envoy enforces the change). Every other failure —
  a connection error, a timeout, another status, a 503 outside a fault window — is not.
  With the load's connection count, send lag (scheduled -> sent) and latency.
- RSS of every mesh process (daemon, Envoy, each workload), growth from the end of the
  warm-up (a minute) to the end: < 10 %; with the growth over the second half, each
  process's threads (a replica's follow its requests in flight) and Envoy's open upstream
  connections (kept idle for an hour, as Istio's sidecars do, about 30 kB each), and both
  minute by minute. Envoy gives each new downstream connection to one of its two worker
  threads at random and each worker has its own upstream connections, so as the client
  reconnects after the fault's 503s the count can still creep towards its bound (2 workers
  x 2 subsets x ``--connections``) when a stall meets an uneven spread.
- the logs' disk use (``mesh status``) against the log cap, and the whole state directory.
- change -> enforced: from the start of ``shift_traffic`` to the first response from the
  newly chosen version on a separate keep-alive connection; p50/p95 per minute, first
  against last minute (no drift).
- the metrics exporter's count of requests against the requests sent (load, change probes
  and warm-up; across every log rotation: equal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chaosmesh_ext.mesh.workloads.holder import HOLDER_NAME

ROOT = Path(__file__).resolve().parent.parent
CANARY = ROOT / "experiments" / "manifests" / "canary.yaml"
NAMESPACE = "istio-test"
VIRTUAL_SERVICE = "canary"
FAULT_STATUS = 503
FAULT_PERCENT = 10
FAULT_PERIOD = 10  # seconds: injected at the start of each period ...
FAULT_ON = 5  # ... and removed this many seconds later
REQUEST_TIMEOUT = 5.0
CONNECTIONS = 64  # the load's, fixed (fortio's -c)
HOLD = 1.0  # seconds the echo holds each warm-up request (its ?delay=)
HOLD_ROUNDS = 3  # per subset, each on fresh connections (see warm_up)
CLI_TIMEOUT = 120.0
SAMPLE_EVERY = 5.0
RSS_GOAL = 0.10
END_GRACE_S = 0.01  # requests scheduled this close to the end may not have left yet


# --------------------------------------------------------------------------------------------
# The load: open loop, every request's send time and outcome kept


@dataclass
class Timeline:
    """Per request: when it was sent (s since start), its status (-1: no answer), latency."""

    sent: array[float] = field(default_factory=lambda: array("d"))
    codes: array[int] = field(default_factory=lambda: array("h"))
    latency: array[float] = field(default_factory=lambda: array("d"))

    def add(self, sent: float, code: int, latency: float) -> None:
        self.sent.append(sent)
        self.codes.append(code)
        self.latency.append(latency)


def _timed(conn: Any, timeline: Timeline, t0: list[float]) -> Any:
    """A lane of the open loop on ``conn``: one GET, its send time (relative to ``t0[0]``,
    set once the clock starts) and outcome added to ``timeline``."""

    async def call() -> bool:
        started = time.perf_counter()
        code = int(await conn.fetch())
        timeline.add(started - t0[0], code, time.perf_counter() - started)
        return code == 200

    return call


def _event_loop() -> Any:
    try:
        import uvloop

        return uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        return None


def run_load(
    url: str, qps: float, seconds: float, t0: float, timeline: Timeline, stop: Any = None
) -> dict[str, Any]:
    """Open-loop GETs of ``url`` for ``seconds`` (or until ``stop``, a ``StopToken``), send
    times relative to ``t0`` on the perf_counter clock, on as many connections as the
    requests in flight need (up to 512); returns the achieved rate. For a run that must go
    on through outages (``bench_envoy_restart``); the soak keeps its connections fixed."""
    from chaosmesh_ext.load.http_client import HttpConnection, build_request
    from chaosmesh_ext.load.options import parse_url
    from chaosmesh_ext.load.periodic import StopToken, open_loop_lanes, run_open

    target = parse_url(url)
    request = build_request(target, "GET", [], None)

    def new_lane() -> Any:
        return _timed(HttpConnection(target, request, REQUEST_TIMEOUT), timeline, [t0])

    async def main() -> Any:
        lanes = open_loop_lanes(qps, REQUEST_TIMEOUT, 16)
        return await run_open(new_lane, int(qps * seconds), qps, stop or StopToken(), lanes, 16)

    with asyncio.Runner(loop_factory=_event_loop()) as runner:
        stats = runner.run(main())
    count = len(timeline.codes)
    return {"achieved_qps": count / max(stats.elapsed, 1e-9), "open_loop": stats.open_loop}


def held_url(url: str) -> str:
    """``url`` with the echo's ``delay`` parameter: its answer waits ``HOLD`` seconds."""
    return url + ("&" if "?" in url else "?") + f"delay={HOLD * 1000:.0f}ms"


async def _fixed_load(
    url: str, qps: float, seconds: float, connections: int, timeline: Timeline
) -> dict[str, Any]:
    """The soak's load, in its own process (``LoadProcess``): ``connections`` keep-alive
    connections, as ``fortio load -c`` opens them, and never more; a request whose turn
    comes while all are busy waits for one (its send lag), then goes out. Before the clock
    starts it obeys the soak's lines on stdin: ``hold`` reopens every connection and sends
    one held request on each at once (``warm_up``), ``go T0`` starts the schedule, send
    times relative to T0 (perf_counter is the system's monotonic clock, shared by both
    processes)."""
    from chaosmesh_ext.load.http_client import HttpConnection, build_request
    from chaosmesh_ext.load.options import parse_url
    from chaosmesh_ext.load.periodic import StopToken, run_open

    target = parse_url(url)
    plain = build_request(target, "GET", [], None)
    held = build_request(parse_url(held_url(url)), "GET", [], None)
    conns = [HttpConnection(target, plain, REQUEST_TIMEOUT) for _ in range(connections)]
    loop = asyncio.get_running_loop()
    warm_up_requests = 0
    print("ready", flush=True)
    while True:
        words = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not words:
            raise SystemExit("the soak closed its end before the load started")
        if words[0] == "go":
            t0 = [float(words[1])]
            break
        if words[0] != "hold":
            raise SystemExit(f"unknown order from the soak: {words!r}")
        for conn in conns:
            conn.close()  # fresh connections for each round (see warm_up)
            conn.request = held
        codes = await asyncio.gather(*(conn.fetch() for conn in conns))
        for conn in conns:
            conn.request = plain
        warm_up_requests += len(codes)
        print(f"held {sum(code == 200 for code in codes)}", flush=True)
    lanes = iter(conns)
    # The run ends when its time is up, as fortio's -t: what still waits for a connection
    # then is never sent (and reported), rather than drained for minutes after the changes.
    stop = StopToken()
    loop.call_later(max(0.0, t0[0] + seconds - time.perf_counter()), stop.stop)
    stats = await run_open(
        lambda: _timed(next(lanes), timeline, t0), int(qps * seconds), qps, stop,
        connections, connections,
    )  # fmt: skip
    latency = stats.durations.export([99])["Percentiles"] or [{"Value": float("nan")}]
    return {
        "scheduled": int(qps * seconds),
        "achieved_qps": len(timeline.codes) / max(stats.elapsed, 1e-9),
        "open_loop": stats.open_loop,
        # From each request's scheduled send: what a user queued behind a stall waited.
        "scheduled_latency_p99": latency[0]["Value"],
        "scheduled_latency_max": stats.durations.max,
        "sockets": sum(conn.sockets for conn in conns),
        "warm_up_requests": warm_up_requests,
    }


class LoadProcess:
    """The load in a process of its own: in this one it would share the interpreter lock
    with the changes and the probes, and slow the changes it measures."""

    def __init__(self, url: str, qps: float, seconds: float, connections: int, tmp: str):
        self.seconds = seconds
        self.out = Path(tmp) / "timeline"
        self.child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.soak", "--load-only", url, str(qps),
             str(seconds), str(connections), str(self.out)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self._expect("ready")

    def _expect(self, word: str, timeout: float = 60.0) -> str:
        assert self.child.stdout is not None
        ready, _, _ = select.select([self.child.stdout], [], [], timeout)
        line = self.child.stdout.readline() if ready else ""
        if not line.startswith(word):
            self.kill()
            raise RuntimeError(f"the load process did not answer {word!r}: {line!r}")
        return line

    def _send(self, line: str) -> None:
        assert self.child.stdin is not None
        self.child.stdin.write(line + "\n")
        self.child.stdin.flush()

    def hold(self) -> int:
        """One held request on every connection at once; how many were answered 200."""
        self._send("hold")
        return int(self._expect("held").split()[1])

    def run(self, t0: float, timeline: Timeline, abort: threading.Event) -> dict[str, Any]:
        """Start the schedule at ``t0`` and wait for its end (killed, and the soak failed,
        when ``abort`` is set)."""
        self._send(f"go {t0!r}")
        deadline = time.monotonic() + self.seconds + 120
        while self.child.poll() is None:
            if abort.is_set():
                self.kill()
                raise RuntimeError("the soak was stopped: a part of it failed (see above)")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the load did not end within {self.seconds + 120:g} s")
            abort.wait(1.0)
        stdout, stderr = self.child.communicate(timeout=30)
        if self.child.returncode != 0:
            raise RuntimeError(f"the load process failed: {stderr[-2000:]}")
        result = json.loads(stdout.splitlines()[-1])
        count = int(result["count"])
        with open(self.out, "rb") as handle:
            timeline.sent.fromfile(handle, count)
            timeline.codes.fromfile(handle, count)
            timeline.latency.fromfile(handle, count)
        return dict(result)

    def kill(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
            self.child.communicate(timeout=30)


def _load_only(url: str, qps: float, seconds: float, connections: int, out: str) -> int:
    timeline = Timeline()
    with asyncio.Runner(loop_factory=_event_loop()) as runner:
        result = runner.run(_fixed_load(url, qps, seconds, connections, timeline))
    with open(out, "wb") as handle:
        timeline.sent.tofile(handle)
        timeline.codes.tofile(handle)
        timeline.latency.tofile(handle)
    print(json.dumps({**result, "count": len(timeline.codes)}))
    return 0


# --------------------------------------------------------------------------------------------
# The changes: weights every second, a fault every 10 s, through the official client


@dataclass
class Changes:
    fault_windows: list[tuple[float, float]] = field(default_factory=list)
    enforced: list[tuple[float, float]] = field(default_factory=list)  # (when, seconds)
    # How long after the action returned the first answer of the new version came (seconds):
    # 0 but for the request itself, since an action returns once Envoy enforces its change.
    after_return: list[float] = field(default_factory=list)
    action_errors: list[str] = field(default_factory=list)
    probes: int = 0


def _probe(gateway: http.client.HTTPConnection, want: str, deadline: float) -> int:
    """GET through the gateway until the answer comes from ``want``; the number of GETs."""
    sent = 0
    while time.perf_counter() < deadline:
        gateway.request("GET", "/")
        response = gateway.getresponse()
        body = response.read().decode(errors="replace")
        sent += 1
        if response.status == 200 and body.startswith(want):
            return sent
    raise TimeoutError(f"no answer from {want} before the deadline")


def warm_up(mesh: dict[str, Any], state_dir: Path, load: LoadProcess) -> dict[str, Any]:
    """Before the clock starts: the load's full concurrency through each subset, and a first
    change.

    With all the weight on v1, then on v2, every load connection sends one request that the
    echo holds for ``HOLD`` s, all at once: what a stall of the replicas does to a load with
    that many connections. Envoy opens an upstream connection for each request in flight
    (and keeps it idle for an hour, as Istio's sidecars do) and the replica host a thread:
    both reach their high-water mark here, before the RSS baseline, and not whenever the
    machine happens to stall. ``HOLD_ROUNDS`` times per subset, on fresh connections: the
    load's client reconnects after every non-2xx answer (the fault's 503s), each new
    connection goes to one of Envoy's worker threads at random, and each worker has its own
    upstream connections, so the mark is reached by the most connections a worker gets,
    which varies. The first change also imports the Kubernetes client and opens its first
    connection (seconds), which is not what a change costs.
    """
    from chaosmesh_ext import actions

    configuration = {"kubeconfig_path": mesh["kubeconfig"], "chaosmesh_run_id": "soak-warm-up"}
    answered: dict[str, int] = {}
    for subset in ("v1", "v2"):
        weights = {"v1": 100, "v2": 0} if subset == "v1" else {"v1": 0, "v2": 100}
        actions.shift_traffic(VIRTUAL_SERVICE, weights, ns=NAMESPACE,
                              configuration=configuration)  # fmt: skip
        answered[subset] = min(load.hold() for _ in range(HOLD_ROUNDS))
    # Its rollback, as a run ends: a run that still holds the object would have every later
    # run refused (another run's change, still running).
    actions.restore(ns=NAMESPACE, configuration=configuration)
    return {"answered": answered, "upstream": _envoy_upstream_connections(state_dir)}


def drive_changes(
    mesh: dict[str, Any], seconds: float, t0: float, changes: Changes, stop: threading.Event
) -> None:
    from chaosmesh_ext import actions
    from chaosmesh_ext.kube.ledger import RUN_ID_KEY, new_run_id

    configuration: dict[str, Any] = {"kubeconfig_path": mesh["kubeconfig"]}
    split = urlsplit(mesh["gateways"][0]["url"])
    gateway = http.client.HTTPConnection(split.hostname, split.port, timeout=REQUEST_TIMEOUT)
    fault_started: float | None = None
    tick = 0
    while not stop.is_set():
        now = time.perf_counter() - t0
        if now >= seconds:
            break
        if tick % FAULT_PERIOD == 0:
            # One run per fault period, as a game day of short experiments: each run's ledger
            # holds its own ten changes (one run's ledger is rewritten whole at every change,
            # so a single run of hundreds of changes would measure the ledger, not the mesh).
            # Each run ends with its rollback, as an experiment does: while a run holds the
            # object, the next run's changes to it are refused.
            if RUN_ID_KEY in configuration:
                try:
                    actions.restore(ns=NAMESPACE, configuration=configuration)
                except Exception as exc:  # reported, and the soak goes on
                    changes.action_errors.append(f"{now:.1f}s: restore: {exc!r}"[:300])
            configuration[RUN_ID_KEY] = new_run_id()
        to_v2 = tick % 2 == 0
        weights = {"v1": 0, "v2": 100} if to_v2 else {"v1": 100, "v2": 0}
        try:
            started = time.perf_counter()
            actions.shift_traffic(VIRTUAL_SERVICE, weights, ns=NAMESPACE,
                                  configuration=configuration)  # fmt: skip
            returned = time.perf_counter()
            changes.probes += _probe(gateway, "appv2" if to_v2 else "appv1", returned + 5)
            changes.enforced.append((started - t0, time.perf_counter() - started))
            changes.after_return.append(time.perf_counter() - returned)
            phase = tick % FAULT_PERIOD
            if phase == 0:
                fault_started = time.perf_counter() - t0
                actions.inject_abort(VIRTUAL_SERVICE, status=FAULT_STATUS,
                                     percentage=FAULT_PERCENT, ns=NAMESPACE,
                                     configuration=configuration)  # fmt: skip
            elif phase == FAULT_ON and fault_started is not None:
                actions.remove_faults(VIRTUAL_SERVICE, ns=NAMESPACE, configuration=configuration)
                changes.fault_windows.append((fault_started, time.perf_counter() - t0))
                fault_started = None
        except Exception as exc:  # reported, and the soak goes on
            changes.action_errors.append(f"{time.perf_counter() - t0:.1f}s: {exc!r}"[:300])
            with contextlib.suppress(Exception):
                gateway.close()
            gateway = http.client.HTTPConnection(split.hostname, split.port,
                                                 timeout=REQUEST_TIMEOUT)  # fmt: skip
        tick += 1
        # The next tick on the whole second, whatever this one cost.
        stop.wait(max(0.0, tick - (time.perf_counter() - t0)))
    if fault_started is not None:
        with contextlib.suppress(Exception):
            actions.remove_faults(VIRTUAL_SERVICE, ns=NAMESPACE, configuration=configuration)
        changes.fault_windows.append((fault_started, time.perf_counter() - t0))
    gateway.close()


# --------------------------------------------------------------------------------------------
# Resources: RSS of every mesh process, disk


def rss_and_threads(pid: int) -> tuple[int, int] | None:
    """(RSS bytes, threads) of ``pid``: threads that pile up explain RSS that grows."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["Threads"])
    except (OSError, KeyError, ValueError):
        return None


def role_of(record: dict[str, Any]) -> str:
    """mesh.json's role, with a hosted replica's holder (the pod's pid, ~10 kB: the replica
    itself runs in the replica host) named as such rather than as the workload."""
    role = str(record["role"])
    with contextlib.suppress(OSError):
        exe = os.readlink(f"/proc/{int(record['pid'])}/exe")
        if role.startswith("workload ") and Path(exe).name == HOLDER_NAME:
            return "holder of " + role.removeprefix("workload ")
    return role


def dir_bytes(root: Path) -> int:
    total = 0
    for path in root.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_blocks * 512
    return total


@dataclass
class Samples:
    rss: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    threads: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    logs_used: list[tuple[float, int]] = field(default_factory=list)
    state_dir: list[tuple[float, int]] = field(default_factory=list)
    log_cap: int = 0
    rotations: int = 0
    # Envoy's open upstream connections (every cluster): what its RSS follows.
    upstream_connections: list[tuple[float, int]] = field(default_factory=list)


def sample(
    state_dir: Path, t0: float, seconds: float, samples: Samples, stop: threading.Event
) -> None:
    while not stop.is_set():
        now = time.perf_counter() - t0
        mesh = json.loads((state_dir / "mesh.json").read_text())
        for record in mesh["pids"]:
            found = rss_and_threads(int(record["pid"]))
            if found is not None:
                role = role_of(record)
                samples.rss.setdefault(role, []).append((now, found[0]))
                samples.threads.setdefault(role, []).append((now, found[1]))
        try:
            status = _status(state_dir)
        except (OSError, ValueError) as exc:
            print(f"  status unavailable at {now:.0f} s: {exc}", flush=True)
            status = {}
        logs = status.get("logs") or {}
        samples.logs_used.append((now, int(logs.get("used_bytes", 0))))
        samples.log_cap = int(logs.get("cap_bytes", 0))
        samples.rotations = int(logs.get("rotations", 0))
        samples.state_dir.append((now, dir_bytes(state_dir)))
        connections = _envoy_upstream_connections(state_dir)
        if connections is not None:
            samples.upstream_connections.append((now, connections))
        if now >= seconds:
            return
        stop.wait(SAMPLE_EVERY)


# --------------------------------------------------------------------------------------------
# The mesh


def _cli(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosmesh_ext.cli", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _status(state_dir: Path) -> dict[str, Any]:
    """The daemon's status (what ``mesh status --json`` prints), without a new process."""
    from chaosmesh_ext.mesh.api.tls import client_context
    from chaosmesh_ext.mesh.kubeconfig import credentials

    mesh = json.loads((state_dir / "mesh.json").read_text())
    token, ca_pem = credentials(Path(mesh["kubeconfig"]))
    if ca_pem is None:
        raise ValueError("the mesh's kubeconfig names no certificate authority")
    split = urlsplit(mesh["api_url"])
    conn = http.client.HTTPSConnection(
        split.hostname or "127.0.0.1", split.port, timeout=10, context=client_context(ca_pem)
    )
    try:
        conn.request("GET", "/chaosmesh/v1/status", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
        return json.loads(body) if response.status == 200 else {}
    finally:
        conn.close()


def _envoy_upstream_connections(state_dir: Path) -> int | None:
    """Envoy's open upstream connections, summed over its clusters (None: no answer)."""
    try:
        admin = (state_dir / "envoy-admin-address").read_text().strip()
        with urllib.request.urlopen(
            f"http://{admin}/stats?filter=upstream_cx_active$", timeout=5
        ) as response:
            text = response.read().decode()
    except (OSError, ValueError):
        return None
    return sum(int(line.rsplit(":", 1)[1]) for line in text.splitlines() if ":" in line)


def _metrics_total(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("istio_requests_total{") and 'reporter="source"' in line
    )


def _settled_count(url: str, timeout: float = 60.0) -> int:
    """The exporter's count once it stops moving (it follows the access log every 0.1 s)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        count = _metrics_total(url)
        if count == last:
            return count
        last = count
        time.sleep(1.0)
    return last


# --------------------------------------------------------------------------------------------
# Analysis (pure)


def classify_errors(
    timeline: Timeline, windows: list[tuple[float, float]]
) -> tuple[int, int, dict[str, int]]:
    """(errors, expected, unexpected by kind): expected = the fault's status, sent in a window."""
    errors = expected = 0
    unexpected: dict[str, int] = {}
    ordered = sorted(windows)
    for sent, code in zip(timeline.sent, timeline.codes, strict=True):
        if code == 200:
            continue
        errors += 1
        if code == FAULT_STATUS and any(start <= sent <= end for start, end in ordered):
            expected += 1
            continue
        kind = "no answer (connection error or timeout)" if code == -1 else f"HTTP {code}"
        if code == FAULT_STATUS:
            kind += " outside a fault window"
        unexpected[kind] = unexpected.get(kind, 0) + 1
    return errors, expected, unexpected


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def per_period(
    enforced: list[tuple[float, float]], period: float
) -> list[tuple[int, float, float, int]]:
    """(index, p50 ms, p95 ms, changes) of change -> enforced, period by period."""
    periods: dict[int, list[float]] = {}
    for when, took in enforced:
        periods.setdefault(int(when // period), []).append(took * 1000)
    return [
        (m, statistics.median(v), percentile(v, 95), len(v)) for m, v in sorted(periods.items())
    ]


def peaks(series: list[tuple[float, int]], period: float) -> list[int]:
    """The largest value of ``series`` ((when, value) pairs) in each period, in order."""
    most: dict[int, int] = {}
    for when, value in series:
        index = int(when // period)
        most[index] = max(value, most.get(index, value))
    return [most[index] for index in sorted(most)]


def rss_growth(
    series: list[tuple[float, int]], warmup: float
) -> tuple[int, int, int, float, float] | None:
    """(RSS after warm-up, half-way, at the end, growth, growth over the second half) of one
    process: a leak keeps growing in the second half, a high-water mark does not."""
    after = [rss for when, rss in series if when >= warmup]
    if len(after) < 2:
        return None
    first, middle, last = after[0], after[len(after) // 2], after[-1]
    return first, middle, last, (last - first) / first, (last - middle) / middle


# --------------------------------------------------------------------------------------------


def soak(minutes: float, qps: float, connections: int, keep: bool = False) -> int:
    seconds = minutes * 60
    warmup = min(60.0, seconds / 4)
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    print(f"soak: {minutes:g} min at {qps:g} qps on {connections} connections through the "
          f"canary gateway ({machine}, load average {_load_average()})")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="chaosmesh-soak-") as tmp:
        state_dir = Path(tmp) / "mesh"
        os.environ["CHAOSMESH_LEDGER_DIR"] = str(Path(tmp) / "ledger")
        up = _cli("mesh", "up", "-f", str(CANARY), "-n", NAMESPACE, "--state-dir", str(state_dir))
        if up.returncode != 0:
            print(f"mesh up failed: {up.stderr}")
            return 1
        load: LoadProcess | None = None
        try:
            mesh = json.loads((state_dir / "mesh.json").read_text())
            url = mesh["gateways"][0]["url"]
            load = LoadProcess(url, qps, seconds, connections, tmp)
            warmed = warm_up(mesh, state_dir, load)
            timeline, changes, samples = Timeline(), Changes(), Samples()
            stop = threading.Event()
            t0 = time.perf_counter()
            abort = threading.Event()

            def guarded(part: Any, *args: Any) -> None:
                try:
                    part(*args)
                except BaseException:
                    abort.set()
                    raise

            threads = [
                threading.Thread(
                    target=guarded, args=(drive_changes, mesh, seconds, t0, changes, stop)
                ),
                threading.Thread(
                    target=guarded, args=(sample, state_dir, t0, seconds, samples, stop)
                ),
            ]
            for thread in threads:
                thread.start()
            try:
                result = load.run(t0, timeline, abort)
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=60)
            counted = _settled_count(mesh["metrics_url"])
            status = _status(state_dir)
            return report(
                result, connections, warmed, timeline, changes, samples, warmup, counted,
                status, seconds,
            )  # fmt: skip
        finally:
            if load is not None:
                load.kill()
            if keep:
                print(f"mesh kept running in {state_dir} (--keep)")
            else:
                _cli("mesh", "down", "--state-dir", str(state_dir))


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def report(
    load: dict[str, Any],
    connections: int,
    warmed: dict[str, Any],
    timeline: Timeline,
    changes: Changes,
    samples: Samples,
    warmup: float,
    counted: int,
    status: dict[str, Any],
    seconds: float,
) -> int:
    from chaosmesh_ext.mesh.logs import format_size

    ok = True
    sent = len(timeline.codes)
    errors, expected, unexpected = classify_errors(timeline, changes.fault_windows)
    print(f"warm-up: {HOLD_ROUNDS} x {connections} requests held {HOLD:g} s at once on fresh "
          f"connections, on each subset; answered (fewest in a round) "
          f"{warmed['answered']['v1']} / {warmed['answered']['v2']}; Envoy's upstream "
          f"connections then {warmed['upstream']}")  # fmt: skip
    print(f"requests: {sent:,} sent ({load['achieved_qps']:.0f}/s achieved), "
          f"{errors:,} errors, of which {expected:,} the fault's {FAULT_STATUS} in its "
          f"{len(changes.fault_windows)} windows")  # fmt: skip
    unsent = int(load["scheduled"]) - sent
    # The last requests, scheduled within the run's usual send lag of its end, may still
    # wait for a connection when the time is up: the rate was kept up to the end.
    unsent_span = unsent * seconds / max(int(load["scheduled"]), 1)
    if unsent and unsent_span <= max(load["open_loop"]["SendLagMax"], END_GRACE_S):
        print(f"  {unsent:,} requests scheduled in the last {unsent_span * 1000:.0f} ms were "
              "still waiting for a connection when the time was up (within the run's send "
              "lag; never sent)")  # fmt: skip
    elif unsent:
        print(f"  <-- RATE NOT KEPT: {unsent:,} of {load['scheduled']:,} scheduled requests were "
              f"still waiting for one of the {connections} connections when the time was up "
              "(never sent)")  # fmt: skip
    n_unexpected = sum(unexpected.values())
    print(f"  unexpected errors: {n_unexpected} (goal 0)"
          + "".join(f"\n    {kind}: {n}" for kind, n in sorted(unexpected.items())))  # fmt: skip
    ok &= n_unexpected == 0
    if changes.action_errors:
        ok = False
        print(f"  actions that failed: {len(changes.action_errors)}")
        for line in changes.action_errors[:5]:
            print(f"    {line}")
    latencies = sorted(timeline.latency)
    print(f"  latency p50 {percentile(latencies, 50) * 1000:.2f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.2f} ms, "
          f"max {latencies[-1] * 1000 if latencies else 0:.1f} ms from the send; from the "
          f"scheduled send p99 {load['scheduled_latency_p99'] * 1000:.2f} ms, "
          f"max {load['scheduled_latency_max'] * 1000:.1f} ms")  # fmt: skip
    lag = load["open_loop"]
    print(f"  load: {connections} connections, opened before the clock started and never more "
          f"({load['sockets']:,} sockets over the run: the client reconnects after a non-2xx "
          f"answer, as fortio's does); send lag p50 {lag['SendLagP50'] * 1000:.2f} ms, "
          f"p99 {lag['SendLagP99'] * 1000:.2f} ms, max {lag['SendLagMax'] * 1000:.1f} ms, "
          f"up to {lag['MaxBacklog']} requests waited for a connection")  # fmt: skip
    total = sent + changes.probes + load["warm_up_requests"]
    print(f"  metrics exporter counted {counted:,} of {total:,} requests (load + change "
          f"probes + warm-up){'' if counted == total else '  <-- MISMATCH'}")  # fmt: skip
    ok &= counted == total

    print(f"RSS, after the {warmup:.0f} s warm-up -> end (goal < {RSS_GOAL:.0%} growth):")
    for role, series in sorted(samples.rss.items()):
        growth = rss_growth(series, warmup)
        if growth is None:
            continue
        first, _, last, ratio, second_half = growth
        flag = "" if ratio < RSS_GOAL else "  <-- OVER"
        ok &= ratio < RSS_GOAL
        threads = [n for when, n in samples.threads.get(role, []) if when >= warmup]
        print(f"  {role:<33} {format_size(first):>9} -> {format_size(last):>9} ({ratio:+.1%}; "
              f"second half {second_half:+.1%}), threads {threads[0]} -> {threads[-1]}"
              f"{flag}")  # fmt: skip

    upstream = [n for when, n in samples.upstream_connections if when >= warmup]
    if upstream:
        half = [n for when, n in samples.upstream_connections if when >= (warmup + seconds) / 2]
        print(f"  Envoy's upstream connections (kept idle for an hour, as Istio's sidecars do): "
              f"{upstream[0]} -> {upstream[-1]}, peak {max(upstream)} "
              f"(second half: {half[0] if half else '?'} -> {upstream[-1]})")  # fmt: skip
    # Minutes; a short run (development) is cut in quarters instead.
    period = 60.0 if seconds >= 180 else seconds / 4
    unit = "minute" if period == 60 else f"{period:.0f} s"
    print(f"  the most in each {unit} (the warm-up's included): Envoy's upstream connections "
          + " ".join(map(str, peaks(samples.upstream_connections, period))))  # fmt: skip
    for role, series in sorted(samples.threads.items()):
        print(f"    {role} threads " + " ".join(map(str, peaks(series, period))))

    peak_logs = max((b for _, b in samples.logs_used), default=0)
    peak_dir = max((b for _, b in samples.state_dir), default=0)
    within = peak_logs <= samples.log_cap
    ok &= within
    print(f"disk: logs peak {format_size(peak_logs)} of the {format_size(samples.log_cap)} cap "
          f"({samples.rotations} rotations){'' if within else '  <-- OVER'}; "
          f"state directory peak {format_size(peak_dir)}")  # fmt: skip

    periods = per_period(changes.enforced, period)
    waits = sorted(changes.after_return)
    print(f"after an action returned, the new version answered within p50 "
          f"{percentile(waits, 50) * 1000:.1f} ms, max {waits[-1] * 1000 if waits else 0:.1f} ms "
          "(one request: the action returns once Envoy enforces the change)")  # fmt: skip
    print("change -> enforced (shift_traffic through the API, to the first answer of the new "
          f"version), per {unit}:")  # fmt: skip
    for index, p50, p95, n in periods:
        print(f"  {unit} {index + 1:>2}: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  ({n} changes)")
    if len(periods) >= 2:
        opening, closing = periods[0], periods[-1]
        drift = closing[2] - opening[2]
        print(f"  first vs last {unit}: p50 {opening[1]:.1f} -> {closing[1]:.1f} ms, "
              f"p95 {opening[2]:.1f} -> {closing[2]:.1f} ms")  # fmt: skip
        # No drift: the last minute's p95 within 50 % (and 10 ms) of the first's.
        drifted = drift > max(10.0, 0.5 * opening[2])
        ok &= not drifted
        if drifted:
            print("  <-- DRIFT")
    envoy = status.get("envoy") or {}
    print(f"Envoy restarts during the soak: {envoy.get('restarts', '?')}")
    print("soak: " + ("all goals met" if ok else "GOALS MISSED"))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--load-only"]:  # the load's own process (see LoadProcess)
        url, qps, seconds, connections, out = argv[1:6]
        return _load_only(url, float(qps), float(seconds), int(connections), out)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="duration (default 10)")
    parser.add_argument("--qps", type=float, default=1000.0, help="load rate (default 1000)")
    parser.add_argument("--connections", type=int, default=CONNECTIONS,
                        help=f"the load's connections, fixed (default {CONNECTIONS})")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="leave the mesh running after")
    args = parser.parse_args(argv)
    if args.connections < 1:
        parser.error(f"--connections must be at least 1, got {args.connections}")
    return soak(args.minutes, args.qps, args.connections, args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
