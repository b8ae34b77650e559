"""Bookinfo's call chain on the embedded mesh, with real Envoy between every hop.

``experiments/manifests/bookinfo.yaml`` runs productpage -> details + reviews, reviews v2/v3
-> ratings as proxy and echo workloads. Istio's fault-injection task
(istio.io "Fault Injection", samples/bookinfo/networking/virtual-service-ratings-test-*.yaml)
injects its faults in the VirtualService of ratings, two hops away from the caller; here the
caller of productpage, at the ingress gateway, sees them: the abort as the status reviews and
then productpage relay, the delay as productpage's own 3 s timeout on reviews (the bug the
task finds: reviews v2 waits 10 s for ratings, productpage only 3 s).
"""

from __future__ import annotations

import http.client
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import Mesh, T

pytestmark = pytest.mark.envoy

BOOKINFO = Path(__file__).resolve().parents[3] / "experiments" / "manifests" / "bookinfo.yaml"

# samples/bookinfo/networking: bookinfo-gateway.yaml, destination-rule-all.yaml (the subsets
# that have pods), virtual-service-reviews-test-v2.yaml, virtual-service-ratings-test-abort.yaml.
NETWORKING = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match:
    - uri: {exact: /productpage}
    - uri: {prefix: /static}
    - uri: {exact: /login}
    - uri: {exact: /logout}
    - uri: {prefix: /api/v1/products}
    route:
    - destination: {host: productpage, port: {number: 9080}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers: {end-user: {exact: jason}}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match:
    - headers: {end-user: {exact: jason}}
    fault:
      abort:
        percentage: {value: 100.0}
        httpStatus: 500
    route:
    - destination: {host: ratings, subset: v1}
  - route:
    - destination: {host: ratings, subset: v1}
"""

# virtual-service-ratings-test-delay.yaml: 7 s for jason.
RATINGS_DELAY = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match:
    - headers: {end-user: {exact: jason}}
    fault:
      delay:
        percentage: {value: 100.0}
        fixedDelay: 7s
    route:
    - destination: {host: ratings, subset: v1}
  - route:
    - destination: {host: ratings, subset: v1}
"""

# virtual-service-reviews-v2-v3.yaml: 50/50.
REVIEWS_V2_V3 = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
      weight: 50
    - destination: {host: reviews, subset: v3}
      weight: 50
"""

_IDENTITY = re.compile(r"((?:\[\d+ body\] )*)(\S+) (\S+) version=(\S+)")


def chain(text: str) -> list[str]:
    """Each hop's identity line, with its nesting: ``[1 body] [0 body] ratings ...``."""
    return [line for line in text.splitlines() if _IDENTITY.fullmatch(line)]


def productpage(mesh: Mesh, user: str | None = None) -> tuple[int, str]:
    """``GET /productpage`` at the ingress gateway, as the user ``user`` when given."""
    split = urlsplit(mesh.gateway()["url"])
    conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=T)
    try:
        conn.request("GET", "/productpage", headers={"end-user": user} if user else {})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.fixture
def bookinfo(mesh_up) -> Mesh:
    mesh: Mesh = mesh_up(
        [], extra={"bookinfo.yaml": BOOKINFO.read_text(), "networking.yaml": NETWORKING}
    )
    return mesh


def test_productpage_calls_details_and_reviews_and_answers_as_itself(bookinfo: Mesh) -> None:
    status, text = productpage(bookinfo)
    assert status == 200
    assert chain(text) == [
        "productpage-v1 productpage-v1-0 version=v1",
        "[0 body] details-v1 details-v1-0 version=v1",
        "[1 body] reviews-v1 reviews-v1-0 version=v1",
    ]
    # Each hop shows the request as its sidecar delivered it: Host is the service's name, and
    # the trace headers Envoy added at the gateway travel on (the proxy relays them).
    assert "[0] Url=http://details:9080/productpage" in text
    assert "[1 body] Host=reviews:9080" in text
    gateway_id = re.search(r"^RequestHeader=X-Request-Id:(\S+)$", text, re.M)
    assert gateway_id is not None
    assert f"[1 body] RequestHeader=X-Request-Id:{gateway_id.group(1)}" in text


def test_a_ratings_abort_for_jason_is_seen_by_productpages_caller(bookinfo: Mesh) -> None:
    status, text = productpage(bookinfo, user="jason")
    # Envoy's fault filter in reviews-v2's sidecar answers 500 for ratings; reviews-v2 relays
    # it as nginx would, and so does productpage: the caller sees 500 and the whole chain.
    assert status == 500
    assert chain(text) == [
        "productpage-v1 productpage-v1-0 version=v1",
        "[0 body] details-v1 details-v1-0 version=v1",
        "[1 body] reviews-v2 reviews-v2-0 version=v2",
    ]
    lines = text.splitlines()
    assert "[0] StatusCode=200" in lines and "[1] StatusCode=500" in lines
    assert "[1 body] [0] Url=http://ratings:9080/productpage" in lines
    assert "[1 body] [0] StatusCode=500" in lines
    assert "[1 body] [0 body] fault filter abort" in lines
    # Everyone else still gets reviews v1, which calls no ratings.
    assert productpage(bookinfo)[0] == 200


def test_a_ratings_delay_trips_productpages_shorter_timeout(bookinfo: Mesh) -> None:
    bookinfo.kubectl("apply", "-f", "-", stdin=RATINGS_DELAY)
    status, text = productpage(bookinfo, user="jason")
    # reviews v2 would wait 10 s for ratings, productpage gives reviews 3 s: the bug Istio's
    # fault-injection task finds, seen as productpage's 504 naming reviews.
    assert status == 504
    lines = text.splitlines()
    assert "[0] StatusCode=200" in lines and "[1] StatusCode=504" in lines
    assert any(
        line.startswith(
            "[1 error] 504 Gateway Timeout: proxy productpage-v1 -> http://reviews:9080"
        )
        and line.endswith("no answer within 3s")
        for line in lines
    ), text


def test_a_split_through_productpage_counts_productpage_and_shows_reviews(bookinfo: Mesh) -> None:
    bookinfo.kubectl("apply", "-f", "-", stdin=REVIEWS_V2_V3)
    first_versions, reviews_versions = set(), set()
    for _ in range(40):
        status, text = productpage(bookinfo)
        assert status == 200
        found = re.search(r"(?P<version>v\d+)", text)  # traffic_split's default classifier
        assert found is not None
        first_versions.add(found.group("version"))
        hops = chain(text)
        reviews = _IDENTITY.fullmatch(hops[2])
        assert reviews is not None
        reviews_versions.add(reviews.group(4))
        assert hops[3] == "[1 body] [0 body] ratings-v1 ratings-v1-0 version=v1"
    assert first_versions == {"v1"}  # productpage's own version, not the deepest service's
    assert reviews_versions == {"v2", "v3"}
