"""``chaosmesh load``: fortio's ``load`` command line on our engine, and ``load serve``.

Flags keep fortio's single-dash names (``-qps``, ``-timeout``, ``-json``); the double-dash
forms work too. Bad input is refused before any traffic, with the flag named.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import KubeError, LoadError
from ..kube.client import api_client
from ..load import engine, in_mesh
from ..load.options import COMMAND_LINE, LoadInput, LoadOptions, normalize, parse_url
from ..load.periodic import StopToken
from ..load.report import text_report
from ..mesh.paths import DEFAULT_STATE_DIR, StatePaths


class _LoadOrServe(click.Group):
    """``load serve ...`` runs the REST server; anything else is a load run."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("load", cls=_LoadOrServe, context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """fortio-compatible load: `chaosmesh load [flags] URL`, or `chaosmesh load serve`."""


class _RunCommand(click.Command):
    """Shows ``chaosmesh load [OPTIONS] URL`` (not ``load run``) in usage and errors."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage("chaosmesh load", "[OPTIONS] URL   (or: chaosmesh load serve)")


def _flag(*names: str, **kw: Any) -> Any:
    return click.option(*names, **kw)


@command.command("run", cls=_RunCommand, context_settings={"help_option_names": ["-h", "--help"]})
@_flag(
    "-c", "--c", "c", default=None, help="Number of connections/goroutines (fortio -c, default 4)."
)
@_flag(
    "-qps",
    "--qps",
    "qps",
    default=None,
    help="Total queries per second, 0 or less = max (default 8).",
)
@_flag(
    "-n", "--n", "n", default=None, help="Run exactly this number of calls instead of a duration."
)
@_flag("-t", "--t", "t", default=None, help="How long to run, e.g. 5s, 1m (default 5s).")
@_flag("-timeout", "--timeout", "timeout", default=None, help="Per-request timeout (default 3s).")
@_flag("-p", "--p", "p", default=None, help="Percentiles to report (default 50,75,90,99,99.9).")
@_flag("-H", "--H", "headers", multiple=True, help="Extra header 'Name: value' (repeatable).")
@_flag("-payload", "--payload", "payload", default=None, help="Request body (makes it a POST).")
@_flag(
    "-r",
    "--r",
    "resolution",
    default=None,
    help="Histogram resolution in seconds (default 0.001; 0.00001 for sub-ms targets).",
)
@_flag("-X", "--X", "method", default=None, help="HTTP method override.")
@_flag(
    "-json",
    "--json",
    "json_out",
    default=None,
    help="Write the JSON result to FILE, or - for stdout.",
)
@_flag(
    "--open-loop",
    "-open-loop",
    "open_loop",
    is_flag=True,
    help="Send at scheduled times whatever the responses do; latency from the scheduled time.",
)
@_flag(
    "-allow-initial-errors",
    "--allow-initial-errors",
    "allow_initial_errors",
    is_flag=True,
    help="Don't abort when the warm-up calls fail.",
)
@_flag("-nocatchup", "--nocatchup", "nocatchup", is_flag=True, help="Skip calls we are late for.")
@_flag("-labels", "--labels", "labels", default="", help="Labels stored in the result.")
@_flag(
    "--via",
    "-via",
    "via",
    type=click.Choice(["local", "mesh"]),
    default="local",
    show_default=True,
    help="mesh: send the load from the mesh's fortio pod (through the Kubernetes API, as"
    " `kubectl exec fortio-deploy -- fortio load` does), so sidecar rules apply and service"
    " names resolve; local: from this process.",
)
@_flag(
    "--kubeconfig",
    "kubeconfig",
    default=None,
    help="With --via mesh: the cluster's or embedded mesh's kubeconfig (default: KUBECONFIG,"
    " else .chaosmesh/kubeconfig, else ~/.kube/config).",
)
@_flag(
    "--fortio-ns",
    "fortio_ns",
    default="default",
    show_default=True,
    help="With --via mesh: namespace of the fortio Service/pod.",
)
@click.argument("url", required=False)
def run_command(
    c: str | None,
    qps: str | None,
    n: str | None,
    t: str | None,
    timeout: str | None,
    p: str | None,
    headers: tuple[str, ...],
    payload: str | None,
    resolution: str | None,
    method: str | None,
    json_out: str | None,
    open_loop: bool,
    allow_initial_errors: bool,
    nocatchup: bool,
    labels: str,
    via: str,
    kubeconfig: str | None,
    fortio_ns: str,
    url: str | None,
) -> None:
    """Load URL with fortio's semantics and print fortio's report.

    chaosmesh load [-c N] [-qps R] [-n N | -t D] [-timeout D] [-p LIST] [-H "k: v"]...
    [-payload S] [-json FILE|-] [--open-loop] URL
    """
    if not url:
        raise click.UsageError(
            "a URL to load is required, e.g. chaosmesh load -n 20 http://host:8000/get"
        )
    given = LoadInput(
        url=url,
        c=c,
        qps=qps,
        n=n,
        t=t,
        timeout=timeout,
        p=p,
        r=resolution,
        headers=list(headers),
        payload=payload,
        method=method,
        open_loop=open_loop,
        allow_initial_errors=allow_initial_errors,
        nocatchup=nocatchup,
        labels=labels,
    )
    try:
        options = normalize(given, COMMAND_LINE)
    except LoadError as exc:
        raise click.UsageError(str(exc)) from None
    if via == "mesh":
        result = _run_in_mesh(options, kubeconfig, fortio_ns)
    else:
        try:
            result = engine.run(options, _stop_on_interrupt())
        except engine.LoadTargetError as exc:
            raise click.ClickException(f"{exc} (no load was sent{_hint(options.url)})") from None
    report_stream = sys.stderr if json_out == "-" else sys.stdout
    report_stream.write(text_report(result))
    report_stream.flush()
    if json_out == "-":
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    elif json_out:
        Path(json_out).write_text(json.dumps(result, indent=2) + "\n")
        click.echo(
            f"Successfully wrote {Path(json_out).stat().st_size} bytes of Json data to {json_out}",
            err=True,
        )
    if result.get("error"):
        raise click.ClickException(f"{result.get('message')}: {result.get('exception')}")


