"""VirtualService http[] -> Envoy routes: matches, destinations, timeouts, retries, faults."""

from __future__ import annotations

import copy

import pytest
import yaml

from chaosmesh_ext.mesh.translate import translate
from chaosmesh_ext.mesh.translate.faults import http_fault
from chaosmesh_ext.mesh.translate.retries import retry_policy
from tests.support import mesh_seed as seed

DEFAULT_RETRY = {
    "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
    "num_retries": 2,
    "retry_host_predicate": [
        {
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3"
                ".PreviousHostsPredicate"
            },
        }
    ],
    "host_selection_retry_max_attempts": 5,
}
NGINX = "nginx-svc.default.svc.cluster.local"
TOMCAT = "tomcat-svc.default.svc.cluster.local"


def vhost(res, config: str, name: str) -> dict:
    for host in res.route_config(config)["virtual_hosts"]:
        if host["name"] == name:
            return host
    raise KeyError(name)


def test_nginx_route_timeout_and_default_retries_exactly_as_istiod():
    res = translate(seed.snapshot(seed.TIMEOUT))
    host = vhost(res, "80", f"{NGINX}:80")
    assert host["domains"] == [
        NGINX,
        f"{NGINX}:80",
        # the absolute FQDN (PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN, on by default)
        f"{NGINX}.",
        f"{NGINX}.:80",
        "nginx-svc",
        "nginx-svc:80",
        "nginx-svc.default",
        "nginx-svc.default:80",
        "nginx-svc.default.svc",
        "nginx-svc.default.svc:80",
    ]
    assert host["include_request_attempt_count"] is True
    assert host["routes"] == [
        {
            "match": {"prefix": "/"},
            "route": {
                "cluster": f"outbound|80||{NGINX}",
                "timeout": "2s",
                "retry_policy": DEFAULT_RETRY,
                "max_grpc_timeout": "2s",
            },
            "decorator": {"operation": f"{NGINX}:80/*"},
        }
    ]


def test_tomcat_delay_fault_in_millionths_and_no_timeout():
    res = translate(seed.snapshot(seed.TIMEOUT))
    (route,) = vhost(res, "8080", f"{TOMCAT}:8080")["routes"]
    assert route["route"]["timeout"] == "0s"
    assert route["typed_per_filter_config"] == {
        "envoy.filters.http.fault": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
            "delay": {
                "percentage": {"numerator": 1000000, "denominator": "MILLION"},
                "fixed_delay": "10s",
            },
        }
    }


def test_abort_and_retries_from_the_seed_with_its_slip_fixed():
    res = translate(seed.snapshot(seed.TIMEOUT + "\n---\n" + seed.RETRY))
    (nginx,) = vhost(res, "80", f"{NGINX}:80")["routes"]
    # attempts set, retryOn absent: the default retry_on string stays -> 503 is NOT retried.
    assert nginx["route"]["retry_policy"] == dict(
        DEFAULT_RETRY, num_retries=3, per_try_timeout="2s"
    )
    assert "retriable_status_codes" not in nginx["route"]["retry_policy"]
    (tomcat,) = vhost(res, "8080", f"{TOMCAT}:8080")["routes"]
    assert tomcat["typed_per_filter_config"]["envoy.filters.http.fault"]["abort"] == {
        "percentage": {"numerator": 1000000, "denominator": "MILLION"},
        "http_status": 503,
    }


def test_the_seeds_unfixed_retry_yaml_applies_to_nothing():
    # hosts nginx-vs / tomcat-vs name no Service: both Services keep their default routes
    # (and the timeout scenario's VirtualServices are not there either).
    services = "---".join(seed.TIMEOUT.split("---")[:2])
    slipped = seed.RETRY.replace("[nginx-svc]", "[nginx-vs]").replace("[tomcat-svc]", "[tomcat-vs]")
    res = translate(seed.snapshot(services + "\n---\n" + slipped))
    for config, fqdn, port in (("80", NGINX, 80), ("8080", TOMCAT, 8080)):
        (route,) = vhost(res, config, f"{fqdn}:{port}")["routes"]
        assert route["name"] == "default"
        assert "typed_per_filter_config" not in route


@pytest.mark.parametrize(
    ("retries", "expected"),
    [
        ({"attempts": 0}, None),
        ({"attempts": -1, "retryOn": "5xx"}, None),
        (
            {"attempts": 3, "retryOn": "5xx"},
            dict(DEFAULT_RETRY, num_retries=3, retry_on="5xx"),
        ),
        (
            {"attempts": 2, "retryOn": "gateway-error,503, 429"},
            dict(
                DEFAULT_RETRY,
                retry_on="gateway-error,retriable-status-codes",
                retriable_status_codes=[503, 429],
            ),
        ),
        (
            {"attempts": 1, "retryOn": "retriable-status-codes,503"},
            dict(
                DEFAULT_RETRY,
                num_retries=1,
                retry_on="retriable-status-codes",
                retriable_status_codes=[503],
            ),
        ),
    ],
)
def test_retry_policy_conversion(retries, expected):
    assert retry_policy(retries, "x") == expected


