"""Entry point of one workload replica: ``python -m chaosmesh_ext.mesh.workloads KIND --port P``.

Started by :func:`chaosmesh_ext.mesh.workloads.launch`, one process per replica; the sidecar
environment (``CHAOSMESH_OUTBOUND``, ``CHAOSMESH_SOURCE``) comes from the parent.
"""

from __future__ import annotations

import argparse
import sys

from chaosmesh_ext._sidecar import Sidecar

from . import _http
from .spec import DEFAULT_PROXY_TIMEOUT, parse_upstream, split_command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chaosmesh_ext.mesh.workloads")
    parser.add_argument("kind", choices=["echo", "httpbin", "proxy", "command"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--deployment", default="workload")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--pod", default="workload-0")
    parser.add_argument("--version", default=None)
    parser.add_argument("--upstream", help="proxy: http://host:port[/base]")
    parser.add_argument("--timeout", type=float, default=DEFAULT_PROXY_TIMEOUT, help="proxy: s")
    parser.add_argument("--command", help="command: the program to run, shell-like quoting")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    name = f"{args.kind} {args.namespace}/{args.pod}"
    if args.kind == "echo":
        from .echo import Identity, make_handler

        identity = Identity(args.deployment, args.namespace, args.pod, args.version)
        _http.run(lambda: make_handler(identity), args.host, args.port, name)
    elif args.kind == "httpbin":
        from .httpbin_app import run

        run(args.host, args.port, name)
    elif args.kind == "proxy":
        from . import proxy

        if not args.upstream:
            print(f"{name}: --upstream is required", file=sys.stderr)
            return 2
        upstream = parse_upstream(args.upstream, "--upstream")
        sidecar = Sidecar.from_env()
        _http.run(
            lambda: proxy.make_handler(upstream, args.timeout, sidecar, f"proxy {args.deployment}"),
            args.host,
            args.port,
            name,
        )
    else:
        from .command import supervise

        if not args.command:
            print(f"{name}: --command is required", file=sys.stderr)
            return 2
        return supervise(split_command(args.command, "--command"), name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
