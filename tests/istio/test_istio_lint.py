"""lint: the seed's files, and each kind of mistake it must catch, with file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from chaosmesh_ext.istio.lint import ERROR, INFO, WARNING, Finding, lint_objects, lint_paths

from .seed import FIXTURES


def write(tmp_path: Path, text: str, name: str = "objects.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


SERVICES = """\
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{port: 9080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1}
spec:
  template:
    metadata:
      labels: {app: reviews, version: v1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
"""


def test_the_seed_retry_section_is_caught(tmp_path: Path) -> None:
    findings = lint_paths([FIXTURES / "retry"])
    errors = [f for f in findings if f.severity == ERROR]
    vs_file = str(FIXTURES / "retry" / "virtual-retry.yaml")
    assert [(f.file, f.line, f.kind, f.name, f.field) for f in errors] == [
        (vs_file, 7, "VirtualService", "nginx-svc", "spec.hosts[0]"),
        (vs_file, 22, "VirtualService", "tomcat-svc", "spec.hosts[0]"),
    ]
    assert "'nginx-vs' matches no Service" in errors[0].message
    assert "'tomcat-vs' matches no Service" in errors[1].message
    infos = [f for f in findings if f.severity == INFO]
    assert [(f.name, f.field) for f in infos] == [("nginx-svc", "spec.http[0].retries")]
    assert "since Istio 1.24 503 is not retried unless retryOn names it" in infos[0].message
    assert "tomcat-svc" in infos[0].message


def test_the_other_seed_sections_are_clean() -> None:
    assert lint_paths([FIXTURES / "canary"], namespace="istio-test") == []
    assert lint_paths([FIXTURES / "circuit-breaking"]) == []
    assert lint_paths([FIXTURES / "timeout"]) == []


def test_the_canary_applied_to_the_wrong_namespace_points_at_its_hosts() -> None:
    findings = lint_paths([FIXTURES / "canary"])  # namespace "default", hosts say istio-test
    assert sorted((f.kind, f.field) for f in findings) == [
        ("DestinationRule", "spec.host"),
        ("VirtualService", "spec.http[0].route[0].destination.host"),
        ("VirtualService", "spec.http[0].route[1].destination.host"),
    ]
    assert all(f.severity == ERROR for f in findings)


def test_the_runbooks_explanation_slips_are_caught() -> None:
    findings = lint_paths([FIXTURES / "slips"])
    got = {(f.severity, f.name, f.field, f.line) for f in findings}
    assert got == {
        (WARNING, "tomcat-vs", "spec.http[0].fault.delay.percentage", 12),
        (ERROR, "tomcat-vs", "spec.http[0].fault.delay.value", 13),
        (ERROR, "nginx-vs", "spec.http[0].reties", 32),
    }
    warning = next(f for f in findings if f.severity == WARNING)
    assert "0% of requests" in warning.message


def test_missing_gateway_subset_and_destination(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SERVICES
        + """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  gateways: [mesh, edge]
  http:
  - route:
    - destination: {host: reviews, subset: v3}
      weight: 50
    - destination: {host: ratings}
      weight: 50
""",
    )
    findings = lint_paths([path])
    assert {(f.field, f.line) for f in findings} == {
        ("spec.gateways[1]", 30),
        ("spec.http[0].route[0].destination.subset", 33),
        ("spec.http[0].route[1].destination.host", 35),
    }
    by_field = {f.field: f.message for f in findings}
    assert "gateway 'edge' not found (no Gateway default/edge)" in by_field["spec.gateways[1]"]
    assert "subset 'v3' is not defined" in by_field["spec.http[0].route[0].destination.subset"]
    assert "(defined: v1)" in by_field["spec.http[0].route[0].destination.subset"]
    assert (
        "'ratings' (ratings.default.svc.cluster.local) has no Service"
        in by_field["spec.http[0].route[1].destination.host"]
    )


def test_two_virtual_services_for_one_host_on_the_mesh(tmp_path: Path) -> None:
    vs = """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}}}
spec:
  hosts: [{host}]
  http:
  - route:
    - destination: {{host: reviews}}
"""
    path = write(
        tmp_path,
        SERVICES
        + vs.format(name="a", host="reviews")
        + vs.format(name="b", host="reviews.default.svc.cluster.local"),
    )
    findings = lint_paths([path])
    assert sorted((f.name, f.field, f.severity) for f in findings) == [
        ("a", "spec.hosts", ERROR),
        ("b", "spec.hosts", ERROR),
    ]
    assert "also routed by VirtualService default/b" in findings[0].message


def test_subset_selecting_no_workload_and_outlier_hints(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SERVICES.replace(
            "  subsets:\n",
            """\
  trafficPolicy:
    outlierDetection: {consecutiveErrors: 5}
  subsets:
  - name: v2
    labels: {version: v2}
""",
        ),
    )
    findings = {(f.severity, f.field): f.message for f in lint_paths([path])}
    assert set(findings) == {
        (WARNING, "spec.subsets[0].labels"),
        (WARNING, "spec.trafficPolicy.outlierDetection.consecutiveErrors"),
        (INFO, "spec.trafficPolicy.outlierDetection.maxEjectionPercent"),
    }
    assert (
        "no workload in namespace default has labels app=reviews, version=v2"
        in findings[(WARNING, "spec.subsets[0].labels")]
    )


def test_retries_on_a_route_to_an_aborted_service(tmp_path: Path) -> None:
    text = (
        SERVICES
        + """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-fault}
spec:
  hosts: [reviews]
  http:
  - fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-gw}
