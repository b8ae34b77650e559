"""A Kubernetes API emulator for tests: kmock's ``KubernetesEmulator`` with real-server semantics.

kmock 0.8 speaks HTTP and does discovery, but for writes it merges dicts by the body's shape:
no resourceVersion, no 409 on stale writes, no PUT, 200 instead of 201 on create, patch type
guessed from the body instead of the Content-Type. This module fills those gaps for the
``networking.istio.io`` resources (VirtualService, DestinationRule, Gateway), the way
kube-apiserver behaves for custom resources:

- create -> 201 with ``uid``, ``resourceVersion``, ``generation``, ``creationTimestamp``;
  duplicate -> 409 ``AlreadyExists``; nameless -> 422 ``Invalid``;
- get/list (``<Kind>List`` with a list resourceVersion, label selectors ``k=v,k2=v2``);
- PUT/replace: stale or missing ``metadata.resourceVersion`` -> 409 / 422 (custom resources do
  not allow unconditional updates);
- PATCH by Content-Type only: merge patch (RFC 7386), JSON patch (RFC 6902, ``test`` ops),
  strategic merge -> 415, a JSON-patch list sent as merge patch -> 422;
- delete with ``preconditions.resourceVersion`` -> 409 when stale;
- a small structural schema (``spec`` an object, ``hosts`` a list of strings, labels and
  annotations string maps) -> 422 with ``details.causes``;
- Status objects for every error, discovery also with trailing slashes;
- finalizers: a DELETE of an object with ``metadata.finalizers`` only sets its
  ``deletionTimestamp``; it goes once a writer removes the last finalizer; no finalizer can be
  added to an object being deleted (422);
- watch (``?watch=true``) as a stream of newline-delimited events from a resourceVersion on,
  ``fieldSelector=metadata.name=<name>``, closed after ``timeoutSeconds``;
- the failures a cluster adds, as kube-apiserver words them: API Priority and Fairness
  throttling (429 with ``Retry-After``), Istio's validating webhook unreachable while istiod
  is down (500 on create and update), and a namespace that does not exist (404 on create);
- knobs for tests: served versions, a bearer token to require (401), verbs to forbid (403),
  a per-verb delay (client timeouts), and hooks that run "another writer" between a client's
  read and its write.

It runs in a thread with its own event loop, over real HTTP on 127.0.0.1:<port 0>, so the
official ``kubernetes`` client talks to it unchanged. It shares nothing with the embedded
mesh's API server (an independent implementation checks ours).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import yaml
from kmock import KubernetesEmulator, ResourceInfo, Server, resource
from kmock._internal import rendering  # Request is public, its evolve needs the class
from kmock._internal.k8s import KubernetesError

GROUP = "networking.istio.io"
KINDS: dict[str, tuple[str, str, str]] = {
    # plural -> (kind, singular, short name)
    "virtualservices": ("VirtualService", "virtualservice", "vs"),
    "destinationrules": ("DestinationRule", "destinationrule", "dr"),
    "gateways": ("Gateway", "gateway", "gw"),
}
ALL_VERSIONS = ("v1", "v1beta1", "v1alpha3")

Key = tuple[str, str, str]  # (plural, namespace, name)
Hook = Callable[["IstioApiEmulator", str, Key], None]


def _status(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> KubernetesError:
    return KubernetesError(status=code, reason=reason, message=message, details=details or {})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 add/remove/replace/move/copy/test; raises ValueError on a failed op."""
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        try:
            if kind == "test":
                if _walk(doc, parts) != op.get("value"):
                    raise ValueError(f"test failed at {op['path']}")
                continue
            if kind in ("move", "copy"):
                value = copy.deepcopy(_walk(doc, _pointer(op["from"])))
                if kind == "move":
                    doc = json_patch(doc, [{"op": "remove", "path": op["from"]}])
                doc = json_patch(doc, [{"op": "add", "path": op["path"], "value": value}])
                continue
            parent, last = _walk(doc, parts[:-1]), parts[-1]
            if kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind == "replace":
                if isinstance(parent, list):
                    parent[int(last)] = op["value"]
                else:
                    if last not in parent:
                        raise KeyError(last)
                    parent[last] = op["value"]
            elif kind == "add":
                if isinstance(parent, list):
                    index = len(parent) if last == "-" else int(last)
                    parent.insert(index, op["value"])
                else:
                    parent[last] = op["value"]
            else:
                raise ValueError(f"unknown op {kind!r}")
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"{kind} {op.get('path')}: {exc!r}") from exc
    return doc


