"""Incremental translation (``translate(snapshot, memo)``) gives exactly what a translation from
scratch gives, change after change.

The daemon keeps one ``Memo`` for the life of the mesh and hands every write's candidate state
to ``translate`` with it; the API store replaces an object on each write and never edits a
stored one. These tests do the same: a world of objects, each change a new object in place of
the old (or one more, or one less), and after every change the Envoy configuration from the
memo is compared, as JSON text, with a translation of a deep copy (fresh objects, fresh memo).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from chaosmesh_ext.mesh.translate import Endpoint, Memo, MeshSnapshot, translate
from chaosmesh_ext.mesh.translate.names import TranslationError

JSON = dict[str, Any]
DOMAIN = "cluster.local"
NAMESPACES = ("shop", "team")
KINDS = ("Service", "VirtualService", "DestinationRule", "Gateway")


def _meta(name: str, ns: str, age: int) -> JSON:
    return {"name": name, "namespace": ns, "creationTimestamp": f"2026-01-01T00:{age:02d}:00Z"}


def service(name: str, ns: str, ports: tuple[int, ...] = (80,), age: int = 0) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, ns, age),
        "spec": {
            "selector": {"app": name},
            "ports": [{"port": p, "name": f"http-{p}"} for p in ports],
        },
    }


def fqdn(name: str, ns: str) -> str:
    return f"{name}.{ns}.svc.{DOMAIN}"


def mesh_vs(name: str, ns: str, host: str, weight_v1: int = 90, age: int = 1, **extra: Any) -> JSON:
    http: list[JSON] = [
        {
            "match": [{"headers": {"x-canary": {"exact": "1"}}}],
            "route": [{"destination": {"host": host, "subset": "v2"}}],
        },
        {
            "route": [
                {"destination": {"host": host, "subset": "v1"}, "weight": weight_v1},
                {"destination": {"host": host, "subset": "v2"}, "weight": 100 - weight_v1},
            ],
            "timeout": "5s",
            "retries": {"attempts": 2, "perTryTimeout": "2s"},
        },
    ]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": _meta(name, ns, age),
        "spec": {"hosts": [host], "http": http, **extra},
    }


def gateway_vs(
    name: str, ns: str, hosts: list[str], gateways: list[str], dest: str, age: int = 2
) -> JSON:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": _meta(name, ns, age),
        "spec": {
            "hosts": hosts,
            "gateways": gateways,
            "http": [
                {
                    "match": [{"uri": {"prefix": "/v2/"}}],
                    "rewrite": {"uri": "/"},
                    "route": [{"destination": {"host": dest, "subset": "v2"}}],
                },
                {"route": [{"destination": {"host": dest}}]},
            ],
        },
    }


def rule(name: str, ns: str, host: str, age: int = 3, **policy: Any) -> JSON:
    spec: JSON = {
        "host": host,
        "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}},
        ],
    }
    if policy:
        spec["trafficPolicy"] = policy
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": _meta(name, ns, age),
        "spec": spec,
    }


def gateway(name: str, ns: str, port: int, hosts: list[str], redirect: bool = False) -> JSON:
    server: JSON = {
        "port": {"number": port, "name": f"http-{port}", "protocol": "HTTP"},
        "hosts": hosts,
    }
    if redirect:
        server["tls"] = {"httpsRedirect": True}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": _meta(name, ns, 0),
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": [server]},
    }


def endpoint(app: str, ns: str, version: str, port: int, index: int = 0) -> Endpoint:
    labels = {"app": app, "version": version}
    return Endpoint(f"{app}-{version}-{index}", ns, labels, "127.0.0.1", port)


class World:
    """The objects a mesh serves, changed as the API store changes them: replaced, never edited."""

    def __init__(self, shuffle: random.Random | None = None) -> None:
        self.objects: dict[tuple[str, str, str], JSON] = {}
        self.endpoints: list[Endpoint] = []
        self.memo = Memo()
        # The store lists a changed object last; any order must give the same configuration.
        self.shuffle = shuffle

    def put(self, obj: JSON) -> None:
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = obj

    def patch(self, kind: str, ns: str, name: str, change: Callable[[JSON], object]) -> None:
        new = copy.deepcopy(self.objects[(kind, ns, name)])
        change(new)
        self.objects[(kind, ns, name)] = new

    def delete(self, kind: str, ns: str, name: str) -> None:
        del self.objects[(kind, ns, name)]

    def of(self, kind: str) -> list[JSON]:
        found = [o for (k, _, _), o in sorted(self.objects.items()) if k == kind]
        if self.shuffle is not None:
            self.shuffle.shuffle(found)
        return found

    def snapshot(self) -> MeshSnapshot:
        return MeshSnapshot(
            services=self.of("Service"),
            virtual_services=self.of("VirtualService"),
            destination_rules=self.of("DestinationRule"),
            gateways=self.of("Gateway"),
            endpoints=list(self.endpoints),
            listener_ports={"gateway_8080": 31080, "gateway_8081": 31081},
            domain=DOMAIN,
            access_log_dir="/tmp/access",
        )

    def check(self, step: str) -> None:
        """The memo's translation equals one from scratch (or both refuse, saying the same)."""
        snap = self.snapshot()
        try:
            full = _text(translate(copy.deepcopy(snap)))
        except TranslationError as exc:
            with pytest.raises(TranslationError) as refused:
                translate(snap, self.memo)
            assert str(refused.value) == str(exc), step
            return
        incremental = _text(translate(snap, self.memo))
        assert incremental == full, f"after {step}: the incremental translation differs"


