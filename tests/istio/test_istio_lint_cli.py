"""``chaosmesh lint`` as users run it: text and JSON output, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from chaosmesh_ext.cli import main
from chaosmesh_ext.commands.lint import command

from .seed import FIXTURES


def test_the_seed_retry_section_fails_with_both_hosts_named() -> None:
    result = CliRunner().invoke(main, ["lint", "-f", str(FIXTURES / "retry")])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    vs_file = FIXTURES / "retry" / "virtual-retry.yaml"
    assert lines[0].startswith(
        f"{vs_file}:7: error: VirtualService default/nginx-svc: spec.hosts[0]: host 'nginx-vs'"
    )
    assert lines[2].startswith(
        f"{vs_file}:22: error: VirtualService default/tomcat-svc: spec.hosts[0]: host 'tomcat-vs'"
    )
    assert lines[-1] == "2 error(s), 0 warning(s), 1 info"


def test_clean_files_exit_0() -> None:
    result = CliRunner().invoke(
        command,
        [
            "-f",
            str(FIXTURES / "canary"),
            "-n",
            "istio-test",
            "-f",
            str(FIXTURES / "circuit-breaking" / "destinationrule.yaml"),
            "-f",
            str(FIXTURES / "circuit-breaking" / "httpbin.yaml"),
        ],
    )
    assert (result.exit_code, result.output) == (0, "no problems found\n")


def test_warnings_alone_exit_0(tmp_path: Path) -> None:
    text = (
        (FIXTURES / "timeout" / "virtual-tomcat.yaml").read_text().replace("value: 100", "value: 0")
    )
    (tmp_path / "vs.yaml").write_text(text)
    result = CliRunner().invoke(
        command, ["-f", str(tmp_path), "-f", str(FIXTURES / "timeout" / "services.yaml")]
    )
    assert result.exit_code == 0
    assert (
        ": warning: VirtualService default/tomcat-vs: spec.http[0].fault.delay.percentage.value: "
        in result.output
    )


def test_json_output() -> None:
    result = CliRunner().invoke(command, ["-f", str(FIXTURES / "slips"), "--format", "json"])
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["summary"] == {"error": 2, "warning": 1, "info": 0}
    assert {f["field"] for f in body["findings"]} == {
        "spec.http[0].fault.delay.percentage",
        "spec.http[0].fault.delay.value",
        "spec.http[0].reties",
    }
    assert all(f["file"].endswith("explained.yaml") and f["line"] for f in body["findings"])


def test_malformed_yaml_exits_1_with_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: [\n")
    result = CliRunner().invoke(command, ["-f", str(bad)])
    assert result.exit_code == 1
    assert result.output.startswith(f"{bad}:3: error: malformed YAML at line 3")


def test_file_is_required() -> None:
    result = CliRunner().invoke(command, [])
    assert result.exit_code == 2
    assert "Missing option '-f'" in result.output


def test_the_installed_command_runs_as_a_process() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaosmesh_ext.cli",
            "lint",
            "-f",
            str(FIXTURES / "retry"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["summary"]["error"] == 2


def test_standard_input_as_kubectl_does() -> None:
    text = (FIXTURES / "retry" / "virtual-retry.yaml").read_text()
    result = CliRunner().invoke(
        command, ["-f", "-", "-f", str(FIXTURES / "retry" / "services.yaml")], input=text
    )
    assert result.exit_code == 1
    assert result.output.startswith(
        "<stdin>:7: error: VirtualService default/nginx-svc: spec.hosts[0]: "
    )


def test_the_canary_without_its_namespace_says_which_n_to_use() -> None:
    """The runbook's canary objects name no namespace; their hosts say istio-test."""
    result = CliRunner().invoke(main, ["lint", "-f", str(FIXTURES / "canary")])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if ": error: " in line]
    assert errors and all(
        "a Service canary exists in namespace default" in line and "-n istio-test" in line
        for line in errors
    )
    fixed = CliRunner().invoke(main, ["lint", "-f", str(FIXTURES / "canary"), "-n", "istio-test"])
    assert (fixed.exit_code, fixed.output) == (0, "no problems found\n")


