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

import contextlib
import datetime
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kapi import wait_until
from tests.support.kubefix import canonical
from tests.support.tools import require_tool

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


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def assert_objects_as_manifests(kubeconfig: str) -> None:
    """Every Istio object has exactly its manifest's spec, labels and annotations (none of ours
    left behind), compared as canonical JSON text: 90 is not 90.0, absent is not empty."""
    for ns, doc in _istio_objects_in_manifests():
        name = doc["metadata"]["name"]
        live = _live(kubeconfig, ns, doc["kind"], name)
        where = f"{doc['kind']} {ns}/{name}"
        assert canonical(live["spec"]) == canonical(doc["spec"]), f"{where}: spec differs"
        annotations = dict(live["metadata"].get("annotations") or {})
        # `mesh up -f` applies as `kubectl apply` does: the object carries what was applied.
        applied = json.loads(annotations.pop(LAST_APPLIED))
        assert canonical(applied["spec"]) == canonical(doc["spec"]), f"{where}: last-applied"
        got_fields = {"labels": live["metadata"].get("labels"), "annotations": annotations or None}
        for field, got in got_fields.items():
            manifest = doc["metadata"].get(field)
            assert canonical(got) == canonical(manifest), f"{where}: {field} {got} != {manifest}"


@contextlib.contextmanager
def _mesh(tmp_path: Path, prometheus: bool) -> Iterator[dict[str, Any]]:
    """An embedded mesh with every experiment's manifests loaded, stopped afterwards."""
    env = _env(tmp_path)
    state_dir = tmp_path / "mesh"
    files = sorted(MANIFESTS.glob("*.yaml"))
    try:
        for ns in sorted({NAMESPACES.get(f.name, "default") for f in files}):
            group = [f for f in files if NAMESPACES.get(f.name, "default") == ns]
            args = ["mesh", "up", "--state-dir", str(state_dir), "--namespace", ns]
            if prometheus:
                args.append("--prometheus")  # used by the first call, which starts the mesh
            for f in group:
                args += ["-f", str(f)]
            proc = _run([*CLI, *args], env, timeout=120)
            assert proc.returncode == 0, proc.stderr
        state = json.loads((state_dir / "mesh.json").read_text())
        yield {"state": state, "env": env, "tmp": tmp_path}
    finally:
        _run([*CLI, "mesh", "down", "--state-dir", str(state_dir)], env, timeout=60)


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with _mesh(tmp_path, prometheus=False) as running:
        yield running


@pytest.fixture
def mesh_with_prometheus(tmp_path: Path) -> Iterator[dict[str, Any]]:
    # The timeout experiment checks Istio's metrics in a real Prometheus (Debian `prometheus`).
    require_tool("prometheus")
    with _mesh(tmp_path, prometheus=True) as running:
        yield running


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


def test_make_run_path_completes_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """`chaosmesh run` on the embedded target: each experiment's control loads its manifests."""
    require_tool("prometheus")  # the timeout experiment reads Istio's metrics from it
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
        assert_breaker_sizing_contrast(runs["breaker-sizing"])
        assert_pod_kill_contrast(runs["pod-kill-retries"])
    finally:
        _run([*CLI, "mesh", "down", "--state-dir", str(state_dir)], env, timeout=60)


def assert_breaker_sizing_contrast(journal: dict[str, Any]) -> None:
    """The same surge of 240 requests/s (twice the checkout's capacity: 12 workers x 100 ms)
    without a breaker and with the advised one, as the journal recorded them."""
    method = {r["activity"]["name"]: r["output"] for r in journal["run"]}
    unprotected = method["without-a-breaker-the-same-2s-surge-of-240-qps"]
    applied = method["measure-the-knee-and-apply-the-advised-breaker"]
    after = {
        p["activity"]["name"]: p["output"] for p in journal["steady_states"]["after"]["probes"]
    }
    protected = after["a-surge-of-240-qps-twice-the-knee"]
    # Without: nothing shed; at twice the capacity for 2 s the last requests wait ~2 s.
    assert "503" not in unprotected["codes"]
    assert unprotected["ok_p99_ms"] > 3 * 500
    # With: the advice came from the knee measured in the run, and the same surge is split
    # into admitted requests within the 500 ms SLO and 503s shed at once, all counted.
    knee = applied["knee_search"]["knee"]
    limit = applied["advice"]["trafficPolicy"]["connectionPool"]["http"]["http2MaxRequests"]
    assert knee["qps"] >= 80 and limit >= knee["concurrency"]
    assert applied["change"]["changed"] is True
    assert protected["ok_p99_ms"] <= 500 and protected["codes"]["503"] > 0
    counters = after["the-sidecar-counted-what-it-shed"]
    assert counters["shed"] >= protected["codes"]["503"]
    # The breaker's own 503s are no gateway errors: outlier detection ejected no pod.
    assert counters["ejections_total"] == 0
    assert journal["steady_states"]["after"]["steady_state_met"] is True
    assert journal["steady_states"]["before"] is None  # checked after the method only


