"""``istioctl analyze``-style checks over Kubernetes YAML, or over objects from a cluster.

Reads VirtualService, DestinationRule, Gateway (networking.istio.io), Service,
ServiceEntry and workload objects (Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod);
everything else is ignored. Reports, each naming file, line, object and field:

- schema: whatever Istio's webhook would reject, plus unknown fields (typos such as
  ``reties``), as errors;
- references: VirtualService hosts and destination hosts that match no Service, subsets no
  DestinationRule defines, DestinationRule hosts with no Service, gateways that do not
  exist (errors); subsets whose labels select no workload (warning);
- two VirtualServices for one host on the mesh gateway (error: sidecars use only one);
- faults that never fire (no percentage: Istio injects them for 0 % of requests);
- retries that will not retry an injected 503 (info: since Istio 1.24 a 503 is retried only
  when ``retryOn`` names ``5xx``, ``gateway-error`` or ``503``).

This module reads files (``lint_paths``); the checks themselves (``lint_objects``) are pure.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaosmesh_ext.istio.hosts import DEFAULT_DOMAIN, fqdn, host_matches, service_fqdn
from chaosmesh_ext.istio.resources import GROUP
from chaosmesh_ext.istio.validate import validate

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
YAML_SUFFIXES = (".yaml", ".yml", ".json")
RETRIES_503 = ("5xx", "gateway-error", "503")


@dataclass(frozen=True)
class Finding:
    """One problem: how bad, where (file, line, object, field) and what."""

    severity: str
    file: str
    kind: str
    namespace: str
    name: str
    field: str
    message: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "") if self.file else "<objects>"
        obj = f"{self.kind} {self.namespace}/{self.name}" if self.kind else ""
        parts = [where, self.severity, obj, self.field, self.message]
        return ": ".join(p for p in parts if p)


@dataclass
class _Doc:
    obj: Mapping[str, Any]
    file: str = ""
    node: yaml.Node | None = None
    namespace: str = "default"

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "")

    @property
    def name(self) -> str:
        meta = self.obj.get("metadata")
        return str(meta.get("name") or "") if isinstance(meta, Mapping) else ""

    @property
    def spec(self) -> Mapping[str, Any]:
        spec = self.obj.get("spec")
        return spec if isinstance(spec, Mapping) else {}


@dataclass
class _Index:
    """What the other objects reference: services, rules, gateways, workloads."""

    hosts: set[str] = field(default_factory=set)
    services: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # fqdn -> Service
    rules: list[tuple[str, _Doc]] = field(default_factory=list)  # (host fqdn, DestinationRule)
    gateways: set[tuple[str, str]] = field(default_factory=set)
    workloads: dict[str, list[Mapping[str, str]]] = field(default_factory=lambda: defaultdict(list))
    # destination host -> VirtualServices bound only to gateways that route to it
    gateway_routes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


# --- entry points -------------------------------------------------------------------------


def lint_paths(
    paths: Iterable[str | Path], namespace: str = "default", domain: str = DEFAULT_DOMAIN
) -> list[Finding]:
    """Lint YAML/JSON files and directories (searched recursively for *.yaml, *.yml, *.json).

    Objects that name no namespace are taken to be in ``namespace`` (as ``kubectl -n``).
    """
    docs: list[_Doc] = []
    findings: list[Finding] = []
    paths = list(paths)
    if any(str(p) == "-" for p in paths):  # as kubectl: "-f -" reads standard input
        docs.extend(_parse(sys.stdin.read(), "<stdin>", namespace, findings))
    for path in _expand([p for p in paths if str(p) != "-"], findings):
        docs.extend(_load(path, namespace, findings))
    findings.extend(_analyze(docs, domain))
    return _sorted(findings)


def lint_objects(
    objs: Iterable[Mapping[str, Any]], namespace: str = "default", domain: str = DEFAULT_DOMAIN
) -> list[Finding]:
    """Lint resource dicts (e.g. listed from a cluster); findings carry no file.

    Each object needs its ``kind`` (and ``apiVersion`` for Gateways): items of a list the
    Kubernetes API returns lack them, so set them before calling.
    """
    docs = []
    for obj in objs:
        if isinstance(obj, Mapping):
            docs.extend(_unwrap(obj, "", None, namespace))
    return _sorted(_analyze(docs, domain))


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == ERROR for f in findings)


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.file, f.line or 0, SEVERITIES.index(f.severity)))


# --- reading files ----------------------------------------------------------------------------


def _expand(paths: Iterable[str | Path], findings: list[Finding]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)
            )
        elif path.is_file():
            out.append(path)
        else:
            findings.append(Finding(ERROR, str(path), "", "", "", "", "no such file or directory"))
    return out


def _load(path: Path, namespace: str, findings: list[Finding]) -> list[_Doc]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        findings.append(Finding(ERROR, str(path), "", "", "", "", f"cannot read: {exc}"))
        return []
    return _parse(text, str(path), namespace, findings)


def _parse(text: str, file: str, namespace: str, findings: list[Finding]) -> list[_Doc]:
    docs: list[_Doc] = []
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            obj = loader.construct_document(node)
            if isinstance(obj, Mapping):
                docs.extend(_unwrap(obj, file, node, namespace))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        where = f" at line {line}, column {mark.column + 1}" if mark is not None else ""
        findings.append(
            Finding(ERROR, file, "", "", "", "", f"malformed YAML{where}: {problem}", line)
        )
    finally:
        loader.dispose()
    return docs


def _unwrap(
    obj: Mapping[str, Any], file: str, node: yaml.Node | None, namespace: str
) -> list[_Doc]:
    """A document, or the items of a ``kind: List``."""
    if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        item_nodes = _child(node, "items")
        out = []
        for i, item in enumerate(obj["items"]):
            if isinstance(item, Mapping):
                out.extend(_unwrap(item, file, _child(item_nodes, i), namespace))
        return out
    meta = obj.get("metadata")
    ns = meta.get("namespace") if isinstance(meta, Mapping) else None
    return [_Doc(obj, file, node, ns if isinstance(ns, str) and ns else namespace)]


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(key, str):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None


_PATH_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _duplicate_keys(node: yaml.Node | None, path: str) -> Iterable[tuple[str, str, int, int]]:
    """(path, key, first line, repeated line) for every key repeated in a mapping."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or key == "<<":
                continue
            here = f"{path}.{key}" if path else key
            if key in seen:
                yield here, key, seen[key], key_node.start_mark.line + 1
            else:
                seen[key] = key_node.start_mark.line + 1
            yield from _duplicate_keys(value, here)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{i}]")