def test_the_experiments_manifests_lint_clean_and_the_seed_example_does_not() -> None:
    root = Path(__file__).resolve().parents[2] / "experiments"
    manifests = sorted((root / "manifests").glob("*.yaml"))
    assert manifests
    for path in manifests:
        args = ["lint", "-f", str(path)] + (["-n", "istio-test"] if path.stem == "canary" else [])
        result = CliRunner().invoke(main, args)
        assert (result.exit_code, result.output) == (0, "no problems found\n"), path
    seed = CliRunner().invoke(
        main, ["lint", "-f", str(root / "lint-examples" / "seed-retry-original.yaml")]
    )
    assert seed.exit_code == 1
    assert "VirtualService default/nginx-svc: spec.hosts[0]: host 'nginx-vs'" in seed.output
    assert "VirtualService default/tomcat-svc: spec.hosts[0]: host 'tomcat-vs'" in seed.output


# Istio's samples/bookinfo/networking, as the files people lint one at a time (same hosts,
# subsets, gateways and routes as destination-rule-all.yaml, bookinfo-gateway.yaml,
# virtual-service-all-v1.yaml, virtual-service-reviews-test-v2.yaml,
# virtual-service-ratings-test-abort.yaml and virtual-service-reviews-50-v3.yaml).
def _dr(host: str, *subsets: str) -> str:
    listed = ", ".join(f"{{name: {s}, labels: {{version: {s}}}}}" for s in subsets)
    head = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
    return head + f"metadata: {{name: {host}}}\nspec: {{host: {host}, subsets: [{listed}]}}\n"


def _vs(host: str, http: str) -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            f"metadata: {{name: {host}}}\nspec:\n  hosts: [{host}]\n  http:\n{http}")  # fmt: skip


def _route(host: str, subset: str, weight: int | None = None) -> str:
    extra = f", weight: {weight}" if weight is not None else ""
    return f"    - {{destination: {{host: {host}, subset: {subset}}}{extra}}}\n"


BOOKINFO_NETWORKING = {
    "destination-rule-all.yaml": "---\n".join(
        [
            _dr("productpage", "v1"),
            _dr("reviews", "v1", "v2", "v3"),
            _dr("ratings", "v1", "v2", "v2-mysql", "v2-mysql-vm"),
            _dr("details", "v1", "v2"),
        ]
    ),
    "bookinfo-gateway.yaml": (
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: bookinfo-gateway}\n"
        "spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
        "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bookinfo}\n"
        "spec:\n  hosts: ['*']\n  gateways: [bookinfo-gateway]\n  http:\n"
        "  - match: [{uri: {exact: /productpage}}, {uri: {prefix: /static}}]\n    route:\n"
        "    - destination: {host: productpage, port: {number: 9080}}\n"
    ),
    "virtual-service-all-v1.yaml": "---\n".join(
        _vs(h, "  - route:\n" + _route(h, "v1"))
        for h in ("productpage", "reviews", "ratings", "details")
    ),
    "virtual-service-reviews-test-v2.yaml": _vs(
        "reviews",
        "  - match: [{headers: {end-user: {exact: jason}}}]\n    route:\n"
        + _route("reviews", "v2")
        + "  - route:\n"
        + _route("reviews", "v1"),
    ),
    "virtual-service-ratings-test-abort.yaml": _vs(
        "ratings",
        "  - match: [{headers: {end-user: {exact: jason}}}]\n"
        "    fault: {abort: {percentage: {value: 100.0}, httpStatus: 500}}\n    route:\n"
        + _route("ratings", "v1")
        + "  - route:\n"
        + _route("ratings", "v1"),
    ),
    "virtual-service-reviews-50-v3.yaml": _vs(
        "reviews", "  - route:\n" + _route("reviews", "v1", 50) + _route("reviews", "v3", 50)
    ),
}


def _kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: m\n  cluster: {server: '" + url + "'}\n"
        "contexts:\n- name: m\n  context: {cluster: m, user: u}\ncurrent-context: m\n"
        "users:\n- name: u\n  user: {}\n"
    )
    return path


