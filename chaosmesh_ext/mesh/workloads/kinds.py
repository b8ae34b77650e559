"""Which stand-in process runs a Deployment's pods on the embedded mesh (pure).

On a cluster a Deployment runs its image; the embedded mesh cannot, so it picks a local
workload that behaves like it: the annotation ``chaosmesh.io/workload`` when present (on the
Deployment or its pod template), else a guess from the container images.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WORKLOAD_ANNOTATION = "chaosmesh.io/workload"
UPSTREAM_ANNOTATION = "chaosmesh.io/upstream"
PROXY_TIMEOUT_ANNOTATION = "chaosmesh.io/proxy-timeout"
COMMAND_ANNOTATION = "chaosmesh.io/command"
# "workers=6,service=20ms": a fixed pool of workers and a queue (see workloads.capacity).
CAPACITY_ANNOTATION = "chaosmesh.io/capacity"

COMMAND_KIND = "command"  # the user's own program: it binds its port itself
KINDS: tuple[str, ...] = ("echo", "httpbin", "proxy", COMMAND_KIND, "fortio")
# Kinds whose server this package runs, so it can put a capacity limit in front of it. A
# command workload is the user's own server; fortio is the load generator.
CAPACITY_KINDS: tuple[str, ...] = ("echo", "httpbin", "proxy")

# Image-name guesses, first match wins. Only images whose behaviour we really reproduce are
# guessed; everything else (nginx, tomcat, a team's own canary image) becomes an echo.
_IMAGE_HINTS: tuple[tuple[str, str], ...] = (("httpbin", "httpbin"), ("fortio", "fortio"))


def _describe(deployment: Mapping[str, Any]) -> str:
    meta = deployment.get("metadata") or {}
    return f"Deployment {meta.get('namespace') or 'default'}/{meta.get('name') or '<unnamed>'}"


def _annotation(deployment: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field path, value) of the workload annotation; the pod template's wins."""
    template_meta = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    candidates = (
        ("spec.template.metadata.annotations", template_meta.get("annotations") or {}),
        ("metadata.annotations", (deployment.get("metadata") or {}).get("annotations") or {}),
    )
    for path, found in candidates:
        if WORKLOAD_ANNOTATION in found:
            return path, str(found[WORKLOAD_ANNOTATION])
    return None


def container_images(deployment: Mapping[str, Any]) -> list[str]:
    """The images of the pod template's containers, in order."""
    pod_spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [str(c.get("image") or "") for c in pod_spec.get("containers") or []]


def workload_kind(deployment: Mapping[str, Any]) -> str:
    """The workload kind for ``deployment``: one of :data:`KINDS`.

    Raises ``ValueError`` naming the deployment and the annotation when the annotation holds
    an unknown kind.
    """
    found = _annotation(deployment)
    if found is not None:
        path, value = found
        kind = value.strip().lower()
        if kind not in KINDS:
            raise ValueError(
                f"{_describe(deployment)}: {path}[{WORKLOAD_ANNOTATION}]: unknown workload "
                f"{value!r}, expected one of {', '.join(KINDS)}"
            )
        return kind
    for image in container_images(deployment):
        # Judge the repository name only: a registry host or tag may contain anything.
        repository = image.rsplit("@", 1)[0]
        name = repository.rsplit("/", 1)[-1].split(":", 1)[0].lower()
        for hint, kind in _IMAGE_HINTS:
            if hint in name:
                return kind
    return "echo"
