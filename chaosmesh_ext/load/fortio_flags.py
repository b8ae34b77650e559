"""Every flag of ``fortio load``: its syntax, and what it does on this engine.

fortio's flags come from Go's ``flag`` package: one or two dashes, a whole word
(``-loglevel``, never ``-l -o -g ...``), the value as the next argument or after ``=``
(``-qps=0``), and booleans that take no argument (``-k``) unless given with ``=``
(``-keepalive=false``). :func:`parse_command_line` reads that syntax; :data:`FLAGS` holds one
:class:`FortioFlag` per flag fortio registers for ``fortio load`` (its own, fortio.org/cli's,
scli's and the logger's), each one of:

- **supported**: does here what it does in fortio (``field`` names the :class:`LoadInput`
  field it fills, or ``None`` for output flags the command line handles: ``-json``, ``-a``,
  ``-loglevel`` ...);
- **no effect**: accepted, because a fortio command line carrying it must still run, and
  ``text`` says why it changes nothing here (server-mode flags are ignored by ``fortio load``
  too);
- **refused**: the run would silently differ from fortio's, so it is refused and ``text``
  says what to do instead.

:func:`load_input` turns flag values — from the command line, fortio's REST parameters or a
probe's arguments — into the one :class:`LoadInput` that :func:`~.options.normalize` checks.
``docs/FORTIO-FLAGS.md`` is this table for readers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .options import LoadInput, LoadOptionError

Support = Literal["supported", "no effect", "refused"]

SUPPORTED: Support = "supported"
NO_EFFECT: Support = "no effect"
REFUSED: Support = "refused"


@dataclass(frozen=True)
class FortioFlag:
    """One ``fortio load`` flag and how this engine treats it."""

    name: str
    is_bool: bool
    support: Support
    text: str  # fortio's meaning (supported), or why it has no effect / is refused
    field: str | None = None  # the LoadInput field a supported run flag fills
    repeated: bool = False  # -H: every occurrence counts
    default: str = ""  # fortio's default, as its -h shows it


def _s(
    name: str,
    text: str,
    field: str | None = None,
    *,
    bool_: bool = False,
    default: str = "",
    repeated: bool = False,
) -> FortioFlag:
    return FortioFlag(name, bool_, SUPPORTED, text, field, repeated, default)


def _n(name: str, why: str, *, bool_: bool = False) -> FortioFlag:
    return FortioFlag(name, bool_, NO_EFFECT, why)


def _r(name: str, why: str, *, bool_: bool = False) -> FortioFlag:
    return FortioFlag(name, bool_, REFUSED, why)


_SERVER = "a server-mode flag: `fortio load` ignores it too"
_GRPC = "gRPC only: HTTP load ignores it, in fortio too"
_LOG_FORMAT = "the format of fortio's log lines; these are plain text lines on stderr"
_CURL = "fortio curl mode only; `fortio load` ignores it too"

_TABLE: tuple[FortioFlag, ...] = (
    # --- the run --------------------------------------------------------------------------
    _s("c", "number of connections (fortio's threads)", "c", default="4"),
    _s("qps", "total queries per second; 0 or less = as fast as possible", "qps", default="8"),
    _s("n", "run exactly this number of calls instead of a duration", "n"),
    _s("t", "how long to run (5s, 1m); 0 = until interrupted", "t", default="5s"),
    _s("timeout", "connection and read timeout per call", "timeout", default="3s"),
    _s("p", "percentiles to report", "p", default="50,75,90,99,99.9"),
    _s("r", "histogram resolution in seconds", "r", default="0.001"),
    _s("offset", "offset of the histogram data (a duration)", "offset"),
    _s("H", "extra header 'Name: value' (repeatable)", "headers", repeated=True),
    _s("X", "HTTP method instead of GET/POST", "method"),
    _s("payload", "request body (makes it a POST)", "payload"),
    _s("payload-size", "random body of this many bytes, replaces -payload", "payload_size"),
    _s("payload-file", "body read from this file, replaces -payload", "payload_file"),
    _s("content-type", "Content-Type header; makes it a POST", "content_type"),
    _s("user", "basic authentication 'user:password' (kept out of the result JSON)", "user"),
    _s("jitter", "de-synchronize the connections by +/- 10 %", "jitter", bool_=True),
    _s("uniform", "spread the connections' calls uniformly", "uniform", bool_=True),
    _s(
        "nocatchup",
        "keep the exact rate, never catch up after falling behind",
        "nocatchup",
        bool_=True,
    ),
    _s("calc-qps", "rate = -n / -t", "calc_qps", bool_=True),
    _s(
        "allow-initial-errors",
        "do not abort when the warm-up calls fail",
        "allow_initial_errors",
        bool_=True,
    ),
    _s(
        "abort-on", "stop the run at the first answer with this code (-1: socket error)", "abort_on"
    ),
    _s(
        "sequential-warmup",
        "warm-up calls one connection after the other",
        "sequential_warmup",
        bool_=True,
    ),
    _s(
        "connection-reuse",
        "min:max calls per connection before a new one (random in range)",
        "connection_reuse",
    ),
    _s(
        "keepalive",
        "keep connections alive (-keepalive=false: Connection: close)",
        "keepalive",
        bool_=True,
        default="true",
    ),
    _s(
        "halfclose",
        "without keep-alive, half-close the socket after sending",
        "half_close",
        bool_=True,
    ),
    _s(
        "http1.0",
        "send HTTP/1.0 (no keep-alive; no Host header unless given with -H); the status is"
        " read, where fortio's fast client counts every HTTP/1.0 answer as 200",
        "http10",
        bool_=True,
    ),
    _s("k", "do not verify TLS certificates", "insecure", bool_=True),
    _s("https-insecure", "long form of -k", "insecure", bool_=True),
    _s("resolve", "connect to this IP instead of resolving the URL's host", "resolve"),
    _s("unix-socket", "connect through this Unix domain socket", "unix_socket"),
    _s("cacert", "CA certificate file to verify the server with", "ca_cert"),
    _s("cert", "client certificate file (with -key)", "cert"),
    _s("key", "client certificate key file (with -cert)", "key"),
    _s(
        "log-errors",
        "log every non-2xx/418 answer as it happens (at warning level)",
        "log_errors",
        bool_=True,
        default="true",
    ),
    _s("labels", "labels stored in the result", "labels"),
    # --- output (the command line's own business) -----------------------------------------
    _s("json", "write the JSON result to this file, or - for stdout"),
    _s("a", "save the JSON result as <data-dir>/<result ID>.json", bool_=True),
    _s("data-dir", "where -a saves results", default="."),
    _s("runid", "run id stored in the result and its ID"),
    _s("loglevel", "Debug, Verbose, Info, Warning, Error, Critical or Fatal", default="Info"),
    _s("quiet", "only errors (-loglevel Error)", bool_=True),
    # --- accepted, no effect ----------------------------------------------------------------
    _n(
        "stdclient",
        "one HTTP/1.1 client here; Go's standard client differs in speed and h2,"
        " which -h2 would need",
        bool_=True,
    ),
    _n("compression", "fortio asks for compression only with -stdclient", bool_=True),
    _n(
        "no-reresolve",
        "a new connection resolves the host again (through the embedded mesh's"
        " sidecar nothing is resolved at all)",
        bool_=True,
    ),
    _n("httpbufferkb", "this client has no fixed buffer: answers of any size are read whole"),
    _n("httpccch", "a Connection: close header is always honoured here", bool_=True),
    _n("resolve-ip-type", "the system resolver's first address is used"),
    _n("dns-method", "the system resolver's first address is used"),
    _n("gomaxprocs", "a Go runtime setting; this engine runs on one event loop"),
    _n("profile", "writes Go CPU and memory profiles; there is no Go runtime here"),
    _n("mtls", "server side (fortio server requires client certificates)", bool_=True),
    _n("stream", _CURL, bool_=True),
    _n("curl-stdout-headers", _CURL, bool_=True),
    _n("grpc-compression", _GRPC, bool_=True),
    _n("ping", _GRPC, bool_=True),
    _n("health", _GRPC, bool_=True),
    _n("healthservice", _GRPC),
    _n("grpc-ping-delay", _GRPC),
    _n("grpc-method", _GRPC),
    _n("s", _GRPC),
    _n("udp-timeout", "udp:// load only; `fortio load` of an http:// URL ignores it too"),
    _n("access-log-format", "only used with -access-log-file, which is refused"),
    _n("logger-force-color", _LOG_FORMAT, bool_=True),
    _n("logger-no-color", _LOG_FORMAT, bool_=True),
    _n("logger-json", _LOG_FORMAT, bool_=True),
    _n("logger-timestamp", _LOG_FORMAT, bool_=True),
    _n("logger-file-line", _LOG_FORMAT, bool_=True),
    _n("logger-goroutine", _LOG_FORMAT, bool_=True),
    *(
        _n(name, _SERVER, bool_=is_bool)
        for name, is_bool in (
            ("http-port", False),
            ("tcp-port", False),
            ("udp-port", False),
            ("udp-async", True),
            ("grpc-port", False),
            ("grpc-max-streams", False),
            ("echo-debug-path", False),
            ("ui-path", False),
            ("static-dir", False),
            ("redirect-port", False),
            ("sync", False),
            ("sync-interval", False),
            ("base-url", False),
            ("maxpayloadsizekb", False),
            ("echo-server-default-params", False),
            ("proxy-all-headers", True),
            ("server-idle-timeout", False),
            ("max-echo-delay", False),
            ("multi-mirror-origin", True),
            ("multi-serial-mode", True),
            ("pprof", True),
            ("P", False),
            ("M", False),
            ("config-dir", False),
            ("config-port", False),
            ("nc-dont-stop-on-eof", True),
            ("init", False),
        )
    ),
    # --- refused: the run would not be what fortio runs -------------------------------------
    _r(
        "h2",
        "HTTP/2 is not supported: this engine speaks HTTP/1.1, like fortio's default fast client",
        bool_=True,
    ),
    _r("grpc", "gRPC load is not supported: load an HTTP/1.1 URL", bool_=True),
    _r(
        "L",
        "following redirects is not supported (fortio: do not use it for a load test);"
        " load the final URL",
        bool_=True,
    ),
    _r("curl", "single-fetch mode is not supported: use curl", bool_=True),
    _r(
        "access-log-file",
        "per-call access logs are not written; on the embedded mesh Envoy's"
        " access log (.chaosmesh/access.jsonl) records every call",
    ),
)

FLAGS: dict[str, FortioFlag] = {flag.name: flag for flag in _TABLE}


@dataclass(frozen=True)
class Extension:
    """A flag of ``chaosmesh load`` that fortio does not have."""

    name: str
    is_bool: bool
    text: str


@dataclass
class ParsedCommandLine:
    """Flag values by canonical name (``-https-insecure`` is stored as ``k``) and arguments."""

    values: dict[str, str | bool | list[str]] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    help: bool = False


_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")


def _go_bool(name: str, text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise LoadOptionError(f"-{name}", f"invalid boolean value {text!r} (true or false)")


def parse_command_line(
    argv: Sequence[str], extensions: Sequence[Extension] = ()
) -> ParsedCommandLine:
    """Go's ``flag`` syntax over ``argv``; flags may also follow the URL.

    An unknown flag is named whole (``-loglvl``), never split into letters.
    """
    known_ext = {ext.name: ext for ext in extensions}
    parsed = ParsedCommandLine()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            parsed.args.extend(argv[i:])
            break
        if len(arg) < 2 or not arg.startswith("-"):
            parsed.args.append(arg)
            continue
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name[0] in "-=":
            raise LoadOptionError(arg, "bad flag syntax")
        name, has_value, value = name.partition("=")
        if name in ("h", "help"):
            parsed.help = True
            continue
        flag = FLAGS.get(name)
        ext = known_ext.get(name)
        if flag is None and ext is None:
            raise LoadOptionError(
                f"-{name}",
                "not a flag of fortio load (`chaosmesh load -h` lists them;"
                " docs/FORTIO-FLAGS.md says what each does here)",
            )
        is_bool = flag.is_bool if flag is not None else bool(ext and ext.is_bool)
        if is_bool:
            parsed.values[_canonical(name)] = _go_bool(name, value) if has_value else True
            continue
        if not has_value:
            if i >= len(argv):
                raise LoadOptionError(f"-{name}", "flag needs an argument")
            value = argv[i]
            i += 1
        if flag is not None and flag.repeated:
            previous = parsed.values.setdefault(name, [])
            assert isinstance(previous, list)
            previous.append(value)
        else:
            parsed.values[_canonical(name)] = value
    return parsed


def _canonical(name: str) -> str:
    return "k" if name == "https-insecure" else name


def flag_key(name: str) -> str:
    """A probe argument or REST parameter name as the flag it stands for
    (``abort_on`` -> ``abort-on``, ``http1_0`` -> ``http1.0``)."""
    if name in FLAGS:
        return name
    dashed = name.replace("_", "-")
    if dashed in FLAGS:
        return dashed
    if dashed == "http1-0":
        return "http1.0"
    return name


def truthy(value: object, option: str) -> bool:
    """A boolean flag value from any front end: ``true``/``on``/``1``, ``false``/``off``/``0``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "t", "true", "on", "yes", "y"):
        return True
    if text in ("", "0", "f", "false", "off", "no", "n"):
        return False
    raise LoadOptionError(option, f"expected true or false, got {value!r}")