def assert_pod_kill_contrast(journal: dict[str, Any]) -> None:
    """One replica of three deleted under 100 calls/s, twice: with Istio's default retries the
    calls it was serving fail (503); retrying resets, none does — the retries show in the
    caller's sidecar."""
    method = {r["activity"]["name"]: r["output"] for r in journal["run"]}
    default = method["calls-while-a-replica-dies-default-retries"]["codes"]
    retrying = method["calls-while-a-replica-dies-retrying-resets"]["codes"]
    assert default.get("503", 0) >= 1 and set(default) == {"200", "503"}
    assert set(retrying) == {"200"}
    retries = (
        method["catalog-retries-after"]["rq_retry"] - method["catalog-retries-before"]["rq_retry"]
    )
    assert retries >= 1
    killed = [
        method["delete-one-replica-during-the-load"],
        method["delete-another-replica-during-the-load"],
    ]
    assert all(len(pods) == 1 for pods in killed) and killed[0] != killed[1]
    assert method["second-replacement-ready"] is True
    assert journal["steady_states"]["after"]["steady_state_met"] is True


def test_kubernetes_path_against_a_kubernetes_api(mesh_with_prometheus: dict[str, Any]) -> None:
    """MESH_TARGET=kubernetes: no mesh management, only the kubeconfig, as on a cluster."""
    mesh = mesh_with_prometheus
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
    assert_breaker_sizing_contrast(_journals(journals)["breaker-sizing"])
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
    # The run's ledger says when the fault landed (entry "applied"; "restored" once the
    # rollback ran): a local file, read in a millisecond, where an API round trip per poll
    # could miss the few seconds the fault is in place on a loaded machine.
    ledger = mesh["tmp"] / "ledger" / f"{run_id}.json"

    def fault_states() -> list[str]:
        try:
            entries = json.loads(ledger.read_text())["entries"]
        except (OSError, ValueError):
            return []  # not written yet, or being replaced
        return [e["state"] for e in entries if e["name"] == "tomcat-vs"]

    try:
        landed = wait_until(lambda: "applied" in fault_states() or proc.poll() is not None, 60)
        assert landed and proc.poll() is None, f"chaos run ended first: {fault_states()}"
        vs = _live(state["kubeconfig"], "default", "VirtualService", "tomcat-vs")
        assert vs["spec"]["http"][0]["fault"]["delay"]["fixedDelay"] == "100ms"
        return proc
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        raise


def _requests_since(state_dir: Path, since: datetime.datetime) -> int:
    """Requests Envoy logged (access.jsonl) that started at or after ``since``."""
    path = state_dir / "access.jsonl"
    if not path.exists():
        return 0
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]  # Envoy may be writing the last line right now
    started = (
        datetime.datetime.fromisoformat(json.loads(line)["start_time"].replace("Z", "+00:00"))
        for line in complete.splitlines()
        if line.strip()
    )
    return sum(1 for t in started if t >= since)


def test_sigterm_during_a_load_probe_interrupts_the_run_and_restores(
    mesh: dict[str, Any],
) -> None:
    """SIGTERM while fortio load runs: the run stops (status interrupted), the control restores."""
    proc = _start_and_wait_for_fault(mesh, "terminated-run")
    fault_seen = datetime.datetime.now(datetime.UTC)
    try:
        # The method's load (100 qps for 4 s, after the fault) is running once Envoy logs its
        # requests: 20 of them is 0.2 s in, far from its end.
        loaded = wait_until(lambda: _requests_since(mesh["tmp"] / "mesh", fault_seen) >= 20, 30)
        assert loaded and proc.poll() is None, "the method's load never started"
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    journal = json.loads((mesh["tmp"] / "terminated-run.json").read_text())
    # What a user sees on both chaoslib versions: the load probe that was running when the
    # signal came is the run's last activity and has no result; the rollback ran and put the
    # fault back; the objects are as their manifests say.
    *done, interrupted = journal["run"]
    assert [r["activity"]["name"] for r in done] == ["delay-10-percent-of-tomcat-calls"]
    assert interrupted["activity"]["name"] == "nginx-latency-under-the-delay"
    assert interrupted.get("output") is None and interrupted.get("status") != "succeeded"
    (rollback,) = journal["rollbacks"]
    assert rollback["status"] == "succeeded"
    assert [(o["object"], o["result"]) for o in rollback["output"]["objects"]] == [
        ("VirtualService default/tomcat-vs", "restored")
    ]
    # Both versions stop the run: interrupted, no "after" hypothesis with the fault in place.
    assert (journal["status"], journal["deviated"]) == ("interrupted", False)
    assert (journal.get("steady_states") or {}).get("after") is None
    if _chaoslib_at_least(journal, (1, 45)):
        assert "status" not in interrupted
    else:
        # chaoslib 1.44 (chaostoolkit 1.19, Python 3.11) turns the interruption into the
        # probe's failure and would play on; the safety-net control stops the run after it
        # (stop_on_failure).
        assert interrupted["status"] == "failed"
        assert 'InterruptExecution("SIGTERM signal received")' in str(interrupted["exception"])
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
