"""Which workload runs a Deployment, and the checks done before anything starts (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext._sidecar import Sidecar
from chaosmesh_ext.mesh.workloads import (
    WorkloadSpec,
    launch,
    replica_count,
    replica_specs,
    workload_kind,
)
from chaosmesh_ext.mesh.workloads.spec import command_line, parse_seconds


def deployment(
    name: str = "appv1",
    image: str = "xianchao/canary:v1",
    annotations: dict[str, str] | None = None,
    template_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    template: dict[str, Any] = {"spec": {"containers": [{"name": "main", "image": image}]}}
    if template_annotations is not None:
        template["metadata"] = {"annotations": template_annotations}
    meta: dict[str, Any] = {"name": name, "namespace": "istio-test"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {"template": template},
    }


@pytest.mark.parametrize(
    ("image", "kind"),
    [
        ("xianchao/canary:v1", "echo"),  # the seed's canary
        ("nginx:1.14-alpine", "echo"),  # the seed's nginx: a proxy only when annotated
        ("docker.io/kubeguide/tomcat-app:v1", "echo"),
        ("docker.io/kennethreitz/httpbin", "httpbin"),
        ("mccutchen/go-httpbin:v2", "httpbin"),
        ("fortio/fortio:latest_release", "fortio"),
        ("httpbin.registry.example/team/web:1", "echo"),  # the registry host is not the image
    ],
)
def test_kind_from_image(image: str, kind: str) -> None:
    assert workload_kind(deployment(image=image)) == kind


def test_annotation_beats_image_and_template_beats_deployment() -> None:
    assert (
        workload_kind(deployment(image="nginx", annotations={"chaosmesh.io/workload": "proxy"}))
        == "proxy"
    )
    both = deployment(
        image="kennethreitz/httpbin",
        annotations={"chaosmesh.io/workload": "echo"},
        template_annotations={"chaosmesh.io/workload": "Command"},
    )
    assert workload_kind(both) == "command"


def test_unknown_annotation_names_deployment_and_annotation() -> None:
    with pytest.raises(ValueError) as err:
        workload_kind(deployment(name="nginx", annotations={"chaosmesh.io/workload": "nginx"}))
    message = str(err.value)
    assert "Deployment istio-test/nginx" in message
    assert "metadata.annotations[chaosmesh.io/workload]" in message
    assert "'nginx'" in message


def spec(tmp_path: Path, kind: str, annotations: dict[str, str], port: int = 8080) -> WorkloadSpec:
    return WorkloadSpec(
        kind=kind,
        deployment="nginx",
        namespace="istio-test",
        pod="nginx-0",
        port=port,
        log_path=tmp_path / "w.log",
        annotations=annotations,
    )


@pytest.mark.parametrize(
    ("kind", "annotations", "expected"),
    [
        ("proxy", {}, "needs the annotation chaosmesh.io/upstream"),
        (
            "proxy",
            {"chaosmesh.io/upstream": "https://tomcat-svc"},
            "chaosmesh.io/upstream: expected an http:// URL",
        ),
        (
            "proxy",
            {"chaosmesh.io/upstream": "http://tomcat-svc:99999"},
            "chaosmesh.io/upstream: not a valid URL",
        ),
        (
            "proxy",
            {"chaosmesh.io/upstream": "http://details:9080, https://reviews:9080"},
            "chaosmesh.io/upstream: expected an http:// URL with a host, got 'https://reviews",
        ),
        (
            "proxy",
            {"chaosmesh.io/upstream": " , "},
            "chaosmesh.io/upstream: expected one or more http:// URLs",
        ),
        (
            "proxy",
            {"chaosmesh.io/upstream": "http://t:8080", "chaosmesh.io/proxy-timeout": "soon"},
            "chaosmesh.io/proxy-timeout: expected a duration",
        ),
        (
            "proxy",
            {"chaosmesh.io/upstream": "http://t:8080", "chaosmesh.io/proxy-timeout": "0s"},
            "chaosmesh.io/proxy-timeout: must be greater than 0",
        ),
        ("command", {}, "needs the annotation chaosmesh.io/command"),
        (
            "command",
            {"chaosmesh.io/command": "python 'unclosed"},
            "chaosmesh.io/command: cannot split",
        ),
        ("nginx", {}, "unknown workload 'nginx'"),
    ],
)
def test_bad_spec_is_refused_before_anything_starts(
    tmp_path: Path, kind: str, annotations: dict[str, str], expected: str
) -> None:
    with pytest.raises(ValueError) as err:
        launch(spec(tmp_path, kind, annotations))
    assert expected in str(err.value)
    assert "nginx" in str(err.value)
    assert not (tmp_path / "w.log").exists()  # no process was started


def test_port_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"port: must be in 1\.\.65535, got 0"):
        launch(spec(tmp_path, "echo", {}, port=0))


def test_proxy_command_line_carries_upstream_timeout_and_sidecar(tmp_path: Path) -> None:
    s = WorkloadSpec(
        kind="proxy",
        deployment="nginx",
        namespace="istio-test",
        pod="nginx-0",
        port=8080,
        log_path=tmp_path / "w.log",
        version="v1",
        annotations={
            "chaosmesh.io/upstream": "http://tomcat-svc:8080",
            "chaosmesh.io/proxy-timeout": "1500ms",
        },
        sidecar=Sidecar(
            outbound={8080: ("127.0.0.1", 15001)}, workload="nginx", namespace="istio-test"
        ),
    )
    argv, env = command_line(s)
    assert argv[argv.index("--upstream") + 1] == "http://tomcat-svc:8080"
    assert argv[argv.index("--version") + 1] == "v1"  # the proxy answers with its own version
    assert float(argv[argv.index("--timeout") + 1]) == 1.5
    assert env["CHAOSMESH_OUTBOUND"] == '{"8080": "127.0.0.1:15001"}'
    assert '"workload": "nginx"' in env["CHAOSMESH_SOURCE"]


def test_command_gets_port_in_env(tmp_path: Path) -> None:
    argv, env = command_line(spec(tmp_path, "command", {"chaosmesh.io/command": "my-server -v"}))
    assert env["PORT"] == "8080"
    assert argv[argv.index("--command") + 1] == "my-server -v"


@pytest.mark.parametrize(
    ("text", "seconds"), [("60s", 60.0), ("2.5s", 2.5), ("500ms", 0.5), ("1m", 60.0), ("3", 3.0)]
)
def test_parse_seconds(text: str, seconds: float) -> None:
    assert parse_seconds(text, "x") == seconds


SEED_CANARY_V2 = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "appv2", "labels": {"app": "v2"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "v2", "apply": "canary"}},
        "template": {
            "metadata": {"labels": {"app": "v2", "apply": "canary"}},
            "spec": {"containers": [{"name": "nginx", "image": "xianchao/canary:v2"}]},
        },
    },
}


def test_replica_specs_from_the_seed_canary(tmp_path: Path) -> None:
    specs = replica_specs(
        SEED_CANARY_V2, [4001, 4002], {80: ("127.0.0.1", 5000)}, tmp_path, "istio-test"
    )
    assert [(s.pod, s.port, s.kind, s.version) for s in specs] == [
        ("appv2-0", 4001, "echo", "v2"),
        ("appv2-1", 4002, "echo", "v2"),
    ]
    first = specs[0]
    assert first.namespace == "istio-test"
    assert first.labels == {"app": "v2", "apply": "canary"}
    assert first.sidecar.identity_headers()["x-chaosmesh-source-workload"] == "appv2"
    assert first.sidecar.connect_address("canary", 80) == ("127.0.0.1", 5000)
    assert first.log_path == tmp_path / "istio-test.appv2-0.log"


def test_replica_specs_reject_wrong_port_count_and_bad_replicas(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2 replicas need 2 ports, got 1"):
        replica_specs(SEED_CANARY_V2, [4001], {}, tmp_path)
    bad = {**SEED_CANARY_V2, "spec": {**SEED_CANARY_V2["spec"], "replicas": "two"}}  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"Deployment default/appv2: spec\.replicas"):
        replica_count(bad)


def test_upstream_lists_parse_in_order() -> None:
    from chaosmesh_ext.mesh.workloads.upstream import Upstream, parse_upstreams

    assert parse_upstreams("http://details:9080,\n  http://reviews:9080/api ", "x") == [
        Upstream("details", 9080, ""),
        Upstream("reviews", 9080, "/api"),
    ]
    assert parse_upstreams("http://nginx", "x") == [Upstream("nginx", 80, "")]