spec:
  hosts: [shop.example.com]
  gateways: [edge]
  http:
  - retries: {attempts: 3, retryOn: RETRY_ON}
    route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
"""
    )
    not_503 = lint_paths([write(tmp_path, text.replace("RETRY_ON", "connect-failure"))])
    assert [(f.severity, f.name, f.field) for f in not_503] == [
        (INFO, "reviews-fault", "spec.http[0].fault"),
        (INFO, "reviews-gw", "spec.http[0].retries.retryOn"),
    ]  # and no complaint about the external host served through the gateway
    assert "reach this service via VirtualService default/reviews-gw" in not_503[0].message
    assert "injects abort 503 on this route's destination" in not_503[1].message
    with_5xx = lint_paths([write(tmp_path, text.replace("RETRY_ON", '"5xx"'))])
    assert [f.name for f in with_5xx] == ["reviews-fault"]


def test_a_routes_own_fault_defeats_its_retries_and_timeout(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SERVICES
        + """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    timeout: 1s
    retries: {attempts: 2, retryOn: 5xx}
    fault:
      abort: {httpStatus: 503, percentage: {value: 50}}
      delay: {fixedDelay: 5s, percentage: {value: 50}}
""",
    )
    findings = {f.field: f for f in lint_paths([path])}
    assert set(findings) == {"spec.http[0].retries", "spec.http[0].timeout"}
    assert "never retried" in findings["spec.http[0].retries"].message
    assert (
        "does not count against the same route's timeout"
        in findings["spec.http[0].timeout"].message
    )
    assert {f.severity for f in findings.values()} == {WARNING}


def test_a_fault_on_a_gateway_only_virtual_service_says_what_it_reaches(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SERVICES
        + """\
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: ["*"]
  gateways: [edge]
  http:
  - fault: {delay: {fixedDelay: 1s, percentage: {value: 10}}}
    route: [{destination: {host: reviews}}]
""",
    )
    (finding,) = lint_paths([path])
    assert (finding.severity, finding.field) == (INFO, "spec.http[0].fault")
    assert "bound only to gateway(s) edge" in finding.message


def test_duplicate_keys_and_redefined_objects(tmp_path: Path) -> None:
    vs = """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    timeout: 1s
    timeout: 2s
"""
    path = write(tmp_path, SERVICES + vs)
    (finding,) = lint_paths([path])
    assert (finding.severity, finding.field, finding.line) == (ERROR, "spec.http[0].timeout", 33)
    assert finding.message.startswith("duplicate key 'timeout' (first at line 32)")
    same = write(tmp_path, vs.replace("    timeout: 2s\n", ""), "again.yaml")
    other = write(tmp_path, vs.replace("    timeout: 2s\n", "").replace("1s", "3s"), "other.yaml")
    assert lint_paths([write(tmp_path, SERVICES, "svc.yaml"), same, same]) == []
    (redefined,) = lint_paths([write(tmp_path, SERVICES, "svc.yaml"), same, other])
    assert (redefined.severity, redefined.file, redefined.field) == (
        WARNING,
        str(other),
        "metadata.name",
    )
    assert f"also defined at {same}:2 with different content" in redefined.message


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "apiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n")
    (finding,) = lint_paths([path])
    assert (finding.severity, finding.file, finding.line) == (ERROR, str(path), 5)
    assert finding.message.startswith("malformed YAML at line 5")


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    (finding,) = lint_paths([tmp_path / "nope.yaml"])
    assert (finding.severity, finding.message) == (ERROR, "no such file or directory")


def test_schema_errors_come_with_the_line_of_the_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SERVICES
        + """\
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    fault:
      abort:
        httpStatus: 700
        percentage: {value: 10}
""",
    )
    (finding,) = lint_paths([path])
    assert (finding.field, finding.line) == ("spec.http[0].fault.abort.httpStatus", 34)
    assert finding.message == "HTTP status 700 is not in range 200-599"


def test_lint_objects_checks_objects_from_a_cluster() -> None:
    objs = [
        doc
        for p in sorted((FIXTURES / "retry").glob("*.yaml"))
        for doc in yaml.safe_load_all(p.read_text())
    ]
    findings = lint_objects(objs)
    assert [
        (f.severity, f.name, f.field, f.file, f.line) for f in findings if f.severity == ERROR
    ] == [
        (ERROR, "nginx-svc", "spec.hosts[0]", "", None),
        (ERROR, "tomcat-svc", "spec.hosts[0]", "", None),
    ]
    assert str(findings[0]).startswith(
        "<objects>: error: VirtualService default/nginx-svc: spec.hosts[0]: "
    )


def test_list_kind_and_other_kinds(tmp_path: Path) -> None:
    items = [yaml.safe_load(d) for d in SERVICES.split("---\n")]
    items.append(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}}
    )
    path = tmp_path / "list.json"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    assert lint_paths([tmp_path]) == []


def test_finding_as_dict() -> None:
    f = Finding(
        ERROR,
        "a.yaml",
        "Gateway",
        "default",
        "gw",
        "spec.servers",
        "gateway must have at least one server",
        3,
    )
    assert f.to_dict() == {
        "severity": "error",
        "file": "a.yaml",
        "kind": "Gateway",
        "namespace": "default",
        "name": "gw",
        "field": "spec.servers",
        "message": "gateway must have at least one server",
        "line": 3,
    }
    assert (
        str(f) == "a.yaml:3: error: Gateway default/gw: spec.servers: "
        "gateway must have at least one server"
    )
