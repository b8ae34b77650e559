"""fortio's REST API (``/fortio/rest/run``, ``status``, ``stop``, ``/fortio/data/``) on our engine.

The embedded mesh's ``fortio`` workload runs ``python -m chaosmesh_ext.load.rest --port P``;
probes reach it through the Kubernetes API's service proxy exactly as they reach real fortio
in a cluster. Parameters and defaults are fortio's: ``qps`` missing or 0 -> 8, negative ->
max; ``c`` 4; ``t`` 5s (``on`` = until stopped); REST runs allow initial errors.

Extension parameters (ignored by real fortio): ``open_loop=on``, and ``classify_regex`` /
``classify_header`` which add a ``Classification`` count per version — fortio's API never
returns response bodies, so a traffic split cannot be measured through it otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._sidecar import Sidecar
from . import engine
from .fortio_flags import FLAGS, load_input
from .options import REST, LoadInput, LoadOptionError, LoadOptions, normalize
from .periodic import StopToken
from .results import error_result, run_id_label

log = logging.getLogger("chaosmesh_ext.load")

# fortio's rapi.StateEnum
STATE_UNKNOWN, STATE_PENDING, STATE_RUNNING, STATE_STOPPING, STATE_STOPPED = range(5)
_STATE_NAMES = ["unknown", "pending", "running", "stopping", "stopped"]


@dataclass
class _Run:
    run_id: int
    options: LoadOptions
    stop: StopToken = field(default_factory=StopToken)
    state: int = STATE_PENDING
    result_id: str = ""
    done: threading.Event = field(default_factory=threading.Event)


class Params:
    """fortio's ``FormValue``: the query string first, then the JSON body's (string) values."""

    def __init__(self, query: dict[str, list[str]], body: dict[str, Any]) -> None:
        self.query = query
        self.body = body

    def get(self, key: str) -> str:
        if self.query.get(key):
            return self.query[key][0]
        value = self.body.get(key)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "on" if value else ""
        return str(value)

    def given(self, key: str) -> str | None:
        """Like :meth:`get`, but a JSON ``false`` is ``"off"`` and a missing key ``None``."""
        if self.query.get(key) and self.query[key][0]:
            return self.query[key][0]
        value = self.body.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return "on" if value else "off"
        return str(value)

    def all(self, key: str) -> list[str]:
        values = list(self.query.get(key, []))
        body_value = self.body.get(key)
        if isinstance(body_value, list):
            values += [str(v) for v in body_value]
        elif body_value:
            values.append(str(body_value))
        return values

    def on(self, key: str) -> bool:
        return self.get(key).lower() in ("on", "true", "1")


def options_from_params(params: Params, sidecar: Sidecar | None) -> LoadOptions:
    """Options with fortio's REST defaults; raise LoadOptionError naming the parameter.

    Every ``fortio load`` flag is accepted under its own name (``abort-on=503``,
    ``https-insecure=on``), as fortio's REST API accepts the ones it knows.
    """
    runner = params.get("runner")
    if runner not in ("", "http"):
        raise LoadOptionError("runner", f"only the http runner is supported, got {runner!r}")
    url = params.get("url")
    base = LoadInput(
        url=url,
        headers=params.all("H") + params.all("headers"),
        open_loop=params.on("open_loop"),
        allow_initial_errors=True,  # as fortio's REST runs do
        classify_regex=params.get("classify_regex"),
        classify_header=params.get("classify_header"),
        sidecar=sidecar,
    )
    values = {name: params.given(name) for name in FLAGS if name != "H"}
    flags = load_input(url, values, prefix="", base=base)
    for note in flags.ignored:
        log.info("%s", note)
    return normalize(flags.given, REST)


class _Server(ThreadingHTTPServer):
    # On the embedded mesh the daemon keeps the port reserved (SO_REUSEPORT, never listening)
    # until this server binds it too, so no other program takes it meanwhile.
    allow_reuse_port = True


# The API whose run the current thread executes (``FortioApi.execute``), so that a process
# serving several APIs (a replica host) can tell whose run a log record comes from.
RUNNING = threading.local()


class FortioApi:
    """fortio's REST API of one server, apart from any HTTP transport: its runs, its saved
    results, its sidecar. :meth:`answer` turns one request into (status, type, body)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        sidecar: Sidecar | None = None,
        data_dir: str | Path | None = None,
        paused: Callable[[], bool] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.sidecar = sidecar
        # With no directory given, results go to a temporary one that goes with the server.
        self.temporary_data = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="chaosmesh-fortio-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Whether the process the runs stand for is stopped (SIGSTOP): its calls wait.
        self.paused = paused
        self._lock = threading.Lock()
        self._runs: dict[int, _Run] = {}
        self._next_id = 0
        self._closed = False

    # --- runs -----------------------------------------------------------------------------
    def new_run(self, options: LoadOptions) -> _Run:
        with self._lock:
            self._next_id += 1  # starts at 1: 0 means "all runs" for stop
            run = _Run(self._next_id, options, StopToken(self.paused))
            self._runs[run.run_id] = run
            closed = self._closed
        if closed:
            run.stop.abandon()  # closed meanwhile: the run ends at once, as close() ends runs
        return run

    def execute(self, run: _Run, save: bool) -> dict[str, Any]:
        run.state = STATE_RUNNING
        RUNNING.api = self
        try:
            try:
                result = engine.run(run.options, run.stop, run.run_id)
            except engine.LoadTargetError as exc:
                result = error_result(
                    run.options, "Aborting because of error", str(exc), time.time()
                )
                result["RunID"] = run.run_id
            except Exception as exc:  # a bug must still answer the caller, as fortio does
                result = error_result(
                    run.options,
                    "Aborting because of error",
                    f"{type(exc).__name__}: {exc}",
                    time.time(),
                )
                result["RunID"] = run.run_id
            # An async run announced its ID before it started; keep that one.
            run.result_id = run.result_id or str(result.get("ID", ""))
            result["ID"] = run.result_id
            # A closed server's runs were cut off with it: nothing of theirs is kept.
            if save and run.result_id and not run.stop.abandoned:
                (self.data_dir / f"{run.result_id}.json").write_text(json.dumps(result, indent=2))
            return result
        finally:
            RUNNING.api = None
            with self._lock:
                self._runs.pop(run.run_id, None)  # fortio drops finished runs from status
            run.state = STATE_STOPPED
            run.done.set()

    def statuses(self, run_id: int) -> dict[str, Any]:
        with self._lock:
            runs = (
                [self._runs[run_id]]
                if run_id in self._runs
                else ([] if run_id else list(self._runs.values()))
            )
            return {
                str(r.run_id): {
                    "RunID": r.run_id,
                    "State": r.state,
                    "RunnerOptions": {
                        "URL": r.options.url,
                        "QPS": r.options.qps,
                        "NumThreads": r.options.connections,
                        "Exactly": r.options.exactly,
                        "Duration": round(r.options.duration * 1e9),
                    },
                }
                for r in runs
            }

    def stop_runs(self, run_id: int, wait: bool) -> tuple[int, str]:
        with self._lock:
            targets = [r for rid, r in self._runs.items() if run_id in (0, rid)]
        stopped = 0
        for r in targets:
            if r.state != STATE_RUNNING:
                continue
            r.state = STATE_STOPPING
            r.stop.stop()
            stopped += 1
        if wait:
            for r in targets:
                r.done.wait(timeout=r.options.timeout + 5.0)
        rid = targets[0].result_id if len(targets) == 1 else ""
        return stopped, rid

    def close(self, remove_data: bool = False) -> None:
        """What the server's process exiting does to its runs: every one ends at once, its
        connections dropped with the calls in flight, nothing saved; with ``remove_data``
        the saved results go too (a pod's files go with the pod)."""
        with self._lock:
            self._closed = True
            runs = list(self._runs.values())
        for r in runs:
            r.stop.abandon()
        if remove_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # --- the API ----------------------------------------------------------------------------
    def answer(
        self, method: str, target: str, body: bytes, host_header: str | None
    ) -> tuple[int, str, bytes]:
        """One request: ``target`` is the request line's path and query, ``host_header``
        names this server in the result URLs. Returns (status, content type, body)."""
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        path = parts.path
        host = host_header or f"{self.host}:{self.port}"
        if path == "/fortio/rest/run":
            return self._run(query, body, host)
        if path == "/fortio/rest/status":
            return _json(200, {"Statuses": self.statuses(_int_param(query, "runid"))})
        if path == "/fortio/rest/stop":
            run_id = _int_param(query, "runid")
            wait = (query.get("wait", [""])[0].lower()) not in ("", "off", "false")
            count, rid = self.stop_runs(run_id, wait)
            return _json(
                200,
                {
                    "message": _STATE_NAMES[
                        STATE_STOPPED if wait and count == 1 else STATE_STOPPING
                    ],
                    "RunID": run_id,
                    "Count": count,
                    "ResultID": rid,
                    "ResultURL": _data_url(host, rid) if rid else "",
                },
            )
        if path.startswith("/fortio/data/"):
            return self._data(path[len("/fortio/data/") :])
        if path in ("/fortio", "/fortio/"):
            return 200, "text/plain", b"fortio-compatible load server (chaosmesh)\n"
        return _error(404, f"no such path {path}")

    def _data(self, name: str) -> tuple[int, str, bytes]:
        if name in ("", "index.tsv"):
            files = sorted(p.name for p in self.data_dir.glob("*.json"))
            return 200, "text/plain", ("\n".join(files) + "\n").encode()
        if not re.fullmatch(r"[A-Za-z0-9_.-]+\.json", name):
            return _error(400, f"bad result name {name!r}")
        path = self.data_dir / name
        if not path.is_file():
            return _error(404, f"no saved result {name}")
        return 200, "application/json", path.read_bytes()

    def _run(self, query: dict[str, list[str]], body: bytes, host: str) -> tuple[int, str, bytes]:
        data: dict[str, Any] = {}
        if body.strip():
            try:
                data = json.loads(body)
            except ValueError as exc:
                return _error(400, "body is not JSON", str(exc))
            if not isinstance(data, dict):
                return _error(400, "body must be a JSON object")
            json_path = query.get("jsonPath", [""])[0]
            for key in [k for k in json_path.split(".") if k]:
                sub = data.get(key)
                if not isinstance(sub, dict):
                    return _error(400, f"jsonPath {json_path!r}: no object at {key!r}")
                data = sub
        params = Params(query, data)
        try:
            options = options_from_params(params, self.sidecar)
        except LoadOptionError as exc:
            return _error(400, "bad parameter", str(exc))
        if self._closed:
            return _error(503, "this server is stopping")
        run = self.new_run(options)
        save = params.on("save")
        if params.on("async"):
            # The result ID is the start time (as fortio's); the file appears when the run ends.
            rid = run_id_label(time.time(), options.labels, run.run_id)
            if (self.data_dir / f"{rid}.json").exists():
                rid += f"_{run.run_id}"
            run.result_id = rid
            threading.Thread(target=self.execute, args=(run, True), daemon=True).start()
            return _json(
                200,
                {
                    "message": "started",
                    "RunID": run.run_id,
                    "Count": 1,
                    "ResultID": rid,
                    "ResultURL": _data_url(host, rid),
                },
            )
        return _json(200, self.execute(run, save))