def test_bookinfo_networking_files_linted_alone_against_the_cluster(tmp_path: Path) -> None:
    """istioctl analyze's way: each file checked with what the API server already holds."""
    from chaosmesh_ext.istio.validate import validate
    from chaosmesh_ext.mesh import manifests
    from chaosmesh_ext.mesh.api import ApiServer, Store, resources
    from tests.support.cli import chaosmesh

    for name, text in BOOKINFO_NETWORKING.items():
        (tmp_path / name).write_text(text)
    bookinfo = Path(__file__).resolve().parents[2] / "experiments" / "manifests" / "bookinfo.yaml"
    loaded = manifests.classify(manifests.load([bookinfo]), "default")
    store = Store(validate=validate)
    store.set_readonly(resources.SERVICES, [manifests.with_namespace(m.obj, "default")
                                            for m in loaded.services])  # fmt: skip
    store.set_readonly(resources.DEPLOYMENTS, [manifests.with_namespace(m.obj, "default")
                                               for m in loaded.deployments])  # fmt: skip
    server = ApiServer(store).start()
    try:
        env = {"KUBECONFIG": str(_kubeconfig(tmp_path / "kubeconfig", server.url))}
        # First the files that only need Services: the DestinationRules and the gateway.
        for name in ("destination-rule-all.yaml", "bookinfo-gateway.yaml"):
            proc = chaosmesh("lint", "-f", str(tmp_path / name), env=env, cwd=tmp_path)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert "checked with" in proc.stderr and "of KUBECONFIG" in proc.stderr
        for name in ("destination-rule-all.yaml", "bookinfo-gateway.yaml"):
            objs = manifests.load([tmp_path / name])
            store.load_istio([manifests.as_applied(m.obj, "default") for m in objs], "default")
        # Each file alone (in-process for speed: the same command the entry point runs).
        runner = CliRunner()
        for name in BOOKINFO_NETWORKING:
            alone = str(tmp_path / name)
            result = runner.invoke(main, ["lint", "-f", alone], env=env)
            assert result.exit_code == 0, f"{name}: {result.output}"
            offline = runner.invoke(main, ["lint", "--use-kube=false", "-f", alone], env=env)
            if name.startswith("virtual-service"):
                assert offline.exit_code == 1, offline.output
                assert "subset" in offline.output or "no Service" in offline.output
        proc = chaosmesh("lint", "-f", str(tmp_path / "virtual-service-all-v1.yaml"), env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # A mistake is still caught, on the file, against the cluster's DestinationRules.
        bad = tmp_path / "bad.yaml"
        bad.write_text(_vs("reviews", "  - route:\n" + _route("reviews", "v9")))
        proc = chaosmesh("lint", "-f", str(bad), "--format", "json", env=env, cwd=tmp_path)
        assert proc.returncode == 1
        report = json.loads(proc.stdout)
        (error,) = [f for f in report["findings"] if f["severity"] == "error"]
        assert error["file"] == str(bad) and "v9" in error["message"]
        # An API server that cannot be reached is an error of its own, not a clean lint.
        dead = {"KUBECONFIG": str(_kubeconfig(tmp_path / "dead", "http://127.0.0.1:1"))}
        proc = chaosmesh("lint", "-f", str(bad), env=dead, cwd=tmp_path)
        assert proc.returncode == 1 and "cannot read the cluster" in proc.stderr
        assert "--use-kube=false" in proc.stderr
    finally:
        server.stop()


def test_target_decides_whether_an_unsupported_field_fails_the_lint(tmp_path: Path) -> None:
    """--target embedded (default): fields the embedded mesh refuses are errors (exit 1);
    --target cluster: the same files pass, with an info note."""
    path = tmp_path / "dr.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n"
        "  ports: [{port: 9080}]\n  selector: {app: reviews}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: reviews}\nspec:\n  host: reviews\n"
        "  workloadSelector: {matchLabels: {app: productpage}}\n"
    )
    embedded = CliRunner().invoke(command, ["-f", str(path)])
    assert embedded.exit_code == 1
    assert "error: DestinationRule default/reviews: spec.workloadSelector: not supported" in (
        embedded.output
    )
    cluster = CliRunner().invoke(command, ["-f", str(path), "--target", "cluster"])
    assert cluster.exit_code == 0
    assert "info: DestinationRule default/reviews: spec.workloadSelector: runs on a cluster" in (
        cluster.output
    )