def _text(resources: Any) -> str:
    return json.dumps(
        {
            "listeners": resources.listeners,
            "clusters": resources.clusters,
            "routes": resources.routes,
            "warnings": [str(w) for w in resources.warnings],
        },
        indent=1,
    )


def base_world(shuffle: random.Random | None = None) -> World:
    world = World(shuffle)
    for ns in NAMESPACES:
        for name in ("web", "api"):
            world.put(service(name, ns))
            world.put(rule(name, ns, fqdn(name, ns)))
            world.put(mesh_vs(name, ns, fqdn(name, ns)))
            for version, port in (("v1", 10001), ("v2", 10002)):
                world.endpoints.append(endpoint(name, ns, version, port + len(world.endpoints)))
    world.put(service("multi", "shop", ports=(80, 9090)))
    world.put(gateway("public", "shop", 8080, ["*.example.com"]))
    world.put(
        gateway_vs("front", "shop", ["www.example.com"], ["shop/public"], fqdn("web", "shop"))
    )
    # A caller-dependent VirtualService: only workloads labelled app=web get its route.
    labelled = mesh_vs("api-from-web", "team", fqdn("api", "team"), 50, age=5)
    labelled["spec"]["http"][1]["match"] = [{"sourceLabels": {"app": "web"}}]
    world.put(labelled)
    return world


def _set_weight(weight: int) -> Callable[[JSON], None]:
    def change(vs: JSON) -> None:
        route = vs["spec"]["http"][1]["route"]
        route[0]["weight"], route[1]["weight"] = weight, 100 - weight

    return change