def _line(doc: _Doc, path: str) -> int | None:
    """The line of ``path`` (``spec.http[0].fault``) in the document, or of its nearest parent."""
    node = doc.node
    if node is None:
        return None
    best = node.start_mark.line + 1
    for index, key in _PATH_TOKEN.findall(path):
        node = _child(node, int(index) if index else key)
        if node is None:
            break
        best = node.start_mark.line + 1
    return best


# --- analysis -----------------------------------------------------------------------------------


def _is_istio(doc: _Doc) -> bool:
    if doc.kind in ("VirtualService", "DestinationRule"):
        return True  # a wrong apiVersion is reported by validate
    return doc.kind == "Gateway" and str(doc.obj.get("apiVersion") or "").startswith(GROUP)


def _analyze(docs: list[_Doc], domain: str) -> list[Finding]:
    index = _build_index(docs, domain)
    out: list[Finding] = []

    def report(doc: _Doc, severity: str, path: str, message: str, line: int | None = None) -> None:
        out.append(
            Finding(
                severity,
                doc.file,
                doc.kind,
                doc.namespace,
                doc.name,
                path,
                message,
                line if line is not None else _line(doc, path),
            )
        )

    mesh_hosts: dict[str, list[_Doc]] = defaultdict(list)
    first_seen: dict[tuple[str, str, str], _Doc] = {}
    for doc in docs:
        if not doc.name or not (_is_istio(doc) or doc.kind == "Service"):
            continue
        identity = (doc.kind, doc.namespace, doc.name)
        earlier = first_seen.setdefault(identity, doc)
        if earlier is not doc and dict(earlier.obj) != dict(doc.obj):
            at = f"{earlier.file}:{_line(earlier, '')}" if earlier.file else "earlier"
            report(
                doc,
                WARNING,
                "metadata.name",
                f"{doc.kind} {doc.namespace}/{doc.name} is also defined at {at} with different "
                "content: whichever is applied last replaces the other",
            )
    aborts_503 = _aborts_503(docs, domain)
    for doc in docs:
        for path, key, first, again in _duplicate_keys(doc.node, ""):
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


