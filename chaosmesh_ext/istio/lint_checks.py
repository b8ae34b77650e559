"""The checks lint runs over a set of objects: references, conflicts, faults that mislead.

Pure: takes :class:`~chaosmesh_ext.istio.lint_source.Doc` objects, returns findings. The
list of what is checked is in :mod:`chaosmesh_ext.istio.lint`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chaosmesh_ext._kobject import KObject
from chaosmesh_ext.istio._checks import as_list, as_map
from chaosmesh_ext.istio.fidelity import embedded_causes
from chaosmesh_ext.istio.hosts import fqdn, host_matches, service_fqdn
from chaosmesh_ext.istio.lint_findings import ERROR, INFO, WARNING, Finding
from chaosmesh_ext.istio.lint_source import Doc, duplicate_keys, line_of
from chaosmesh_ext.istio.resources import GROUP
from chaosmesh_ext.istio.validate import validate
from chaosmesh_ext.istio.validate_warnings import validation_warnings

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
# Where the objects will run: the embedded mesh refuses fields it does not support (an error
# here), a cluster runs them (an info note: the same files would not run on the embedded mesh).
EMBEDDED, CLUSTER = "embedded", "cluster"
TARGETS = (EMBEDDED, CLUSTER)
RETRIES_503 = ("5xx", "gateway-error", "503")


@dataclass
class _Index:
    """What the other objects reference: services, rules, gateways, workloads."""

    hosts: set[str] = field(default_factory=set)
    services: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # fqdn -> Service
    rules: list[tuple[str, Doc]] = field(default_factory=list)  # (host fqdn, DestinationRule)
    gateways: set[tuple[str, str]] = field(default_factory=set)
    workloads: dict[str, list[Mapping[str, str]]] = field(default_factory=lambda: defaultdict(list))
    # destination host -> VirtualServices bound only to gateways that route to it
    gateway_routes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def _is_istio(doc: Doc) -> bool:
    if doc.kind in ("VirtualService", "DestinationRule"):
        return True  # a wrong apiVersion is reported by validate
    return doc.kind == "Gateway" and str(doc.obj.get("apiVersion") or "").startswith(GROUP)


def analyze(docs: list[Doc], domain: str, target: str = EMBEDDED) -> list[Finding]:
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    index = _build_index(docs, domain)
    out: list[Finding] = []

    def report(doc: Doc, severity: str, path: str, message: str, line: int | None = None) -> None:
        out.append(
            Finding(
                severity,
                doc.file,
                doc.kind,
                doc.namespace,
                doc.name,
                path,
                message,
                line if line is not None else line_of(doc, path),
            )
        )

    mesh_hosts: dict[str, list[Doc]] = defaultdict(list)
    first_seen: dict[tuple[str, str, str], Doc] = {}
    for doc in docs:
        if not doc.name or not (_is_istio(doc) or doc.kind == "Service"):
            continue
        identity = (doc.kind, doc.namespace, doc.name)
        earlier = first_seen.setdefault(identity, doc)
        if earlier is not doc and dict(earlier.obj) != dict(doc.obj):
            at = f"{earlier.file}:{line_of(earlier, '')}" if earlier.file else "earlier"
            report(
                doc,
                WARNING,
                "metadata.name",
                f"{doc.kind} {doc.namespace}/{doc.name} is also defined at {at} with different "
                "content: whichever is applied last replaces the other",
            )
    aborts_503 = _aborts_503(docs, domain)
    for doc in docs:
        for path, key, first, again in duplicate_keys(doc.node, ""):
            report(
                doc,
                ERROR,
                path,
                f"duplicate key {key!r} (first at line {first}): YAML keeps only the last one, "
                "the API server refuses it",
                again,
            )
        if not _is_istio(doc):
            continue
        for cause in validate(doc.obj, strict=True):
            report(doc, ERROR, cause.field, cause.message)
        for cause in validation_warnings(doc.obj):
            report(doc, WARNING, cause.field, cause.message)
        for cause in embedded_causes(doc.obj):
            if target == EMBEDDED:
                report(doc, ERROR, cause.field, cause.message)
            else:
                report(doc, INFO, cause.field, f"runs on a cluster; {cause.message}")
        if doc.kind == "VirtualService":
            _check_virtual_service(doc, index, domain, report, mesh_hosts, aborts_503)
        elif doc.kind == "DestinationRule":
            _check_destination_rule(doc, index, domain, report)
    for host, owners in mesh_hosts.items():
        names = {(o.namespace, o.name) for o in owners}
        if len(names) < 2:
            continue  # one object given twice is reported as a redefinition instead
        for doc in owners:
            others = ", ".join(
                sorted(
                    f"{ns}/{name}" for ns, name in names if (ns, name) != (doc.namespace, doc.name)
                )
            )
            report(
                doc,
                ERROR,
                "spec.hosts",
                f"host {host} is also routed by VirtualService {others} on the mesh gateway; "
                "sidecars use only one VirtualService per host, so the rules of the others "
                "are ignored",
            )
    return out


def _build_index(docs: list[Doc], domain: str) -> _Index:
    index = _Index()
    for doc in docs:
        if doc.kind == "Service" and doc.name:
            host = service_fqdn(doc.name, doc.namespace, domain)
            index.hosts.add(host)
            index.services[host] = doc.spec
        elif doc.kind == "ServiceEntry":
            for host in doc.spec.get("hosts") or []:
                if isinstance(host, str):
                    index.hosts.add(fqdn(host, doc.namespace, domain))
        elif doc.kind == "Gateway" and _is_istio(doc):
            index.gateways.add((doc.namespace, doc.name))
        elif doc.kind == "DestinationRule" and isinstance(doc.spec.get("host"), str):
            index.rules.append((fqdn(doc.spec["host"], doc.namespace, domain), doc))
        elif doc.kind in WORKLOAD_KINDS:
            template = doc.spec.get("template")
            labels = KObject(template if isinstance(template, Mapping) else None).labels
            if labels:
                index.workloads[doc.namespace].append(labels)
        elif doc.kind == "VirtualService":
            gws = [g for g in as_list(doc.spec.get("gateways")) if isinstance(g, str)]
            if gws and "mesh" not in gws:
                for route in as_list(doc.spec.get("http")):
                    for entry in as_list(as_map(route).get("route")):
                        dest_host = as_map(as_map(entry).get("destination")).get("host")
                        if isinstance(dest_host, str) and dest_host:
                            full = fqdn(dest_host, doc.namespace, domain)
                            index.gateway_routes[full].append(f"{doc.namespace}/{doc.name}")
        elif doc.kind == "Pod":
            index.workloads[doc.namespace].append(KObject(doc.obj).labels)
    return index


def _check_virtual_service(
    doc: Doc,
    index: _Index,
    domain: str,
    report: Any,
    mesh_hosts: dict[str, list[Doc]],
    aborts_503: list[tuple[Doc, int, set[str]]],
) -> None:
    spec = doc.spec
    gateways = [g for g in as_list(spec.get("gateways")) if isinstance(g, str)]
    on_mesh = not gateways or "mesh" in gateways
    for i, host in enumerate(as_list(spec.get("hosts"))):
        if not isinstance(host, str) or not host:
            continue
        full = fqdn(host, doc.namespace, domain)
        if on_mesh and "*" not in full:
            mesh_hosts[full].append(doc)
        if not on_mesh and (host == "*" or "." in host):
            continue  # an external name served through a gateway needs no Service
        if "*" in full or full in index.hosts:
            continue
        report(
            doc,
            ERROR,
            f"spec.hosts[{i}]",
            f"host {host!r} matches no Service (it resolves to {full}); requests to the real "
            "service do not use this VirtualService, so none of its rules apply",
        )
    for k, ref in enumerate(gateways):
        _check_gateway_ref(doc, index, ref, f"spec.gateways[{k}]", report)
    for proto in ("http", "tcp", "tls"):
        for i, route in enumerate(as_list(spec.get(proto))):
            if not isinstance(route, Mapping):
                continue
            path = f"spec.{proto}[{i}]"
            for j, match in enumerate(as_list(route.get("match"))):
                for k, ref in enumerate(as_list(as_map(match).get("gateways"))):
                    if isinstance(ref, str):
                        _check_gateway_ref(
                            doc, index, ref, f"{path}.match[{j}].gateways[{k}]", report
                        )
            for j, entry in enumerate(as_list(route.get("route"))):
                _check_destination(
                    doc,
                    index,
                    domain,
                    as_map(entry).get("destination"),
                    f"{path}.route[{j}].destination",
                    report,
                )
            if proto != "http":
                continue
            if route.get("mirror") is not None:
                _check_destination(
                    doc, index, domain, route.get("mirror"), f"{path}.mirror", report
                )
            for j, mirror in enumerate(as_list(route.get("mirrors"))):
                _check_destination(
                    doc,
                    index,
                    domain,
                    as_map(mirror).get("destination"),
                    f"{path}.mirrors[{j}].destination",
                    report,
                )
            _check_fault(doc, route.get("fault"), f"{path}.fault", report)
            _check_fault_with_resilience(doc, route, path, report)
            _check_fault_scope(doc, route, path, gateways, on_mesh, index, domain, report)
            _check_retries(doc, route, path, domain, aborts_503, report)


def _check_gateway_ref(doc: Doc, index: _Index, ref: str, path: str, report: Any) -> None:
    if ref == "mesh":
        return
    if "/" in ref:
        ns, _, name = ref.partition("/")
    elif "." in ref:  # legacy <name>.<namespace>[.svc.cluster.local]
        name, ns = ref.split(".")[:2]
    else:
        ns, name = doc.namespace, ref
    if (ns, name) not in index.gateways:
        report(
            doc,
            ERROR,
            path,
            f"gateway {ref!r} not found (no Gateway {ns}/{name}); "
            "routes bound to it are not served",
        )


def _check_destination(
    doc: Doc, index: _Index, domain: str, dest: Any, path: str, report: Any
) -> None:
    dest = as_map(dest)
    host = dest.get("host")
    if not isinstance(host, str) or not host or host == "*":
        return  # validate reports it
    full = fqdn(host, doc.namespace, domain)
    if "*" not in full and full not in index.hosts:
        report(
            doc,
            ERROR,
            f"{path}.host",
            f"destination host {_shown(host, full)} has no Service; requests get 503 (no cluster)"
            + _elsewhere(index, full, domain),
        )
    subset = dest.get("subset")
    if not isinstance(subset, str) or not subset:
        return
    defined: set[str] = set()
    rules = [rule for rule_host, rule in index.rules if host_matches(rule_host, full)]
    for rule in rules:
        defined |= {
            str(s.get("name")) for s in as_list(rule.spec.get("subsets")) if isinstance(s, Mapping)
        }
    if subset not in defined:
        known = (
            f"defined: {', '.join(sorted(str(d) for d in defined))}"
            if defined
            else (
                "no DestinationRule for that host"
                if not rules
                else "its DestinationRule defines no subsets"
            )
        )
        report(
            doc,
            ERROR,
            f"{path}.subset",
            f"subset {subset!r} is not defined by any DestinationRule for host {full} "
            f"({known}); requests get 503",
        )


def _check_fault(doc: Doc, fault: Any, path: str, report: Any) -> None:
    for part in ("delay", "abort"):
        block = as_map(fault).get(part)
        if not isinstance(block, Mapping):
            continue
        pct = as_map(block.get("percentage")).get("value")
        if pct is None and block.get("percent") is None:
            report(
                doc,
                WARNING,
                f"{path}.{part}.percentage",
                f"{part} has no percentage: Istio injects it for 0% of requests, so it never fires "
                "(set percentage.value, e.g. 100; check its indentation)",
            )
        elif pct == 0:
            report(
                doc,
                WARNING,
                f"{path}.{part}.percentage.value",
                f"{part} percentage is 0: it never fires",
            )
    delay = as_map(fault).get("delay")
    if (
        isinstance(delay, Mapping)
        and delay.get("fixedDelay") is None
        and delay.get("exponentialDelay") is None
    ):
        report(
            doc, WARNING, f"{path}.delay.fixedDelay", "delay has no fixedDelay: nothing is delayed"
        )
    abort = as_map(fault).get("abort")
    if isinstance(abort, Mapping) and all(
        abort.get(k) is None for k in ("httpStatus", "grpcStatus", "http2Error")
    ):
        report(
            doc,
            WARNING,
            f"{path}.abort.httpStatus",
            "abort configured, but no httpStatus or grpcStatus set",
        )


def _check_fault_with_resilience(
    doc: Doc, route: Mapping[str, Any], path: str, report: Any
) -> None:
    """Faults on the route that its own retries / timeout cannot act on (Envoy's order)."""
    fault = as_map(route.get("fault"))
    retries = as_map(route.get("retries"))
    attempts = retries.get("attempts")
    if fault.get("abort") is not None and isinstance(attempts, int) and attempts > 0:
        report(
            doc,
            WARNING,
            f"{path}.retries",
            "this route's own abort fault is answered by the sidecar before routing and is never "
            "retried: to exercise these retries, inject the fault on the called service's "
            "VirtualService instead",
        )
    if fault.get("delay") is not None and route.get("timeout") is not None:
        report(
            doc,
            WARNING,
            f"{path}.timeout",
            "a fault delay does not count against the same route's timeout: this timeout will "
            "not cut the injected delay short; inject the delay on the called service instead",
        )


def _check_fault_scope(
    doc: Doc,
    route: Mapping[str, Any],
    path: str,
    gateways: list[str],
    on_mesh: bool,
    index: _Index,
    domain: str,
    report: Any,
) -> None:
    """Say which traffic a fault reaches when gateways are involved (a common surprise)."""
    if route.get("fault") is None:
        return
    if not on_mesh:
        report(
            doc,
            INFO,
            f"{path}.fault",
            f"this VirtualService is bound only to gateway(s) {', '.join(gateways)}: the fault "
            "applies to requests entering through them, not to calls between services inside "
            "the mesh (add 'mesh' to spec.gateways for those)",
        )
        return
    dests = {
        fqdn(str(as_map(as_map(e).get("destination")).get("host")), doc.namespace, domain)
        for e in as_list(route.get("route"))
    }
    entries = sorted({name for host in dests for name in index.gateway_routes.get(host, [])})
    if entries:
        report(
            doc,
            INFO,
            f"{path}.fault",
            f"requests entering through a gateway reach this service via VirtualService "
            f"{', '.join(entries)}, which does not carry this fault: faults apply in the "
            "caller's proxy, so add it there to see it through the ingress",
        )


def _aborts_503(docs: list[Doc], domain: str) -> list[tuple[Doc, int, set[str]]]:
    """Routes that abort with 503: (VirtualService, route index, hosts that traffic is for)."""
    out = []
    for doc in docs:
        if doc.kind != "VirtualService":
            continue
        vs_hosts = {
            fqdn(h, doc.namespace, domain)
            for h in as_list(doc.spec.get("hosts"))
            if isinstance(h, str)
        }
        for i, route in enumerate(as_list(doc.spec.get("http"))):
            abort = as_map(as_map(as_map(route).get("fault")).get("abort"))
            if abort.get("httpStatus") != 503:
                continue
            dests = {
                fqdn(str(as_map(as_map(e).get("destination")).get("host")), doc.namespace, domain)
                for e in as_list(as_map(route).get("route"))
            }
            out.append((doc, i, vs_hosts | dests))
    return out


def _check_retries(
    doc: Doc,
    route: Mapping[str, Any],
    path: str,
    domain: str,
    aborts_503: list[tuple[Doc, int, set[str]]],
    report: Any,
) -> None:
    retries = as_map(route.get("retries"))
    attempts = retries.get("attempts")
    if not isinstance(attempts, int) or attempts <= 0 or not aborts_503:
        return
    retry_on = retries.get("retryOn")
    tokens = retry_on.split(",") if isinstance(retry_on, str) else []
    if any(t.strip() in RETRIES_503 for t in tokens):
        return
    dests = {
        fqdn(str(as_map(as_map(e).get("destination")).get("host")), doc.namespace, domain)
        for e in as_list(route.get("route"))
    }
    direct = [(d, i) for d, i, hosts in aborts_503 if hosts & dests]
    faulted = direct or [(d, i) for d, i, _ in aborts_503]
    who = ", ".join(f"VirtualService {d.namespace}/{d.name} (spec.http[{i}])" for d, i in faulted)
    how = (
        "injects abort 503 on this route's destination"
        if direct
        else "injects abort 503; if that 503 reaches this route through a call chain"
    )
    field_path = f"{path}.retries.retryOn" if retry_on is not None else f"{path}.retries"
    shown = repr(retry_on) if retry_on is not None else "not set"
    report(
        doc,
        INFO,
        field_path,
        f"{who} {how}, these retries will not retry it: since Istio 1.24 503 is not retried "
        f"unless retryOn names it (5xx, gateway-error or 503); retryOn is {shown}",
    )


def _check_destination_rule(doc: Doc, index: _Index, domain: str, report: Any) -> None:
    spec = doc.spec
    host = spec.get("host")
    if not isinstance(host, str) or not host:
        return
    full = fqdn(host, doc.namespace, domain)
    if "*" not in full and full not in index.hosts:
        report(
            doc,
            ERROR,
            "spec.host",
            f"host {_shown(host, full)} has no Service; this DestinationRule applies to nothing"
            + _elsewhere(index, full, domain),
        )
    service = index.services.get(full)
    selector = as_map(as_map(service).get("selector")) if service is not None else {}
    svc_ns = _service_namespace(full, domain)
    workloads = index.workloads.get(svc_ns or "", [])
    policies = [("spec.trafficPolicy", spec.get("trafficPolicy"))]
    for i, subset in enumerate(as_list(spec.get("subsets"))):
        subset = as_map(subset)
        policies.append((f"spec.subsets[{i}].trafficPolicy", subset.get("trafficPolicy")))
        labels = as_map(subset.get("labels"))
        if not workloads or not labels:
            continue  # no workloads given for that namespace: nothing to compare with
        wanted = {**selector, **labels}
        if not any(all(w.get(k) == v for k, v in wanted.items()) for w in workloads):
            shown = ", ".join(f"{k}={v}" for k, v in wanted.items())
            report(
                doc,
                WARNING,
                f"spec.subsets[{i}].labels",
                f"subset {subset.get('name')!r} selects no pods: no workload in namespace "
                f"{svc_ns} has labels {shown}; requests to it get 503 (no healthy upstream)",
            )
    for path, policy in policies:
        outlier = as_map(as_map(policy).get("outlierDetection"))
        if not outlier:
            continue
        if outlier.get("consecutiveErrors") is not None:
            report(
                doc,
                WARNING,
                f"{path}.outlierDetection.consecutiveErrors",
                "consecutiveErrors is ignored since Istio 1.7; use consecutive5xxErrors or "
                "consecutiveGatewayErrors",
            )
        if outlier.get("maxEjectionPercent") is None:
            report(
                doc,
                INFO,
                f"{path}.outlierDetection.maxEjectionPercent",
                "maxEjectionPercent is not set: Envoy ejects at most 10% of hosts, so with "
                "fewer than 10 endpoints nothing is ejected",
            )


def _elsewhere(index: _Index, full: str, domain: str) -> str:
    """A hint when a Service of that name exists in another namespace (a missing ``-n``)."""
    wanted = _service_namespace(full, domain)
    if wanted is None:
        return ""
    name = full.split(".", 1)[0]
    others = sorted(
        ns
        for host in index.hosts
        if host.split(".", 1)[0] == name
        and (ns := _service_namespace(host, domain)) not in (None, wanted)
    )
    if not others:
        return ""
    return (
        f" (a Service {name} exists in namespace {', '.join(str(o) for o in others)}: if these "
        f"objects are meant for namespace {wanted}, apply and lint them with -n {wanted})"
    )


def _shown(host: str, full: str) -> str:
    return repr(host) if host == full else f"{host!r} ({full})"


def _service_namespace(full: str, domain: str) -> str | None:
    suffix = f".svc.{domain}"
    if not full.endswith(suffix):
        return None
    parts = full[: -len(suffix)].split(".")
    return parts[1] if len(parts) == 2 else None
