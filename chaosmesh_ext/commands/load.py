"""``chaosmesh load``: fortio's ``load`` command line on our engine, and ``load serve``.

Every flag of ``fortio load`` is read with fortio's syntax (``-loglevel Warning``,
``-qps=0``, ``--c 2``; see ``load.fortio_flags``): supported, accepted with a warning that it
has no effect here, or refused with the reason. Bad input is refused before any traffic, with
the flag named.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import KubeError, LoadError
from ..kube.client import api_client
from ..load import engine, in_mesh
from ..load.fortio_flags import (
    FLAGS,
    NO_EFFECT,
    REFUSED,
    SUPPORTED,
    Extension,
    load_input,
    parse_command_line,
)
from ..load.options import (
    COMMAND_LINE,
    LoadInput,
    LoadOptionError,
    LoadOptions,
    normalize,
    parse_int,
    parse_url,
)
from ..load.periodic import StopToken
from ..load.report import text_report


class _LoadOrServe(click.Group):
    """``load serve ...`` runs the REST server; anything else is a load run."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("load", cls=_LoadOrServe, context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """fortio-compatible load: `chaosmesh load [flags] URL`, or `chaosmesh load serve`."""


# chaosmesh's own flags (one or two dashes, like fortio's).
EXTENSIONS = (
    Extension(
        "via",
        False,
        "mesh: send the load from the mesh's fortio pod (through the Kubernetes API, as"
        " `kubectl exec fortio-deploy -- fortio load` does), so sidecar rules apply and service"
        " names resolve; local (default): from this process",
    ),
    Extension(
        "kubeconfig",
        False,
        "with -via mesh: the kubeconfig (default as chaostoolkit-kubernetes: KUBECONFIG, else"
        ' ~/.kube/config; for the embedded mesh: eval "$(chaosmesh mesh env)")',
    ),
    Extension("fortio-ns", False, "with -via mesh: namespace of the fortio Service/pod (default)"),
    Extension(
        "open-loop",
        True,
        "send at scheduled times whatever the responses do; latency from the scheduled time",
    ),
)

# fortio.org/log's levels, as -loglevel takes them (any case).
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "verbose": logging.DEBUG + 5,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
_LETTERS = {logging.DEBUG: "D", logging.DEBUG + 5: "V", logging.INFO: "I", logging.WARNING: "W"}


class _RunCommand(click.Command):
    """``chaosmesh load [flags] URL``: fortio's flag syntax, parsed by ``fortio_flags``.

    click would read ``-loglevel`` as ``-l -o -g ...``; Go's ``flag`` package, which fortio
    uses, reads it as one word. So click hands the arguments over untouched.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.params["argv"] = tuple(args)
        return []

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage("chaosmesh load", "[flags] URL   (or: chaosmesh load serve)")


@command.command("run", cls=_RunCommand, add_help_option=False)
def run_command(argv: tuple[str, ...]) -> None:
    """Load URL with fortio's flags and semantics, and print fortio's report."""
    try:
        parsed = parse_command_line(argv, EXTENSIONS)
    except LoadOptionError as exc:
        raise click.UsageError(str(exc)) from None
    if parsed.help:
        click.echo(usage_text())
        return
    if not parsed.args:
        raise click.UsageError(
            "a URL to load is required, e.g. chaosmesh load -n 20 http://host:8000/get"
        )
    if len(parsed.args) > 1:
        raise click.UsageError(
            f"one URL expected, got {len(parsed.args)}: {' '.join(parsed.args)} (a typo in a flag?)"
        )
    values = dict(parsed.values)
    via = str(values.pop("via", "local"))
    kubeconfig = values.pop("kubeconfig", None)
    fortio_ns = str(values.pop("fortio-ns", "default"))
    open_loop = bool(values.pop("open-loop", False))
    if via not in ("local", "mesh"):
        raise click.UsageError(f"-via: expected local or mesh, got {via!r}")
    url = parsed.args[0]
    # -log-errors is on by default on fortio's command line.
    base = LoadInput(url=url, open_loop=open_loop, log_errors=True)
    try:
        flags = load_input(url, values, base=base)
        output = _Output.from_flags(flags.output)
        options = normalize(flags.given, COMMAND_LINE)
    except LoadError as exc:
        raise click.UsageError(str(exc)) from None
    logger = _fortio_logger(output.level)
    for note in flags.ignored:
        logger.warning("%s", note)
    if via == "mesh":
        result = _run_in_mesh(options, str(kubeconfig) if kubeconfig else None, fortio_ns)
    else:
        progress = _progress_line(logger) if sys.stderr.isatty() else None
        try:
            result = engine.run(options, _stop_on_interrupt(), output.run_id, progress=progress)
        except LoadError as exc:
            hint = _hint(options.url) if isinstance(exc, engine.LoadTargetError) else ""
            raise click.ClickException(f"{exc} (no load was sent{hint})") from None
    _write_outputs(result, output)
    if result.get("error"):
        raise click.ClickException(f"{result.get('message')}: {result.get('exception')}")


