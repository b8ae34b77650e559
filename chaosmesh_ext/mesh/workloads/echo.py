"""The echo workload: a stand-in for any image the mesh cannot run (a canary app, tomcat).

Any path not listed below answers 200 with who served it on the first line,
``<deployment> <pod> version=<version>`` (a body regex tells v1 from v2 on it), then the
request as this replica saw it in the field format of Istio's echo test app (``reflect``:
``Host=``, ``URL=``, ``Method=``, ``Proto=``, ``RequestHeader=``, ``Hostname=``,
``StatusCode=``...). As Istio's echo app, it obeys the query parameters ``codes=200:9,503:1``
(answer one of these codes, weighted), ``delay=1.5s`` (a Go duration, up to an hour) and
``headers=name:value,...`` (response headers). ``Accept: application/json`` or ``/json``
gives the same as JSON. Every answer carries ``x-chaosmesh-workload``, ``x-chaosmesh-version``
and ``x-chaosmesh-pod``. For fault experiments it also speaks a bit of httpbin:
``/status/N`` (``N``, ``a,b`` or ``a:w,b:w`` as httpbin picks), ``/delay/S`` (capped at 10 s
as httpbin does), ``/headers``, ``/get``, ``/anything`` (also shows method and body); and
``/healthz``.
"""

from __future__ import annotations

import math

from ._http import HTTPError, Request, Response, text_response
from .reflect import Identity, canonical_header, request_lines

TYPE_CHECKING = False  # no typing at run time: see _http's docstring
if TYPE_CHECKING:
    import random
    from collections.abc import Callable
    from typing import Any

    from ._http import Handler

__all__ = ["Echo", "Identity", "make_handler"]

MAX_DELAY = 10.0  # httpbin's cap
MAX_QUERY_DELAY = 3600.0  # ?delay= (Istio's echo app has no cap; an hour bounds a request)
# Go's time.ParseDuration units, in seconds.
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0,
             "m": 60.0, "h": 3600.0}  # fmt: skip


def go_duration(text: str) -> float:
    """Seconds in a Go duration (``300ms``, ``1.5s``, ``1m30s``); ``ValueError`` otherwise."""
    rest = text.strip()
    if rest in ("0", "+0", "-0"):
        return 0.0
    sign = -1.0 if rest.startswith("-") else 1.0
    rest = rest.lstrip("+-")
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    while rest:
        digits = 0
        while digits < len(rest) and (rest[digits].isdigit() or rest[digits] == "."):
            digits += 1
        units = digits
        while units < len(rest) and not (rest[units].isdigit() or rest[units] == "."):
            units += 1
        number, unit = rest[:digits], rest[digits:units]
        if not number or number == "." or unit not in _GO_UNITS:
            raise ValueError(f"invalid duration {text!r}")
        total += float(number) * _GO_UNITS[unit]
        rest = rest[units:]
    return sign * total


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
        return self._reflect(request)

    def _istio_controls(self, request: Request) -> tuple[int, list[tuple[str, str]], list[str]]:
        """Istio's echo query parameters: status, extra response headers, error lines."""
        if not request.query:
            return 200, [], []
        from urllib.parse import parse_qs  # on first use: see Echo

        form = parse_qs(request.query, keep_blank_values=True)
        status = 200
        headers: list[tuple[str, str]] = []
        errors: list[str] = []
        codes = (form.get("codes") or [""])[0]
        if codes:
            try:
                status = choose_status(codes, self._random)
            except HTTPError as exc:
                status = 400  # as Istio's echo app: 400, and the reason in the body
                errors.append(f"codes error: {exc}")
        for item in filter(None, (form.get("headers") or [""])[0].split(",")):
            name, sep, value = item.partition(":")
            if not sep or ":" in value or not name:
                errors.append(f"response headers error: invalid {item!r} (want name:value)")
                break
            headers.append((name, value))
        delay = (form.get("delay") or [""])[0]
        if delay:
            try:
                seconds = go_duration(delay)
                if not 0 <= seconds <= MAX_QUERY_DELAY:
                    raise ValueError(f"delay {delay!r} is not within 0s..1h")
            except ValueError as exc:
                errors.append(f"error delaying response error: {exc}")
            else:
                request.wait(seconds)  # ClientGone if the caller hangs up meanwhile
        return status, headers, errors

    def _reflect(self, request: Request) -> Response:
        status, extra, errors = self._istio_controls(request)
        lines = request_lines(self.identity, request, status)
        wants_json = request.path == "/json" or "application/json" in (
            request.header("accept") or ""
        )
        if wants_json:
            ident = self.identity
            shown: dict[str, str] = {}
            for name, value in request.headers:
                key = canonical_header(name)
                shown[key] = f"{shown[key]},{value}" if key in shown else value
            response = self._json(
                status,
                {
                    "deployment": ident.deployment,
                    "namespace": ident.namespace,
                    "pod": ident.pod,
                    "version": ident.version,
                    "method": request.method,
                    "path": request.path,
                    "url": request.target,
                    "host": request.header("host"),
                    "proto": request.version,
                    "headers": shown,
                    "errors": errors,
                },
            )
            response.headers += extra
            return response
        # The identity line first: `curl ... | head -n1` in a loop counts versions as a
        # one-line canary image's answers do; the echo fields follow it.
        text = "\n".join([lines[0], *errors, *lines[1:]]) + "\n"
        return text_response(status, text, [*self.identity.headers(), *extra])


def make_handler(identity: Identity) -> Handler:
    return Echo(identity)