def test_every_change_gives_the_configuration_a_full_translation_gives():
    """Create, patch and delete of each kind (and of replicas), one after the other."""
    world = base_world()
    world.check("the first translation")
    steps: list[tuple[str, Callable[[], None]]] = [
        (
            "create a mesh VirtualService",
            lambda: world.put(mesh_vs("multi", "shop", fqdn("multi", "shop"))),
        ),
        (
            "patch its weights",
            lambda: world.patch("VirtualService", "shop", "multi", _set_weight(10)),
        ),
        (
            "patch another one's fault",
            lambda: world.patch(
                "VirtualService",
                "team",
                "web",
                lambda vs: vs["spec"]["http"][1].update(
                    fault={"abort": {"httpStatus": 503, "percentage": {"value": 50}}}
                ),
            ),
        ),
        (
            "create a DestinationRule with consistent hashing",
            lambda: world.put(
                rule(
                    "multi",
                    "shop",
                    fqdn("multi", "shop"),
                    loadBalancer={"consistentHash": {"httpHeaderName": "x-user"}},
                ),
            ),
        ),
        (
            "patch a DestinationRule's connection pool",
            lambda: world.patch(
                "DestinationRule",
                "shop",
                "web",
                lambda r: r["spec"].update(
                    trafficPolicy={"connectionPool": {"tcp": {"maxConnections": 1}}}
                ),
            ),
        ),
        (
            "patch its subsets",
            lambda: world.patch(
                "DestinationRule",
                "shop",
                "web",
                lambda r: r["spec"]["subsets"].pop(),
            ),
        ),
        (
            "create a wildcard DestinationRule",
            lambda: world.put(
                rule(
                    "everything",
                    "team",
                    f"*.team.svc.{DOMAIN}",
                    outlierDetection={"consecutive5xxErrors": 3},
                ),
            ),
        ),
        (
            "delete the exact rule the wildcard now covers",
            lambda: world.delete("DestinationRule", "team", "api"),
        ),
        (
            "create a second rule for one host (merged)",
            lambda: world.put(
                {
                    **rule("web-extra", "shop", fqdn("web", "shop"), age=9),
                    "spec": {
                        "host": fqdn("web", "shop"),
                        "subsets": [{"name": "v3", "labels": {"version": "v3"}}],
                    },
                },
            ),
        ),
        (
            "create a rule for that host in another namespace (warned)",
            lambda: world.put(
                rule("web-shop", "team", fqdn("web", "shop"), age=10),
            ),
        ),
        (
            "create a Gateway with an HTTPS redirect",
            lambda: world.put(
                gateway("partner", "team", 8081, ["*/partner.example.org"], redirect=True),
            ),
        ),
        (
            "bind a VirtualService to both Gateways",
            lambda: world.put(
                gateway_vs(
                    "both",
                    "team",
                    ["partner.example.org", "www.example.com"],
                    ["shop/public", "team/partner"],
                    fqdn("api", "team"),
                ),
            ),
        ),
        (
            "patch a Gateway's hosts",
            lambda: world.patch(
                "Gateway",
                "shop",
                "public",
                lambda g: g["spec"]["servers"][0].update(hosts=["www.example.com"]),
            ),
        ),
        ("create a Service", lambda: world.put(service("new", "team", ports=(8080,)))),
        (
            "create its replicas",
            lambda: world.endpoints.extend(
                [endpoint("new", "team", "v1", 12001), endpoint("new", "team", "v2", 12002)]
            ),
        ),
        (
            "patch a Service's ports",
            lambda: world.patch(
                "Service",
                "shop",
                "multi",
                lambda s: s["spec"]["ports"].pop(),
            ),
        ),
        (
            "patch a Service's selector",
            lambda: world.patch(
                "Service",
                "shop",
                "api",
                lambda s: s["spec"].update(selector={"app": "web"}),
            ),
        ),
        (
            "an older VirtualService for the same host (it wins)",
            lambda: world.put(
                mesh_vs("web-old", "shop", fqdn("web", "shop"), 0, age=0) | {},
            ),
        ),
        (
            "a malformed VirtualService (refused)",
            lambda: world.put(
                {
                    **mesh_vs("bad", "shop", fqdn("api", "shop")),
                    "spec": {
                        "hosts": [fqdn("api", "shop")],
                        "http": [
                            {
                                "route": [
                                    {"destination": {"host": fqdn("api", "shop")}, "weight": "x"}
                                ]
                            }
                        ],
                    },
                },
            ),
        ),
        ("delete it", lambda: world.delete("VirtualService", "shop", "bad")),
        ("a replica goes away", lambda: world.endpoints.pop(0)),
        ("delete a mesh VirtualService", lambda: world.delete("VirtualService", "shop", "web-old")),
        (
            "delete a Gateway (its VirtualServices stay)",
            lambda: world.delete("Gateway", "team", "partner"),
        ),
        ("delete a Service", lambda: world.delete("Service", "shop", "multi")),
        ("delete a DestinationRule", lambda: world.delete("DestinationRule", "shop", "multi")),
        (
            "delete the caller-dependent VirtualService",
            lambda: world.delete("VirtualService", "team", "api-from-web"),
        ),
        ("put the first configuration back", lambda: _reset(world)),
    ]
    for name, change in steps:
        change()
        world.check(name)


