"""Put back what a run changed, exactly, without clobbering anyone else's change.

For every object a run's ledger lists as outstanding, the state before the run's *first*
change is the target (objects the run created are deleted). The object is only touched when it
still holds what the run last wrote: same resourceVersion, or the same content (spec, labels,
annotations) if something bumped the version without changing it. Otherwise the object is
left alone and reported with a diff. Already-restored objects are a no-op, so restore after
restore changes nothing. Writes use the live resourceVersion (409 -> read again, re-decide).

Deletion is as a cluster does it: an object with finalizers is only marked for deletion and
stays until they finish. An object the run created counts as deleted once it is gone (watched
for up to the request timeout; else reported ``deleting`` and left outstanding, so the next
restore finishes the job); an object someone else is deleting is not written to.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaosmesh_ext._interrupts import INTERRUPTS
from chaosmesh_ext._kobject import KObject
from chaosmesh_ext.kube.client import same_host
from chaosmesh_ext.kube.ledger import (
    APPLIED,
    LEDGER_ANNOTATION,
    MOOT,
    NOT_APPLIED,
    OUTSTANDING,
    PENDING,
    RESTORED,
    Ledger,
    content,
    with_content,
)
from chaosmesh_ext.kube.objects import (
    Conflict,
    IstioObjects,
    KubeApiError,
    NotFound,
    ObjectRef,
    being_deleted,
)

MAX_ATTEMPTS = 3
# Results after which nothing of the run is left on the object (``moot``: the server that
# held it is gone, an embedded mesh that stopped).
OK_RESULTS = ("restored", "deleted", "already-restored", "never-applied", MOOT)

ObjectsFor = Callable[[str], IstioObjects]  # API version ("networking.istio.io/v1") -> client


def objects_for(client: Any, timeout: float) -> ObjectsFor:
    """Restore's way to reach each entry's objects: the recorded API version, one client."""

    def build(api_version: str) -> IstioObjects:
        return IstioObjects(client, api_version, timeout)

    return build


@dataclass
class Outcome:
    """What restore did to one object."""

    ref: ObjectRef
    run_id: str
    # restored | deleted | already-restored | never-applied | moot | deleting | refused | failed
    result: str
    detail: str = ""
    entries: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result in OK_RESULTS

    def summary(self) -> dict[str, Any]:
        return {
            "object": str(self.ref),
            "run_id": self.run_id,
            "result": self.result,
            "detail": self.detail,
            "entries": self.entries,
        }


def _dump(state: dict[str, Any] | None) -> list[str]:
    if state is None:
        return ["<absent>"]
    return json.dumps(state, indent=2, sort_keys=True).splitlines()


def diff(expected: dict[str, Any] | None, live: dict[str, Any] | None, limit: int = 60) -> str:
    """A unified diff of what we last wrote vs what is there now (bounded length)."""
    lines = list(
        difflib.unified_diff(
            _dump(expected), _dump(live), "written by this run", "live now", lineterm=""
        )
    )
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


def _group(
    entries: list[dict[str, Any]], namespace: str | None
) -> dict[ObjectRef, list[dict[str, Any]]]:
    groups: dict[ObjectRef, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry["state"] not in OUTSTANDING or (namespace and entry["namespace"] != namespace):
            continue
        ref = ObjectRef(entry["kind"], entry["namespace"], entry["name"])
        groups.setdefault(ref, []).append(entry)
    return groups


def _expected_now(
    entries: list[dict[str, Any]], live: dict[str, Any] | None
) -> dict[str, Any] | None:
    """What the object holds if nobody else touched it since our last write, or None if unknown."""
    landed = KObject(live).annotations.get(LEDGER_ANNOTATION)
    for entry in reversed(entries):
        if entry["id"] == landed:
            if entry["state"] == PENDING:
                # The write landed but we died before recording it: the live object is ours.
                state = content(live) or {}
                state["resourceVersion"] = (live or {}).get("metadata", {}).get("resourceVersion")
                return state
            after: dict[str, Any] | None = entry.get("after")
            return after
    applied = [e for e in entries if e["state"] == APPLIED and e.get("after")]
    return applied[-1]["after"] if applied else None


def _restore_object(
    objects: IstioObjects, ref: ObjectRef, entries: list[dict[str, Any]]
) -> tuple[str, str]:
    origin_absent = bool(entries[0]["absent_before"])
    origin = None if origin_absent else entries[0]["before"]
    for _ in range(MAX_ATTEMPTS):
        live = objects.get_or_none(ref)
        if (live is None and origin_absent) or (
            live is not None and not origin_absent and content(live) == origin
        ):
            return "already-restored", "already as before the run"
        landed = KObject(live).annotations.get(LEDGER_ANNOTATION) in {e["id"] for e in entries}
        if not landed and all(e["state"] == PENDING for e in entries):
            # We died (or timed out) before any write of ours landed: nothing of ours is there.
            return "never-applied", "this run's change never reached the object; left as it is"
        if live is None:
            return "refused", "deleted by someone else since this run changed it; not recreated"
        going = being_deleted(live)
        if going and origin_absent:
            return _deleted(objects, ref, live)  # ours to delete, already on its way out
        if going:
            return "refused", f"{going}, by someone else since this run changed it; left alone"
        expected = _expected_now(entries, live)
        live_rv = live["metadata"].get("resourceVersion")
        expected_content = {k: v for k, v in (expected or {}).items() if k != "resourceVersion"}
        ours = expected is not None and (
            expected.get("resourceVersion") == live_rv or expected_content == content(live)
        )
        if not ours:
            return "refused", (
                "changed by someone else since this run's last write; left as it is:\n"
                + diff(expected_content if expected else None, content(live))
            )
        try:
            if origin_absent:
                answer = objects.delete(ref, resource_version=live_rv)
                if being_deleted(answer):
                    return _deleted(objects, ref, answer)
                return "deleted", "created by this run; deleted"
            assert origin is not None
            objects.replace(ref, with_content(live, origin))
            return "restored", "spec, labels and annotations put back as before the run"
        except NotFound:
            continue  # gone meanwhile: re-decide
        except Conflict:
            continue  # someone wrote meanwhile: re-decide on fresh state
    return "failed", f"the object kept changing on {MAX_ATTEMPTS} attempts; try again"


def _deleted(objects: IstioObjects, ref: ObjectRef, marked: dict[str, Any]) -> tuple[str, str]:
    """Wait (up to the request timeout) for a created object marked for deletion to be gone."""
    rv = str((marked.get("metadata") or {}).get("resourceVersion") or "")
    if objects.wait_deleted(ref, rv, objects.timeout):
        return "deleted", "created by this run; deleted (once its finalizers were done)"
    return "deleting", (
        f"created by this run; deletion requested, but it is still {being_deleted(marked)} "
        f"after {objects.timeout:g}s; run restore again once they are done"
    )


def _other_server(entries: list[dict[str, Any]], objects: IstioObjects) -> str | None:
    """Why this client must not restore these entries (another API server), or None."""
    here = str(objects.api_client.configuration.host or "")
    for entry in entries:
        recorded = (entry.get("api") or {}).get("host")
        if recorded and not same_host(recorded, here):
            return (
                f"changed on API server {recorded}, but this restore talks to {here}; "
                "left as it is (restore with a kubeconfig for that server: "
                "chaosmesh restore --kubeconfig FILE)"
            )
    return None


def restore_ledger(
    ledger: Ledger,
    objects_for: ObjectsFor,
    namespace: str | None = None,
    select: Callable[[dict[str, Any]], bool] = lambda entry: True,
) -> list[Outcome]:
    """Restore every outstanding object of one run (those ``select`` picks), newest change
    first.

    One object's failure is reported in its :class:`Outcome`, never raised. An object whose
    change was recorded against another API server (entry ``api.host``) is not touched here:
    it fails with a message naming both servers and stays outstanding.
    """
    groups = _group([e for e in ledger.entries() if select(e)], namespace)
    order = sorted(groups, key=lambda ref: max(e["time"] for e in groups[ref]), reverse=True)
    outcomes: list[Outcome] = []
    for ref in order:
        entries = groups[ref]
        ids = [e["id"] for e in entries]
        try:
            objects = objects_for(entries[0]["api_version"])
            wrong = _other_server(entries, objects)
            if wrong:
                result, detail = "failed", wrong
            else:
                result, detail = _restore_object(objects, ref, entries)
        except INTERRUPTS:
            raise
        except KubeApiError as exc:
            result, detail = "failed", str(exc)
        except Exception as exc:
            # One malformed entry (or an unexpected client error) must not leave every other
            # object of the run changed: report it and go on.
            result, detail = "failed", f"{type(exc).__name__}: {exc}"
        outcome = Outcome(ref, ledger.run_id, result, detail, ids)
        for entry in entries:
            if result == "never-applied":
                ledger.update(entry["id"], state=NOT_APPLIED, restore=result)
            elif outcome.ok:
                ledger.update(entry["id"], state=RESTORED, restore=result)
            else:
                ledger.update(
                    entry["id"],
                    state="refused" if result == "refused" else entry["state"],
                    restore=result,
                    restore_detail=detail,
                )
        outcomes.append(outcome)
    return outcomes


def mark_moot(
    ledger: Ledger,
    reason: str,
    select: Callable[[dict[str, Any]], bool] = lambda entry: True,
    namespace: str | None = None,
) -> list[Outcome]:
    """Clear a run's outstanding entries whose API server is gone (``reason`` says why),
    those ``select`` picks: nothing can be put back where nothing is left, and the entries
    would otherwise stay outstanding for ever. One outcome per object, result ``moot``."""
    groups = _group([e for e in ledger.entries() if select(e)], namespace)
    outcomes = []
    for ref, entries in groups.items():
        for entry in entries:
            ledger.update(entry["id"], state=MOOT, restore=MOOT, restore_detail=reason)
        outcomes.append(Outcome(ref, ledger.run_id, MOOT, reason, [e["id"] for e in entries]))
    return outcomes