def _hint(url: str) -> str:
    """For a bare service name (``http://httpbin:8000/``) that this machine cannot resolve."""
    host = parse_url(url).host
    if "." in host or host in ("localhost",) or ":" in host:
        return ""
    return "; a mesh service name resolves only inside the mesh: add --via mesh"


def _run_in_mesh(options: LoadOptions, kubeconfig: str | None, namespace: str) -> dict[str, Any]:
    """The run from the mesh's fortio, exactly as the ``fortio_load`` probe does it."""
    path = kubeconfig
    if path is None and not os.environ.get("KUBECONFIG"):
        local = StatePaths(Path(DEFAULT_STATE_DIR)).kubeconfig
        path = str(local) if local.exists() else None
    configuration = {"kubeconfig_path": path} if path else None
    try:
        api = api_client(configuration)
    except (KubeError, ValueError) as exc:
        raise click.ClickException(
            f"fortio_load {options.url}: no Kubernetes client: {exc}"
        ) from None
    try:
        return in_mesh.run_in_mesh(api, options, fortio=in_mesh.Fortio(namespace=namespace))
    except LoadError as exc:
        raise click.ClickException(f"fortio_load {options.url}: {exc}") from None
    finally:
        api.close()


def _stop_on_interrupt() -> StopToken:
    """Ctrl-C ends the run and still prints its results, as fortio does."""
    stop = StopToken()
    signal.signal(signal.SIGINT, lambda *_: stop.stop())
    return stop


@command.command("serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--port",
    "-port",
    default=0,
    type=int,
    show_default=True,
    help="Port for fortio's REST API (fortio uses 8080; 0 = a free port, printed at start).",
)
@click.option("--host", "-host", default="127.0.0.1", show_default=True)
@click.option(
    "--data-dir", "-data-dir", default=None, help="Where saved results go (/fortio/data/)."
)
def serve_command(port: int, host: str, data_dir: str | None) -> None:
    """Serve fortio's REST API (/fortio/rest/run, status, stop) until interrupted."""
    from ..load import rest

    args = ["--port", str(port), "--host", host]
    if data_dir:
        args += ["--data-dir", data_dir]
    raise SystemExit(rest.main(args))
