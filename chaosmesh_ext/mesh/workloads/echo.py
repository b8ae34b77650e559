"""The echo workload: a stand-in for any image the mesh cannot run (a canary app, tomcat).

``GET /`` (any path not listed below) answers who served it in one line,
``<deployment> <pod> version=<version>``, so a body regex can tell v1 from v2, or JSON with
``Accept: application/json`` or ``/json``. Every answer carries ``x-chaosmesh-workload``,
``x-chaosmesh-version`` and ``x-chaosmesh-pod``. For fault experiments it also speaks a bit of
httpbin: ``/status/N`` (``N``, ``a,b`` or ``a:w,b:w`` as httpbin picks), ``/delay/S`` (capped
at 10 s as httpbin does), ``/headers``, ``/get``, ``/anything`` (also shows method and body);
and ``/healthz``.
"""

from __future__ import annotations

import math

from ._http import HTTPError, Request, Response, text_response

TYPE_CHECKING = False  # no typing at run time: see _http's docstring
if TYPE_CHECKING:
    import random
    from collections.abc import Callable
    from typing import Any

    from ._http import Handler

MAX_DELAY = 10.0  # httpbin's cap


class Identity:
    """Who this replica is: what every answer reports."""

    __slots__ = ("deployment", "namespace", "pod", "version")

    def __init__(self, deployment: str, namespace: str, pod: str, version: str | None) -> None:
        self.deployment = deployment
        self.namespace = namespace
        self.pod = pod
        self.version = version

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("x-chaosmesh-workload", self.deployment),
            ("x-chaosmesh-version", self.version or ""),
            ("x-chaosmesh-pod", self.pod),
        ]

    def line(self) -> str:
        return f"{self.deployment} {self.pod} version={self.version or 'none'}"


def choose_status(codes: str, rng: Callable[[], random.Random]) -> int:
    """httpbin's ``/status/<codes>``: one code, a comma list (uniform) or ``code:weight`` list.

    ``rng`` is called only for a list, so a single code needs no random module.
    """
    choices: list[tuple[int, float]] = []
    try:
        for item in codes.split(","):
            code_text, _, weight_text = item.partition(":")
            choices.append((int(code_text), float(weight_text) if weight_text else 1.0))
    except ValueError:
        raise HTTPError(400, f"Invalid status code {codes!r}") from None
    for code, weight in choices:
        # 1xx is not a final answer, and a body-less final answer is all a client could see.
        if not 200 <= code <= 599 or weight < 0:
            raise HTTPError(400, f"Invalid status code {codes!r}")
    if len(choices) == 1:
        return choices[0][0]
    total = sum(weight for _, weight in choices)
    if total <= 0:
        raise HTTPError(400, f"Invalid status code {codes!r}: weights add up to 0")
    return rng().choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def httpbin_headers(request: Request) -> dict[str, str]:
    """Request headers as httpbin shows them: Title-Case names, repeated values comma-joined."""
    shown: dict[str, str] = {}
    for name, value in request.headers:
        key = "-".join(part.capitalize() for part in name.split("-"))
        shown[key] = f"{shown[key]},{value}" if key in shown else value
    return shown


def httpbin_args(query: str) -> dict[str, Any]:
    args: dict[str, Any] = {}
    from urllib.parse import parse_qsl  # on first use: see Echo

    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in args:
            args[key] = [*args[key], value] if isinstance(args[key], list) else [args[key], value]
        else:
            args[key] = value
    return args


class Echo:
    """The handler. json, random and urllib.parse load on the first request that needs them:
    a replica answering only ``GET /`` (the canary) never pays their ~1 MB of RSS."""

    def __init__(self, identity: Identity, rng: random.Random | None = None) -> None:
        self.identity = identity
        self._rng = rng

    def _random(self) -> random.Random:
        if self._rng is None:
            import random

            self._rng = random.Random()
        return self._rng

    def _json(self, status: int, payload: dict[str, Any]) -> Response:
        import json

        body = (json.dumps(payload, indent=2) + "\n").encode()
        headers = [("Content-Type", "application/json"), *self.identity.headers()]
        return Response(status, body, headers)

    def _get(self, request: Request) -> dict[str, Any]:
        host = request.header("host") or "localhost"
        return {
            "args": httpbin_args(request.query),
            "headers": httpbin_headers(request),
            "origin": request.peer,
            "url": f"http://{host}{request.target}",
        }

    def __call__(self, request: Request) -> Response:
        path = request.path
        try:
            if path == "/healthz":
                return text_response(200, "ok\n", self.identity.headers())
            if path.startswith("/status/"):
                status = choose_status(path[len("/status/") :], self._random)
                return Response(status, b"", self.identity.headers())
            if path.startswith("/delay/"):
                try:
                    seconds = float(path[len("/delay/") :])
                except ValueError:
                    seconds = math.nan
                if math.isnan(seconds):
                    raise HTTPError(400, f"Invalid delay {path[len('/delay/') :]!r}")
                # Returns early (ClientGone) if the caller hangs up meanwhile.
                request.wait(min(max(seconds, 0.0), MAX_DELAY))
                return self._json(200, self._get(request))
            if path == "/headers":
                return self._json(200, {"headers": httpbin_headers(request)})
            if path == "/get":
                return self._json(200, self._get(request))
            if path == "/anything" or path.startswith("/anything/"):
                shown = {**self._get(request), "method": request.method}
                shown["data"] = request.body.decode("utf-8", "replace")
                return self._json(200, shown)
        except HTTPError as exc:
            return text_response(exc.status, f"{exc}\n", self.identity.headers())
        wants_json = path == "/json" or "application/json" in (request.header("accept") or "")
        if wants_json:
            ident = self.identity
            return self._json(
                200,
                {
                    "deployment": ident.deployment,
                    "namespace": ident.namespace,
                    "pod": ident.pod,
                    "version": ident.version,
                    "method": request.method,
                    "path": path,
                },
            )
        # One line per answer, as simple canary images do: `curl` in a loop gives one line each.
        return text_response(200, self.identity.line() + "\n", self.identity.headers())


def make_handler(identity: Identity) -> Handler:
    return Echo(identity)