def _json(status: int, payload: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(payload, indent=2).encode()


def _error(status: int, message: str, exception: str = "") -> tuple[int, str, bytes]:
    return _json(status, {"error": True, "message": message, "exception": exception})


def _data_url(host: str, rid: str) -> str:
    return f"http://{host}/fortio/data/{rid}.json"


class RestServer(FortioApi):
    """A running fortio REST server; ``url`` is its base, ``shutdown()`` stops it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        sidecar: Sidecar | None = None,
        data_dir: str | Path | None = None,
    ) -> None:
        super().__init__(host, port, sidecar, data_dir)
        handler = type("Handler", (_Handler,), {"rest": self})
        self.httpd = _Server((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/fortio/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> RestServer:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving and every run; a temporary data directory is removed."""
        self.stop_runs(0, wait=False)
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.temporary_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class _Handler(BaseHTTPRequestHandler):
    rest: RestServer
    protocol_version = "HTTP/1.1"
    server_version = "fortio-chaosmesh"
    # The headers and the body leave in two writes: with Nagle's algorithm the body waits for
    # the client's delayed ACK of the headers, ~40 ms on every keep-alive status poll.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: probes poll a lot
        return

    def do_GET(self) -> None:
        self._dispatch(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._dispatch(self.rfile.read(length) if length else b"")

    def _dispatch(self, body: bytes) -> None:
        status, content_type, payload = self.rest.answer(
            self.command, self.path, body, self.headers.get("Host")
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _int_param(query: dict[str, list[str]], key: str) -> int:
    try:
        return int(query.get(key, ["0"])[0] or 0)
    except ValueError:
        return 0


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    sidecar: Sidecar | None = None,
    data_dir: str | Path | None = None,
) -> RestServer:
    """Start fortio's REST API on ``host:port`` (0 = any free port) in a background thread."""
    return RestServer(host, port, sidecar, data_dir).start()


def main(argv: list[str] | None = None) -> int:
    """``python -m chaosmesh_ext.load.rest --port P``: serve until SIGTERM/SIGINT."""
    ap = argparse.ArgumentParser(prog="chaosmesh load serve", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    # Port 0 by default: fortio's 8080 is often taken, and the URL is printed anyway.
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    try:
        server = serve(args.host, args.port, Sidecar.from_env(), args.data_dir)
    except OSError as exc:
        print(
            f"chaosmesh load serve: cannot listen on {args.host}:{args.port}: {exc.strerror}"
            " (--port 0 picks a free port)",
            file=sys.stderr,
        )
        return 1
    print(f"fortio REST API on {server.url}rest/run (data in {server.data_dir})", flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
