"""Joining a running mesh without clobbering it: which manifest objects differ from it (pure).

A run that finds the mesh already running (the user's ``mesh up``, or another run's) hands
it only objects that are *absent* from it or *identical* to what it runs. An object the
mesh holds in another form — a weight the user set with kubectl, a fault another run
injected — is the user's or that run's: replacing it would silently undo their change (and
measure the run's hypothesis on the wrong configuration). ``plan_join`` says which objects
differ, with a diff and, when a run's change ledger marked the object, which run changed it.

"Identical" is what applying the manifest would leave unchanged: for Istio kinds the
``spec``, labels and annotations (server-set metadata aside); Services, Deployments and
Secrets exactly as the manifest that started them.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chaosmesh_ext._annotations import LEDGER_ANNOTATION

from .manifests import Loaded, Manifest, with_namespace
from .views import Key, key_of

__all__ = ["Difference", "JoinPlan", "plan_join"]

# Bookkeeping, not part of what the object is: kubectl apply's copy of the manifest, and the
# change ledger's marker (a run that re-applied the manifest's own form leaves it).
_IGNORED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", LEDGER_ANNOTATION)

IstioLookup = Callable[[str, str, str], dict[str, Any] | None]  # kind, ns, name -> live


@dataclass(frozen=True)
class Difference:
    """One object the running mesh holds in another form than the manifest."""

    kind: str
    namespace: str
    name: str
    diff: str
    changed_by: str | None = None  # the run whose ledger marker the live object carries

    def __str__(self) -> str:
        who = f" (changed by run {self.changed_by})" if self.changed_by else ""
        return f"{self.kind} {self.namespace}/{self.name}{who}:\n{self.diff}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "diff": self.diff,
            "changed_by": self.changed_by,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Difference:
        return cls(
            str(data.get("kind")),
            str(data.get("namespace")),
            str(data.get("name")),
            str(data.get("diff") or ""),
            data.get("changed_by") or None,
        )


@dataclass
class JoinPlan:
    """What joining would do: apply ``absent`` (a ``Loaded``), refuse on ``differences``.

    ``replacing`` holds the Services, Deployments and Secrets that differ (what a run that
    asked to re-apply its manifests replaces; it writes the differing Istio objects itself).
    """

    absent: Loaded
    replacing: Loaded
    differences: list[Difference] = field(default_factory=list)
    identical: int = 0

    def reapplied(self) -> Loaded:
        """``absent`` plus ``replacing``: what a re-applying run hands the mesh."""
        return Loaded(
            istio=list(self.absent.istio),
            services=self.absent.services + self.replacing.services,
            deployments=self.absent.deployments + self.replacing.deployments,
            secrets=self.absent.secrets + self.replacing.secrets,
            notes=list(self.absent.notes),
        )


def _istio_content(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in _IGNORED_ANNOTATIONS
    }
    return {
        "spec": obj.get("spec"),
        "labels": dict(meta.get("labels") or {}),
        "annotations": annotations,
    }


def _text(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, default=str).splitlines()


def _diff(live: Any, wanted: Any, source: str) -> str:
    return "\n".join(
        difflib.unified_diff(_text(live), _text(wanted), "running mesh", source, lineterm="", n=2)
    )


def _changed_by(live: Mapping[str, Any]) -> str | None:
    marker = ((live.get("metadata") or {}).get("annotations") or {}).get(LEDGER_ANNOTATION)
    if not isinstance(marker, str) or not marker:
        return None
    return marker.rsplit("#", 1)[0]


def plan_join(
    loaded: Loaded,
    namespace: str,
    *,
    services: Mapping[Key, Mapping[str, Any]],
    deployments: Mapping[Key, Mapping[str, Any]],
    secrets: Mapping[Key, Mapping[str, Any]],
    istio: IstioLookup,
) -> JoinPlan:
    """Split ``loaded`` into objects absent from the running mesh (to apply), identical ones
    (nothing to do) and differing ones (``differences``: joining must refuse)."""
    plan = JoinPlan(Loaded(notes=list(loaded.notes)), Loaded())

    def source(m: Manifest) -> str:
        return f"{m.file} (document {m.document})" if m.file else "manifest"

    def exact(role: str, items: list[Manifest], live: Mapping[Key, Mapping[str, Any]]) -> None:
        for m in items:
            obj = with_namespace(m.obj, namespace)
            current = live.get(key_of(obj))
            if current is None:
                getattr(plan.absent, role).append(m)
            elif dict(current) == obj:
                plan.identical += 1
            else:
                ns, name = key_of(obj)
                getattr(plan.replacing, role).append(m)
                plan.differences.append(
                    Difference(str(obj.get("kind")), ns, name, _diff(current, obj, source(m)))
                )

    exact("services", loaded.services, services)
    exact("deployments", loaded.deployments, deployments)
    exact("secrets", loaded.secrets, secrets)
    for m in loaded.istio:
        obj = with_namespace(m.obj, namespace)
        ns, name = key_of(obj)
        kind = str(obj.get("kind"))
        current = istio(kind, ns, name)
        if current is None:
            plan.absent.istio.append(m)
            continue
        have, want = _istio_content(current), _istio_content(obj)
        if have == want:
            plan.identical += 1
        else:
            plan.differences.append(
                Difference(kind, ns, name, _diff(have, want, source(m)), _changed_by(current))
            )
    return plan
