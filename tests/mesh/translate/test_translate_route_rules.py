"""Routes read only the consistent hashes of DestinationRules (``hashing.route_rules``): a
circuit breaker patched into a rule changes its clusters and leaves every route as it was,
while a change of a hash reaches the routes of its host."""

from __future__ import annotations

from typing import Any

from chaosmesh_ext.mesh.translate import translate
from chaosmesh_ext.mesh.translate.hashing import route_view
from tests.mesh.translate.test_translate_incremental import base_world, fqdn

JSON = dict[str, Any]


def _web_routes(res: Any) -> list[JSON]:
    hosts = res.route_config("80")["virtual_hosts"]
    return next(h["routes"] for h in hosts if h["name"] == f"{fqdn('web', 'shop')}:80")


def _web_clusters(res: Any) -> list[JSON]:
    return [c for c in res.clusters if c["name"].endswith(f"|{fqdn('web', 'shop')}")]


def test_a_circuit_breaker_changes_clusters_and_leaves_every_route_the_same_object():
    world = base_world()
    first = translate(world.snapshot(), world.memo)

    def breaker(rule: JSON) -> None:
        rule["spec"]["trafficPolicy"] = {
            "connectionPool": {"tcp": {"maxConnections": 1}},
            "outlierDetection": {"consecutive5xxErrors": 1, "interval": "1s"},
        }
        rule["spec"]["subsets"][0]["trafficPolicy"] = {
            "connectionPool": {"http": {"maxRetries": 2}}
        }
        rule["metadata"]["resourceVersion"] = "2"

    world.patch("DestinationRule", "shop", "web", breaker)
    second = translate(world.snapshot(), world.memo)
    limits = {
        c["name"].split("|")[2]: c["circuit_breakers"]["thresholds"][0]["max_connections"]
        for c in _web_clusters(second)
    }
    assert limits == {"": 1, "v1": 4294967295, "v2": 1}  # v1's own pool replaces the top's
    assert all("outlier_detection" in c for c in _web_clusters(second))
    assert all(a is b for a, b in zip(first.routes, second.routes, strict=True))
    assert first.listeners == second.listeners


def test_a_consistent_hash_reaches_the_routes_of_its_host():
    world = base_world()
    first = translate(world.snapshot(), world.memo)
    assert all("hash_policy" not in r["route"] for r in _web_routes(first))

    def by_header(rule: JSON) -> None:
        rule["spec"]["subsets"][1]["trafficPolicy"] = {
            "loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}
        }

    world.patch("DestinationRule", "shop", "web", by_header)
    second = translate(world.snapshot(), world.memo)
    routed = [r["route"] for r in _web_routes(second)]
    assert {"header": {"header_name": "x-user"}} in [p for r in routed for p in r["hash_policy"]]

    def by_cookie(rule: JSON) -> None:
        rule["spec"]["subsets"][1]["trafficPolicy"] = {
            "loadBalancer": {"consistentHash": {"httpCookie": {"name": "u", "ttl": "0s"}}}
        }

    world.patch("DestinationRule", "shop", "web", by_cookie)
    third = translate(world.snapshot(), world.memo)
    policies = [p for r in _web_routes(third) for p in r["route"].get("hash_policy", [])]
    assert policies and all(p == {"cookie": {"name": "u", "ttl": "0s"}} for p in policies)


def test_a_rule_of_an_odd_shape_is_read_by_routes_as_it_is():
    odd = {"metadata": {"name": "r"}, "spec": {"host": "web", "trafficPolicy": ["not", "a", "map"]}}
    assert route_view(odd) is odd
    plain = {
        "metadata": {"name": "r", "namespace": "shop", "resourceVersion": "7"},
        "spec": {
            "host": "web",
            "trafficPolicy": {
                "connectionPool": {"tcp": {"maxConnections": 1}},
                "loadBalancer": {"simple": "RANDOM"},
                "portLevelSettings": [{"port": {"number": 80}, "tls": {"mode": "DISABLE"}}],
            },
            "subsets": [{"name": "v1", "labels": {"version": "v1"}}],
        },
    }
    assert route_view(plain) == {
        "metadata": {"name": "r", "namespace": "shop"},
        "spec": {"host": "web"},
    }
    hashed = {
        "spec": {
            "host": "web",
            "trafficPolicy": {
                "connectionPool": {"tcp": {"maxConnections": 1}},
                "portLevelSettings": [
                    {"port": {"number": 80}, "tls": {"mode": "DISABLE"}},
                    {
                        "port": {"number": 81},
                        "loadBalancer": {"consistentHash": {"useSourceIp": True}},
                    },
                ],
            },
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}},
                {
                    "name": "v2",
                    "trafficPolicy": {"loadBalancer": {"consistentHash": {"maglev": {}}}},
                },
            ],
        },
    }
    assert route_view(hashed)["spec"] == {
        "host": "web",
        "trafficPolicy": {
            "portLevelSettings": [
                {"port": {"number": 80}},  # still the first level of port 80: it has no hash
                {"port": {"number": 81}, "loadBalancer": {"consistentHash": {"useSourceIp": True}}},
            ]
        },
        "subsets": [
            {"name": "v1", "trafficPolicy": None},
            {"name": "v2", "trafficPolicy": {"loadBalancer": {"consistentHash": {"maglev": {}}}}},
        ],
    }
