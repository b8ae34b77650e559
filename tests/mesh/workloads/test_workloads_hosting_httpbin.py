"""httpbin replicas sharing a replica host: each keeps its port, workers, log and lifecycle.

Each replica is the real httpbin under a waitress server of its own in the shared process.
What a user does to one pod's process (its holder) happens to that replica alone: killed or
terminated, its listener and requests in flight are dropped; stopped (SIGSTOP), its requests
wait — holding its own workers only, so the replica beside it keeps answering.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.workloads import WorkloadSpec, wait_ready
from chaosmesh_ext.mesh.workloads.host import frozen as stopped
from chaosmesh_ext.mesh.workloads.hosting import HostedReplica, ReplicaHosts
from chaosmesh_ext.mesh.workloads.httpbin_app import THREADS

from .conftest import HOST, call, free_port
from .test_workloads_hosting import _refused, _until


def _httpbin(hosts: ReplicaHosts, tmp_path: Path, pod: str) -> tuple[HostedReplica, WorkloadSpec]:
    spec = WorkloadSpec(
        kind="httpbin",
        deployment="httpbin",
        namespace="default",
        pod=pod,
        port=free_port(),
        log_path=tmp_path / "logs" / f"default.{pod}.log",
        labels={"app": "httpbin"},
    )
    replica = hosts.launch(spec)
    wait_ready(HOST, spec.port, 30.0, process=replica)
    return replica, spec


def _in_background(port: int, path: str, answers: list[object], timeout: float) -> threading.Thread:
    def run() -> None:
        try:
            answers.append(call(port, path, timeout=timeout).status)
        except (OSError, http.client.HTTPException) as exc:
            answers.append(type(exc).__name__)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_httpbin_replicas_in_one_host_keep_their_own_port_and_log(
    hosts: ReplicaHosts, tmp_path: Path
) -> None:
    started = [_httpbin(hosts, tmp_path, f"httpbin-{i}") for i in range(3)]
    assert len(hosts.processes()) == 1  # three replicas, one host process
    assert len({replica.pid for replica, _ in started}) == 3
    for _, spec in started:
        answer = call(spec.port, "/get?a=1")
        assert answer.status == 200
        assert json.loads(answer.body)["url"] == f"http://127.0.0.1:{spec.port}/get?a=1"
        first = spec.log_path.read_text().splitlines()[0]
        assert first.endswith(f"httpbin default/{spec.pod}: listening on 127.0.0.1:{spec.port}")


def test_a_replicas_server_messages_go_to_its_own_log(hosts: ReplicaHosts, tmp_path: Path) -> None:
    (_, busy), (_, idle) = (
        _httpbin(hosts, tmp_path, "httpbin-0"),
        _httpbin(hosts, tmp_path, "httpbin-1"),
    )
    # More requests at once than it has workers: waitress warns that requests wait in its queue.
    answers: list[object] = []
    threads = [_in_background(busy.port, "/delay/1", answers, 30) for _ in range(THREADS + 2)]
    for thread in threads:
        thread.join(60)
    assert answers == [200] * (THREADS + 2)
    assert call(idle.port, "/get").status == 200
    queued = [x for x in busy.log_path.read_text().splitlines() if "Task queue depth" in x]
    assert queued and all(f"httpbin default/{busy.pod} WARNING" in x for x in queued)
    assert "Task queue depth" not in idle.log_path.read_text()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGKILL, -9), (signal.SIGTERM, 0)])
def test_ending_one_replicas_process_drops_its_requests_only(
    hosts: ReplicaHosts, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    (victim, victim_spec), (other, other_spec) = (
        _httpbin(hosts, tmp_path, "httpbin-0"),
        _httpbin(hosts, tmp_path, "httpbin-1"),
    )
    victim_answers: list[object] = []
    other_answers: list[object] = []
    threads = [
        _in_background(victim_spec.port, "/delay/3", victim_answers, 30),
        _in_background(other_spec.port, "/delay/3", other_answers, 30),
    ]
    _until(lambda: len(_connections(victim_spec.port)) > 0, "the victim's request to arrive")
    os.kill(victim.pid, sig)
    _until(lambda: victim.poll() is not None, "the replica to end")
    assert victim.poll() == code
    assert _refused(victim_spec.port)
    for thread in threads:
        thread.join(30)
    assert victim_answers != [200]  # dropped, as the process's exit drops it
    assert other_answers == [200]
    assert call(other_spec.port, "/get").status == 200 and other.poll() is None


def test_a_stopped_replica_holds_its_own_workers_only(hosts: ReplicaHosts, tmp_path: Path) -> None:
    (frozen, frozen_spec), (_, other_spec) = (
        _httpbin(hosts, tmp_path, "httpbin-0"),
        _httpbin(hosts, tmp_path, "httpbin-1"),
    )
    os.kill(frozen.pid, signal.SIGSTOP)
    waiting: list[object] = []
    try:
        _until(lambda: stopped(frozen.pid), "the holder to be stopped")
        # Every worker of the stopped replica ends up holding a request that waits.
        held = [_in_background(frozen_spec.port, "/get", waiting, 30) for _ in range(THREADS + 4)]
        with pytest.raises(TimeoutError):
            call(frozen_spec.port, "/get", timeout=0.5)
        answers: list[object] = []
        served = [_in_background(other_spec.port, "/get", answers, 10) for _ in range(THREADS + 4)]
        for thread in served:
            thread.join(30)
        assert answers == [200] * (THREADS + 4)
        assert waiting == []  # still waiting
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    for thread in held:
        thread.join(30)
    assert waiting == [200] * (THREADS + 4)  # answered once it was continued
    assert frozen.poll() is None


def _connections(port: int) -> list[str]:
    """Established TCP connections to local ``port`` (its server's side)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return [
        row
        for row in rows
        if int(row.split()[1].rsplit(":", 1)[1], 16) == port and row.split()[3] == "01"
    ]


def _blocked_signals(pid: int, tid: int) -> int | None:
    """The signals thread ``tid`` of ``pid`` blocks; None once it has ended."""
    try:
        status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    except FileNotFoundError:
        return None  # a closed replica's worker ending meanwhile
    for line in status.splitlines():
        if line.startswith("SigBlk:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no SigBlk for thread {tid} of {pid}")


def test_sigterm_is_left_to_the_hosts_main_thread(hosts: ReplicaHosts, tmp_path: Path) -> None:
    # The kernel may hand a process's SIGTERM to any thread not blocking it, but Python runs
    # the handler in the main thread only, once its wait ends: a worker thread taking it
    # would leave the host running. Waitress's threads, and those of a replica stopped and
    # closed, must all block it.
    started = [_httpbin(hosts, tmp_path, f"httpbin-{i}") for i in range(2)]
    for _, spec in started:
        assert call(spec.port, "/get").status == 200
    closed, _ = started[0]
    closed.terminate()
    assert closed.wait(10) == 0
    [host] = hosts.processes()
    wanted = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))
    threads = [int(tid) for tid in os.listdir(f"/proc/{host.pid}/task")]
    assert len(threads) > 2  # the replicas' workers and waitress loops are there
    for tid in threads:
        blocked = _blocked_signals(host.pid, tid)
        if blocked is None:
            continue
        if tid == host.pid:
            assert blocked & wanted == 0, "the main thread must take SIGTERM"
        else:
            assert blocked & wanted == wanted, f"thread {tid} of the host can take SIGTERM"
    os.kill(host.pid, signal.SIGTERM)
    host.process.wait(10)
    assert host.process.returncode == 0
