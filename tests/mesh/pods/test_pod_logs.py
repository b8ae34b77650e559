"""A pod's log as the kubelet serves it, from a replica's log file (pure but for the file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosmesh_ext.mesh.api import ApiError
from chaosmesh_ext.mesh.pods import logs
from chaosmesh_ext.mesh.workloads._http import log_time

T0 = 1_800_000_000.0
OLDER_REPLICA = b"2027-01-15T07:59:00.000000Z echo default/catalog-0: an earlier replica\n"
LINES = (
    f"{log_time(T0)} echo default/catalog-0: listening on 127.0.0.1:8080\n"
    "Traceback (most recent call last):\n"  # a line a program wrote without a time
    f"{log_time(T0 + 30)} echo default/catalog-0: handled GET /\n"
    f"{log_time(T0 + 60)} echo default/catalog-0: stopping\n"
).encode()


@pytest.fixture
def source(tmp_path: Path) -> logs.LogSource:
    path = tmp_path / "default.catalog-0.log"
    path.write_bytes(OLDER_REPLICA + LINES + b"half a line")
    return logs.LogSource(path, len(OLDER_REPLICA), T0)


def _read(source: logs.LogSource, now: float = T0 + 61, **query: str) -> str:
    options = logs.parse_options(query, "catalog-0", ["catalog"])
    return logs.read(source, options, now).decode()


def test_the_log_is_this_replicas_lines_without_their_times(source: logs.LogSource) -> None:
    assert _read(source) == (
        "echo default/catalog-0: listening on 127.0.0.1:8080\n"
        "Traceback (most recent call last):\n"
        "echo default/catalog-0: handled GET /\n"
        "echo default/catalog-0: stopping\n"
        "half a line"
    )


def test_timestamps_are_rfc3339_with_nanoseconds_and_untimed_lines_take_the_last_one(
    source: logs.LogSource,
) -> None:
    lines = _read(source, timestamps="true").splitlines()
    assert (
        lines[0]
        == "2027-01-15T08:00:00.000000000Z echo default/catalog-0: listening on 127.0.0.1:8080"
    )
    assert lines[1] == "2027-01-15T08:00:00.000000000Z Traceback (most recent call last):"
    assert lines[2].startswith("2027-01-15T08:00:30.000000000Z ")


def test_since_tail_and_limit_select_as_kubectl_logs_asks(source: logs.LogSource) -> None:
    assert _read(source, sinceSeconds="20").splitlines() == [
        "echo default/catalog-0: stopping",
        "half a line",
    ]
    assert _read(source, sinceTime="2027-01-15T08:00:30Z").splitlines()[0].endswith("GET /")
    assert _read(source, sinceTime="2027-01-15T09:00:30+01:00").splitlines()[0].endswith("GET /")
    assert _read(source, tailLines="2").splitlines() == [
        "echo default/catalog-0: stopping",
        "half a line",
    ]
    assert _read(source, tailLines="0") == ""
    assert _read(source, limitBytes="4") == "echo"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"previous": "true"},
            'previous terminated container "catalog" in pod "catalog-0" not found',
        ),
        ({"container": "sidecar"}, "container sidecar is not valid for pod catalog-0"),
        ({"tailLines": "-1"}, "tailLines: must be at least 0"),
        ({"sinceSeconds": "10", "sinceTime": "2027-01-15T08:00:30Z"}, "at most one of"),
        ({"sinceTime": "yesterday"}, "not an RFC 3339 time"),
    ],
)
def test_bad_parameters_are_400_as_on_a_cluster(query: dict[str, str], message: str) -> None:
    with pytest.raises(ApiError) as refused:
        logs.parse_options(query, "catalog-0", ["catalog"])
    assert refused.value.code == 400 and message in refused.value.message


def test_follow_sends_new_lines_until_the_replica_ends(source: logs.LogSource) -> None:
    ended = iter([False, True])
    stream = logs.follow(
        source,
        logs.parse_options({"follow": "true"}, "catalog-0", ["catalog"]),
        lambda: next(ended),
        lambda: T0,
    )
    first = next(stream)
    assert first.endswith(b"stopping\n")  # whole lines only: the half line waits
    with open(source.path, "ab") as handle:
        handle.write(b"\n" + f"{log_time(T0 + 70)} echo default/catalog-0: bye\n".encode())
    rest = b"".join(stream)
    assert rest == b"half a line\necho default/catalog-0: bye\n"
