"""The log cap: settings, how the cap is shared, and each way a log is rotated or dropped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.logs import (
    DEFAULT_LOG_CAP,
    LOG_CAP_ENV,
    LogBudget,
    LogKeeper,
    copy_truncate,
    log_cap_of,
    parse_size,
    stale_to_remove,
)
from chaosmesh_ext.mesh.readiness import Replica


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64MiB", 64 * 1024**2),
        ("64MB", 64 * 1000**2),
        ("64m", 64 * 1000**2),
        ("1.5 GiB", int(1.5 * 1024**3)),
        ("2000000", 2_000_000),
        (3 * 1024**2, 3 * 1024**2),
    ],
)
def test_sizes_are_read_as_people_write_them(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "64 furlongs", "-5MB", "", True])
def test_a_bad_size_names_the_setting(text: object) -> None:
    with pytest.raises(ValueError, match=r"^--log-cap: expected a size such as 64MB"):
        parse_size(text, "--log-cap")


def test_a_cap_too_small_for_one_generation_of_each_log_is_refused() -> None:
    with pytest.raises(ValueError, match="under the minimum of 1MiB"):
        parse_size("100KB", "configuration mesh_log_cap")


def test_the_experiment_setting_wins_over_the_environment_over_the_default() -> None:
    env = {LOG_CAP_ENV: "8MiB"}
    assert log_cap_of({}, {}) == DEFAULT_LOG_CAP == 64 * 1024**2
    assert log_cap_of({}, env) == 8 * 1024**2
    assert log_cap_of({"mesh_log_cap": "2MiB"}, env) == 2 * 1024**2
    with pytest.raises(ValueError, match="configuration mesh_log_cap"):
        log_cap_of({"mesh_log_cap": "big"}, env)


@pytest.mark.parametrize("cap", [1024**2, 64 * 1024**2, 10**9 + 7])
@pytest.mark.parametrize("others", [1, 5, 300])
def test_every_log_and_its_older_generation_fit_in_the_cap_together(cap: int, others: int) -> None:
    budget = LogBudget(cap)
    total = 2 * (budget.access_jsonl_limit + budget.access_log_limit)
    total += others * 2 * budget.other_limit(others)
    assert total <= cap
    assert budget.access_jsonl_limit > budget.access_log_limit


def test_stale_logs_are_removed_oldest_first_until_the_part_fits() -> None:
    stale = [(Path("b"), 40, 2.0), (Path("a"), 50, 1.0), (Path("c"), 30, 3.0)]
    assert stale_to_remove(stale, used=200, part=120) == [Path("a"), Path("b")]
    assert stale_to_remove(stale, used=100, part=120) == []


def test_copy_truncate_keeps_the_old_lines_and_the_writer_goes_on_at_the_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.log"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # as the launcher opens it
    try:
        os.write(fd, b"one\ntwo\n")
        assert copy_truncate(path)
        os.write(fd, b"three\n")
    finally:
        os.close(fd)
    assert (tmp_path / "w.log.1").read_bytes() == b"one\ntwo\n"
    assert path.read_bytes() == b"three\n"  # no hole of zeros where the old lines were


def test_the_daemon_rotates_its_own_output_without_losing_a_line(tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from chaosmesh_ext.mesh.logs import rotate_own_output
        print("before", flush=True)
        assert rotate_own_output(Path({str(log)!r}))
        print("after", flush=True)
        sys.stderr.write("error after\\n")
        """
    )
    with open(log, "ab") as out:
        subprocess.run(
            [sys.executable, "-c", script], stdout=out, stderr=subprocess.STDOUT, check=True,
            timeout=60,
        )  # fmt: skip
    assert (tmp_path / "daemon.log.1").read_text() == "before\n"
    assert log.read_text() == "after\nerror after\n"


def test_output_that_is_not_the_log_is_left_alone(tmp_path: Path) -> None:
    """--foreground: the daemon's stdout is a terminal or a pipe, not daemon.log."""
    from chaosmesh_ext.mesh.logs import rotate_own_output

    log = tmp_path / "daemon.log"
    log.write_text("an older daemon's lines\n")
    assert not rotate_own_output(log)
    assert log.read_text() == "an older daemon's lines\n"


def test_the_keeper_truncates_busy_workload_logs_and_drops_stale_ones_first(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "ns.web-0.log"
    old = logs / "ns.web-old.log"
    older = logs / "ns.web-older.log"
    keeper = LogKeeper(tmp_path, cap=1024**2, live_logs=lambda: [live])
    part = keeper.budget.others_part
    for index, (path, share) in enumerate(((older, 0.35), (old, 0.1))):
        path.write_bytes(b"x" * int(part * share))
        os.utime(path, (index, index))
    live.write_bytes(b"y" * int(part * 0.6))  # over its limit, half the part: truncated
    keeper.check()
    assert not older.exists()  # the oldest stale log went first
    assert old.exists()  # and that was enough
    assert live.stat().st_size == 0 and (logs / "ns.web-0.log.1").stat().st_size > 0
    assert keeper.usage().used <= keeper.budget.cap


def test_restart_counting_follows_a_truncated_command_log(tmp_path: Path) -> None:
    log = tmp_path / "cmd.log"
    log.write_text("x: started pid 1: prog\nx: exited with code 1 after 0.1s; restarting\n")
    replica = Replica("p-0", "ns", "p", "command", {}, 1, None, None, log)  # type: ignore[arg-type]
    replica.scan_log()
    assert replica.restarts == 1 and not replica.program_running
    assert copy_truncate(log)
    with open(log, "a") as handle:
        handle.write("x: started pid 2: prog\n")
    replica.scan_log()
    assert replica.program_running
    with open(log, "a") as handle:
        handle.write("x: exited with code 1 after 0.1s; restarting\n")
    replica.scan_log()
    assert replica.restarts == 2


def test_a_generation_rotated_far_past_its_limit_is_dropped_at_the_next_check(
    tmp_path: Path,
) -> None:
    """Envoy wrote faster than the keeper checks: back within the cap one check later."""
    reopened: list[bool] = []
    keeper = LogKeeper(tmp_path, cap=1024**2, reopen=lambda: reopened.append(True))
    # One check interval of a fast writer: more than the whole cap.
    (tmp_path / "access.jsonl").write_bytes(b"{}\n" * (keeper.budget.cap // 2))
    assert keeper.check() == 1 and reopened
    (tmp_path / "access.jsonl").write_bytes(b"{}\n")  # what Envoy opened on /reopen_logs
    assert keeper.usage().used > keeper.budget.cap
    keeper.check()
    assert not (tmp_path / "access.jsonl.1").exists()
    assert keeper.usage().used <= keeper.budget.cap
