"""``chaosmesh mesh up/down/status/url/kubeconfig/env``: run the embedded mesh and find
your way into it.

Flags and printing only; everything else is ``chaosmesh_ext.mesh.client.MeshClient``. ``up``
checks the manifests first (bad input never starts anything), then starts the daemon in the
background and waits until it serves, or, when a mesh already runs in the state directory,
hands the manifests to it. ``down`` stops every process the mesh recorded, by pid.
``status`` and ``url`` read the daemon and ``mesh.json``; ``kubeconfig`` and ``env`` print
the running mesh's kubeconfig path and shell exports.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from chaosmesh_ext.mesh.client import UP_TIMEOUT, MeshClient, MeshError
from chaosmesh_ext.mesh.logs import LOG_CAP_ENV, format_size, parse_size
from chaosmesh_ext.mesh.paths import default_state_dir
from chaosmesh_ext.mesh.views import describe

__all__ = ["command"]

_state_option = click.option(
    "--state-dir",
    default=default_state_dir,
    show_default="CHAOSMESH_STATE_DIR, else the nearest .chaosmesh/ from here up",
    type=click.Path(file_okay=False),
    help="Where the mesh keeps kubeconfig, mesh.json, logs and xDS files.",
)


def _client(state_dir: str) -> MeshClient:
    return MeshClient(Path(state_dir), notify=lambda line: click.echo(line, err=True))


@contextmanager
def _as_click_errors() -> Iterator[None]:
    """The client's errors as one-line command errors (their messages are written for users)."""
    try:
        yield
    except MeshError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("mesh")
def command() -> None:
    """Run the embedded mesh: Istio YAML enforced by a real Envoy, behind a Kubernetes API."""


@command.command("up")
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    type=click.Path(exists=True, allow_dash=True),
    help="Manifest file or directory (repeatable), or - for standard input: Services,"
    " Deployments, Istio kinds.",
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
    try:
        cap = parse_size(log_cap, "--log-cap")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--log-cap") from None
    client = _client(state_dir)
    with _as_click_errors():
        found = client.load(files, namespace)
        for note in found.notes:
            click.echo(f"note: {note}", err=True)
        if foreground and client.running() is None:
            sys.exit(
                client.serve(found, concurrency=concurrency, prometheus=prometheus, log_cap=cap)
            )
        result = client.up(
            found, concurrency=concurrency, prometheus=prometheus, log_cap=cap, timeout=timeout
        )
    if not result.started:
        click.echo(f"applied {result.objects} object(s) to the running mesh")
    click.echo(describe(result.mesh.document))


@command.command("down")
@_state_option
def down(state_dir: str) -> None:
    """Stop every process the mesh started (by pid) and remove its pid/lock."""
    with _as_click_errors():
        result = _client(state_dir).down()
    if result.outcome == "starting":
        click.echo(
            f"mesh down: stopped the mesh daemon that was starting (pid {result.daemon_pid})"
        )
        return
    if result.outcome != "stopped":
        click.echo(f"no mesh running in {result.state_dir}")
        return
    if result.daemon_survived:
        click.echo(f"warning: daemon pid {result.daemon_pid} did not stop", err=True)
    if result.daemon_was_dead:
        click.echo(
            f"mesh down: its daemon (pid {result.daemon_pid}) had died already; removed what "
            f"it left in {result.state_dir}"
        )
    else:
        click.echo(f"mesh down: stopped {result.processes} process(es) from {result.state_dir}")
    if result.leftovers:
        click.echo("  had to stop left-over: " + ", ".join(result.leftovers))


@command.command("status")
@_state_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(state_dir: str, as_json: bool) -> None:
    """Services, endpoints (health as Envoy sees it), Istio resources, Envoy state."""
    with _as_click_errors():
        current = _client(state_dir).status()
    report = current.report
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    envoy = report["envoy"]
    click.echo(f"API {report['api_url']}   kubeconfig {current.mesh.kubeconfig}")
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
    """`` (last outage 0.21 s, at 14:02:07)`` once Envoy was restarted; `` (down for 1.20 s)``."""
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
    # Asked of the daemon, as `mesh status` does: a Gateway created or deleted with kubectl
    # a moment ago is listed (or gone) here too.
    with _as_click_errors():
        entry = _client(state_dir).status().find(target, namespace)
    click.echo(entry.url)
    if plain:
        return
    if entry.host_header:
        click.echo(f"curl -H 'Host: {entry.host_header}' {entry.url}")
    else:
        click.echo(f"curl {entry.url}")


@command.command("kubeconfig")
@_state_option
def kubeconfig_path(state_dir: str) -> None:
    """Print the path of the running mesh's kubeconfig (for --kubeconfig or KUBECONFIG)."""
    with _as_click_errors():
        info = _client(state_dir).require_running()
    click.echo(str(info.kubeconfig.absolute()))


@command.command("env")
@_state_option
def env(state_dir: str) -> None:
    """Shell exports for the running mesh: eval "$(chaosmesh mesh env)".

    KUBECONFIG (kubectl, the activities and chaosmesh load -via mesh reach the mesh),
    MESH_GATEWAY_URL (its ingress gateway, as the experiments read it) and
    CHAOSMESH_STATE_DIR (every chaosmesh command finds this mesh from anywhere).
    """
    with _as_click_errors():
        info = _client(state_dir).require_running()
    exports = {
        "KUBECONFIG": str(info.kubeconfig.absolute()),
        "CHAOSMESH_STATE_DIR": str(info.state_dir.absolute()),
    }
    gateway = info.gateway_url()
    if gateway:
        exports["MESH_GATEWAY_URL"] = gateway
    for name, value in exports.items():
        click.echo(f"export {name}={shlex.quote(value)}")
