"""Benchmark: per-request latency and throughput of the embedded mesh's workloads.

Each workload runs as the mesh runs it (``launch``), alone on loopback, and is loaded over
keep-alive at c=1 and c=8 by ``wrk`` (else ``hey``, else a Python client), next to two
reference servers: a plain http.server answering in one buffered write with TCP_NODELAY
(what good looks like in Python), and the naive BaseHTTPRequestHandler that writes head and
body separately (the ~27 ms Nagle + delayed-ACK stall the workloads must not have).

``python -m benchmarks.bench_workloads [seconds]``; prints one line per (server, c).
"""

from __future__ import annotations

import http.client
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from chaosmesh_ext._sidecar import Sidecar
from chaosmesh_ext.mesh.workloads import WorkloadSpec, launch, wait_ready

HOST = "127.0.0.1"
CONCURRENCY = (1, 8)


@dataclass
class Result:
    server: str
    concurrency: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    tool: str

    def line(self) -> str:
        return (
            f"{self.server:<28} c={self.concurrency:<2} {self.rps:>9.0f} req/s   "
            f"p50 {self.p50_ms:7.3f} ms  p90 {self.p90_ms:7.3f} ms  p99 {self.p99_ms:7.3f} ms"
            f"  ({self.tool})"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, concurrency: int, seconds: float) -> tuple[float, dict[str, float]]:
    duration = f"{max(1, round(seconds))}s"  # wrk takes whole seconds only
    out = subprocess.run(
        ["wrk", "-t", str(min(concurrency, 2)), "-c", str(concurrency), "-d", duration,
         "--latency", url],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout  # fmt: skip
    percentiles = {
        pct: float(value) * _UNITS[unit]
        for pct, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    }
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rps, percentiles


def _hey(url: str, concurrency: int, seconds: float) -> tuple[float, dict[str, float]]:
    out = subprocess.run(
        ["hey", "-z", f"{seconds}s", "-c", str(concurrency), url],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout  # fmt: skip
    percentiles = {
        pct: float(value) * 1000.0
        for pct, value in re.findall(r"^\s+(\d+)% in ([\d.]+) secs", out, re.M)
    }
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rps, percentiles


def _python_client(url: str, concurrency: int, seconds: float) -> tuple[float, dict[str, float]]:
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        mine: list[float] = []
        while time.monotonic() < deadline:
            start = time.perf_counter()
            conn.request("GET", "/")
            conn.getresponse().read()
            mine.append(time.perf_counter() - start)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000.0  # noqa: E731
    return len(latencies) / seconds, {"50": pick(0.5), "90": pick(0.9), "99": pick(0.99)}


def _tool() -> tuple[str, Callable[[str, int, float], tuple[float, dict[str, float]]]]:
    if shutil.which("wrk"):
        return "wrk", _wrk
    if shutil.which("hey"):
        return "hey", _hey
    return "python http.client", _python_client


class _Buffered(http.server.BaseHTTPRequestHandler):
    """Reference: http.server done right (one write per response, TCP_NODELAY)."""

    protocol_version = "HTTP/1.1"
    wbufsize = -1  # buffer the head and body, flushed together by handle_one_request

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        body = b"reference\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Naive(_Buffered):
    """Reference: the textbook handler: unbuffered writes, Nagle on -> delayed-ACK stalls."""

    wbufsize = 0

    def setup(self) -> None:
        http.server.BaseHTTPRequestHandler.setup(self)

    def do_GET(self) -> None:
        body = b"reference\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()  # the head goes out in one segment...
        self.wfile.write(body)  # ...and the body waits for the peer's delayed ACK


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the load tool resets its connections at the end of a run


@contextmanager
def _reference(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    server = _QuietServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def _workload(kind: str, state: Path, **kwargs: object) -> Iterator[tuple[int, int]]:
    """(port, pid) of a replica launched as the mesh launches it."""
    port = _free_port()
    spec = WorkloadSpec(kind=kind, deployment=f"bench-{kind}", namespace="bench",
                        pod=f"bench-{kind}-0", port=port, log_path=state / f"{kind}-{port}.log",
                        version="v1", **kwargs)  # type: ignore[arg-type]  # fmt: skip
    process = launch(spec)
    try:
        wait_ready(HOST, port, 20.0, process=process)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _measure(name: str, port: int, path: str, seconds: float) -> list[Result]:
    tool, run = _tool()
    url = f"http://{HOST}:{port}{path}"
    results = []
    for concurrency in CONCURRENCY:
        rps, pct = run(url, concurrency, seconds)
        nan = float("nan")
        results.append(
            Result(name, concurrency, rps, pct.get("50", nan), pct.get("90", nan),
                   pct.get("99", nan), tool)
        )  # fmt: skip
        print(results[-1].line(), flush=True)
    return results


def _memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB. PSS splits shared pages (libpython) among their users, so sums over
    a mesh's processes are honest; RSS counts them in each, as the issue's target does."""
    found = {"Rss:": float("nan"), "Pss:": float("nan")}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                key = line.split(" ", 1)[0]
                if key in found:
                    found[key] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return found["Rss:"], found["Pss:"]


def startup_and_memory(state: Path) -> dict[str, tuple[float, float, float]]:
    """Per kind: seconds from launch to accepting, and RSS and PSS in MB once ready."""
    found: dict[str, tuple[float, float, float]] = {}
    upstream = {"chaosmesh.io/upstream": "http://tomcat-svc:8080"}
    for kind, needed in (("echo", {}), ("proxy", upstream), ("httpbin", {})):
        port = _free_port()
        spec = WorkloadSpec(kind=kind, deployment=kind, namespace="bench", pod=f"{kind}-0",
                            port=port, log_path=state / f"start-{kind}.log",
                            annotations=needed)  # fmt: skip
        started = time.perf_counter()
        process = launch(spec)
        try:
            wait_ready(HOST, port, 20.0, process=process)
            ready = time.perf_counter() - started
            found[kind] = (ready, *_memory_mb(process.pid))
        finally:
            process.terminate()
            process.wait(10)
        _, rss, pss = found[kind]
        print(f"{kind:<8} ready in {ready:.3f} s, RSS {rss:.1f} MB, PSS {pss:.1f} MB", flush=True)
    return found


def _print_memory_after_load(kind: str, pid: int) -> None:
    # Idle figures alone would flatter: threads, buffers and lazily imported modules count too.
    rss, pss = _memory_mb(pid)
    print(f"{kind:<8} after the load runs: RSS {rss:.1f} MB, PSS {pss:.1f} MB", flush=True)


def run_all(seconds: float = 3.0) -> list[Result]:
    results: list[Result] = []
    print(f"workload benchmark on {os.cpu_count()} CPUs, {seconds:g}s per run, keep-alive")
    with tempfile.TemporaryDirectory(prefix="bench-workloads-") as tmp:
        state = Path(tmp)
        startup_and_memory(state)
        with _reference(_Buffered) as port:
            results += _measure("reference http.server", port, "/", seconds)
        with _workload("echo", state) as (port, echo_pid):
            results += _measure("echo", port, "/", seconds)
            sidecar = Sidecar(outbound={8080: (HOST, port)}, workload="bench-proxy")
            annotations = {"chaosmesh.io/upstream": "http://tomcat-svc:8080"}
            with _workload("proxy", state, sidecar=sidecar, annotations=annotations) as (
                proxy,
                proxy_pid,
            ):
                results += _measure("proxy -> echo", proxy, "/", seconds)
                _print_memory_after_load("proxy", proxy_pid)
            _print_memory_after_load("echo", echo_pid)
        with _workload("httpbin", state) as (port, httpbin_pid):
            results += _measure("httpbin /get", port, "/get", seconds)
            _print_memory_after_load("httpbin", httpbin_pid)
        with _reference(_Naive) as port:
            results += _measure("naive BaseHTTPRequestHandler", port, "/", min(seconds, 2.0))
    return results


def main(argv: list[str] | None = None) -> int:
    # `python -m benchmarks` calls main() with no argument: its own argv is not ours.
    seconds = float(argv[0]) if argv else 3.0
    results = run_all(seconds)
    echo = next(r for r in results if r.server == "echo" and r.concurrency == 1)
    verdict = "ok" if echo.p50_ms < 1.0 else "TOO SLOW"
    print(
        f"echo p50 at c=1: {echo.p50_ms:.3f} ms (target: well under 1 ms, no Nagle stall): "
        f"{verdict}"
    )
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
