"""The seed runbook's Istio objects as dicts (the YAML under fixtures/, loaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).parent / "fixtures"


def load(relative: str, kind: str, name: str) -> dict[str, Any]:
    """The object ``kind``/``name`` from fixtures/``relative`` (a file of several documents)."""
    for doc in yaml.safe_load_all((FIXTURES / relative).read_text()):
        if doc and doc.get("kind") == kind and doc["metadata"]["name"] == name:
            return doc
    raise LookupError(f"{kind} {name} not in {relative}")


def canary_vs() -> dict[str, Any]:
    return load("canary/virtualservice.yaml", "VirtualService", "canary")


def canary_dr() -> dict[str, Any]:
    return load("canary/DestinationRule.yaml", "DestinationRule", "canary")


def httpbin_dr() -> dict[str, Any]:
    return load("circuit-breaking/destinationrule.yaml", "DestinationRule", "httpbin")


def nginx_vs() -> dict[str, Any]:
    """The timeout section's nginx VirtualService (route timeout 2s)."""
    return load("timeout/virtual-tomcat.yaml", "VirtualService", "nginx-vs")


def tomcat_vs() -> dict[str, Any]:
    """The timeout section's tomcat VirtualService (100% 10s delay)."""
    return load("timeout/virtual-tomcat.yaml", "VirtualService", "tomcat-vs")


def retry_tomcat_vs() -> dict[str, Any]:
    """The retry section's tomcat VirtualService (100% abort 503)."""
    return load("retry/virtual-retry.yaml", "VirtualService", "tomcat-svc")
