"""The cluster fallbacks that go through ``pods/{name}/exec``, against an API emulator.

On a cluster without a fortio Service (or whose service proxy is forbidden), the probes exec
``fortio load -json - ...`` in the fortio pod, and read breaker counters with ``pilot-agent
request GET stats`` in its istio-proxy container, as Istio's circuit-breaking task does. The
emulator (``_kube_exec``) serves exec over a real WebSocket; the pod's ``fortio`` is a
stand-in script that runs this project's ``chaosmesh load`` with the same flags (it prints
fortio's JSON), and ``pilot-agent`` prints Envoy's text stats.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext import probes
from chaosmesh_ext.kube.client import api_client
from chaosmesh_ext.load import remote
from tests.support.cli import CHAOSMESH_BIN
from tests.support.kube_exec import Cluster, KubeExecEmulator
from tests.support.load_target import Reply, Target

POD = "fortio-deploy-7c9d8b6f4-x2x7k"
HTTPBIN = "outbound|8000||httpbin.default.svc.cluster.local"
TEXT_STATS = f"""cluster.{HTTPBIN};.upstream_rq_pending_overflow: 3
cluster.{HTTPBIN};.upstream_cx_overflow: 2
cluster.{HTTPBIN};.upstream_rq_total: 17
cluster.{HTTPBIN};.outlier_detection.ejections_active: 0
server.live: 1
"""

FAKE_FORTIO = f"""#!{sys.executable}
# Stand-in for the fortio binary: `fortio load ARGS` -> `chaosmesh load ARGS` (same flags,
# fortio's JSON on stdout with -json -, the text report on stderr).
import subprocess
import sys
from chaosmesh_ext.cli import main
if sys.argv[1:2] != ["load"]:
    sys.exit("fake fortio: only 'load' is supported")
sys.argv = ["chaosmesh", *sys.argv[1:]]
main()
"""

FAKE_PILOT_AGENT = f"""#!{sys.executable}
import subprocess
import sys
if sys.argv[1:] != ["request", "GET", "stats"]:
    sys.exit("fake pilot-agent: unexpected arguments " + " ".join(sys.argv[1:]))
