"""The runbook's experiments, run as users run them, on the embedded mesh with real Envoy.

- ``chaosmesh run experiments/*.json`` (what ``make run`` does): every experiment completes
  without deviating, and afterwards every Istio object is exactly as its manifest defines it.
- The Kubernetes path: the same files with ``MESH_TARGET=kubernetes`` against a Kubernetes
  API (the embedded mesh's, reached through a plain kubeconfig), as on a cluster.
- A run killed with SIGKILL in the middle of its method leaves a fault behind;
  ``chaosmesh restore`` puts every object back as the manifests define it.
- Each experiment passes ``chaos validate``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
MANIFESTS = EXPERIMENTS / "manifests"
CLI = [sys.executable, "-m", "chaosmesh_ext.cli"]
CHAOS = str(Path(sys.executable).with_name("chaos"))
ISTIO_KINDS = {
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "Gateway": "gateways",
}
# Which namespace each manifest file goes to (the canary's FQDNs name istio-test).
NAMESPACES = {"canary.yaml": "istio-test"}

pytestmark = [pytest.mark.envoy, pytest.mark.slow]

# The timeout experiment checks Istio's metrics in a real Prometheus (Debian `prometheus`).
needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="the prometheus binary is not installed (make install puts it there as root)",
)


def _run(
    cmd: list[str], env: dict[str, str], timeout: float = 240, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "KUBE"))}
    env.update(
        CHAOSMESH_STATE_DIR=str(tmp / "mesh"),
        CHAOSMESH_LEDGER_DIR=str(tmp / "ledger"),
        HOME=str(tmp),
    )
    env.update(extra)
    return env


def _istio_objects_in_manifests() -> list[tuple[str, dict[str, Any]]]:
    """(namespace, object) for every Istio object the experiments load."""
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in ISTIO_KINDS:
                found.append((NAMESPACES.get(path.name, "default"), doc))
    return found


def _live(kubeconfig: str, ns: str, kind: str, name: str) -> dict[str, Any]:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=kubeconfig)
    try:
        obj: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "networking.istio.io", "v1", ns, ISTIO_KINDS[kind], name, _request_timeout=10
        )
        return obj
    finally:
        api.close()


def assert_objects_as_manifests(kubeconfig: str) -> None:
    """Every Istio object has exactly its manifest's spec, labels and no annotations of ours."""
    for ns, doc in _istio_objects_in_manifests():
        name = doc["metadata"]["name"]
        live = _live(kubeconfig, ns, doc["kind"], name)
        where = f"{doc['kind']} {ns}/{name}"
        assert live["spec"] == doc["spec"], f"{where}: spec differs from its manifest"
        assert (live["metadata"].get("labels") or {}) == (doc["metadata"].get("labels") or {}), (
            where
        )
        annotations = live["metadata"].get("annotations") or {}
        assert annotations == (doc["metadata"].get("annotations") or {}), (
            f"{where}: annotations left behind: {annotations}"
        )


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An embedded mesh with every experiment's manifests loaded, stopped afterwards."""
    env = _env(tmp_path)
    state_dir = tmp_path / "mesh"
    files = sorted(MANIFESTS.glob("*.yaml"))
    try:
        for ns in sorted({NAMESPACES.get(f.name, "default") for f in files}):
            group = [f for f in files if NAMESPACES.get(f.name, "default") == ns]
            args = ["mesh", "up", "--state-dir", str(state_dir), "--namespace", ns]
            if shutil.which("prometheus"):
                args.append("--prometheus")  # used by the first call, which starts the mesh
            for f in group:
                args += ["-f", str(f)]
            proc = _run([*CLI, *args], env, timeout=120)
            assert proc.returncode == 0, proc.stderr
        state = json.loads((state_dir / "mesh.json").read_text())
        yield {"state": state, "env": env, "tmp": tmp_path}
    finally:
        _run([*CLI, "mesh", "down", "--state-dir", str(state_dir)], env, timeout=60)


def _journals(directory: Path) -> dict[str, dict[str, Any]]:
    return {
        p.stem: json.loads(p.read_text())
        for p in directory.glob("*.json")
        if p.name != "summary.json"
    }


def _assert_all_completed(proc: subprocess.CompletedProcess[str], journals: Path) -> None:
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    found = _journals(journals)
    expected = {p.stem for p in EXPERIMENTS.glob("*.json")}
    assert set(found) == expected
    for name, journal in found.items():
        assert journal["status"] == "completed", f"{name}: {journal['status']}"
        assert journal["deviated"] is False, name
    assert "completed" in proc.stdout and "worst p99" in proc.stdout


def test_every_experiment_passes_chaos_validate(tmp_path: Path) -> None:
    env = _env(tmp_path)
    for experiment in sorted(EXPERIMENTS.glob("*.json")):
        proc = _run(
            [CHAOS, "--no-log-file", "validate", str(experiment)], env, timeout=60, cwd=EXPERIMENTS
        )
        assert proc.returncode == 0, f"{experiment.name}: {proc.stdout}{proc.stderr}"