def test_no_retries_block_means_the_default_policy():
    assert retry_policy(None, "x") == DEFAULT_RETRY


@pytest.mark.parametrize(
    ("fault", "expected_percentage"),
    [
        ({"abort": {"httpStatus": 503, "percentage": {"value": 0.1}}}, (1000, "MILLION")),
        ({"abort": {"httpStatus": 503, "percentage": {"value": 33.3}}}, (333000, "MILLION")),
        # istiod truncates: 0.57 * 10000 is 5699.999... in floating point.
        ({"abort": {"httpStatus": 503, "percentage": {"value": 0.57}}}, (5699, "MILLION")),
        # The deprecated integer percent exists for delays only: hundredths.
        ({"delay": {"fixedDelay": "1s", "percent": 25}}, (25, "HUNDRED")),
        # A delay with no percentage at all: percent 0, the fault never fires.
        ({"delay": {"fixedDelay": "1s"}}, (0, "HUNDRED")),
    ],
)
def test_fault_percentages(fault, expected_percentage):
    out = http_fault(fault, "x")
    assert out is not None
    pct = (out.get("abort") or out["delay"])["percentage"]
    assert (pct["numerator"], pct["denominator"]) == expected_percentage


def test_an_abort_without_percentage_gets_none_as_from_istiod():
    """TranslateFault sets abort.percentage only from ``percentage`` (Envoy: 0 %)."""
    assert http_fault({"abort": {"httpStatus": 503}}, "x") == {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
        "abort": {"http_status": 503},
    }


def test_grpc_abort_uses_the_code_number():
    out = http_fault({"abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 100}}}, "x")
    assert out is not None and out["abort"]["grpc_status"] == 14


def _vs(http: list, hosts=("tomcat-svc",), name="tomcat-vs", **meta) -> dict:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "default", **meta},
        "spec": {"hosts": list(hosts), "http": http},
    }


def _tomcat_routes(*virtual_services: dict) -> list[dict]:
    snap = seed.snapshot(seed.TIMEOUT)
    snap.virtual_services = list(virtual_services)
    return vhost(translate(snap), "8080", f"{TOMCAT}:8080")["routes"]


def test_header_match_uri_match_and_routes_after_a_catch_all_are_dropped():
    routes = _tomcat_routes(
        _vs(
            [
                {
                    "name": "jason",
                    "match": [
                        {
                            "name": "hdr",
                            "headers": {"End-User": {"exact": "jason"}},
                            "uri": {"prefix": "/api"},
                        },
                        {"withoutHeaders": {"x-debug": {}}, "uri": {"regex": "/v[0-9]+/.*"}},
                    ],
                    "route": [{"destination": {"host": "tomcat-svc", "subset": "v2"}}],
                },
                {"name": "rest", "route": [{"destination": {"host": "tomcat-svc"}}]},
                {"name": "never", "route": [{"destination": {"host": "nginx-svc"}}]},
            ]
        )
    )
    assert [r.get("name") for r in routes] == ["jason.hdr", "jason", "rest"]
    assert routes[0]["match"] == {
        "prefix": "/api",
        "case_sensitive": True,
        "headers": [{"name": "end-user", "string_match": {"exact": "jason"}}],
    }
    assert routes[0]["route"]["cluster"] == f"outbound|8080|v2|{TOMCAT}"
    assert routes[1]["match"] == {
        "safe_regex": {"regex": "/v[0-9]+/.*"},
        "case_sensitive": True,
        "headers": [{"name": "x-debug", "present_match": True, "invert_match": True}],
    }


def test_source_labels_become_identity_header_matchers():
    routes = _tomcat_routes(
        _vs(
            [
                {
                    "match": [
                        {"sourceLabels": {"app": "nginx", "app.kubernetes.io/version": "v1"}}
                    ],
                    "fault": {"abort": {"httpStatus": 500, "percentage": {"value": 100}}},
                    "route": [{"destination": {"host": "tomcat-svc"}}],
                },
                {"route": [{"destination": {"host": "tomcat-svc"}}]},
            ]
        )
    )
    assert routes[0]["match"]["headers"] == [
        {"name": "x-chaosmesh-src-label-app", "string_match": {"exact": "nginx"}},
        {
            "name": "x-chaosmesh-src-label-app-kubernetes-io-version",
            "string_match": {"exact": "v1"},
        },
    ]
    assert len(routes) == 2  # a sourceLabels match is not a catch-all


