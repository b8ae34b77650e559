"""Load-run options with fortio's names and defaults: one way in, as fortio's ``Normalize()``.

The command line (``chaosmesh load``), the REST server (``/fortio/rest/run``) and the probes
all describe a run the way a user writes it — a :class:`LoadInput` of text or numbers — and
turn it into :class:`LoadOptions` with :func:`normalize`, under the :class:`InputRules` of
their front end (how it names options, and which of fortio's rules apply to its input).

Everything a user can get wrong is caught there, before a single byte is sent, with a message
naming the option (``-c``, ``qps``, ...) and the bad value; :func:`validate` checks a built
:class:`LoadOptions` once more.
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeGuard
from urllib.parse import urlsplit

from chaosmesh_ext.errors import LoadError

from .._sidecar import Sidecar
from .stats import parse_percentiles

DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 75.0, 90.0, 99.0, 99.9)
DEFAULT_QPS = 8.0
DEFAULT_CONNECTIONS = 4
DEFAULT_DURATION = 5.0
DEFAULT_TIMEOUT = 3.0
DEFAULT_RESOLUTION = 0.001
# Open loop opens connections on demand, up to rate x timeout; this caps file descriptors.
MAX_OPEN_LOOP_CONNECTIONS = 512


class LoadOptionError(LoadError, ValueError):
    """A load option is invalid; ``.option`` names it as the user wrote it (``-c``, ``-qps``)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.reason = message