def _reset(world: World) -> None:
    fresh = base_world()
    world.objects, world.endpoints = fresh.objects, fresh.endpoints


def _random_change(world: World, rng: random.Random) -> str:
    """One random write a user might make, described."""
    kind = rng.choice(KINDS)
    existing = [k for k in world.objects if k[0] == kind]
    action = rng.choice(("create", "patch", "patch", "delete"))
    ns = rng.choice(NAMESPACES)
    target = rng.choice(["web", "api", "multi", "new"])
    if action == "delete" and existing:
        key = rng.choice(existing)
        world.delete(*key)
        return f"delete {key}"
    if action == "patch" and existing:
        key = rng.choice(existing)
        world.patch(*key, lambda o: _mutate(o, rng))
        return f"patch {key}"
    name = f"{target}-{rng.randrange(3)}"
    host = fqdn(target, ns)
    if kind == "Service":
        world.put(service(target, ns, ports=rng.choice([(80,), (80, 9090), (8080,)])))
    elif kind == "VirtualService":
        if rng.random() < 0.3:
            world.put(
                gateway_vs(
                    name,
                    ns,
                    [f"{target}.example.com"],
                    [rng.choice(["shop/public", "team/partner", "mesh"])],
                    host,
                    age=rng.randrange(20),
                )
            )
        else:
            world.put(mesh_vs(name, ns, host, rng.randrange(101), age=rng.randrange(20)))
    elif kind == "DestinationRule":
        world.put(rule(name, ns, rng.choice([host, f"*.{ns}.svc.{DOMAIN}"]), age=rng.randrange(20)))
    else:
        world.put(
            gateway(
                rng.choice(["public", "partner"]),
                ns,
                rng.choice([8080, 8081]),
                ["*/*.example.com"],
                redirect=rng.random() < 0.3,
            )
        )
    return f"create {kind} {ns}/{name}"


