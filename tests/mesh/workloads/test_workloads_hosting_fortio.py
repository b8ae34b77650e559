"""fortio replicas sharing a replica host: each keeps its port, identity, runs, log and
lifecycle.

A fortio replica is the load layer's REST server; in a host it keeps what its own process
had. What a user does to one pod's process (its holder) happens to that replica alone, its
load runs included: killed or terminated, its runs end at once and their connections close;
stopped (SIGSTOP), its runs send nothing until it is continued. The replica beside it in the
same host keeps serving and loading throughout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext._sidecar import SOURCE_WORKLOAD_HEADER, Sidecar
from chaosmesh_ext.mesh.workloads import WorkloadSpec, wait_ready
from chaosmesh_ext.mesh.workloads.host import frozen as stopped
from chaosmesh_ext.mesh.workloads.hosting import HostedReplica, ReplicaHosts
from tests.support.load_target import Reply, Target, started_targets

from .conftest import HOST, call, free_port
from .test_workloads_hosting import _refused, _until


@pytest.fixture
def targets() -> Iterator[Callable[..., Target]]:
    """``targets(reply)``: a local target answering every call with ``reply``."""
    with started_targets() as make:
        yield lambda reply=None: make(lambda *_: reply or Reply())


def _fortio(hosts: ReplicaHosts, tmp_path: Path, pod: str) -> tuple[HostedReplica, WorkloadSpec]:
    spec = WorkloadSpec(
        kind="fortio",
        deployment="fortio-deploy",
        namespace="default",
        pod=pod,
        port=free_port(),
        log_path=tmp_path / "logs" / f"default.{pod}.log",
        labels={"app": "fortio"},
        # Its identity: what its load says about who sends it (the sidecar's headers).
        sidecar=Sidecar(workload=pod, namespace="default", labels={"app": "fortio"}),
    )
    replica = hosts.launch(spec)
    wait_ready(HOST, spec.port, 30.0, process=replica)
    return replica, spec


def _rest(port: int, query: str, timeout: float = 30.0) -> Any:
    answer = call(port, f"/fortio/rest/{query}", timeout=timeout)
    assert answer.status == 200, answer.text
    return json.loads(answer.body)


def _sent_by(target: Target, pod: str) -> int:
    return sum(1 for seen in list(target.seen) if seen.headers.get(SOURCE_WORKLOAD_HEADER) == pod)


def _connections(pid: int, port: int) -> int:
    """How many TCP connections process ``pid`` has open to local port ``port``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        if remote_port == port and fields[9] in inodes and fields[3] == "01":  # ESTABLISHED
            count += 1
    return count


def _start_load(port: int, target: Target, path: str = "/", extra: str = "") -> None:
    started = _rest(port, f"run?url={target.url}{path}&qps=40&c=2&t=on&async=on{extra}")
    assert started["message"] == "started"


def test_fortio_replicas_in_one_host_keep_their_own_port_identity_and_log(
    hosts: ReplicaHosts, tmp_path: Path, targets: Callable[..., Target]
) -> None:
    started = [_fortio(hosts, tmp_path, f"fortio-{i}") for i in range(2)]
    assert len(hosts.processes()) == 1  # two replicas, one host process
    assert len({replica.pid for replica, _ in started}) == 2
    target = targets()
    for _, spec in started:
        result = _rest(spec.port, f"run?url={target.url}/&n=5&qps=-1&c=1")
        assert result["RetCodes"] == {"200": 5}
        first = spec.log_path.read_text().splitlines()[0]
        assert first.endswith(f"fortio default/{spec.pod}: listening on 127.0.0.1:{spec.port}")
    assert [_sent_by(target, spec.pod) for _, spec in started] == [5, 5]
    # Each replica's runs are its own: one's status does not show the other's.
    target_slow = targets(Reply(delay=30.0))
    _start_load(started[0][1].port, target_slow)
    assert len(_rest(started[0][1].port, "status")["Statuses"]) == 1
    assert _rest(started[1][1].port, "status")["Statuses"] == {}