def _build_index(docs: list[_Doc], domain: str) -> _Index:
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
            meta = template.get("metadata") if isinstance(template, Mapping) else None
            labels = meta.get("labels") if isinstance(meta, Mapping) else None
            if isinstance(labels, Mapping):
                index.workloads[doc.namespace].append(labels)
        elif doc.kind == "VirtualService":
            gws = [g for g in _list(doc.spec.get("gateways")) if isinstance(g, str)]
            if gws and "mesh" not in gws:
                for route in _list(doc.spec.get("http")):
                    for entry in _list(_dict(route).get("route")):
                        dest_host = _dict(_dict(entry).get("destination")).get("host")
                        if isinstance(dest_host, str) and dest_host:
                            full = fqdn(dest_host, doc.namespace, domain)
                            index.gateway_routes[full].append(f"{doc.namespace}/{doc.name}")
        elif doc.kind == "Pod":
            meta = doc.obj.get("metadata")
            labels = meta.get("labels") if isinstance(meta, Mapping) else None
            index.workloads[doc.namespace].append(labels if isinstance(labels, Mapping) else {})
    return index


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _check_virtual_service(
    doc: _Doc,
    index: _Index,
    domain: str,
    report: Any,
    mesh_hosts: dict[str, list[_Doc]],
    aborts_503: list[tuple[_Doc, int, set[str]]],
) -> None:
    spec = doc.spec
    gateways = [g for g in _list(spec.get("gateways")) if isinstance(g, str)]
    on_mesh = not gateways or "mesh" in gateways
    for i, host in enumerate(_list(spec.get("hosts"))):
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
        for i, route in enumerate(_list(spec.get(proto))):
            if not isinstance(route, Mapping):
                continue
            path = f"spec.{proto}[{i}]"
            for j, match in enumerate(_list(route.get("match"))):
                for k, ref in enumerate(_list(_dict(match).get("gateways"))):
                    if isinstance(ref, str):
                        _check_gateway_ref(
                            doc, index, ref, f"{path}.match[{j}].gateways[{k}]", report
                        )
            for j, entry in enumerate(_list(route.get("route"))):
                _check_destination(
                    doc,
                    index,
                    domain,
                    _dict(entry).get("destination"),
                    f"{path}.route[{j}].destination",
                    report,
                )
            if proto != "http":
                continue
            if route.get("mirror") is not None:
                _check_destination(
                    doc, index, domain, route.get("mirror"), f"{path}.mirror", report
                )
            for j, mirror in enumerate(_list(route.get("mirrors"))):
                _check_destination(
                    doc,
                    index,
                    domain,
                    _dict(mirror).get("destination"),
                    f"{path}.mirrors[{j}].destination",
                    report,
                )
            _check_fault(doc, route.get("fault"), f"{path}.fault", report)
            _check_fault_with_resilience(doc, route, path, report)
            _check_fault_scope(doc, route, path, gateways, on_mesh, index, domain, report)
            _check_retries(doc, route, path, domain, aborts_503, report)


