"""A pod's log as ``kubectl logs`` and ``read_namespaced_pod_log`` read it, from the file its
replica writes.

On a node the container runtime stores each line with the time it was written, and the
kubelet strips that time unless ``timestamps=true`` asks for it. The embedded mesh's
workloads start every line they write with that time (RFC 3339, UTC), so the file is read the
same way: the leading time is what ``timestamps``, ``sinceSeconds`` and ``sinceTime`` use, and
is left out otherwise. A line without one (a ``command`` program's own output, a traceback)
carries the time of the line before it.

Parameters: ``container`` (one of the pod's), ``timestamps``, ``sinceSeconds``, ``sinceTime``,
``tailLines``, ``limitBytes``, ``follow`` (streams until the replica ends), ``previous``
(400, as for a container that never restarted: a replica's restarts share one file).
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..api.status import bad_request

# 2026-01-01T12:00:00.123456789Z — what workloads write first on each line.
_STAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?Z ")
FOLLOW_POLL_S = 0.2
READ_LIMIT = 16 << 20  # a log is read up to this much at a time


@dataclass(frozen=True)
class LogOptions:
    container: str = ""
    timestamps: bool = False
    since: float | None = None  # wall-clock seconds: lines from then on
    since_seconds: int | None = None
    tail_lines: int | None = None
    limit_bytes: int | None = None
    follow: bool = False


@dataclass(frozen=True)
class LogSource:
    """A replica's log: the file, where its own lines begin, and when it was created."""

    path: Path
    offset: int
    created_at: float


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0", ""):
        raise bad_request(f"{name}: expected true or false, got {query[name]!r}")
    return value in ("true", "1")


def _whole(query: dict[str, str], name: str, minimum: int) -> int | None:
    if query.get(name) in (None, ""):
        return None
    try:
        value = int(query[name])
    except ValueError:
        raise bad_request(f"{name}: expected a whole number, got {query[name]!r}") from None
    if value < minimum:
        raise bad_request(f"{name}: must be at least {minimum}, got {value}")
    return value


def parse_time(text: str) -> float:
    """RFC 3339 (``2026-01-01T12:00:00Z``, fractions and offsets allowed) -> epoch seconds."""
    found = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text.strip())
    if not found:
        raise bad_request(f"sinceTime: not an RFC 3339 time: {text!r}")
    seconds = calendar.timegm(time.strptime(found.group(1), "%Y-%m-%dT%H:%M:%S"))
    fraction = float(found.group(2) or 0)
    zone = found.group(3)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds + fraction


def parse_options(query: dict[str, str], pod: str, containers: Sequence[str]) -> LogOptions:
    """The request's parameters, refused (400) as kube-apiserver refuses them."""
    container = query.get("container", "")
    if container and container not in containers:
        raise bad_request(f"container {container} is not valid for pod {pod}")
    if _flag(query, "previous"):
        raise bad_request(
            f'previous terminated container "{container or containers[0]}" in pod "{pod}" not found'
        )
    since_seconds = _whole(query, "sinceSeconds", 1)
    since_time = query.get("sinceTime")
    if since_seconds is not None and since_time:
        raise bad_request("at most one of sinceTime or sinceSeconds may be specified")
    return LogOptions(
        container=container,
        timestamps=_flag(query, "timestamps"),
        since=parse_time(since_time) if since_time else None,
        since_seconds=since_seconds,
        tail_lines=_whole(query, "tailLines", 0),
        limit_bytes=_whole(query, "limitBytes", 1),
        follow=_flag(query, "follow"),
    )


def _format(stamp: bytes) -> bytes:
    """A line's time as the kubelet prints it: RFC 3339 with nanoseconds."""
    found = _STAMP.match(stamp + b" ")
    if not found:
        return stamp
    fraction = (found.group(2) or b".")[1:].ljust(9, b"0")
    return found.group(1) + b"." + fraction + b"Z"


def _epoch(stamp: bytes) -> float:
    found = _STAMP.match(stamp + b" ")
    if not found:
        return 0.0
    whole = calendar.timegm(time.strptime(found.group(1).decode(), "%Y-%m-%dT%H:%M:%S"))
    return whole + float(found.group(2) or b"0")


def lines_with_times(data: bytes, first_stamp: bytes) -> list[tuple[bytes, bytes]]:
    """(time, line without its time) for every whole line of ``data``."""
    out = []
    stamp = first_stamp
    for line in data.splitlines(keepends=True):
        found = _STAMP.match(line)
        if found:
            stamp = line[: found.end() - 1]
            line = line[found.end() :]
        out.append((stamp, line))
    return out


def render(entries: list[tuple[bytes, bytes]], options: LogOptions, now: float) -> bytes:
    """The lines a request gets, formatted as it asked."""
    since = options.since
    if options.since_seconds is not None:
        since = now - options.since_seconds
    if since is not None:
        entries = [(s, line) for s, line in entries if _epoch(s) >= since]
    if options.tail_lines is not None:
        entries = entries[-options.tail_lines :] if options.tail_lines else []
    out = b"".join(
        (_format(s) + b" " + line) if options.timestamps else line for s, line in entries
    )
    if options.limit_bytes is not None:
        out = out[: options.limit_bytes]
    return out


def _created_stamp(source: LogSource) -> bytes:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(source.created_at)).encode()


def _read_from(source: LogSource, start: int) -> bytes:
    try:
        with open(source.path, "rb") as handle:
            handle.seek(start)
            return handle.read(READ_LIMIT)
    except OSError:
        return b""


def read(source: LogSource, options: LogOptions, now: float) -> bytes:
    """The replica's log so far (its own lines: from its offset in the file)."""
    data = _read_from(source, source.offset)
    complete = data[: data.rfind(b"\n") + 1] if not data.endswith(b"\n") else data
    tail = data[len(complete) :]
    entries = lines_with_times(complete, _created_stamp(source))
    if tail:  # a line still being written is shown as it is, like the kubelet's partial line
        entries += lines_with_times(tail, entries[-1][0] if entries else _created_stamp(source))
    return render(entries, options, now)


def follow(
    source: LogSource,
    options: LogOptions,
    ended: Callable[[], bool],
    clock: Callable[[], float],
) -> Iterator[bytes]:
    """The log so far, then each new whole line as it is written, until ``ended()``."""
    data = _read_from(source, source.offset)
    complete = data[: data.rfind(b"\n") + 1]
    position = source.offset + len(complete)
    entries = lines_with_times(complete, _created_stamp(source))
    stamp = entries[-1][0] if entries else _created_stamp(source)
    first = render(entries, options, clock())
    yield first
    sent = len(first)
    while True:
        finished = ended()
        data = _read_from(source, position)
        complete = data[: data.rfind(b"\n") + 1]
        if complete:
            position += len(complete)
            new = lines_with_times(complete, stamp)
            stamp = new[-1][0]
            chunk = render(new, LogOptions(timestamps=options.timestamps), clock())
            if options.limit_bytes is not None:
                chunk = chunk[: max(options.limit_bytes - sent, 0)]
            sent += len(chunk)
            if chunk:
                yield chunk
        if finished or (options.limit_bytes is not None and sent >= options.limit_bytes):
            return
        time.sleep(FOLLOW_POLL_S)
