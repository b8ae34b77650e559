"""Experiments on the embedded mesh for the lifecycle tests (interrupts, re-runs, concurrent
runs), a ``chaos run`` whose log lines a test can wait for, and a tripwire cluster.

- ``mesh_experiment(state_dir, method=...)``: nginx -> tomcat behind fortio (the runbook's
  timeout scenario's manifests) with the safety-net control, in ``state_dir``;
  ``delay_tomcat()``, ``load_nginx(...)``, ``count_pods(...)`` build its steps;
- ``start_chaos_run(experiment, workdir, env)``: a real ``chaos run`` (a ``Watched`` process,
  see ``tests.support.processes``) with HOME, ledger and run id of the test's choosing;
- ``Tripwire``: an HTTP server that records every request, and a kubeconfig (written under
  a directory of the test's) naming it as the current cluster. An embedded run must never
  send it anything.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.chaos_run import CHAOS, SAFETY_NET
from tests.support.processes import Watched

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "experiments" / "manifests"


def delay_tomcat(name: str = "delay-tomcat", delay: str = "200ms") -> dict[str, Any]:
    return {
        "type": "action",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosmesh_ext.actions",
            "func": "inject_delay",
            "arguments": {"virtual_service": "tomcat-vs", "delay": delay, "percentage": 100},
        },
    }


def remove_delay(name: str = "remove-the-delay") -> dict[str, Any]:
    """The method's own undo of ``delay_tomcat`` (so its after-hypothesis sees no fault)."""
    return {
        "type": "action",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosmesh_ext.actions",
            "func": "remove_faults",
            "arguments": {"virtual_service": "tomcat-vs"},
        },
    }


def load_nginx(
    name: str,
    t: str = "2s",
    expect: Mapping[str, Any] | None = None,
    slo: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Load through nginx from the mesh's fortio; ``slo`` makes it a hypothesis probe."""
    arguments: dict[str, Any] = {"url": "http://nginx-svc/", "qps": 20, "c": 2, "t": t}
    if expect:
        arguments["expect"] = dict(expect)
    probe: dict[str, Any] = {
        "type": "probe",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosmesh_ext.probes",
            "func": "fortio_load",
            "arguments": arguments,
        },
    }
    if slo is not None:
        probe["tolerance"] = {
            "type": "probe",
            "name": "slo",
            "provider": {
                "type": "python",
                "module": "chaosmesh_ext.tolerances",
                "func": "slo",
                "arguments": dict(slo),
            },
        }
    return probe


def count_pods(name: str = "count-web-pods") -> dict[str, Any]:
    """chaostoolkit-kubernetes' probe: it reads KUBECONFIG, never the configuration."""
    return {
        "type": "probe",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosk8s.pod.probes",
            "func": "count_pods",
            "arguments": {"label_selector": "app=web", "ns": "default"},
        },
        "tolerance": 2,
    }


def mesh_experiment(
    state_dir: Path,
    *,
    method: list[dict[str, Any]],
    hypothesis: list[dict[str, Any]] | None = None,
    title: str = "lifecycle",
    configuration: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "title": title,
        "description": "nginx -> tomcat on the embedded mesh, for the lifecycle tests",
        "configuration": {
            "mesh_target": "embedded",
            "mesh_state_dir": str(state_dir),
            "mesh_manifests": [
                str(MANIFESTS / "fortio.yaml"),
                str(MANIFESTS / "nginx-tomcat.yaml"),
            ],
            **(configuration or {}),
        },
        "controls": [SAFETY_NET],
        "steady-state-hypothesis": {"title": "nginx answers", "probes": hypothesis or []},
        "method": method,
        "rollbacks": [],
    }


def run_env(home: Path, ledger: Path, **extra: str) -> dict[str, str]:
    """A ``chaos run`` environment of the test's own: HOME, ledger; nothing of the caller's
    Kubernetes or mesh settings unless given."""
    env = dict(os.environ, HOME=str(home), CHAOSMESH_LEDGER_DIR=str(ledger))
    for key in (
        "MESH_TARGET",
        "CHAOSMESH_RUN_ID",
        "CHAOSMESH_STATE_DIR",
        "CHAOSMESH_KEEP_MESH",
        "KUBECONFIG",
        "KUBERNETES_CONTEXT",
    ):
        env.pop(key, None)
    env.update(extra)
    return env


def start_chaos_run(
    experiment: Mapping[str, Any], workdir: Path, env: Mapping[str, str], name: str = "run"
) -> tuple[Watched, Path]:
    """``chaos run`` of ``experiment`` in ``workdir``; returns the process and its journal."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(experiment))
    journal = workdir / f"{name}-journal.json"
    argv = [CHAOS, "--no-log-file", "run", "--journal-path", str(journal), str(path)]
    return Watched(argv, cwd=workdir, env=env), journal


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str]

    def _record(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        body = b'{"kind": "Status", "status": "Failure", "message": "tripwire"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record

    def log_message(self, *args: Any) -> None:
        pass


class Tripwire:
    """The user's current cluster, as far as the test is concerned: records every request."""

    def __init__(self, directory: Path, context: str = "production") -> None:
        self.seen: list[str] = []
        handler = type("Recorder", (_Recorder,), {"seen": self.seen})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        directory.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = directory / "config"
        self.context = context
        self.kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": context, "cluster": {"server": self.url}}],
                    "users": [{"name": context, "user": {"token": "tripwire"}}],
                    "contexts": [
                        {"name": context, "context": {"cluster": context, "user": context}}
                    ],
                    "current-context": context,
                }
            )
        )
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Tripwire:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