def _mutate(obj: JSON, rng: random.Random) -> None:
    spec = obj["spec"]
    if obj["kind"] == "Service":
        spec["ports"] = [{"port": p} for p in rng.choice([(80,), (80, 9090), (9090,)])]
    elif obj["kind"] == "VirtualService":
        http = spec.get("http") or []
        if http and len(http[-1].get("route") or []) == 2 and rng.random() < 0.7:
            _set_weight(rng.randrange(101))(obj)
        elif rng.random() < 0.5:
            spec["gateways"] = rng.choice([["mesh"], ["shop/public"], [], ["mesh", "team/partner"]])
        else:
            spec["hosts"] = [rng.choice(["web", "api", "multi"])]
    elif obj["kind"] == "DestinationRule":
        spec["trafficPolicy"] = rng.choice(
            [
                {"connectionPool": {"tcp": {"maxConnections": rng.randrange(1, 9)}}},
                {"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}},
                {"loadBalancer": {"simple": "ROUND_ROBIN"}},
            ]
        )
    else:
        spec["servers"][0]["hosts"] = [
            rng.choice(["*/*.example.com", "*/web.example.com", "shop/*"])
        ]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_sequences_of_changes_give_what_a_full_translation_gives(seed: int):
    rng = random.Random(seed)
    world = base_world()
    world.check("the first translation")
    done = []
    for _ in range(60):
        done.append(_random_change(world, rng))
        if rng.random() < 0.1:  # a replica starts or stops
            if world.endpoints and rng.random() < 0.5:
                world.endpoints.pop(rng.randrange(len(world.endpoints)))
            else:
                ns, app = rng.choice(NAMESPACES), rng.choice(["web", "api", "multi", "new"])
                world.endpoints.append(
                    endpoint(app, ns, rng.choice(["v1", "v2"]), 13000 + len(done), len(done))
                )
            done.append("replicas changed")
        world.check(" -> ".join(done[-3:]))


def test_the_memo_reuses_what_a_change_does_not_touch():
    """The point of the memo: a changed VirtualService leaves every cluster, and the routes of
    every other VirtualService, the very same objects (nothing recomputed for them)."""
    world = base_world()
    first = translate(world.snapshot(), world.memo)
    world.patch("VirtualService", "shop", "web", _set_weight(0))
    second = translate(world.snapshot(), world.memo)
    assert all(a is b for a, b in zip(first.clusters, second.clusters, strict=True))

    def routes(res: Any, name: str) -> list[JSON]:
        hosts = res.route_config("80")["virtual_hosts"]
        return next(h["routes"] for h in hosts if h["name"] == f"{fqdn(name, 'shop')}:80")

    assert routes(first, "web") != routes(second, "web")
    assert all(a is b for a, b in zip(routes(first, "api"), routes(second, "api"), strict=True))


def _move(world: World, kind: str, ns: str, name: str, to_ns: str) -> None:
    """Delete an object and create it again in another namespace (its short hosts now
    resolve there)."""
    obj = copy.deepcopy(world.objects[(kind, ns, name)])
    world.delete(kind, ns, name)
    obj["metadata"]["namespace"] = to_ns
    world.put(obj)


def _source_labels(labels: dict[str, str] | None) -> Callable[[JSON], None]:
    def change(vs: JSON) -> None:
        match = vs["spec"]["http"][0]["match"][0]
        if labels is None:
            match.pop("sourceLabels", None)
        else:
            match["sourceLabels"] = labels

    return change


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_the_virtual_service_index_follows_every_kind_of_change(order: str):
    """What the translator keeps about all VirtualServices between translations (oldest
    first, which bind to ``mesh`` and for which hosts, which bind to each Gateway, which label
    keys ``sourceLabels`` name) follows each change as a translation from scratch sees it,
    whatever order the snapshot lists the objects in."""
    world = base_world(random.Random(7) if order == "shuffled" else None)
    world.put(gateway("partner", "team", 8081, ["*.example.org", "*/*.example.com"]))
    world.check("the first translation")
    public, partner = ["shop/public"], ["team/partner"]
    www = ["www.example.com"]
    steps: list[tuple[str, Callable[[], None]]] = [
        ("bind a second VirtualService to the public Gateway, older than the first",
         lambda: world.put(gateway_vs("front-old", "shop", www, public, fqdn("api", "shop"),
                                      age=0))),
        ("move it to the partner Gateway",
         lambda: world.patch("VirtualService", "shop", "front-old",
                             lambda vs: vs["spec"].update(gateways=partner))),
        ("bind it to both Gateways and the sidecars",
         lambda: world.patch("VirtualService", "shop", "front-old",
                             lambda vs: vs["spec"].update(gateways=[*public, *partner, "mesh"],
                                                          hosts=[*www, "web"]))),
        ("unbind it from the sidecars",
         lambda: world.patch("VirtualService", "shop", "front-old",
                             lambda vs: vs["spec"].update(gateways=public))),
        ("a mesh VirtualService for a Service's short name, older than its own",
         lambda: world.put(mesh_vs("web-short", "shop", "web", 0, age=0))),
        ("move it to another namespace (the short name now means team's web)",
         lambda: _move(world, "VirtualService", "shop", "web-short", "team")),
        ("sourceLabels appear on a mesh VirtualService",
         lambda: world.patch("VirtualService", "shop", "web",
                             _source_labels({"tier": "gold"}))),
        ("and on another one",
         lambda: world.patch("VirtualService", "team", "web",
                             _source_labels({"tier": "silver", "zone": "a"}))),
        ("they go from the first", lambda: world.patch("VirtualService", "shop", "web",
                                                        _source_labels(None))),
        ("and from the second", lambda: world.patch("VirtualService", "team", "web",
                                                     _source_labels(None))),
        ("a wildcard mesh VirtualService",
         lambda: world.put(mesh_vs("all-team", "team", f"*.team.svc.{DOMAIN}", 30, age=4))),
        ("an older one for one of its hosts",
         lambda: world.put(mesh_vs("api-first", "team", fqdn("api", "team"), 70, age=0))),
        ("the wildcard one names one host instead",
         lambda: world.patch("VirtualService", "team", "all-team",
                             lambda vs: vs["spec"].update(hosts=[fqdn("web", "team")]))),
        ("and a wildcard again", lambda: world.patch(
            "VirtualService", "team", "all-team",
            lambda vs: vs["spec"].update(hosts=[f"*.team.svc.{DOMAIN}"]))),
        ("its age changes (recreated: now the youngest)",
         lambda: world.patch("VirtualService", "team", "all-team",
                             lambda vs: vs["metadata"].update(
                                 creationTimestamp="2026-01-01T00:59:00Z"))),
        ("a wildcard one for a host without a VirtualService of its own",
         lambda: world.put(mesh_vs("all-shop", "shop", f"*.shop.svc.{DOMAIN}", 20, age=4))),
        ("an older wildcard one for it (it wins)",
         lambda: world.put(mesh_vs("all-shop-old", "shop", f"*.svc.{DOMAIN}", 80, age=0))),
        ("delete the older one", lambda: world.delete("VirtualService", "team", "api-first")),
        ("delete the older wildcard one",
         lambda: world.delete("VirtualService", "shop", "all-shop-old")),
        ("delete the wildcard one", lambda: world.delete("VirtualService", "team", "all-team")),
        ("a Service moves namespace", lambda: _move(world, "Service", "shop", "multi", "team")),
        ("a DestinationRule moves namespace",
         lambda: _move(world, "DestinationRule", "shop", "api", "team")),
        ("a Gateway moves namespace (its VirtualServices name the old one)",
         lambda: _move(world, "Gateway", "shop", "public", "team")),
        ("delete every VirtualService bound to the partner Gateway", lambda: [
            world.delete("VirtualService", "shop", "front-old"),
        ]),
        ("delete every mesh VirtualService", lambda: [
            world.delete(*key) for key in list(world.objects)
            if key[0] == "VirtualService" and not world.objects[key]["spec"].get("gateways")
        ]),
        ("delete every VirtualService", lambda: [
            world.delete(*key) for key in list(world.objects) if key[0] == "VirtualService"
        ]),
        ("create one again", lambda: world.put(mesh_vs("web", "shop", fqdn("web", "shop")))),
        ("put the first configuration back", lambda: _reset(world)),
    ]  # fmt: skip
    for name, change in steps:
        change()
        world.check(name)


def test_snapshots_translated_in_turn_with_one_memo_give_their_own_configuration():
    """The daemon's memo may see a snapshot again after another one (a rejected change, then
    the served state): each translation is its snapshot's, not the previous one's."""
    world = base_world()
    before = world.snapshot()
    world.patch("VirtualService", "shop", "web", _source_labels({"tier": "gold"}))
    world.put(gateway_vs("moved", "team", ["www.example.com"], ["shop/public"],
                         fqdn("api", "team"), age=0))  # fmt: skip
    after = world.snapshot()
    expected = {id(s): _text(translate(copy.deepcopy(s))) for s in (before, after)}
    assert expected[id(before)] != expected[id(after)]
    for snap in (before, after, before, before, after):
        assert _text(translate(snap, world.memo)) == expected[id(snap)]