@dataclass
class LoadOptions:
    """One load run. ``qps <= 0`` is max speed; ``exactly > 0`` wins over ``duration``;
    ``duration <= 0`` runs until stopped (REST ``t=on``)."""

    url: str
    connections: int = DEFAULT_CONNECTIONS
    qps: float = DEFAULT_QPS
    exactly: int = 0
    duration: float = DEFAULT_DURATION
    timeout: float = DEFAULT_TIMEOUT
    percentiles: list[float] = field(default_factory=lambda: list(DEFAULT_PERCENTILES))
    resolution: float = DEFAULT_RESOLUTION
    headers: list[tuple[str, str]] = field(default_factory=list)
    payload: bytes | None = None
    method: str | None = None
    open_loop: bool = False
    max_connections: int | None = None
    allow_initial_errors: bool = False
    nocatchup: bool = False
    jitter: bool = False
    uniform: bool = False
    labels: str = ""
    # Extension (not in fortio): classify each response by a body regex or a header value.
    classify_regex: str | None = None
    classify_header: str | None = None
    sidecar: Sidecar | None = None
    # fortio's HTTP client options (-keepalive, -halfclose, -http1.0, -k, -resolve, ...).
    abort_on: int | None = None  # stop the run at the first answer with this code (-1: socket)
    keepalive: bool = True
    half_close: bool = False
    http10: bool = False
    insecure: bool = False
    resolve: str | None = None  # connect to this IP, keeping the URL's host in Host and SNI
    unix_socket: str | None = None
    ca_cert: str | None = None
    cert: str | None = None
    key: str | None = None
    sequential_warmup: bool = False
    reuse_range: tuple[int, int] | None = None  # (min, max) calls per connection, then a new one
    offset: float = 0.0  # histogram offset in seconds (-offset)
    log_errors: bool = False  # log every non-OK answer at warning level, as fortio's -log-errors

    @property
    def effective_method(self) -> str:
        if self.method:
            return self.method.upper()
        return "POST" if self.payload else "GET"


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int, option: str = "duration") -> float:
    """A Go duration (``"5s"``, ``"1m30s"``, ``"100ms"``) or a number of seconds -> seconds."""
    if isinstance(text, bool):
        raise LoadOptionError(option, f"expected a duration such as 5s, got {text!r}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        s = text.strip()
        try:
            value = float(s)
        except ValueError:
            pos, value = 0, 0.0
            sign = 1.0
            if s[:1] in "+-" and s:
                sign = -1.0 if s[0] == "-" else 1.0
                pos = 1
            if pos >= len(s):
                raise LoadOptionError(
                    option, f"expected a duration such as 5s, got {text!r}"
                ) from None
            while pos < len(s):
                m = _DURATION_PART.match(s, pos)
                if not m:
                    raise LoadOptionError(
                        option, f"expected a duration such as 5s or 100ms, got {text!r}"
                    ) from None
                value += float(m.group(1)) * _UNITS[m.group(2)]
                pos = m.end()
            value *= sign
    if not math.isfinite(value):
        raise LoadOptionError(option, f"must be a finite duration, got {text!r}")
    return value


def parse_number(text: str | float | int, option: str) -> float:
    """A number from a flag or a REST parameter, with an error naming the flag."""
    if isinstance(text, bool):
        raise LoadOptionError(option, f"must be a number, got {text!r}")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise LoadOptionError(option, f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise LoadOptionError(option, f"must be a finite number, got {text!r}")
    return value


def parse_int(text: str | float | int, option: str) -> int:
    value = parse_number(text, option)
    if value != int(value):
        raise LoadOptionError(option, f"must be a whole number, got {text!r}")
    return int(value)


def parse_header(text: str) -> tuple[str, str]:
    """A ``-H "Name: value"`` header."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
        raise LoadOptionError("-H", f"expected 'Name: value', got {text!r}")
    if "\r" in value or "\n" in value:
        raise LoadOptionError("-H", f"header {name} has a line break in its value")
    return name, value.strip()


@dataclass(frozen=True)
class ParsedURL:
    """The parts of a load target the HTTP client needs."""

    scheme: str
    host: str
    port: int
    path: str  # path plus query, never empty
    host_header: str


def parse_url(url: str) -> ParsedURL:
    """Split an ``http://`` or ``https://`` URL, or raise :class:`LoadOptionError` naming it."""
    if not isinstance(url, str) or not url.strip():
        raise LoadOptionError("url", "a target URL is required")
    raw = url.strip()
    if "://" not in raw:
        # fortio accepts a bare host[:port]/path and assumes http://
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise LoadOptionError("url", f"malformed URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise LoadOptionError(
            "url", f"unsupported scheme {parts.scheme!r} in {url!r} (use http or https)"
        )
    host = parts.hostname
    if not host or any(c.isspace() for c in raw):
        raise LoadOptionError("url", f"malformed URL {url!r}: no host")
    default_port = 443 if parts.scheme == "https" else 80
    port = port or default_port
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    netloc_host = f"[{host}]" if ":" in host else host
    host_header = netloc_host if port == default_port else f"{netloc_host}:{port}"
    return ParsedURL(parts.scheme, host, port, path, host_header)


def validate(options: LoadOptions) -> LoadOptions:
    """Check every option; raise :class:`LoadOptionError` naming the first bad one."""
    parse_url(options.url)
    if not isinstance(options.connections, int) or options.connections < 1:
        raise LoadOptionError(
            "-c", f"number of connections must be at least 1, got {options.connections!r}"
        )
    if options.connections > 10000:
        raise LoadOptionError("-c", f"at most 10000 connections, got {options.connections}")
    if not math.isfinite(options.qps):
        raise LoadOptionError("-qps", f"must be a finite number, got {options.qps!r}")
    if options.exactly < 0:
        raise LoadOptionError(
            "-n", f"must be 0 (use -t) or a positive number of calls, got {options.exactly}"
        )
    if options.timeout <= 0:
        raise LoadOptionError("-timeout", f"must be > 0, got {options.timeout}")
    if options.resolution <= 0:
        raise LoadOptionError("-r", f"resolution must be > 0, got {options.resolution}")
    for p in options.percentiles:
        if not 0 <= p <= 100:
            raise LoadOptionError("-p", f"percentile {p} must be between 0 and 100")
    if options.open_loop:
        if options.qps <= 0:
            raise LoadOptionError(
                "--open-loop",
                "needs a fixed rate: give -qps > 0 (open loop sends at scheduled times)",
            )
        if options.exactly == 0 and options.duration <= 0:
            raise LoadOptionError("--open-loop", "needs -n or a -t greater than 0")
    if options.max_connections is not None and options.max_connections < 1:
        raise LoadOptionError(
            "max_connections", f"must be at least 1, got {options.max_connections}"
        )
    if options.classify_regex is not None:
        try:
            re.compile(options.classify_regex)
        except re.error as exc:
            raise LoadOptionError(
                "classify", f"bad regex {options.classify_regex!r}: {exc}"
            ) from None
    for name, value in options.headers:
        parse_header(f"{name}: {value}")
    if options.reuse_range is not None and not 0 < options.reuse_range[0] <= options.reuse_range[1]:
        raise LoadOptionError(
            "-connection-reuse", f"must be positive calls per connection, got {options.reuse_range}"
        )
    if (options.cert is None) != (options.key is None):
        raise LoadOptionError("-cert/-key", "a client certificate needs both -cert and -key")
    return options


@dataclass(frozen=True, kw_only=True)
class InputRules:
    """How one front end names the options, and which of fortio's input rules apply to it."""

    prefix: str  # "-" for command-line flags (-qps), "" for REST parameters and arguments
    # fortio's REST API: a missing or 0 qps means 8 and 0 connections means 4; n and t may
    # both be given (n wins); t=on runs until stopped. Elsewhere qps <= 0 is max speed.
    rest: bool
    # Whether a run may go on until stopped (t=0 on the command line, t=on in REST); an
    # activity must end on its own, so its t must be > 0.
    until_stopped: bool
    # Join a base URL and a path written as "${base}/path" (see join_base_and_path): an
    # experiment's URL is built by substitution; a command line is sent as typed, as fortio.
    join_path: bool = False


COMMAND_LINE = InputRules(prefix="-", rest=False, until_stopped=True)
REST = InputRules(prefix="", rest=True, until_stopped=True)
ACTIVITY = InputRules(prefix="", rest=False, until_stopped=False, join_path=True)


def join_base_and_path(url: str) -> str:
    """``http://host:port//path`` -> ``http://host:port/path``.

    An experiment writes ``"${gateway_url}/productpage"``; a base URL that ends with ``/``
    (``http://127.0.0.1:PORT/``) then gives a path starting with ``//``, which a server reads
    as another path (404). Only the slashes right after the host are joined; the rest of the
    path and the query are kept as written.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    if not slash or not path.startswith("/"):
        return url
    return f"{scheme}://{host}/{path.lstrip('/')}"

Scalar = str | float | int


@dataclass(kw_only=True)
class LoadInput:
    """A run as a user writes it, with fortio's option names; ``None`` (or "") = not given."""

    url: str
    c: Scalar | None = None
    qps: Scalar | None = None
    n: Scalar | None = None
    t: Scalar | None = None
    timeout: Scalar | None = None
    p: str | None = None  # percentiles, "50,90,99"
    r: Scalar | None = None  # histogram resolution in seconds
    headers: Mapping[str, str] | Sequence[str] | None = None
    payload: str | bytes | None = None
    method: str | None = None
    open_loop: bool = False
    allow_initial_errors: bool = False
    nocatchup: bool = False
    jitter: bool = False
    uniform: bool = False
    labels: str = ""
    classify_regex: str | None = None
    classify_header: str | None = None
    sidecar: Sidecar | None = None
    # fortio's other run flags, by their Python names (see ``fortio_flags`` for the mapping).
    abort_on: Scalar | None = None
    keepalive: bool = True
    half_close: bool = False
    http10: bool = False
    insecure: bool = False
    resolve: str | None = None
    unix_socket: str | None = None
    ca_cert: str | None = None
    cert: str | None = None
    key: str | None = None
    user: str | None = None  # "user:password" -> Authorization: Basic
    content_type: str | None = None  # Content-Type, and POST unless -X says otherwise
    payload_size: Scalar | None = None  # random bytes, replaces payload
    payload_file: str | None = None  # file contents, replaces payload and payload_size
    sequential_warmup: bool = False
    connection_reuse: str | None = None  # "min:max" or "n"
    offset: Scalar | None = None
    calc_qps: bool = False  # qps = n / t, then the run is n calls
    log_errors: bool = False


def _given(value: Scalar | None) -> TypeGuard[Scalar]:
    """Whether an option was given: not None and, for text, not blank."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def header_list(headers: Mapping[str, str] | Sequence[str] | None) -> list[tuple[str, str]]:
    """``{"Name": "value"}`` or ``["Name: value", ...]`` -> checked ``(name, value)`` pairs."""
    if not headers:
        return []
    if isinstance(headers, Mapping):
        return [parse_header(f"{k}: {v}") for k, v in headers.items()]
    if isinstance(headers, str):
        return [parse_header(headers)]
    return [parse_header(str(h)) for h in headers]


def _duration(given: LoadInput, rules: InputRules) -> float:
    name = rules.prefix + "t"
    if not _given(given.t):
        return DEFAULT_DURATION
    if rules.rest and str(given.t).strip() == "on":
        return -1.0
    duration = parse_duration(given.t, name)
    if not rules.until_stopped:
        if duration <= 0:
            raise LoadOptionError(name, f"must be greater than 0, got {given.t}")
    elif duration < 0:
        raise LoadOptionError(name, f"must not be negative, got {given.t}")
    # t=0 on the command line runs until interrupted (Ctrl-C), as fortio's -t 0.
    return -1.0 if duration == 0 else duration


def _payload(given: LoadInput, pre: str) -> bytes | None:
    """fortio's ``GeneratePayload``: a file wins over a random size, which wins over text."""
    if given.payload_file:
        try:
            with open(given.payload_file, "rb") as handle:
                return handle.read() or None
        except OSError as exc:
            raise LoadOptionError(
                pre + "payload-file", f"cannot read {given.payload_file}: {exc.strerror}"
            ) from None
    if _given(given.payload_size):
        size = parse_int(given.payload_size, pre + "payload-size")
        if size < 0:
            raise LoadOptionError(pre + "payload-size", f"must not be negative, got {size}")
        if size > 0:
            return os.urandom(size)
    payload = given.payload.encode() if isinstance(given.payload, str) else given.payload
    return payload or None


def _extra_headers(given: LoadInput, pre: str) -> list[tuple[str, str]]:
    """``-user`` as Basic credentials and ``-content-type``, as fortio adds them."""
    extra: list[tuple[str, str]] = []
    if given.user:
        if ":" not in given.user:
            raise LoadOptionError(
                pre + "user", f"invalid user credentials {given.user!r}, expecting user:password"
            )
        token = base64.b64encode(given.user.encode()).decode()
        extra.append(("Authorization", f"Basic {token}"))
    if given.content_type:
        extra.append(parse_header(f"Content-Type: {given.content_type}"))
    return extra


def parse_reuse_range(text: str, option: str) -> tuple[int, int]:
    """fortio's ``-connection-reuse``: ``"10:30"`` (either order) or ``"20"``."""
    parts = text.split(":")
    if len(parts) > 2:
        raise LoadOptionError(option, f"expected min:max, got {text!r}")
    values = [parse_int(part.strip(), option) for part in parts]
    low, high = min(values), max(values)
    if low < 1:
        raise LoadOptionError(option, f"calls per connection must be at least 1, got {text!r}")
    return low, high


def _calc_qps(given: LoadInput, pre: str) -> LoadInput:
    """``-calc-qps``: the rate that spreads ``-n`` calls over ``-t``; the run is then ``-n``."""
    if not given.calc_qps:
        return given
    if not (_given(given.n) and _given(given.t)):
        raise LoadOptionError(pre + "calc-qps", f"needs both {pre}n and {pre}t")
    calls = parse_int(given.n, pre + "n")
    seconds = parse_duration(given.t, pre + "t")
    if calls < 1 or seconds <= 0:
        raise LoadOptionError(pre + "calc-qps", f"needs {pre}n >= 1 and {pre}t > 0")
    return replace(given, qps=calls / seconds, t=None, calc_qps=False)


def normalize(given: LoadInput, rules: InputRules) -> LoadOptions:
    """The :class:`LoadOptions` for ``given``, with fortio's defaults; raise
    :class:`LoadOptionError` naming the first bad option as this front end spells it."""
    pre = rules.prefix
    url = given.url.strip() if isinstance(given.url, str) else given.url
    if not url:
        raise LoadOptionError("url", "URL is required")
    if rules.join_path:
        url = join_base_and_path(url)
    given = _calc_qps(given, pre)
    if _given(given.n) and _given(given.t) and not rules.rest:
        raise LoadOptionError(
            f"{pre}n/{pre}t",
            f"give either {pre}n (number of calls) or {pre}t (duration), not both",
        )
    connections = DEFAULT_CONNECTIONS
    if _given(given.c):
        connections = parse_int(given.c, pre + "c")
        if rules.rest and connections == 0:
            connections = DEFAULT_CONNECTIONS
        elif connections < 1 and not rules.rest:
            raise LoadOptionError(
                pre + "c", f"number of connections must be at least 1, got {given.c}"
            )
    qps = DEFAULT_QPS
    if _given(given.qps):
        qps = parse_number(given.qps, pre + "qps")
        if rules.rest and qps == 0:
            qps = DEFAULT_QPS  # fortio's Normalize(): 0 -> 8 qps; negative -> max
    exactly = 0
    if _given(given.n):
        exactly = parse_int(given.n, pre + "n")
        if exactly < 1 and not rules.rest:
            raise LoadOptionError(pre + "n", f"must be at least 1 call, got {given.n}")
    percentiles = list(DEFAULT_PERCENTILES)
    if _given(given.p):
        try:
            percentiles = parse_percentiles(str(given.p))
        except ValueError as exc:
            raise LoadOptionError(pre + "p", str(exc)) from None
    payload = _payload(given, pre)
    abort_on = parse_int(given.abort_on, pre + "abort-on") if _given(given.abort_on) else None
    method = given.method or None
    if method is None and given.content_type:
        method = "POST"  # fortio: a content type makes it a POST, like a payload does
    options = LoadOptions(
        url=url,
        connections=connections,
        qps=qps,
        exactly=exactly,
        duration=_duration(given, rules),
        timeout=(
            parse_duration(given.timeout, pre + "timeout")
            if _given(given.timeout)
            else DEFAULT_TIMEOUT
        ),
        percentiles=percentiles,
        resolution=(parse_number(given.r, pre + "r") if _given(given.r) else DEFAULT_RESOLUTION),
        headers=header_list(given.headers) + _extra_headers(given, pre),
        payload=payload,
        method=method,
        open_loop=given.open_loop,
        allow_initial_errors=given.allow_initial_errors,
        nocatchup=given.nocatchup,
        jitter=given.jitter,
        uniform=given.uniform,
        labels=given.labels,
        classify_regex=given.classify_regex or None,
        classify_header=given.classify_header or None,
        sidecar=given.sidecar,
        abort_on=abort_on or None,
        keepalive=given.keepalive,
        half_close=given.half_close,
        http10=given.http10,
        insecure=given.insecure,
        resolve=(given.resolve or "").strip() or None,
        unix_socket=given.unix_socket or None,
        ca_cert=given.ca_cert or None,
        cert=given.cert or None,
        key=given.key or None,
        sequential_warmup=given.sequential_warmup,
        reuse_range=(
            parse_reuse_range(given.connection_reuse, pre + "connection-reuse")
            if given.connection_reuse
            else None
        ),
        offset=parse_duration(given.offset, pre + "offset") if _given(given.offset) else 0.0,
        log_errors=given.log_errors,
    )
    return validate(options)