def test_weighted_destinations_drop_zero_weights_and_keep_relative_weights():
    routes = _tomcat_routes(
        _vs(
            [
                {
                    "route": [
                        {"destination": {"host": "tomcat-svc", "subset": "a"}, "weight": 0},
                        {"destination": {"host": "tomcat-svc", "subset": "b"}, "weight": 3},
                        {"destination": {"host": "tomcat-svc", "subset": "c"}, "weight": 1},
                    ]
                }
            ]
        )
    )
    assert routes[0]["route"]["weighted_clusters"] == {
        "clusters": [
            {"name": f"outbound|8080|b|{TOMCAT}", "weight": 3},
            {"name": f"outbound|8080|c|{TOMCAT}", "weight": 1},
        ]
    }
    assert routes[0]["decorator"] == {"operation": "tomcat-vs:8080/*"}


def test_destination_to_an_unknown_host_still_names_a_cluster():
    routes = _tomcat_routes(
        _vs([{"route": [{"destination": {"host": "ghost", "port": {"number": 81}}}]}])
    )
    assert routes[0]["route"]["cluster"] == "outbound|81||ghost.default.svc.cluster.local"


def test_two_virtual_services_for_one_host_only_the_oldest_survives():
    old = _vs(
        [{"name": "old", "route": [{"destination": {"host": "tomcat-svc"}}]}],
        name="zz-old",
        creationTimestamp="2020-01-01T00:00:00Z",
    )
    new = _vs(
        [{"name": "new", "route": [{"destination": {"host": "tomcat-svc"}}]}],
        name="aa-new",
        creationTimestamp="2025-01-01T00:00:00Z",
    )
    assert [r["name"] for r in _tomcat_routes(new, old)] == ["old"]
    same_time = copy.deepcopy(new)
    same_time["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    assert [r["name"] for r in _tomcat_routes(old, same_time)] == ["new"]  # then by name


def test_a_virtual_service_bound_only_to_a_gateway_does_not_touch_sidecars():
    vs = _vs([{"name": "gw", "route": [{"destination": {"host": "tomcat-svc"}}]}])
    vs["spec"]["gateways"] = ["some-gateway"]
    assert [r["name"] for r in _tomcat_routes(vs)] == ["default"]
    vs["spec"]["gateways"] = ["some-gateway", "mesh"]
    assert [r["name"] for r in _tomcat_routes(vs)] == ["gw"]


def test_translation_is_deterministic():
    snap = seed.snapshot(seed.CANARY + "\n---\n" + seed.TIMEOUT, seed.canary_endpoints())
    first, second = translate(snap), translate(copy.deepcopy(snap))
    assert yaml.safe_dump(first.__dict__) == yaml.safe_dump(second.__dict__)


def test_identity_headers_are_stripped_before_the_upstream():
    res = translate(seed.snapshot(seed.CANARY, seed.canary_endpoints()))
    assert res.route_config("80")["request_headers_to_remove"] == [
        "x-chaosmesh-source-namespace",
        "x-chaosmesh-source-workload",
        "x-chaosmesh-src-label-app",
        "x-chaosmesh-src-label-apply",
    ]


def test_source_namespace_and_match_gateways():
    vs = _vs(
        [
            {
                "name": "from-prod",
                "match": [{"sourceNamespace": "prod"}],
                "route": [{"destination": {"host": "tomcat-svc"}}],
            },
            {
                "name": "gateway-only",
                "match": [{"gateways": ["ingress"], "uri": {"prefix": "/"}}],
                "route": [{"destination": {"host": "tomcat-svc"}}],
            },
            {"name": "rest", "route": [{"destination": {"host": "tomcat-svc"}}]},
        ]
    )
    routes = _tomcat_routes(vs)
    # The gateway-only match is dropped on sidecars (it would otherwise be a catch-all).
    assert [r["name"] for r in routes] == ["from-prod", "rest"]
    assert routes[0]["match"]["headers"] == [
        {"name": "x-chaosmesh-source-namespace", "string_match": {"exact": "prod"}}
    ]


def test_weighted_destination_headers_go_on_the_cluster_weight():
    routes = _tomcat_routes(
        _vs(
            [
                {
                    "headers": {"request": {"set": {"x-a": "1"}}, "response": {"remove": ["x-b"]}},
                    "route": [
                        {
                            "destination": {"host": "tomcat-svc", "subset": "a"},
                            "weight": 50,
                            "headers": {"request": {"add": {"x-dest": "a"}}},
                        },
                        {"destination": {"host": "tomcat-svc", "subset": "b"}, "weight": 50},
                    ],
                }
            ]
        )
    )
    route = routes[0]
    assert route["request_headers_to_add"] == [
        {"header": {"key": "x-a", "value": "1"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
    ]
    assert route["response_headers_to_remove"] == ["x-b"]
    first = route["route"]["weighted_clusters"]["clusters"][0]
    assert first["request_headers_to_add"] == [
        {"header": {"key": "x-dest", "value": "a"}, "append_action": "APPEND_IF_EXISTS_OR_ADD"}
    ]


def test_bad_values_name_the_object_and_field():
    with pytest.raises(
        ValueError, match=r"VirtualService default/tomcat-vs: spec\.http\[0\]\.timeout"
    ):
        _tomcat_routes(_vs([{"timeout": "2 secs", "route": [{"destination": {"host": "t"}}]}]))
    with pytest.raises(ValueError, match=r"VirtualService default/tomcat-vs: spec\.http\[1\]"):
        _tomcat_routes(
            _vs(
                [
                    {
                        "match": [{"uri": {"exact": "/x"}}],
                        "route": [{"destination": {"host": "t"}}],
                    },
                    {
                        "route": [
                            {"destination": {"host": "t"}, "weight": "lots"},
                            {"destination": {"host": "u"}, "weight": 1},
                        ]
                    },
                ]
            )
        )


KITCHEN_SINK = _vs(
    [
        {
            "name": "everything",
            "match": [
                {
                    "uri": {"prefix": "/api"},
                    "ignoreUriCase": True,
                    "method": {"exact": "GET"},
                    "queryParams": {"debug": {"exact": "1"}},
                    "headers": {"x-user": {"regex": "j.*"}},
                }
            ],
            "mirror": {"host": "nginx-svc"},
            "mirrorPercentage": {"value": 25},
            "corsPolicy": {
                "allowOrigins": [{"exact": "https://example.com"}, {"regex": ".*\\.example\\.org"}],
                "allowMethods": ["GET", "POST"],
                "maxAge": "24h",
                "allowCredentials": True,
            },
            "rewrite": {"uri": "/v2", "authority": "tomcat.internal"},
            "retries": {"attempts": 2, "retryOn": "5xx,reset", "perTryTimeout": "100ms"},
            "timeout": "1.5s",
            "fault": {"delay": {"fixedDelay": "5ms", "percent": 50}},
            "route": [{"destination": {"host": "tomcat-svc"}}],
        },
        {
            "name": "moved",
            "match": [{"uri": {"exact": "/old"}}],
            "redirect": {"uri": "/new", "redirectCode": 302},
        },
        {"name": "gone", "directResponse": {"status": 410, "body": {"string": "gone"}}},
    ]
)


def test_mirror_cors_rewrite_redirect_and_direct_response():
    everything, moved, gone = _tomcat_routes(copy.deepcopy(KITCHEN_SINK))
    action = everything["route"]
    assert action["request_mirror_policies"] == [
        {
            "cluster": f"outbound|80||{NGINX}",
            "runtime_fraction": {"default_value": {"numerator": 250000, "denominator": "MILLION"}},
            "trace_sampled": False,  # TranslateRequestMirrorPolicy
        }
    ]
    assert action["prefix_rewrite"] == "/v2"
    assert action["host_rewrite_literal"] == "tomcat.internal"
    assert action["timeout"] == "1.500s"
    assert everything["match"]["case_sensitive"] is False
    assert {"name": ":method", "string_match": {"exact": "GET"}} in everything["match"]["headers"]
    assert everything["match"]["query_parameters"] == [
        {"name": "debug", "string_match": {"exact": "1"}}
    ]
    cors = everything["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert cors["allow_origin_string_match"] == [
        {"exact": "https://example.com"},
        {"safe_regex": {"regex": ".*\\.example\\.org"}},
    ]
    assert (cors["allow_methods"], cors["max_age"], cors["allow_credentials"]) == (
        "GET,POST",
        "86400",
        True,
    )
    delay = everything["typed_per_filter_config"]["envoy.filters.http.fault"]["delay"]
    assert delay == {
        "percentage": {"numerator": 50, "denominator": "HUNDRED"},
        "fixed_delay": "0.005s",
    }
    assert moved["redirect"] == {"response_code": "FOUND", "path_redirect": "/new"}
    assert gone["direct_response"] == {"status": 410, "body": {"inline_string": "gone"}}


def test_wildcard_destination_rule_applies_when_no_exact_one_does():
    snap = seed.snapshot(seed.TIMEOUT)
    snap.destination_rules = [
        {
            "metadata": {"name": "all", "namespace": "default"},
            "spec": {
                "host": "*.default.svc.cluster.local",
                "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 3}}},
            },
        },
        {
            "metadata": {"name": "nginx", "namespace": "default"},
            "spec": {
                "host": "nginx-svc",
                "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 7}}},
            },
        },
    ]
    res = translate(snap)
    limit = lambda name: res.cluster(name)["circuit_breakers"]["thresholds"][0]["max_connections"]  # noqa: E731
    assert limit(f"outbound|80||{NGINX}") == 7
    assert limit(f"outbound|8080||{TOMCAT}") == 3
