"""``chaosmesh mesh up/down/status/url``: run the embedded mesh and find your way into it.

``up`` checks the manifests here first (bad input never starts anything), then starts the
daemon (``chaosmesh_ext.mesh.daemon``) in the background and waits until it serves, or, when
a mesh already runs in the state directory, hands the manifests to it. ``down`` stops every
process the mesh recorded, by pid. ``status`` and ``url`` read the daemon and ``mesh.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from chaosmesh_ext.mesh import kubeconfig, manifests, requirements
from chaosmesh_ext.mesh.api import tls
from chaosmesh_ext.mesh.daemon import describe
from chaosmesh_ext.mesh.logs import LOG_CAP_ENV, format_size, parse_size
from chaosmesh_ext.mesh.state import (
    DEFAULT_STATE_DIR,
    AlreadyRunning,
    StateDir,
    alive,
    start_time,
    stop_pid,
)

UP_TIMEOUT = 90.0  # workloads + Envoy on a loaded 2-core machine; the target is 2 s
APPLY_TIMEOUT = 120.0
CALL_TIMEOUT = 10.0
DAEMON_STOP_TIMEOUT = 45.0  # a daemon still waiting for workloads finishes that wait first
STATE_DIR_ENV = "CHAOSMESH_STATE_DIR"

_state_option = click.option(
    "--state-dir",
    default=lambda: os.environ.get(STATE_DIR_ENV, DEFAULT_STATE_DIR),
    show_default=DEFAULT_STATE_DIR,
    type=click.Path(file_okay=False),
    help="Where the mesh keeps kubeconfig, mesh.json, logs and xDS files.",
)


def _call(
    running: dict[str, Any],
    path: str,
    method: str = "GET",
    body: Any = None,
    timeout: float = CALL_TIMEOUT,
) -> Any:
    """Ask the daemon of ``running`` (its mesh.json), with the token from its kubeconfig."""
    url = f"{running['api_url']}{path}"
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    token, ca_pem = kubeconfig.credentials(Path(running["kubeconfig"]))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    # Never through an HTTP proxy from the environment: the token stays on loopback; and
    # only to the server holding this mesh's own certificate.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPSHandler(context=tls.client_context(ca_pem) if ca_pem else None),
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        payload = json.loads(exc.read() or b"{}")
        raise click.ClickException(
            str(payload.get("error") or payload.get("message") or payload)
        ) from None
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"the mesh daemon at {url} does not answer: {exc}") from None


def _running(state: StateDir) -> dict[str, Any] | None:
    """mesh.json of a live, ready daemon in ``state``, else None."""
    current = state.read()
    if current and current.get("ready") and alive(int(current["pid"])) and state.is_locked():
        return current
    return None


def _not_running(state: StateDir) -> str:
    """Why there is no mesh to ask in ``state``, and what to do about it."""
    current = state.read()
    if current is not None and not alive(int(current.get("pid") or 0)):
        return (
            f"the mesh in {state.root} is not running: its daemon (pid {current.get('pid')}) "
            "has exited; 'chaosmesh mesh down' stops what it left behind"
        )
    if state.is_locked():
        return f"the mesh in {state.root} is still starting; try again in a moment"
    return f"no mesh running in {state.root} (start one: chaosmesh mesh up -f ...)"


def _tail(path: Path, lines: int = 20, since: int = 0) -> str:
    """The last ``lines`` of ``path`` written after byte ``since`` (this run's, not older)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(since)
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _starting_daemon(state: StateDir) -> int | None:
    """The pid of the mesh daemon holding ``state``'s lock, from ``mesh.pid`` (None if not one)."""
    try:
        pid = int(state.pid_path.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if b"chaosmesh_ext.mesh.daemon" in cmdline else None


def _stop_recorded(records: list[dict[str, Any]]) -> list[str]:
    """Stop every still-running process of ``mesh.json``'s ``pids`` (same pid and start time)."""
    stopped = []
    for record in records:
        pid = int(record["pid"])
        if alive(pid, record.get("started")):
            stop_pid(pid, record.get("started"))
            stopped.append(f"{record.get('role')} (pid {pid})")
    return stopped


@click.group("mesh")
def command() -> None:
    """Run the embedded mesh: Istio YAML enforced by a real Envoy, behind a Kubernetes API."""


@command.command("up")
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    type=click.Path(exists=True),
    help="Manifest file or directory (repeatable): Services, Deployments, Istio kinds.",
)
@click.option(
    "-n",
    "--namespace",
    default="default",
    show_default=True,
    help="Namespace for objects that name none.",
)
@_state_option
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Envoy worker threads (2 like a sidecar; 1 gives textbook breaker numbers).",
)
@click.option("--foreground", is_flag=True, help="Run in this terminal; Ctrl-C stops the mesh.")
@click.option("--prometheus", is_flag=True, help="Also run Prometheus scraping the mesh.")
@click.option(
    "--log-cap",
    default=lambda: os.environ.get(LOG_CAP_ENV) or "64MiB",
    show_default=f"64MiB, or ${LOG_CAP_ENV}",
    help="Total size of the mesh's logs (access logs, Envoy's, the daemon's, each workload's), "
    "rotated within it: 64MB, 512MiB, 1G or bytes. A running mesh keeps its own.",
)
@click.option(
    "--timeout",
    type=float,
    default=UP_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the mesh to serve.",
)
def up(
    files: tuple[str, ...],
    namespace: str,
    state_dir: str,
    concurrency: int,
    foreground: bool,
    prometheus: bool,
    log_cap: str,
    timeout: float,
) -> None:
    """Start the mesh with FILES, or apply FILES to the mesh already running here."""
    state = StateDir(Path(state_dir))
    try:
        cap = parse_size(log_cap, "--log-cap")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--log-cap") from None
    try:
        found = manifests.load(files)
        loaded = manifests.classify(found, namespace)
    except manifests.ManifestError as exc:
        raise click.ClickException(f"nothing changed:\n{exc}") from None
    for note in loaded.notes:
        click.echo(f"note: {note}", err=True)
    running = _running(state)
    if running is not None:
        payload = {
            "namespace": namespace,
            "manifests": [
                {"obj": m.obj, "file": m.file, "document": m.document, "line": m.line}
                for m in found
            ],
        }
        try:
            answer = _call(
                running,
                "/chaosmesh/v1/manifests",
                "POST",
                payload,
                timeout=APPLY_TIMEOUT,
            )
        except click.ClickException as exc:
            raise click.ClickException(
                f"the running mesh keeps what it had:\n{exc.message}"
            ) from None
        click.echo(f"applied {len(found)} object(s) to the running mesh")
        click.echo(describe(answer))
        return
    try:
        manifests.check(loaded, namespace)
    except manifests.ManifestError as exc:
        raise click.ClickException(f"nothing started:\n{exc}") from None
    absent = requirements.missing()
    if absent:
        raise click.ClickException(
            f"the embedded mesh needs {', '.join(absent)}, not installed here (a cluster-only "
            f"install): {requirements.INSTALL_HINT}"
        )
    try:
        # Under the lock: a mesh.json found now belongs to a dead daemon, never to one
        # that is starting (it takes the lock before writing anything).
        with state.locked():
            left = state.read()
            if left is not None:
                # Killed without cleaning up (kill -9): stop what it left behind, by
                # recorded pid and start time, before starting afresh.
                stopped = _stop_recorded(left.get("pids") or [])
                if stopped:
                    click.echo(
                        f"note: stopped {len(stopped)} process(es) left by a dead mesh: "
                        + ", ".join(stopped),
                        err=True,
                    )
                for stale in (state.mesh_json, state.pid_path):
                    stale.unlink(missing_ok=True)
    except AlreadyRunning:
        raise click.ClickException(
            f"a mesh is starting or stopping in {state.root}; try again "
            "or run 'chaosmesh mesh down'"
        ) from None
    argv = [
        sys.executable,
        "-m",
        "chaosmesh_ext.mesh.daemon",
        "--state-dir",
        str(state.root.resolve()),
        "--namespace",
        namespace,
        "--concurrency",
        str(concurrency),
        "--log-cap",
        str(cap),
    ]
    for path in files:
        argv += ["-f", str(Path(path).resolve())]
    if prometheus:
        argv.append("--prometheus")
    if foreground:
        from chaosmesh_ext.mesh import daemon

        sys.exit(daemon.main(argv[3:]))
    state.root.mkdir(parents=True, exist_ok=True)
    # daemon.log is appended to across runs: show only what this daemon wrote.
    log_start = state.daemon_log.stat().st_size if state.daemon_log.exists() else 0
    with open(state.daemon_log, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException(
                f"the mesh did not start (exit {process.returncode}):\n"
                + _tail(state.daemon_log, since=log_start)
            )
        current = state.read()
        if current and current.get("ready") and current.get("pid") == process.pid:
            click.echo(describe(current))
            return
        time.sleep(0.02)
    stop_pid(process.pid)
    raise click.ClickException(
        f"the mesh did not serve within {timeout:.0f}s; stopped it:\n"
        + _tail(state.daemon_log, since=log_start)
    )


@command.command("down")
@_state_option
def down(state_dir: str) -> None:
    """Stop every process the mesh started (by pid) and remove its pid/lock."""
    state = StateDir(Path(state_dir))
    current = state.read()
    if current is None:
        if state.is_locked():
            # A daemon still starting up: it has written no mesh.json yet, but it stops
            # everything it started when it gets SIGTERM.
            pid = _starting_daemon(state)
            if pid is None:
                raise click.ClickException(
                    f"a process holds {state.lock_path} but is not a mesh daemon; "
                    f"nothing stopped (its pid should be in {state.pid_path})"
                )
            if not stop_pid(pid, start_time(pid), timeout=DAEMON_STOP_TIMEOUT):
                raise click.ClickException(f"the starting mesh daemon (pid {pid}) did not stop")
            state.clear()
            click.echo(f"mesh down: stopped the mesh daemon that was starting (pid {pid})")
            return
        click.echo(f"no mesh running in {state.root}")
        state.clear()
        return
    daemon_pid = int(current["pid"])
    records = current.get("pids") or []
    started = next((p.get("started") for p in records if p.get("pid") == daemon_pid), None)
    # The daemon stops its own children in order; the pids below are the safety net.
    if alive(daemon_pid, started) and not stop_pid(
        daemon_pid, started, timeout=DAEMON_STOP_TIMEOUT
    ):
        click.echo(f"warning: daemon pid {daemon_pid} did not stop", err=True)
    leftovers = _stop_recorded(records)
    state.clear()
    click.echo(f"mesh down: stopped {len(records)} process(es) from {state.root}")
    if leftovers:
        click.echo("  had to stop left-over: " + ", ".join(leftovers))


@command.command("status")
@_state_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(state_dir: str, as_json: bool) -> None:
    """Services, endpoints (health as Envoy sees it), Istio resources, Envoy state."""
    state = StateDir(Path(state_dir))
    running = _running(state)
    if running is None:
        raise click.ClickException(_not_running(state))
    report = _call(running, "/chaosmesh/v1/status")
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    envoy = report["envoy"]
    click.echo(f"API {report['api_url']}   kubeconfig {running['kubeconfig']}")
    click.echo(
        f"Envoy pid {envoy['pid']} {'running' if envoy['running'] else 'NOT RUNNING'}, "
        f"config version {envoy['config_version']}, restarts {envoy['restarts']}"
        f"{_outage_text(envoy)}, admin {envoy['admin_url']}"
    )
    logs = report.get("logs")
    if logs:
        click.echo(
            f"Logs {format_size(logs['used_bytes'])} of {format_size(logs['cap_bytes'])} "
            f"(--log-cap), {logs['rotations']} rotation(s)"
        )
    click.echo("Services:")
    for entry in report["services"]:
        click.echo(
            f"  {entry['namespace']}/{entry['name']}:{entry['port']}  {entry['url']}  "
            f"Host: {entry['host_header']}"
        )
        for ep in entry["endpoints"]:
            click.echo(f"    {ep['pod']:<24} {ep['address']:<18} {ep['process']:<8} {ep['health']}")
    for entry in report["gateways"]:
        click.echo(f"Gateway {entry['namespace']}/{entry['name']}:{entry['port']}  {entry['url']}")
    click.echo("Istio resources:")
    for item in report["istio"]:
        click.echo(
            f"  {item['kind']:<16} {item['namespace']}/{item['name']}  generation "
            f"{item['generation']}  applied in config version {item['config_version']}"
        )


def _outage_text(envoy: dict[str, Any]) -> str:
    """`` (last outage 0.21 s at 14:02:07)`` once Envoy was restarted; `` (down 1.2 s)``."""
    if envoy.get("down_for_s") is not None:
        return f" (down for {envoy['down_for_s']:.2f} s)"
    if envoy.get("last_outage_s") is None:
        return ""
    when = time.strftime("%H:%M:%S", time.localtime(envoy.get("last_restart_at") or 0))
    return f" (last outage {envoy['last_outage_s']:.2f} s, at {when})"


@command.command("url")
@click.argument("target")
@_state_option
@click.option("-n", "--namespace", default=None, help="Namespace of the service (any by default).")
@click.option(
    "--plain",
    is_flag=True,
    help="Print only the URL, for scripts (a service also needs the Host header printed "
    "without --plain).",
)
def url(target: str, state_dir: str, namespace: str | None, plain: bool) -> None:
    """How to reach SERVICE[:PORT] (or 'gateway[:PORT]') from this machine."""
    state = StateDir(Path(state_dir))
    running = _running(state)
    if running is None:
        raise click.ClickException(_not_running(state))
    # Asked of the daemon, as `mesh status` does: a Gateway created or deleted with kubectl
    # a moment ago is listed (or gone) here too.
    report = _call(running, "/chaosmesh/v1/status")
    services, gateways = report.get("services", []), report.get("gateways", [])
    name, _, port = target.partition(":")
    if name == "gateway":
        candidates = list(gateways)
    else:
        candidates = [e for e in services + gateways if e["name"] == name]
    candidates = [
        e
        for e in candidates
        if (not port or str(e["port"]) == port)
        and (namespace is None or e["namespace"] == namespace)
    ]
    if not candidates:
        known = sorted(
            {f"{e['name']}:{e['port']}" for e in services}
            | {f"gateway:{e['port']}" for e in gateways}
        )
        raise click.ClickException(
            f"no service or gateway {target!r} in the mesh; known: {', '.join(known)}"
        )
    entry = candidates[0]
    click.echo(entry["url"])
    if plain:
        return
    if entry.get("host_header"):
        click.echo(f"curl -H 'Host: {entry['host_header']}' {entry['url']}")
    else:
        click.echo(f"curl {entry['url']}")