@dataclass(frozen=True)
class _Output:
    """Where the result goes and how talkative the run is (fortio's output flags)."""

    json_path: str | None
    auto_save: bool
    data_dir: str
    level: int
    run_id: int

    @classmethod
    def from_flags(cls, values: dict[str, object]) -> _Output:
        level_name = str(values.get("loglevel") or "info")
        level = LOG_LEVELS.get(level_name.strip().lower())
        if level is None:
            raise LoadOptionError(
                "-loglevel",
                f"unknown level {level_name!r} (Debug, Verbose, Info, Warning, Error, Critical,"
                " Fatal)",
            )
        if values.get("quiet"):
            level = max(level, logging.ERROR)
        run_id = parse_int(str(values.get("runid") or 0), "-runid")
        return cls(
            json_path=str(values["json"]) if values.get("json") else None,
            auto_save=bool(values.get("a")),
            data_dir=str(values.get("data-dir") or "."),
            level=level,
            run_id=run_id,
        )


def _write_outputs(result: dict[str, Any], output: _Output) -> None:
    """The text report, then the JSON where -json / -a asked for it, as fortio does."""
    json_out = output.json_path
    report_stream = sys.stderr if json_out == "-" else sys.stdout
    report_stream.write(text_report(result))
    report_stream.flush()
    if json_out == "-":
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    if not json_out and output.auto_save:
        json_out = str(Path(output.data_dir) / f"{result.get('ID') or 'result'}.json")
    if json_out:
        data = json.dumps(result, indent=2) + "\n"
        try:
            Path(json_out).write_text(data)
        except OSError as exc:
            raise click.ClickException(f"cannot write {json_out}: {exc.strerror}") from None
        click.echo(f"Successfully wrote {len(data)} bytes of Json data to {json_out}", err=True)


def _fortio_logger(level: int) -> logging.Logger:
    """The engine's logger on stderr at ``-loglevel``, lines like fortio's ``15:04:05 W ...``."""
    logger = logging.getLogger("chaosmesh_ext.load")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FortioFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return logger


class _FortioFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        letter = _LETTERS.get(record.levelno, record.levelname[:1])
        return f"{stamp} {letter} {record.getMessage()}"


def _progress_line(logger: logging.Logger) -> engine.ProgressCallback | None:
    """A progress line every few seconds on a terminal, at -loglevel Info or more."""
    if not logger.isEnabledFor(logging.INFO):
        return None

    def show(p: engine.Progress) -> None:
        if p.planned_calls:
            done = f"{p.calls}/{p.planned_calls} calls"
        elif p.planned_seconds > 0:
            done = f"{p.elapsed:.0f}s/{p.planned_seconds:g}s, {p.calls} calls"
        else:
            done = f"{p.elapsed:.0f}s, {p.calls} calls"
        rate = p.calls / p.elapsed if p.elapsed > 0 else 0.0
        errors = (
            f"{p.errors} errors ({100.0 * p.errors / p.calls:.1f} %)" if p.calls else "0 errors"
        )
        logger.info("Progress: %s, %.1f qps, %s", done, rate, errors)

    return show


def usage_text() -> str:
    """``chaosmesh load -h``: fortio's flags as this engine takes them."""
    lines = [
        "Usage: chaosmesh load [flags] URL   (or: chaosmesh load serve)",
        "",
        "fortio load's flags, with fortio's syntax (-flag value, -flag=value, one or two dashes).",
        "",
        "Flags:",
    ]
    for flag in FLAGS.values():
        if flag.support == SUPPORTED:
            default = f" (default {flag.default})" if flag.default else ""
            lines.append(f"  -{flag.name:<22} {flag.text}{default}")
    lines += ["", "chaosmesh flags:"]
    for ext in EXTENSIONS:
        lines.append(f"  -{ext.name:<22} {ext.text}")
    ignored = sorted(f.name for f in FLAGS.values() if f.support == NO_EFFECT)
    refused = sorted(f.name for f in FLAGS.values() if f.support == REFUSED)
    lines += [
        "",
        "Accepted with no effect here (a warning says why): " + ", ".join(f"-{n}" for n in ignored),
        "Refused (with the reason): " + ", ".join(f"-{n}" for n in refused),
        "Every flag, and why: docs/FORTIO-FLAGS.md",
    ]
    return "\n".join(lines)


def _hint(url: str) -> str:
    """For a bare service name (``http://httpbin:8000/``) that this machine cannot resolve."""
    host = parse_url(url).host
    if "." in host or host in ("localhost",) or ":" in host:
        return ""
    return "; a mesh service name resolves only inside the mesh: add --via mesh"


def _run_in_mesh(options: LoadOptions, kubeconfig: str | None, namespace: str) -> dict[str, Any]:
    """The run from the mesh's fortio, exactly as the ``fortio_load`` probe does it, with the
    activities' kubeconfig lookup (``kube.client.api_client``)."""
    configuration = {"kubeconfig_path": kubeconfig} if kubeconfig else None
    try:
        api = api_client(configuration)
    except (KubeError, ValueError) as exc:
        raise click.ClickException(
            f"fortio_load {options.url}: no Kubernetes client: {exc}"
            ' (for the embedded mesh: eval "$(chaosmesh mesh env)", or -kubeconfig)'
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
    "--data-dir",
    "-data-dir",
    default=None,
    help="Where saved results go (/fortio/data/); default: a temporary directory, removed on exit.",
)
def serve_command(port: int, host: str, data_dir: str | None) -> None:
    """Serve fortio's REST API (/fortio/rest/run, status, stop) until interrupted."""
    from ..load import rest

    args = ["--port", str(port), "--host", host]
    if data_dir:
        args += ["--data-dir", data_dir]
    raise SystemExit(rest.main(args))