def schema_causes(obj: dict[str, Any]) -> list[dict[str, str]]:
    """The structural checks a CRD's OpenAPI schema makes (a small subset, enough for tests)."""
    causes: list[dict[str, str]] = []
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        causes.append(
            {"reason": "FieldValueRequired", "field": "metadata.name", "message": "Required value"}
        )
        return causes
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and not (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            causes.append(
                {
                    "reason": "FieldValueTypeInvalid",
                    "field": f"metadata.{field}",
                    "message": "Invalid value: must be a map of strings",
                }
            )
    spec = obj.get("spec")
    if spec is not None and not isinstance(spec, dict):
        causes.append(
            {
                "reason": "FieldValueTypeInvalid",
                "field": "spec",
                "message": "Invalid value: must be of type object",
            }
        )
    elif isinstance(spec, dict):
        hosts = spec.get("hosts")
        if hosts is not None and not (
            isinstance(hosts, list) and all(isinstance(h, str) for h in hosts)
        ):
            causes.append(
                {
                    "reason": "FieldValueTypeInvalid",
                    "field": "spec.hosts",
                    "message": "Invalid value: must be an array of strings",
                }
            )
        for index, route in enumerate(spec.get("http") or []):
            if not isinstance(route, dict):
                causes.append(
                    {
                        "reason": "FieldValueTypeInvalid",
                        "field": f"spec.http[{index}]",
                        "message": "Invalid value: must be of type object",
                    }
                )
    return causes


def _labels_match(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif labels.get(term) is None:
            return False
    return True


@attrs.define(kw_only=True)
class IstioApiEmulator(KubernetesEmulator):
    """kmock's emulator with kube-apiserver's write semantics for Istio's networking resources."""

    served_versions: tuple[str, ...] = ALL_VERSIONS
    token: str | None = None  # when set, requests must carry "Authorization: Bearer <token>"
    forbidden: set[tuple[str, str]] = attrs.field(factory=set)  # (verb, plural) -> 403
    # verb -> seconds: reads answer late; writes are applied at once and answered late.
    delays: dict[str, float] = attrs.field(factory=dict)
    # verb -> hooks run (once each) before that verb is processed: "another writer" at work.
    before: dict[str, list[Hook]] = attrs.field(factory=dict)
    # verb -> how many of the next such requests answer 429 (Retry-After: retry_after seconds).
    throttle: dict[str, int] = attrs.field(factory=dict)
    retry_after: int = 1
    # istiod down: its validating webhook (create and update, so patches too) cannot be called.
    webhook_down: bool = False
    # Namespaces that exist (None: any). Creating in another one is 404, as NamespaceLifecycle.
    namespaces: set[str] | None = None
    store: dict[Key, dict[str, Any]] = attrs.field(factory=dict)
    # Every change as a watch event: (resourceVersion, type, object), oldest first.
    events: list[tuple[int, str, dict[str, Any]]] = attrs.field(factory=list)
    _store_lock: threading.Lock = attrs.field(factory=threading.Lock)
    _rv: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1000))
    _last_rv: int = 999

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for version in self.served_versions:
            for plural, (kind, singular, short) in KINDS.items():
                self.resources[resource(GROUP, version, plural)] = ResourceInfo(
                    kind=kind,
                    singular=singular,
                    shortnames={short},
                    namespaced=True,
                    verbs={"get", "list", "create", "update", "patch", "delete", "watch"},
                )

    # -- direct access for tests (another writer, assertions) -------------------------------

    def next_rv(self) -> str:
        self._last_rv = next(self._rv)
        return str(self._last_rv)

    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        self.events.append((int(obj["metadata"]["resourceVersion"]), kind, copy.deepcopy(obj)))

    def _write(self, key: Key, new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        """Store ``new`` (stamped); an object being deleted goes with its last finalizer."""
        if old is not None and old["metadata"].get("deletionTimestamp"):
            new["metadata"]["deletionTimestamp"] = old["metadata"]["deletionTimestamp"]
        self._stamp(new, old)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self.store.pop(key, None)
            self._record("DELETED", new)
        else:
            self.store[key] = new
            self._record("ADDED" if old is None else "MODIFIED", new)
        return new

    def put_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or overwrite an object as a cluster admin would (kubectl apply)."""
        plural = next(p for p, (k, _, _) in KINDS.items() if k == obj["kind"])
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        key = (plural, meta["namespace"], meta["name"])
        with self._store_lock:
            return copy.deepcopy(self._write(key, copy.deepcopy(obj), self.store.get(key)))

    def get_object(self, plural: str, ns: str, name: str) -> dict[str, Any] | None:
        with self._store_lock:
            obj = self.store.get((plural, ns, name))
            return copy.deepcopy(obj) if obj is not None else None

    def edit_object(
        self, plural: str, ns: str, name: str, edit: Callable[[dict[str, Any]], None]
    ) -> None:
        """Change a stored object in place as another client would (new resourceVersion);
        removing the last finalizer of an object being deleted deletes it."""
        with self._store_lock:
            obj = copy.deepcopy(self.store[(plural, ns, name)])
            edit(obj)
            self._write((plural, ns, name), obj, self.store[(plural, ns, name)])

    def _stamp(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        meta = obj["metadata"]
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = datetime.datetime.now(datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            meta["generation"] = 1
        else:
            for field in ("uid", "creationTimestamp"):
                meta[field] = old["metadata"][field]
            changed = obj.get("spec") != old.get("spec")
            meta["generation"] = old["metadata"]["generation"] + (1 if changed else 0)
        meta["resourceVersion"] = self.next_rv()

    # -- the HTTP side ----------------------------------------------------------------------

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if self.token is not None:
            auth = request.headers.get("Authorization", "")
            if auth != f"Bearer {self.token}":
                raise _status(401, "Unauthorized", "Unauthorized")
        path = request.url.path
        if len(path) > 1 and path.endswith("/"):
            # kube-apiserver serves /apis/ like /apis; kmock matches paths exactly.
            # Views match recorded requests by identity, so swap the record too.
            stripped = attrs.evolve(request, url=request.url.with_path(path.rstrip("/")))
            self._requests[:] = [stripped if r is request else r for r in self._requests]
            request = stripped
        res = request.resource
        if (
            res is not None
            and res.group == GROUP
            and res.plural in KINDS
            and request.url.path.count("/") > 3
        ):
            if res.version not in self.served_versions:
                raise _status(404, "NotFound", "the server could not find the requested resource")
            throttled = self._throttled(request)
            if throttled is not None:
                return throttled
            response = await self._serve_istio(request)
            write = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
            delay = self.delays.get(write.get(request.method.value, ""), 0.0)
            if delay:
                # Like etcd behind kube-apiserver: the write is done, only the answer is late
                # (a client that gives up meanwhile does not undo it).
                await asyncio.sleep(delay)
            return response
        # Discovery and anything else: kmock's scaffold (bypassing its own object tracking).
        return await super(KubernetesEmulator, self)._handle(request)

    @staticmethod
    def _verb(request: rendering.Request) -> str:
        if request.method.value == "GET":
            if request.name is None:
                return "watch" if request.params.get("watch") in ("true", "1") else "list"
            return "get"
        methods = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
        return methods.get(request.method.value, "unknown")

    def _throttled(self, request: rendering.Request) -> aiohttp.web.StreamResponse | None:
        """API Priority and Fairness rejecting a request: kube-apiserver's exact 429."""
        verb = self._verb(request)
        if not self.throttle.get(verb):
            return None
        self.throttle[verb] -= 1
        return aiohttp.web.json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "Too many requests, please try again later.",
                "reason": "TooManyRequests",
                "details": {"retryAfterSeconds": self.retry_after},
                "code": 429,
            },
            status=429,
            headers={"Retry-After": str(self.retry_after)},
        )

    async def _watch(self, request: rendering.Request, plural: str, ns: str) -> Any:
        """Events after ``resourceVersion`` as newline-delimited JSON, until ``timeoutSeconds``."""
        assert request._raw_request is not None
        since = int(request.params.get("resourceVersion") or 0)
        name = None
        selector = request.params.get("fieldSelector", "")
        if selector:
            field, _, name = selector.partition("=")
            if field != "metadata.name":
                raise _status(400, "BadRequest", f'field label not supported: "{field}"')
        timeout = float(request.params.get("timeoutSeconds") or 30)
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request._raw_request)
        deadline = time.monotonic() + timeout
        sent = since
        while time.monotonic() < deadline:
            with self._store_lock:
                fresh = [
                    (rv, kind, obj)
                    for rv, kind, obj in self.events
                    if rv > sent
                    and obj["metadata"].get("namespace") == ns
                    and KINDS[plural][0] == obj.get("kind")
                    and (name is None or obj["metadata"].get("name") == name)
                ]
                sent = max([sent, *(rv for rv, _, _ in fresh)]) if fresh else self._last_rv
            for _, kind, obj in fresh:
                line = json.dumps({"type": kind, "object": obj}) + "\n"
                await response.write(line.encode())
            await asyncio.sleep(0.02)
        await response.write_eof()
        return response

    def _webhook_unreachable(self) -> KubernetesError:
        # What kube-apiserver answers when a validating webhook with failurePolicy: Fail
        # (Istio's) cannot be called: the whole message, cause included.
        cause = (
            'failed calling webhook "validation.istio.io": failed to call webhook: Post '
            '"https://istiod.istio-system.svc:443/validate?timeout=10s": '
            "dial tcp 10.96.12.34:443: connect: connection refused"
        )
        return _status(
            500,
            "InternalError",
            f"Internal error occurred: {cause}",
            {"causes": [{"message": cause}]},
        )

    async def _serve_istio(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        res = request.resource
        assert res is not None and res.plural is not None and res.version is not None
        verb = self._verb(request)
        delay = self.delays.get(verb, 0.0)
        if delay and verb in ("get", "list"):
            await asyncio.sleep(delay)
        kind = KINDS[res.plural][0]
        target = f'{res.plural}.{GROUP} "{request.name or ""}"'
        if (verb, res.plural) in self.forbidden or (verb, "*") in self.forbidden:
            raise _status(
                403,
                "Forbidden",
                f'{target} is forbidden: User "system:serviceaccount:chaos:runner" cannot {verb} '
                f'resource "{res.plural}" in API group "{GROUP}" '
                f'in the namespace "{request.namespace}"',
                {"name": request.name or "", "group": GROUP, "kind": res.plural},
            )
        for hook in self.before.pop(verb, []):
            hook(self, verb, (res.plural, request.namespace or "", request.name or ""))
        api_version = f"{GROUP}/{res.version}"
        ns = request.namespace or ""
        body = request.data
        if verb == "watch":
            return await self._watch(request, res.plural, ns)  # type: ignore[no-any-return]
        if self.webhook_down and verb in ("create", "update", "patch"):
            raise self._webhook_unreachable()
        if verb == "create" and self.namespaces is not None and ns not in self.namespaces:
            raise _status(
                404,
                "NotFound",
                f'namespaces "{ns}" not found',
                {"name": ns, "kind": "namespaces"},
            )

        def out(obj: dict[str, Any], status: int = 200) -> aiohttp.web.StreamResponse:
            obj = copy.deepcopy(obj)
            obj["apiVersion"] = api_version
            return aiohttp.web.json_response(obj, status=status)

        def not_found() -> KubernetesError:
            return _status(
                404,
                "NotFound",
                f"{target} not found",
                {"name": request.name, "group": GROUP, "kind": res.plural},
            )

        with self._store_lock:
            if verb == "list":
                selector = request.params.get("labelSelector", "")
                items = [
                    dict(copy.deepcopy(obj), apiVersion=api_version)
                    for (plural, obj_ns, _), obj in sorted(self.store.items())
                    if plural == res.plural
                    and (not ns or obj_ns == ns)
                    and _labels_match(obj["metadata"].get("labels") or {}, selector)
                ]
                return aiohttp.web.json_response(
                    {
                        "apiVersion": api_version,
                        "kind": f"{kind}List",
                        "metadata": {"resourceVersion": str(self._last_rv)},
                        "items": items,
                    }
                )
            key = (res.plural, ns, request.name or "")
            current = self.store.get(key)
            if verb == "get":
                if current is None:
                    raise not_found()
                return out(current)
            if verb == "create":
                if not isinstance(body, dict):
                    raise _status(
                        400, "BadRequest", "the body of the request was not a JSON object"
                    )
                obj = copy.deepcopy(body)
                meta = obj.setdefault("metadata", {})
                if meta.get("namespace") not in (None, ns):
                    raise _status(
                        400,
                        "BadRequest",
                        "the namespace of the provided object does not match "
                        "the namespace sent on the request",
                    )
                meta["namespace"] = ns
                obj.setdefault("kind", kind)
                self._validate(obj, kind)
                key = (res.plural, ns, meta["name"])
                if key in self.store:
                    raise _status(
                        409,
                        "AlreadyExists",
                        f'{res.plural}.{GROUP} "{meta["name"]}" already exists',
                        {"name": meta["name"], "group": GROUP, "kind": res.plural},
                    )
                return out(self._write(key, obj, None), 201)
            if current is None:
                raise not_found()
            if verb == "delete":
                wanted = (
                    ((body or {}).get("preconditions") or {}).get("resourceVersion")
                    if isinstance(body, dict)
                    else None
                )
                if wanted and wanted != current["metadata"]["resourceVersion"]:
                    raise self._conflict(
                        target,
                        key,
                        "the ResourceVersion in the precondition "
                        f"({wanted}) does not match the ResourceVersion in record "
                        f"({current['metadata']['resourceVersion']}). "
                        "The object might have been modified",
                    )
                if current["metadata"].get("finalizers"):
                    # Graceful: marked for deletion, gone when the finalizers are (once marked,
                    # a second DELETE changes nothing).
                    if current["metadata"].get("deletionTimestamp"):
                        return out(current)
                    marked = copy.deepcopy(current)
                    marked["metadata"]["deletionTimestamp"] = datetime.datetime.now(
                        datetime.UTC
                    ).strftime("%Y-%m-%dT%H:%M:%SZ")
                    marked["metadata"]["deletionGracePeriodSeconds"] = 0
                    return out(self._write(key, marked, current))
                del self.store[key]
                gone = copy.deepcopy(current)
                gone["metadata"]["resourceVersion"] = self.next_rv()
                self._record("DELETED", gone)
                return out(current)
            if verb == "update":
                if not isinstance(body, dict):
                    raise _status(
                        400, "BadRequest", "the body of the request was not a JSON object"
                    )
                new = copy.deepcopy(body)
                sent_rv = (new.get("metadata") or {}).get("resourceVersion")
                if not sent_rv:
                    raise _status(
                        422,
                        "Invalid",
                        f'{kind} "{request.name}" is invalid: metadata.resourceVersion: '
                        "Invalid value: 0x0: must be specified for an update",
                        {
                            "name": request.name,
                            "group": GROUP,
                            "kind": kind,
                            "causes": [
                                {
                                    "reason": "FieldValueInvalid",
                                    "field": "metadata.resourceVersion",
                                    "message": "Invalid value: 0x0: "
                                    "must be specified for an update",
                                }
                            ],
                        },
                    )
                if sent_rv != current["metadata"]["resourceVersion"]:
                    raise self._conflict(
                        target,
                        key,
                        "the object has been modified; please apply your "
                        "changes to the latest version and try again",
                    )
            else:  # patch
                content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
                if content_type == "application/merge-patch+json":
                    if not isinstance(body, dict):
                        raise _status(
                            422,
                            "UnprocessableEntity",
                            "error decoding patch: json: cannot "
                            "unmarshal array into Go value of type map[string]interface {}",
                        )
                    new = merge_patch(current, body)
                elif content_type == "application/json-patch+json":
                    if not isinstance(body, list):
                        raise _status(
                            400,
                            "BadRequest",
                            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
                        )
                    try:
                        new = json_patch(current, body)
                    except ValueError as exc:
                        raise _status(
                            422,
                            "Invalid",
                            "the server rejected our request due to an error "
                            f"in our request: {exc}",
                        ) from exc
                else:
                    raise _status(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted "
                        "media types include: application/json-patch+json, "
                        "application/merge-patch+json, application/apply-patch+yaml "
                        f"(got {content_type!r})",
                    )
                sent_rv = (new.get("metadata") or {}).get("resourceVersion")
                if sent_rv != current["metadata"]["resourceVersion"]:
                    raise self._conflict(
                        target,
                        key,
                        "the object has been modified; please apply your "
                        "changes to the latest version and try again",
                    )
            meta = new.setdefault("metadata", {})
            if meta.get("name") != request.name or meta.get("namespace", ns) != ns:
                raise _status(
                    400, "BadRequest", "the name of the object does not match the name on the URL"
                )
            meta["namespace"] = ns
            new.setdefault("kind", kind)
            self._validate(new, kind)
            if current["metadata"].get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(
                    current["metadata"].get("finalizers") or []
                )
                if added:
                    raise _status(
                        422,
                        "Invalid",
                        f'{kind}.{GROUP} "{request.name}" is invalid: metadata.finalizers: '
                        "Forbidden: no new finalizers can be added if the object is being deleted",
                    )
            return out(self._write(key, new, current))

    def _conflict(self, target: str, key: Key, why: str) -> KubernetesError:
        return _status(
            409,
            "Conflict",
            f"Operation cannot be fulfilled on {target}: {why}",
            {"name": key[2], "group": GROUP, "kind": key[0]},
        )

    def _validate(self, obj: dict[str, Any], kind: str) -> None:
        causes = schema_causes(obj)
        if causes:
            name = (obj.get("metadata") or {}).get("name", "")
            text = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
            raise _status(
                422,
                "Invalid",
                f'{kind}.{GROUP} "{name}" is invalid: {text}',
                {"name": name, "group": GROUP, "kind": kind, "causes": causes},
            )


class RunningEmulator:
    """An :class:`IstioApiEmulator` served over HTTP from a thread, with a kubeconfig for it."""

    def __init__(self, workdir: Path, **options: Any) -> None:
        self.workdir = workdir
        self.options = options
        self.api: IstioApiEmulator | None = None
        self.url = ""
        self.kubeconfig = workdir / "kubeconfig"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kapi", daemon=True)
        self._stop: asyncio.Event | None = None
        self._done: asyncio.Future[None] | None = None

    def start(self) -> RunningEmulator:
        self._thread.start()
        ready: asyncio.Future[str] = asyncio.run_coroutine_threadsafe(
            self._serve_until_ready(), self._loop
        )  # type: ignore[assignment]
        self.url = ready.result(timeout=30)
        self.write_kubeconfig(self.kubeconfig, token=self.options.get("token"))
        return self

    async def _serve_until_ready(self) -> str:
        started: asyncio.Future[str] = self._loop.create_future()
        self._stop = asyncio.Event()

        async def serve() -> None:
            async with IstioApiEmulator(**self.options) as api, Server(api) as server:
                self.api = api
                started.set_result(f"http://127.0.0.1:{server.port}")
                assert self._stop is not None
                await self._stop.wait()

        self._done = asyncio.ensure_future(serve())
        self._done.add_done_callback(
            lambda f: (
                started.done()
                or started.set_exception(f.exception() or RuntimeError("emulator stopped"))
            )
        )
        return await started

    def write_kubeconfig(self, path: Path, token: str | None = None, context: str = "kapi") -> Path:
        user: dict[str, Any] = {"token": token} if token else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "clusters": [{"name": "kapi", "cluster": {"server": self.url}}],
            "users": [{"name": "kapi", "user": user}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": "kapi", "user": "kapi", "namespace": "default"},
                }
            ],
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._stop is not None:
                self._stop.set()
            if self._done is not None:
                await asyncio.wait_for(self._done, timeout=10)

        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=15)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)

    def __enter__(self) -> RunningEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds; never asserts timing itself."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