def _check_gateway_ref(doc: _Doc, index: _Index, ref: str, path: str, report: Any) -> None:
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
    doc: _Doc, index: _Index, domain: str, dest: Any, path: str, report: Any
) -> None:
    dest = _dict(dest)
    host = dest.get("host")
    if not isinstance(host, str) or not host or host == "*":
        return  # validate reports it
    full = fqdn(host, doc.namespace, domain)
    if "*" not in full and full not in index.hosts:
        report(
            doc,
            ERROR,
            f"{path}.host",
            f"destination host {_shown(host, full)} has no Service; requests get 503 (no cluster)",
        )
    subset = dest.get("subset")
    if not isinstance(subset, str) or not subset:
        return
    defined: set[str] = set()
    rules = [rule for rule_host, rule in index.rules if host_matches(rule_host, full)]
    for rule in rules:
        defined |= {
            str(s.get("name")) for s in _list(rule.spec.get("subsets")) if isinstance(s, Mapping)
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


def _check_fault(doc: _Doc, fault: Any, path: str, report: Any) -> None:
    for part in ("delay", "abort"):
        block = _dict(fault).get(part)
        if not isinstance(block, Mapping):
            continue
        pct = _dict(block.get("percentage")).get("value")
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
    delay = _dict(fault).get("delay")
    if (
        isinstance(delay, Mapping)
        and delay.get("fixedDelay") is None
        and delay.get("exponentialDelay") is None
    ):
        report(
            doc, WARNING, f"{path}.delay.fixedDelay", "delay has no fixedDelay: nothing is delayed"
        )
    abort = _dict(fault).get("abort")
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
    doc: _Doc, route: Mapping[str, Any], path: str, report: Any
) -> None:
    """Faults on the route that its own retries / timeout cannot act on (Envoy's order)."""
    fault = _dict(route.get("fault"))
    retries = _dict(route.get("retries"))
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
    doc: _Doc,
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
        fqdn(str(_dict(_dict(e).get("destination")).get("host")), doc.namespace, domain)
        for e in _list(route.get("route"))
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


def _aborts_503(docs: list[_Doc], domain: str) -> list[tuple[_Doc, int, set[str]]]:
    """Routes that abort with 503: (VirtualService, route index, hosts that traffic is for)."""
    out = []
    for doc in docs:
        if doc.kind != "VirtualService":
            continue
        vs_hosts = {
            fqdn(h, doc.namespace, domain)
            for h in _list(doc.spec.get("hosts"))
            if isinstance(h, str)
        }
        for i, route in enumerate(_list(doc.spec.get("http"))):
            abort = _dict(_dict(_dict(route).get("fault")).get("abort"))
            if abort.get("httpStatus") != 503:
                continue
            dests = {
                fqdn(str(_dict(_dict(e).get("destination")).get("host")), doc.namespace, domain)
                for e in _list(_dict(route).get("route"))
            }
            out.append((doc, i, vs_hosts | dests))
    return out


def _check_retries(
    doc: _Doc,
    route: Mapping[str, Any],
    path: str,
    domain: str,
    aborts_503: list[tuple[_Doc, int, set[str]]],
    report: Any,
) -> None:
    retries = _dict(route.get("retries"))
    attempts = retries.get("attempts")
    if not isinstance(attempts, int) or attempts <= 0 or not aborts_503:
        return
    retry_on = retries.get("retryOn")
    tokens = retry_on.split(",") if isinstance(retry_on, str) else []
    if any(t.strip() in RETRIES_503 for t in tokens):
        return
    dests = {
        fqdn(str(_dict(_dict(e).get("destination")).get("host")), doc.namespace, domain)
        for e in _list(route.get("route"))
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


def _check_destination_rule(doc: _Doc, index: _Index, domain: str, report: Any) -> None:
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
            f"host {_shown(host, full)} has no Service; this DestinationRule applies to nothing",
        )
    service = index.services.get(full)
    selector = _dict(_dict(service).get("selector")) if service is not None else {}
    svc_ns = _service_namespace(full, domain)
    workloads = index.workloads.get(svc_ns or "", [])
    policies = [("spec.trafficPolicy", spec.get("trafficPolicy"))]
    for i, subset in enumerate(_list(spec.get("subsets"))):
        subset = _dict(subset)
        policies.append((f"spec.subsets[{i}].trafficPolicy", subset.get("trafficPolicy")))
        labels = _dict(subset.get("labels"))
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
        outlier = _dict(_dict(policy).get("outlierDetection"))
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


def _shown(host: str, full: str) -> str:
    return repr(host) if host == full else f"{host!r} ({full})"


def _service_namespace(full: str, domain: str) -> str | None:
    suffix = f".svc.{domain}"
    if not full.endswith(suffix):
        return None
    parts = full[: -len(suffix)].split(".")
    return parts[1] if len(parts) == 2 else None


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    counts = {s: 0 for s in SEVERITIES}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    return counts
