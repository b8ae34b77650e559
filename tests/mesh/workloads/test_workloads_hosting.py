"""Replicas sharing a replica host: each keeps its port, identity, log and lifecycle.

What a user does to one pod's process (its holder) — kill it, stop it, SIGSTOP it — happens
to that replica alone; the replicas beside it in the same host keep serving. The behaviour
of each kind in a host is the same as in its own process (the echo, proxy and capacity
modules run every test both ways).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from chaosmesh_ext._sidecar import Sidecar
from chaosmesh_ext.mesh.workloads import WorkloadSpec, wait_ready
from chaosmesh_ext.mesh.workloads.holder import dies_with_parent, holder_argv, holder_image
from chaosmesh_ext.mesh.workloads.host import frozen as stopped
from chaosmesh_ext.mesh.workloads.hosting import HOST_MALLOC_ARENAS, HostedReplica, ReplicaHosts

from .conftest import HOST, call, free_port


def _echo(
    hosts: ReplicaHosts, tmp_path: Path, pod: str, capacity: str = ""
) -> tuple[HostedReplica, WorkloadSpec]:
    spec = WorkloadSpec(
        kind="echo",
        deployment="catalog",
        namespace="default",
        pod=pod,
        port=free_port(),
        log_path=tmp_path / "logs" / f"default.{pod}.log",
        labels={"app": "catalog"},
        version="v1",
        annotations={"chaosmesh.io/capacity": capacity} if capacity else {},
        sidecar=Sidecar(),
    )
    replica = hosts.launch(spec)
    assert isinstance(replica, HostedReplica)
    wait_ready(HOST, spec.port, 20.0, process=replica)
    return replica, spec


def _refused(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return False
    except OSError:
        return True


def _until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_replicas_in_one_host_keep_their_own_identity_port_and_log(
    hosts: ReplicaHosts, tmp_path: Path
) -> None:
    started = [_echo(hosts, tmp_path, f"catalog-{i}") for i in range(3)]
    assert len(hosts.processes()) == 1  # three replicas, one host process
    pids = {replica.pid for replica, _ in started}
    assert len(pids) == 3 and hosts.processes()[0].pid not in pids  # a pid of its own each
    for _, spec in started:
        answer = call(spec.port)
        assert answer.status == 200 and f"Hostname={spec.pod}" in answer.text
        first = spec.log_path.read_text().splitlines()[0]
        assert first.endswith(f"echo default/{spec.pod}: listening on 127.0.0.1:{spec.port}")


def test_killing_one_replicas_process_leaves_its_neighbours_serving(
    hosts: ReplicaHosts, tmp_path: Path
) -> None:
    (victim, victim_spec), (other, other_spec) = (
        _echo(hosts, tmp_path, "catalog-0"),
        _echo(hosts, tmp_path, "catalog-1"),
    )
    os.kill(victim.pid, signal.SIGKILL)  # an OOM kill of that pod, say
    _until(lambda: victim.poll() is not None, "the killed replica to end")
    assert victim.poll() == -9
    assert _refused(victim_spec.port)
    assert call(other_spec.port).status == 200 and other.poll() is None
    assert len(hosts.processes()) == 1


def test_sigterm_drops_that_replicas_requests_in_flight_only(
    hosts: ReplicaHosts, tmp_path: Path
) -> None:
    victim, victim_spec = _echo(hosts, tmp_path, "catalog-0")
    _, other_spec = _echo(hosts, tmp_path, "catalog-1")
    answers: dict[str, object] = {}

    def slow_call(name: str, port: int) -> None:
        try:
            answers[name] = call(port, "/delay/1").status
        except (OSError, http.client.HTTPException) as exc:
            answers[name] = type(exc).__name__

    threads = [
        threading.Thread(target=slow_call, args=("victim", victim_spec.port)),
        threading.Thread(target=slow_call, args=("other", other_spec.port)),
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    victim.terminate()
    assert victim.wait(5) == 0  # as an echo process exits on SIGTERM
    assert "stopping" in victim_spec.log_path.read_text()
    for thread in threads:
        thread.join(10)
    assert answers["other"] == 200
    assert answers["victim"] != 200  # dropped, as the process's exit drops it


def test_a_stopped_replica_process_freezes_that_replica_only(
    hosts: ReplicaHosts, tmp_path: Path
) -> None:
    frozen, frozen_spec = _echo(hosts, tmp_path, "catalog-0")
    _, other_spec = _echo(hosts, tmp_path, "catalog-1")
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        # The signal takes effect once the kernel next runs the holder: wait for that.
        _until(lambda: stopped(frozen.pid), "the holder to be stopped")
        with pytest.raises(TimeoutError):
            call(frozen_spec.port, timeout=0.5)
        assert call(other_spec.port).status == 200
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    assert call(frozen_spec.port).status == 200
    assert frozen.poll() is None


def test_a_host_that_dies_ends_every_replica_it_served(hosts: ReplicaHosts, tmp_path: Path) -> None:
    started = [_echo(hosts, tmp_path, f"catalog-{i}") for i in range(2)]
    (host,) = hosts.processes()
    os.kill(host.pid, signal.SIGKILL)
    _until(lambda: all(r.poll() is not None for r, _ in started), "the replicas to end")
    assert [r.poll() for r, _ in started] == [-9, -9]
    # The next replica gets a new host.
    _, spec = _echo(hosts, tmp_path, "catalog-2")
    assert call(spec.port).status == 200 and hosts.processes()[0].pid != host.pid


def test_a_full_host_is_followed_by_another(hosts: ReplicaHosts, tmp_path: Path) -> None:
    started = [_echo(hosts, tmp_path, f"catalog-{i}", "workers=1,service=1ms") for i in range(4)]
    assert len(hosts.processes()) == 2  # three per host here
    for _, spec in started:
        answer = call(spec.port)
        assert answer.status == 200 and f"Hostname={spec.pod}" in answer.text


def _host_environ(hosts: ReplicaHosts) -> dict[str, str]:
    (host,) = hosts.processes()
    raw = Path(f"/proc/{host.pid}/environ").read_bytes()
    return dict(item.partition("=")[::2] for item in raw.decode().split("\0") if item)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_a_host_runs_with_few_malloc_arenas_unless_told_otherwise(
    hosts: ReplicaHosts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    _, spec = _echo(hosts, tmp_path, "catalog-0")
    assert _host_environ(hosts)["MALLOC_ARENA_MAX"] == HOST_MALLOC_ARENAS
    assert call(spec.port).status == 200


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_a_host_keeps_the_malloc_arenas_the_user_set(
    hosts: ReplicaHosts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    _echo(hosts, tmp_path, "catalog-0")
    assert _host_environ(hosts)["MALLOC_ARENA_MAX"] == "4"


@pytest.mark.skipif(holder_image() is None, reason="the small holder is built for x86-64 Linux")
def test_the_holder_ends_as_an_echo_process_would(tmp_path: Path) -> None:
    argv = holder_argv(tmp_path)
    assert argv == [str(tmp_path / "replica-holder")] and dies_with_parent(argv)
    for sig, code in ((signal.SIGTERM, 0), (signal.SIGINT, 0), (signal.SIGKILL, -9)):
        holder = subprocess.Popen([*argv, str(os.getpid())])
        try:
            os.kill(holder.pid, signal.SIGSTOP)  # stopped and continued: still waiting
            os.kill(holder.pid, signal.SIGCONT)
            time.sleep(0.05)
            assert holder.poll() is None
            holder.send_signal(sig)
            assert holder.wait(5) == code
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait(5)


@pytest.mark.skipif(holder_image() is None, reason="the small holder is built for x86-64 Linux")
def test_the_holder_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    argv = holder_argv(tmp_path)
    # Started by someone else than the pid it is given (its parent died before it could
    # ask for the parent-death signal, say): it leaves at once.
    orphan = subprocess.Popen([*argv, "1"])
    assert orphan.wait(5) == 1
    # Started by a process that then dies: the kernel kills it.
    starter = (
        "import os, subprocess, sys; "
        "p = subprocess.Popen(sys.argv[1:] + [str(os.getpid())]); print(p.pid, flush=True)"
    )
    out = subprocess.run(
        [sys.executable, "-c", starter, *argv], capture_output=True, text=True, timeout=30
    )
    holder = int(out.stdout)

    def gone() -> bool:
        try:
            state = Path(f"/proc/{holder}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return True
        return state in ("Z", "X")  # killed; its new parent may not have reaped it yet

    _until(gone, "the holder to die with its parent")