@needs_prometheus
def test_make_run_path_completes_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """`chaosmesh run` on the embedded target: each experiment's control loads its manifests."""
    env = _env(tmp_path)
    journals = tmp_path / "journals"
    state_dir = tmp_path / "mesh"
    try:
        proc = _run(
            [
                *CLI,
                "run",
                "--journals",
                str(journals),
                "--state-dir",
                str(state_dir),
                "--keep-mesh",
                *map(str, sorted(EXPERIMENTS.glob("*.json"))),
            ],
            env,
            timeout=600,
        )
        _assert_all_completed(proc, journals)
        state = json.loads((state_dir / "mesh.json").read_text())
        assert_objects_as_manifests(state["kubeconfig"])
        # The numbers the runbook is about, as the journals recorded them.
        runs = _journals(journals)
        rollout = next(
            r["output"]
            for r in runs["progressive-canary"]["run"]
            if r["activity"]["name"] == "progressive-rollout-of-v2"
        )
        assert rollout["promoted"] is False and rollout["max_canary_weight"] == 10
        retries = {r["activity"]["name"]: r["output"] for r in runs["abort-retries"]["run"]}
        default = retries["nginx-upstream-counters-default-retryOn"]["rq_retry"]
        with_5xx = retries["nginx-upstream-counters-retryOn-5xx"]["rq_retry"]
        assert default == 0 and with_5xx >= 3 * 20
    finally:
        _run([*CLI, "mesh", "down", "--state-dir", str(state_dir)], env, timeout=60)


@needs_prometheus
def test_kubernetes_path_against_a_kubernetes_api(mesh: dict[str, Any]) -> None:
    """MESH_TARGET=kubernetes: no mesh management, only the kubeconfig, as on a cluster."""
    state = mesh["state"]
    gateway = state["gateways"][0]["url"]
    env = {
        **mesh["env"],
        "KUBECONFIG": state["kubeconfig"],
        "MESH_GATEWAY_URL": gateway,
        "PROMETHEUS_URL": state["prometheus_url"],
        "MESH_TARGET": "kubernetes",
    }
    # A state dir with no mesh in it: the kubernetes path must not start or need one.
    env["CHAOSMESH_STATE_DIR"] = str(mesh["tmp"] / "no-mesh-here")
    journals = mesh["tmp"] / "journals-k8s"
    proc = _run(
        [
            *CLI,
            "run",
            "--target",
            "kubernetes",
            "--journals",
            str(journals),
            *map(str, sorted(EXPERIMENTS.glob("*.json"))),
        ],
        env,
        timeout=600,
    )
    _assert_all_completed(proc, journals)
    assert not (mesh["tmp"] / "no-mesh-here" / "mesh.json").exists()
    assert_objects_as_manifests(state["kubeconfig"])


def _start_and_wait_for_fault(mesh: dict[str, Any], run_id: str) -> subprocess.Popen[bytes]:
    """`chaos run` the partial-delay experiment; return once its fault is on tomcat-vs."""
    state = mesh["state"]
    env = {**mesh["env"], "MESH_TARGET": "embedded", "CHAOSMESH_RUN_ID": run_id}
    proc = subprocess.Popen(
        [
            CHAOS,
            "run",
            "--journal-path",
            str(mesh["tmp"] / f"{run_id}.json"),
            "latency-slo-partial-delay.json",
        ],
        cwd=EXPERIMENTS,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            vs = _live(state["kubeconfig"], "default", "VirtualService", "tomcat-vs")
            if vs["spec"]["http"][0].get("fault"):
                return proc
            assert proc.poll() is None, "chaos run ended before its fault was injected"
            time.sleep(0.1)
        pytest.fail("the delay fault never appeared on tomcat-vs")
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        raise


def test_sigterm_during_a_load_probe_interrupts_the_run_and_restores(
    mesh: dict[str, Any],
) -> None:
    """SIGTERM while fortio load runs: the run stops (status interrupted), the control restores."""
    proc = _start_and_wait_for_fault(mesh, "terminated-run")
    try:
        time.sleep(1.0)  # inside the method's 4 s open-loop load
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    journal = json.loads((mesh["tmp"] / "terminated-run.json").read_text())
    assert journal["status"] == "interrupted", journal["status"]
    # No "after" hypothesis ran with the fault still in place.
    assert not (journal.get("steady_states") or {}).get("after")
    if not _chaoslib_at_least(journal, (1, 45)):
        # chaoslib 1.44 (chaostoolkit 1.19, Python 3.11) turns an interruption inside an
        # activity into that activity's failure and would play on; the safety-net control
        # stops the run after it (stop_on_failure).
        interrupted = [r for r in journal["run"] if "InterruptExecution" in str(r.get("exception"))]
        assert interrupted, journal["run"]
    assert_objects_as_manifests(mesh["state"]["kubeconfig"])


def _chaoslib_at_least(journal: dict[str, Any], version: tuple[int, int]) -> bool:
    parts = str(journal.get("chaoslib-version", "0.0")).split(".")
    return (int(parts[0]), int(parts[1])) >= version


def test_killed_run_is_restored_by_chaosmesh_restore(mesh: dict[str, Any]) -> None:
    state = mesh["state"]
    proc = _start_and_wait_for_fault(mesh, "killed-run")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    # The kill left the fault in place; restore lists it, then puts it back.
    env = {**mesh["env"], "KUBECONFIG": state["kubeconfig"]}
    listed = _run([*CLI, "restore", "--list"], env, timeout=60)
    assert listed.returncode == 0 and "tomcat-vs" in listed.stdout, listed.stdout + listed.stderr
    restored = _run([*CLI, "restore"], env, timeout=60)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert_objects_as_manifests(state["kubeconfig"])