@dataclass
class FlagInput:
    """What :func:`load_input` made of a set of flags."""

    given: LoadInput
    ignored: list[str] = field(default_factory=list)  # "-stdclient: why", for a warning
    output: dict[str, object] = field(default_factory=dict)  # -json, -a, -loglevel ... values


def load_input(
    url: str,
    values: Mapping[str, object],
    *,
    prefix: str = "-",
    base: LoadInput | None = None,
) -> FlagInput:
    """The :class:`LoadInput` for fortio flag ``values`` (keys as fortio spells them, or with
    underscores); refused and unknown flags raise :class:`LoadOptionError` naming the flag.

    ``base`` holds a front end's own defaults (a probe's ``c=2``), overridden by the flags.
    """
    result = FlagInput(base if base is not None else LoadInput(url=url))
    result.given.url = url
    updates: dict[str, object] = {}
    for raw_name, value in values.items():
        if value is None:
            continue
        name = _canonical(flag_key(raw_name))
        flag = FLAGS.get(name)
        shown = prefix + raw_name
        if flag is None:
            raise LoadOptionError(shown, "not a flag of fortio load (see docs/FORTIO-FLAGS.md)")
        if flag.support == REFUSED:
            if flag.is_bool and not truthy(value, shown):
                continue  # -h2=false asks for nothing this engine lacks
            raise LoadOptionError(shown, flag.text)
        if flag.support == NO_EFFECT:
            if value not in (None, False, ""):
                result.ignored.append(f"{shown}: no effect here ({flag.text})")
            continue
        if flag.field is None:
            result.output[name] = value
            continue
        if flag.is_bool:
            updates[flag.field] = truthy(value, shown)
        elif flag.repeated:
            updates[flag.field] = _header_values(value)
        else:
            updates[flag.field] = value
    for key, value in updates.items():
        setattr(result.given, key, value)
    return result


def _header_values(value: object) -> list[str] | Mapping[str, str]:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return [str(value)]