sys.stdout.write({TEXT_STATS!r})
"""


def _script(bin_dir: Path, name: str, text: str) -> None:
    path = bin_dir / name
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Cluster, dict[str, Any]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir, "fortio", FAKE_FORTIO)
    _script(bin_dir, "pilot-agent", FAKE_PILOT_AGENT)
    state = Cluster(bin_dir=bin_dir)
    emulator = KubeExecEmulator(state).start()
    conf = {"kubeconfig_path": str(emulator.kubeconfig(tmp_path / "kubeconfig"))}
    try:
        yield state, conf
    finally:
        emulator.stop()


def test_fortio_load_falls_back_to_exec_of_fortio_load_json(
    cluster: tuple[Cluster, dict[str, Any]], make_target: Callable[..., Target]
) -> None:
    state, conf = cluster
    t = make_target(lambda i, *_: Reply(503 if i in (4, 11) else 200))
    res = probes.fortio_load(t.url + "/get", c=2, qps=0, n=20, configuration=conf)
    assert res["Via"] == f"mesh: exec in pod default/{POD}"
    assert res["codes"] == {200: 18, 503: 2} and res["error_rate"] == pytest.approx(0.1)
    assert res["RequestedQPS"] == "max" and res["count"] == 20 == t.count
    (call,) = state.execs
    assert call.pod == POD and call.command[:4] == ["fortio", "load", "-json", "-"]
    assert call.command[-1] == t.url + "/get" and call.protocol.endswith("channel.k8s.io")


def test_failed_fortio_in_the_pod_reports_both_attempts_and_its_stderr(
    cluster: tuple[Cluster, dict[str, Any]],
) -> None:
    with pytest.raises(ActivityFailed) as info:
        probes.fortio_load("http://127.0.0.1:1/get", n=2, configuration=cluster[1])
    text = str(info.value)
    assert text.startswith("fortio_load http://127.0.0.1:1/get: service proxy failed (")
    assert 'services \\"fortio\\" not found' in text or 'services "fortio" not found' in text
    assert f"exec in pod default/{POD}: fortio load exited 1" in text
    assert "cannot reach http://127.0.0.1:1/get" in text  # the pod's own words


def test_missing_fortio_binary_in_the_pod(
    cluster: tuple[Cluster, dict[str, Any]], target: Target
) -> None:
    state, conf = cluster
    (state.bin_dir / "fortio").unlink()
    state.bin_dir.joinpath("fortio").mkdir()  # a directory: exec fails as on a bad image
    with pytest.raises(
        ActivityFailed, match=r"exec fallback failed \(exec in pod .* could not run"
    ):
        probes.fortio_load(target.url, n=2, configuration=conf)
    assert target.count == 0


def test_breaker_stats_fall_back_to_pilot_agent_request_get_stats(
    cluster: tuple[Cluster, dict[str, Any]],
) -> None:
    state, conf = cluster
    stats = probes.breaker_stats("httpbin", port=8000, configuration=conf)
    assert stats["clusters"] == [HTTPBIN]
    assert (stats["pending_overflow"], stats["cx_overflow"], stats["rq_total"]) == (3, 2, 17)
    (call,) = state.execs
    assert call.container == "istio-proxy"
    assert call.command == ["pilot-agent", "request", "GET", "stats"]


def test_breaker_stats_when_neither_path_works(cluster: tuple[Cluster, dict[str, Any]]) -> None:
    state, conf = cluster
    (state.bin_dir / "pilot-agent").write_text("#!/bin/sh\necho 'no admin' >&2\nexit 7\n")
    with pytest.raises(ActivityFailed) as info:
        probes.breaker_stats("httpbin", configuration=conf)
    text = str(info.value)
    assert text.startswith("breaker_stats httpbin: Envoy stats of pod default/")
    assert "HTTP 503" in text and "pilot-agent request exited 7: no admin" in text


def test_an_exec_that_never_answers_is_bounded(cluster: tuple[Cluster, dict[str, Any]]) -> None:
    state, conf = cluster
    state.hang_exec = True
    api = api_client(conf)
    try:
        with pytest.raises(remote.RemoteError, match=r"did not finish within .*never established"):
            remote.exec_in_pod(api, POD, "default", command=["fortio", "version"], timeout=0.5)
    finally:
        api.close()


def test_chaosmesh_load_via_mesh_runs_in_the_fortio_pod(
    cluster: tuple[Cluster, dict[str, Any]], make_target: Callable[..., Target]
) -> None:
    state, conf = cluster
    t = make_target(lambda i, *_: Reply(503 if i == 2 else 200))
    proc = subprocess.run(
        [sys.executable, "-m", "chaosmesh_ext.cli", "load", "--via", "mesh",
         "--kubeconfig", conf["kubeconfig_path"], "-c", "2", "-qps", "0", "-n", "10",
         t.url + "/get"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Code 200 : 9 (90.0 %)" in proc.stdout and "Code 503 : 1 (10.0 %)" in proc.stdout
    assert [c.command[:2] for c in state.execs] == [["fortio", "load"]] and t.count == 10


def test_chaosmesh_load_finds_the_cluster_as_the_activities_do(
    cluster: tuple[Cluster, dict[str, Any]], make_target: Callable[..., Target], tmp_path: Path
) -> None:
    """-kubeconfig, else KUBECONFIG, else ~/.kube/config (kube.client.api_client's order)."""
    _, conf = cluster
    t = make_target()
    home = tmp_path / "home"
    home.mkdir()
    base = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    args = [CHAOSMESH_BIN, "load", "-via", "mesh", "-n", "3", "-c", "1", t.url + "/get"]
    by_env = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**base, "KUBECONFIG": conf["kubeconfig_path"]})  # fmt: skip
    assert by_env.returncode == 0, by_env.stderr
    assert "Code 200 : 3 (100.0 %)" in by_env.stdout
    # A kubeconfig lying in the project's .chaosmesh/ is not picked up behind the user's back:
    # the activities would not pick it either. `chaosmesh mesh env` exports it when wanted.
    (tmp_path / ".chaosmesh").mkdir()
    (tmp_path / ".chaosmesh" / "kubeconfig").write_text(Path(conf["kubeconfig_path"]).read_text())
    none = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=base)
    assert none.returncode == 1
    assert "no Kubernetes configuration found" in none.stderr
    assert 'eval "$(chaosmesh mesh env)"' in none.stderr
    assert t.count == 3
