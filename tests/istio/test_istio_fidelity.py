"""The fidelity classes applied to objects: what the embedded mesh refuses, what it warns
about, istiod's own validation warnings, and lint's two targets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaosmesh_ext.istio import fidelity
from chaosmesh_ext.istio.lint import CLUSTER, EMBEDDED, lint_paths
from chaosmesh_ext.istio.validate import validate
from chaosmesh_ext.istio.validate_warnings import validation_warnings


def _obj(text: str) -> dict:
    return yaml.safe_load(text)


DR_TLS = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  exportTo: ["."]
  trafficPolicy:
    tls: {mode: %s}
    loadBalancer:
      localityLbSetting: {enabled: true}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 9080}
        loadBalancer: {simple: %s}
"""


def test_no_effect_fields_warn_once_each_naming_the_field():
    obj = _obj(DR_TLS % ("ISTIO_MUTUAL", "ROUND_ROBIN"))
    assert validate(obj) == []
    assert fidelity.embedded_causes(obj) == []
    assert [(c.field, c.message.split(":")[0]) for c in fidelity.no_effect_warnings(obj)] == [
        ("spec.trafficPolicy.loadBalancer.localityLbSetting", "no effect on the embedded mesh"),
        ("spec.trafficPolicy.tls", "no effect on the embedded mesh"),
        ("spec.exportTo", "no effect on the embedded mesh"),
    ]


def test_values_that_would_behave_differently_are_refused_wherever_they_sit():
    """tls.mode SIMPLE (TLS origination to a plain-HTTP workload) and PASSTHROUGH, even under
    a subset's port-level policy, are refused with the field's full path."""
    obj = _obj(DR_TLS % ("SIMPLE", "PASSTHROUGH"))
    causes = fidelity.embedded_causes(obj)
    assert [c.field for c in causes] == [
        "spec.trafficPolicy.tls.mode",
        "spec.subsets[0].trafficPolicy.portLevelSettings[0].loadBalancer.simple",
    ]
    assert causes[0].message.startswith("not supported by the embedded mesh: tls.mode SIMPLE")
    assert "would not behave as on a cluster" in causes[1].message


VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        "@request.auth.claims.group": {exact: admin}
    delegate: {name: other}
  - fault: {abort: {httpStatus: 600, percentage: {value: 5}}}
    route:
    - destination: {host: reviews}
  tcp:
  - route:
    - destination: {host: reviews}
"""


def test_virtual_service_fields_the_embedded_mesh_refuses():
    obj = _obj(VS)
    assert [c.field for c in fidelity.embedded_causes(obj)] == [
        "spec.http[0].match[0].headers.@request.auth.claims.group",
        "spec.http[0].delegate",
        "spec.http[1].fault.abort.httpStatus",
    ]
    assert [c.field for c in fidelity.no_effect_warnings(obj)] == ["spec.tcp"]


def test_gateway_modes_protocols_and_selector():
    obj = _obj("""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: a-cert}
  - port: {number: 8443, name: mtls, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: MUTUAL, credentialName: b-cert}
  - port: {number: 15443, name: tls, protocol: TLS}
    hosts: [c.example.com]
    tls: {mode: AUTO_PASSTHROUGH}
""")
    assert [c.field for c in fidelity.embedded_causes(obj)] == ["spec.servers[1].tls.mode"]
    assert [c.field for c in fidelity.no_effect_warnings(obj)] == [
        "spec.selector",
        "spec.servers[2].port.protocol",
        "spec.servers[2].tls.mode",
    ]


def test_istiod_validation_warnings():
    """validateHTTPFaultInjectionAbort, analyzeUnreachableHTTPRules, validateOutlierDetection,
    validateLoadBalancer: accepted, with istiod's words."""
    vs = _obj("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: default}
spec:
  hosts: [r]
  http:
  - name: first
    match: [{uri: {prefix: /a}}]
    fault: {abort: {percentage: {value: 10}}}
    route: [{destination: {host: r}}]
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: r}}]
  - route: [{destination: {host: r}}]
  - route: [{destination: {host: r}}]
""")
    assert validate(vs) == []
    assert [str(c) for c in validation_warnings(vs)] == [
        "spec.http[0].fault.abort: abort configured, but error type not set",
        "spec.http[1].match[0]: virtualService rule #1 match #0 is not used (duplicate/overlapping "
        'match in rule "first")',
        "spec.http[1]: virtualService rule #1 not used (all matches used by prior rules)",
        "spec.http[3]: virtualService rule #3 not used (only the last rule can have no matches)",
    ]
    dr = _obj("""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r, namespace: default}
spec:
  host: r
  trafficPolicy:
    outlierDetection: {consecutiveErrors: 5}
    loadBalancer: {consistentHash: {httpHeaderName: x, minimumRingSize: 64}}
""")
    assert [c.field for c in validation_warnings(dr)] == [
        "spec.trafficPolicy.outlierDetection.consecutiveErrors",
        "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
    ]


@pytest.mark.parametrize(
    ("redirect", "fields"),
    [
        ({"derivePort": "FROM_REQUEST_PORT"}, []),
        ({"port": 8443}, []),
        ({"uri": "/a", "prefixRewrite": "/b"}, ["spec.http[0].redirect"]),
        ({"scheme": "ftp"}, ["spec.http[0].redirect.scheme"]),
        ({}, ["spec.http[0].redirect"]),
    ],
)
def test_redirect_port_and_derive_port_count_as_a_port(redirect, fields):
    """validateHTTPRedirect: RedirectPort (port or derivePort) satisfies "redirect must
    specify URI, authority, scheme, or port"."""
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {"hosts": ["r"], "http": [{"redirect": redirect}]},
    }
    assert [c.field for c in validate(vs)] == fields


def test_lint_reports_unsupported_fields_as_errors_for_the_embedded_mesh_notes_for_a_cluster(
    tmp_path: Path,
):
    path = tmp_path / "dr.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n"
        "  ports: [{port: 9080}]\n  selector: {app: reviews}\n---\n"
        + DR_TLS
        % ("SIMPLE", "ROUND_ROBIN")
    )
    embedded = [(f.severity, f.field) for f in lint_paths([path], target=EMBEDDED)]
    cluster = [(f.severity, f.field) for f in lint_paths([path], target=CLUSTER)]
    assert ("error", "spec.trafficPolicy.tls.mode") in embedded
    assert ("info", "spec.trafficPolicy.tls.mode") in cluster
    assert all(severity != "error" for severity, _ in cluster)
