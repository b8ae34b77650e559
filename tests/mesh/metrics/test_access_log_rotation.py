"""access.jsonl rotated under the follower: every record is read once, whenever it polls.

The writer here behaves as Envoy's file access logger does (an O_APPEND descriptor, written
until ``/reopen_logs`` makes it open the path again); the log keeper renames the file.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.logs import LogKeeper
from chaosmesh_ext.mesh.metrics import AccessLogFollower


class Writer:
    """Envoy's file logger: appends to the file it opened until told to reopen the path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def reopen(self) -> None:
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        os.close(self.fd)


def _read_all(follower: AccessLogFollower) -> list[bytes]:
    """What a follower reads until it has caught up (it reads a bounded chunk at a time)."""
    lines: list[bytes] = []
    while read := follower.read_lines():
        lines += read
    return lines


def _lines(numbers: range) -> str:
    return "".join(f'{{"n": {n}}}\n' for n in numbers)


# One rotation, cut at every point a follower could poll: mid-line, renamed but not yet
# reopened, the old file written after the rename, the new file appearing.
STEPS = [
    lambda w, p: w.write(_lines(range(1, 4)) + '{"n": 4'),  # a line half-written
    lambda w, p: os.replace(p, p.with_name("access.jsonl.1")),  # the keeper renames
    lambda w, p: w.write("}\n" + _lines(range(5, 7))),  # Envoy still on the old file
    lambda w, p: w.reopen(),  # /reopen_logs: a new, empty file at the path
    lambda w, p: w.write(_lines(range(7, 10))),
]
RENAME = 1


@pytest.mark.parametrize(
    "polls",
    list(itertools.product([False, True], repeat=len(STEPS))),
    ids=lambda p: "".join("p" if x else "-" for x in p),
)
def test_a_rotation_loses_and_repeats_no_record_wherever_the_follower_polls(
    tmp_path: Path, polls: tuple[bool, ...]
) -> None:
    path = tmp_path / "access.jsonl"
    writer = Writer(path)
    follower = AccessLogFollower(path)
    seen: list[bytes] = []
    try:
        for index, (step, poll) in enumerate(zip(STEPS, polls, strict=True)):
            if index == RENAME and follower.behind():
                seen += follower.read_lines()  # the keeper waits for the follower (hold)
            step(writer, path)
            if poll:
                seen += follower.read_lines()
        for _ in range(3):  # drain: one read per file at most
            seen += follower.read_lines()
    finally:
        writer.close()
        follower.close()
    assert seen == [f'{{"n": {n}}}'.encode() for n in range(1, 10)]


@pytest.mark.parametrize("chunk", [1, 5, 11, 64])
def test_a_rotation_loses_and_repeats_no_record_when_read_a_few_bytes_at_a_time(
    tmp_path: Path, chunk: int
) -> None:
    """The follower reads a bounded chunk at a time: a rotation at any byte of it is safe."""
    path = tmp_path / "access.jsonl"
    writer = Writer(path)
    follower = AccessLogFollower(path)
    seen: list[bytes] = []
    try:
        for step in STEPS:
            step(writer, path)
            seen += follower.read_lines(chunk)
        while read := follower.read_lines(chunk):
            seen += read
    finally:
        writer.close()
        follower.close()
    assert seen == [f'{{"n": {n}}}'.encode() for n in range(1, 10)]


def test_behind_until_the_follower_switched_to_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "access.jsonl"
    writer = Writer(path)
    follower = AccessLogFollower(path)
    try:
        assert follower.behind()  # a file it has not opened yet
        writer.write(_lines(range(2)))
        assert len(follower.read_lines()) == 2
        assert not follower.behind()
        os.replace(path, tmp_path / "access.jsonl.1")
        assert not follower.behind()  # nothing new to switch to yet
        writer.reopen()
        assert follower.behind()
        assert follower.read_lines() == []
        assert not follower.behind()
    finally:
        writer.close()
        follower.close()


def test_the_keeper_does_not_rename_a_generation_the_follower_has_not_reached(
    tmp_path: Path,
) -> None:
    """Two renames before the follower switched would skip a whole file: the keeper waits."""
    path = tmp_path / "access.jsonl"
    writer = Writer(path)
    follower = AccessLogFollower(path)
    keeper = LogKeeper(
        tmp_path, cap=8 << 20, reopen=writer.reopen, hold={"access.jsonl": follower.behind}
    )
    limit = keeper.budget.access_jsonl_limit
    record = '{"n": 0, "pad": "' + "x" * 200 + '"}\n'
    per_file = limit // len(record) + 1  # just over the limit
    try:
        writer.write(record * per_file)
        assert follower.behind()
        assert keeper.check() == 0  # the follower never read this file: not renamed
        assert len(_read_all(follower)) == per_file
        assert keeper.check() == 1  # renamed, and Envoy told to reopen
        assert path.exists() and (tmp_path / "access.jsonl.1").exists()
        writer.write(record * per_file)  # the new file is full before the follower looked
        assert keeper.check() == 0
        assert (tmp_path / "access.jsonl.1").stat().st_size > 0
        assert len(_read_all(follower)) == per_file
        assert keeper.check() == 1
        writer.write(record * (2 * per_file + 1))  # past twice the limit: disk comes first
        assert keeper.check() == 1
    finally:
        writer.close()
        follower.close()