def test_a_replicas_load_warnings_go_to_its_own_log(
    hosts: ReplicaHosts, tmp_path: Path, targets: Callable[..., Target]
) -> None:
    (_, noisy), (_, quiet) = (
        _fortio(hosts, tmp_path, "fortio-0"),
        _fortio(hosts, tmp_path, "fortio-1"),
    )
    failing = targets(Reply(status=503))
    result = _rest(noisy.port, f"run?url={failing.url}/&n=4&qps=-1&c=1&log-errors=on")
    assert result["RetCodes"] == {"503": 4}
    assert _rest(quiet.port, f"run?url={targets().url}/&n=4&qps=-1&c=1")["RetCodes"] == {"200": 4}
    noisy_lines = [x for x in noisy.log_path.read_text().splitlines() if "Non ok http code" in x]
    assert len(noisy_lines) == 4 and all(f"fortio default/{noisy.pod}:" in x for x in noisy_lines)
    assert "Non ok http code" not in quiet.log_path.read_text()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGKILL, -9), (signal.SIGTERM, 0)])
def test_ending_one_replicas_process_ends_its_load_runs_only(
    hosts: ReplicaHosts,
    tmp_path: Path,
    targets: Callable[..., Target],
    sig: signal.Signals,
    code: int,
) -> None:
    (victim, victim_spec), (other, other_spec) = (
        _fortio(hosts, tmp_path, "fortio-0"),
        _fortio(hosts, tmp_path, "fortio-1"),
    )
    (host,) = hosts.processes()
    hanging = targets(Reply(never=True))  # the victim's calls stay in flight
    answering = targets()
    # Calls that wait a minute for their answer: only the victim's end can cut them short.
    _start_load(victim_spec.port, hanging, extra="&timeout=60s")
    _start_load(other_spec.port, answering)
    _until(lambda: _connections(host.pid, hanging.port) == 2, "the victim's calls in flight")
    _until(lambda: _sent_by(answering, other_spec.pod) >= 5, "the other replica's load")
    os.kill(victim.pid, sig)
    _until(lambda: victim.poll() is not None, "the replica to end")
    assert victim.poll() == code
    assert _refused(victim_spec.port)
    # Its calls in flight were dropped with it, as its process's exit would drop them.
    _until(lambda: _connections(host.pid, hanging.port) == 0, "the victim's connections to close")
    sent = _sent_by(hanging, victim_spec.pod)
    # The other replica keeps loading (and answering) while the victim sends nothing more.
    now = _sent_by(answering, other_spec.pod)
    _until(lambda: _sent_by(answering, other_spec.pod) >= now + 20, "the other replica's load")
    assert _sent_by(hanging, victim_spec.pod) == sent
    assert other.poll() is None and host.alive()
    assert len(_rest(other_spec.port, "status")["Statuses"]) == 1
    stop = _rest(other_spec.port, "stop?wait=on")
    assert stop["Count"] == 1


def test_a_stopped_replica_process_pauses_its_api_and_its_load_only(
    hosts: ReplicaHosts, tmp_path: Path, targets: Callable[..., Target]
) -> None:
    (frozen, frozen_spec), (_, other_spec) = (
        _fortio(hosts, tmp_path, "fortio-0"),
        _fortio(hosts, tmp_path, "fortio-1"),
    )
    target = targets()
    _start_load(frozen_spec.port, target)
    _start_load(other_spec.port, target)
    _until(lambda: _sent_by(target, frozen_spec.pod) >= 5, "the frozen replica's load")
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        _until(lambda: stopped(frozen.pid), "the holder to be stopped")
        # Let the calls it had in flight land, then watch the other replica send 20 more.
        now = _sent_by(target, other_spec.pod)
        _until(lambda: _sent_by(target, other_spec.pod) >= now + 10, "the other replica's load")
        paused_at = _sent_by(target, frozen_spec.pod)
        now = _sent_by(target, other_spec.pod)
        _until(lambda: _sent_by(target, other_spec.pod) >= now + 20, "the other replica's load")
        assert _sent_by(target, frozen_spec.pod) == paused_at
        with pytest.raises((TimeoutError, socket.timeout)):
            call(frozen_spec.port, "/fortio/rest/status", timeout=0.5)
        assert call(other_spec.port, "/fortio/rest/status").status == 200
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    _until(lambda: _sent_by(target, frozen_spec.pod) > paused_at, "the load to go on")
    assert len(_rest(frozen_spec.port, "status")["Statuses"]) == 1
    assert frozen.poll() is None
