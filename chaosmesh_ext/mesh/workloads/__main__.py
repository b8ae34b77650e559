"""Entry point of one workload replica: ``python -m chaosmesh_ext.mesh.workloads KIND --port P``,
or of a replica host serving many: ``python -m chaosmesh_ext.mesh.workloads host`` (echo and
proxy replicas, ``host``), ``... host fortio`` (``fortio_replica``) or ``... host httpbin``
(``httpbin_replica``).

Started by :func:`chaosmesh_ext.mesh.workloads.launch`, one process per replica, or by
``hosting.ReplicaHosts``; the sidecar environment (``CHAOSMESH_OUTBOUND``,
``CHAOSMESH_SOURCE``) comes from the parent, or from each replica's order to its host. Imports stay
inside the branch of each kind: a replica pays only for the modules its kind needs.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from ._http import Handler

# nginx's proxy_read_timeout default (spec.DEFAULT_PROXY_TIMEOUT, which the launcher always
# passes); repeated here so an echo replica need not import spec and its dependencies.
DEFAULT_PROXY_TIMEOUT = 60.0
KINDS = ("echo", "httpbin", "proxy", "command")
# The kinds a replica host (``host``) serves, many replicas to a process.
HOSTED_KINDS = ("echo", "proxy")
USAGE = (
    "usage: python -m chaosmesh_ext.mesh.workloads {echo,httpbin,proxy,command} --port PORT\n"
    "       [--host HOST] [--deployment NAME] [--namespace NS] [--pod POD] [--version V]\n"
    "       [--upstream http://host:port[/base][,...]] [--timeout SECONDS] [--command PROGRAM]\n"
    "       [--grace SECONDS]\n"
    "       [--capacity workers=N,service=DURATION[,jitter=P%][,queue=N]]\n"
)


class Args:
    """The parsed command line. Not argparse: it pulls in shutil, bz2, lzma, gettext and re
    (~1.5 MB of RSS in every replica) for a fixed list of options the launcher writes."""

    def __init__(self) -> None:
        self.kind = ""
        self.port = 0
        self.host = "127.0.0.1"
        self.deployment = "workload"
        self.namespace = "default"
        self.pod = "workload-0"
        self.version: str | None = None
        self.upstream: str | None = None
        self.timeout = DEFAULT_PROXY_TIMEOUT
        self.grace: float | None = None
        self.command: str | None = None
        self.capacity: str | None = None


_STRINGS = ("host", "deployment", "namespace", "pod", "version", "upstream", "command", "capacity")


def _usage_error(message: str) -> SystemExit:
    sys.stderr.write(f"{USAGE}python -m chaosmesh_ext.mesh.workloads: error: {message}\n")
    return SystemExit(2)


def parse_args(argv: list[str], kinds: tuple[str, ...] = KINDS) -> Args:
    """``KIND --port P [--option VALUE | --option=VALUE ...]``, KIND one of ``kinds``; exit 2
    on a bad line."""
    args = Args()
    kind: str | None = None
    port: str | None = None
    rest = list(argv)
    while rest:
        token = rest.pop(0)
        if token in ("-h", "--help"):
            sys.stdout.write(USAGE)
            raise SystemExit(0)
        if not token.startswith("--"):
            if kind is not None:
                raise _usage_error(f"unrecognized argument {token!r}")
            kind = token
            continue
        option, sep, value = token[2:].partition("=")
        if not sep:
            if not rest:
                raise _usage_error(f"--{option}: expected a value")
            value = rest.pop(0)
        if option == "port":
            port = value
        elif option in ("timeout", "grace"):
            try:
                setattr(args, option, float(value))
            except ValueError:
                raise _usage_error(f"--{option}: not a number of seconds: {value!r}") from None
        elif option in _STRINGS:
            setattr(args, option, value)
        else:
            raise _usage_error(f"unrecognized argument --{option}")
    if kind not in kinds:
        raise _usage_error(f"KIND: expected one of {', '.join(kinds)}, got {kind!r}")
    if port is None:
        raise _usage_error("--port is required")
    try:
        args.port = int(port)
    except ValueError:
        raise _usage_error(f"--port: not a whole number: {port!r}") from None
    args.kind = kind
    return args


def _limited(handler: Handler, args: Args) -> Handler:
    """``handler`` behind the replica's capacity limit (``--capacity``), if it has one."""
    if not args.capacity:
        return handler
    from .capacity import limit_handler, parse_capacity

    return limit_handler(handler, parse_capacity(args.capacity, "--capacity"))


def build_handler(args: Args, environ: dict[str, str] | None = None) -> Handler:
    """The request handler of an echo or proxy replica (behind its capacity limit), as its
    own process or a replica host serves it; ``environ`` holds its sidecar variables (the
    process environment when None). ``ValueError`` for a bad ``--upstream``."""
    from .reflect import Identity

    identity = Identity(args.deployment, args.namespace, args.pod, args.version)
    if args.kind == "echo":
        from .echo import make_handler

        return _limited(make_handler(identity), args)
    from chaosmesh_ext._sidecar import Sidecar

    from . import proxy
    from .upstream import parse_upstreams

    if not args.upstream:
        raise ValueError("--upstream is required")
    upstreams = parse_upstreams(args.upstream, "--upstream")
    handler = proxy.make_handler(upstreams, args.timeout, Sidecar.from_env(environ), identity)
    return _limited(handler, args)


def _hosted(argv: list[str], environ: dict[str, str], holder: int) -> tuple[Args, Handler]:
    """One replica of a replica host: its parsed command line and its handler."""
    args = parse_args(argv)
    if args.kind not in HOSTED_KINDS:
        raise ValueError(f"a replica host serves {' and '.join(HOSTED_KINDS)}, not {args.kind}")
    return args, build_handler(args, environ)


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["host"]:
        from .host import serve_forever

        if given[1:] == ["fortio"]:
            from .fortio_replica import build, route_run_logs

            route_run_logs()
            return serve_forever(build)
        if given[1:] == ["httpbin"]:
            from .httpbin_replica import build as build_httpbin
            from .httpbin_replica import route_logs

            route_logs()
            return serve_forever(build_httpbin)
        return serve_forever(_hosted)
    args = parse_args(given)
    name = f"{args.kind} {args.namespace}/{args.pod}"
    if args.kind in ("echo", "proxy"):
        from ._http import run as serve

        try:
            handler = build_handler(args)
        except ValueError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        serve(handler, args.host, args.port, name)
    elif args.kind == "httpbin":
        from .httpbin_app import run

        capacity = None
        if args.capacity:
            from .capacity import parse_capacity

            capacity = parse_capacity(args.capacity, "--capacity")
        run(args.host, args.port, name, capacity)
    else:
        from .command import supervise
        from .spec import split_command

        if not args.command:
            print(f"{name}: --command is required", file=sys.stderr)
            return 2
        argv = split_command(args.command, "--command")
        if args.grace is None:
            return supervise(argv, name)
        return supervise(argv, name, args.grace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
