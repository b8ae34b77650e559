"""Runs sharing one mesh: the last run that uses a run-started mesh stops it, a user's mesh is
never stopped by a run, a killed run does not keep a mesh alive, and a run waits its turn."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from chaosmesh_ext._process import ProcessId
from chaosmesh_ext.mesh.paths import StatePaths
from chaosmesh_ext.mesh.sharing import Sharing, TurnCancelled, TurnTimeout, User
from chaosmesh_ext.mesh.state import DaemonId

MESH = DaemonId(4242, "777")
OTHER_MESH = DaemonId(4343, "888")


def _dead_process() -> ProcessId:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return ProcessId(int(done.stdout), "1", ProcessId.current().host)


def test_the_last_run_to_leave_a_run_started_mesh_is_told_to_stop_it(tmp_path: Path) -> None:
    sharing = Sharing(StatePaths(tmp_path))
    a, b = User.me("run-a"), User.me("run-b")
    assert sharing.join(MESH, a, started=True).stop_when_unused
    joined = sharing.join(MESH, b, started=False)
    assert joined.stop_when_unused and joined.others == (a,)
    first_out = sharing.leave(MESH, a)
    assert first_out.others == (b,)  # b still uses it: a must not stop it
    last_out = sharing.leave(MESH, b)
    assert last_out.stop_when_unused and last_out.others == ()


def test_a_mesh_found_running_without_a_record_is_the_users_and_never_stopped(
    tmp_path: Path,
) -> None:
    sharing = Sharing(StatePaths(tmp_path))
    sharing.join(OTHER_MESH, User.me("earlier"), started=True)  # a record of another mesh
    joined = sharing.join(MESH, User.me("run-a"), started=False)
    assert not joined.stop_when_unused
    assert not sharing.leave(MESH, User.me("run-a")).stop_when_unused


def test_a_killed_starter_does_not_keep_the_mesh_alive_and_is_named(tmp_path: Path) -> None:
    sharing = Sharing(StatePaths(tmp_path))
    killed = User(_dead_process(), "run-killed")
    sharing.join(MESH, killed, started=True)
    joined = sharing.join(MESH, User.me("run-next"), started=False)
    assert joined.gone == (killed,) and joined.others == ()
    assert joined.stop_when_unused  # the next run stops it when it is done
    assert sharing.leave(MESH, User.me("run-next")).stop_when_unused


def test_keep_leaves_a_run_started_mesh_running(tmp_path: Path) -> None:
    sharing = Sharing(StatePaths(tmp_path))
    sharing.join(MESH, User.me("run-a"), started=True)
    sharing.keep(MESH)
    assert not sharing.leave(MESH, User.me("run-a")).stop_when_unused


def test_a_second_run_waits_its_turn_says_so_and_can_be_cancelled(tmp_path: Path) -> None:
    sharing = Sharing(StatePaths(tmp_path))
    told: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def first() -> None:
        with sharing.turn(10):
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=first)
    holder.start()
    try:
        assert inside.wait(10)
        with pytest.raises(TurnTimeout), sharing.turn(0.2, on_wait=lambda: told.append("wait")):
            pass
        assert told == ["wait"]
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(TurnCancelled), sharing.turn(10, cancel=cancel):
            pass
    finally:
        release.set()
        holder.join(10)
    with sharing.turn(1):  # free again
        pass
