"""Istio custom objects over the Kubernetes API: CRUD, API-version discovery and clear errors.

Only the client's generated ``CustomObjectsApi`` methods are used (kubernetes 37 changed
``call_api``); every call carries ``_request_timeout``. API errors become :class:`KubeApiError`,
whose message names the object (``VirtualService default/reviews``) and says what happened in
a cluster's words: the fields a 422 listed in ``details.causes``, a namespace that does not
exist, istiod's validation webhook unreachable, throttling. A 429 (API Priority and Fairness)
is retried after its ``Retry-After`` within the call's own time budget
(``kubernetes_request_timeout``), since the server rejected the request before doing anything.
"""

from __future__ import annotations

import builtins
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException

from chaosmesh_ext._interrupts import INTERRUPTS
from chaosmesh_ext._kobject import KObject
from chaosmesh_ext.errors import KubeError

GROUP = "networking.istio.io"
# Newest first: what we pick when the server serves several.
VERSIONS = ("v1", "v1beta1", "v1alpha3")
PLURALS = {
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "Gateway": "gateways",
}
DEFAULT_TIMEOUT = 10.0
# KubeApiError.reason of a connection the server's host refused (nothing listens there): the
# request was never sent, so a write certainly did not land.
REFUSED = "ConnectionRefused"
# How long to wait before retrying a 429 whose answer names no Retry-After.
DEFAULT_RETRY_AFTER = 1.0
# kube-apiserver's words when an admission webhook cannot be called (failurePolicy: Fail).
_WEBHOOK = re.compile(r'failed calling webhook "(?P<name>[^"]+)"')


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Which Istio object: ``VirtualService default/reviews``."""

    kind: str
    namespace: str
    name: str

    def __post_init__(self) -> None:
        if self.kind not in PLURALS:
            raise ValueError(f"unsupported kind {self.kind!r}; one of {', '.join(PLURALS)}")

    @property
    def plural(self) -> str:
        return PLURALS[self.kind]

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class KubeApiError(KubeError):
    """An API call failed; ``str()`` says which object, what happened and what to do."""

    def __init__(
        self,
        ref: ObjectRef | str,
        status: int | None,
        reason: str,
        message: str,
        causes: list[dict[str, Any]] | None = None,
    ) -> None:
        self.ref = ref
        self.status = status
        self.reason = reason
        self.causes = causes or []
        super().__init__(f"{ref}: {message}")


class NotFound(KubeApiError):
    """404: the object (or the API) does not exist."""


class Conflict(KubeApiError):
    """409: someone else wrote first (stale resourceVersion) or the object already exists."""


class Throttled(KubeApiError):
    """429 on every attempt within the call's time budget: the API server is overloaded."""


def retry_after(exc: ApiException) -> float:
    """Seconds a 429 asks to wait: ``Retry-After``, else ``details.retryAfterSeconds``."""
    header = (exc.headers or {}).get("Retry-After")
    for value in (header, (_status_body(exc).get("details") or {}).get("retryAfterSeconds")):
        try:
            if value is not None and float(value) >= 0:
                return float(value)
        except (TypeError, ValueError):
            continue
    return DEFAULT_RETRY_AFTER


def _status_body(exc: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def translate(exc: BaseException, ref: ObjectRef | str, verb: str, timeout: float) -> KubeApiError:
    """An exception from the client, as a :class:`KubeApiError` a user can act on."""
    if isinstance(exc, ApiException):
        body = _status_body(exc)
        status = exc.status or body.get("code")
        server_message = body.get("message") or exc.reason or ""
        causes = (body.get("details") or {}).get("causes") or []
        details = body.get("details") or {}
        if status == 404 and details.get("kind") == "namespaces":
            return NotFound(
                ref,
                404,
                "NotFound",
                f"namespace {details.get('name')!r} does not exist ({verb}): {server_message}",
            )
        if status == 404:
            return NotFound(ref, 404, "NotFound", f"not found ({verb}): {server_message}")
        webhook = _WEBHOOK.search(server_message) if status == 500 else None
        if webhook and "istio" in webhook["name"]:
            return KubeApiError(
                ref,
                500,
                "WebhookUnavailable",
                f"{verb} refused, nothing changed: istiod's validation webhook "
                f"({webhook['name']}) is unreachable — is istiod running? "
                f"(kubectl -n istio-system get pods -l app=istiod): {server_message}",
            )
        if webhook:
            return KubeApiError(
                ref,
                500,
                "WebhookUnavailable",
                f"{verb} refused, nothing changed: the admission webhook {webhook['name']} "
                f"is unreachable: {server_message}",
            )
        if status == 409:
            return Conflict(
                ref, 409, body.get("reason") or "Conflict", f"conflict on {verb}: {server_message}"
            )
        if status == 403:
            return KubeApiError(
                ref,
                403,
                "Forbidden",
                f"forbidden to {verb} (check the Role bound to this "
                f"identity: it needs {verb} on {getattr(ref, 'plural', 'this resource')}.{GROUP}): "
                f"{server_message}",
            )
        if status == 401:
            return KubeApiError(
                ref,
                401,
                "Unauthorized",
                f"unauthorized ({verb}): the credentials were "
                "rejected; check the kubeconfig user or KUBERNETES_API_KEY",
            )
        if status == 422:
            fields = "; ".join(f"{c.get('field', '?')}: {c.get('message', '')}" for c in causes)
            return KubeApiError(
                ref,
                422,
                "Invalid",
                f"rejected as invalid on {verb}: {fields or server_message}",
                causes,
            )
        if status == 415:
            return KubeApiError(
                ref, 415, "UnsupportedMediaType", f"patch type not supported: {server_message}"
            )
        return KubeApiError(
            ref,
            status,
            body.get("reason") or str(exc.reason),
            f"API error {status} on {verb}: {server_message}",
        )
    refused = _refused(exc)
    if refused:
        # Refused at once (nothing listens there: a stopped embedded mesh): not a timeout.
        return KubeApiError(
            ref, None, REFUSED, f"the Kubernetes API refused the connection ({verb}): {refused}"
        )
    if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return KubeApiError(
            ref, None, "Timeout", f"no answer from the Kubernetes API within {timeout:g}s ({verb})"
        )
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and isinstance(
        exc.reason, urllib3.exceptions.TimeoutError
    ):
        return KubeApiError(
            ref, None, "Timeout", f"no answer from the Kubernetes API within {timeout:g}s ({verb})"
        )
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return KubeApiError(
            ref, None, "Unreachable", f"cannot reach the Kubernetes API ({verb}): {exc}"
        )
    return KubeApiError(ref, None, type(exc).__name__, f"{verb} failed: {exc}")


def _refused(exc: BaseException) -> str | None:
    """The address that refused the connection, when that is what happened.

    urllib3 reports a refused connection as ``NewConnectionError``, a subclass of its
    ``ConnectTimeoutError``: checked first, or it reads as "no answer within 10 s".
    """
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    if isinstance(reason, urllib3.exceptions.NewConnectionError) and (
        "refused" in str(reason).lower()
    ):
        conn = getattr(reason, "conn", None) or getattr(reason, "pool", None)
        host, port = getattr(conn, "host", None), getattr(conn, "port", None)
        return f"{host}:{port}" if host else "connection refused"
    if isinstance(reason, ConnectionRefusedError):
        return str(reason)
    return None


def normalise_version(value: str | None) -> str | None:
    """``"networking.istio.io/v1beta1"`` or ``"v1beta1"`` -> ``"v1beta1"``."""
    if not value:
        return None
    version = str(value).rsplit("/", 1)[-1]
    if version not in VERSIONS:
        raise ValueError(f"istio_api_version: {value!r} is not one of {', '.join(VERSIONS)}")
    return version


class IstioObjects:
    """CRUD on Istio networking objects through one ``ApiClient``."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        version: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.api_client = api_client
        self.custom = k8s.CustomObjectsApi(api_client)
        self.timeout = float(timeout)
        self._version = normalise_version(version)

    @classmethod
    def from_configuration(
        cls, api_client: k8s.ApiClient, configuration: Mapping[str, Any] | None = None
    ) -> IstioObjects:
        configuration = configuration or {}
        timeout = float(configuration.get("kubernetes_request_timeout") or DEFAULT_TIMEOUT)
        return cls(api_client, configuration.get("istio_api_version"), timeout)

    @property
    def version(self) -> str:
        """The API version used: the configured one, else the newest the server serves."""
        if self._version is None:
            self._version = self.discover_version()
        return self._version

    @property
    def api_version(self) -> str:
        return f"{GROUP}/{self.version}"

    def discover_version(self) -> str:
        try:
            groups = k8s.ApisApi(self.api_client).get_api_versions(_request_timeout=self.timeout)
        except INTERRUPTS:
            raise
        except Exception as exc:
            raise translate(exc, f"API group {GROUP}", "discover", self.timeout) from exc
        served = {
            v.version for g in groups.groups or [] if g.name == GROUP for v in g.versions or []
        }
        for version in VERSIONS:
            if version in served:
                return version
        raise NotFound(
            f"API group {GROUP}",
            404,
            "NotFound",
            "not served by this cluster (is Istio installed? its CRDs define this group)",
        )

    def _call(self, ref: ObjectRef | str, verb: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn`` within ``self.timeout`` seconds in all, 429s retried after their Retry-After."""
        deadline = time.monotonic() + self.timeout
        throttled = 0
        while True:
            left = deadline - time.monotonic()
            try:
                return fn(*args, _request_timeout=max(left, 0.001), **kwargs)
            except INTERRUPTS:
                raise
            except ApiException as exc:
                if exc.status != 429:
                    raise translate(exc, ref, verb, self.timeout) from exc
                throttled += 1
                wait = retry_after(exc)
                if time.monotonic() + wait >= deadline:
                    message = _status_body(exc).get("message") or exc.reason
                    raise Throttled(
                        ref,
                        429,
                        "TooManyRequests",
                        f"the API server throttled {verb} (429 Too Many Requests) on all "
                        f"{throttled} attempt(s) within the {self.timeout:g}s request budget "
                        f"(kubernetes_request_timeout); nothing changed — the cluster's API is "
                        f"overloaded, try again later: {message}",
                    ) from exc
                time.sleep(wait)
            except Exception as exc:
                raise translate(exc, ref, verb, self.timeout) from exc

    def get(self, ref: ObjectRef) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            ref,
            "get",
            self.custom.get_namespaced_custom_object,
            GROUP,
            self.version,
            ref.namespace,
            ref.plural,
            ref.name,
        )
        return result

    def get_or_none(self, ref: ObjectRef) -> dict[str, Any] | None:
        try:
            return self.get(ref)
        except NotFound:
            return None

    def list(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        result = self._call(
            f"{kind} list in {namespace}",
            "list",
            self.custom.list_namespaced_custom_object,
            GROUP,
            self.version,
            namespace,
            PLURALS[kind],
        )
        return list(result.get("items") or [])

    def list_all(self, kind: str) -> builtins.list[dict[str, Any]]:
        """Every object of ``kind`` in every namespace (needs a cluster-wide list right)."""
        result = self._call(
            f"{kind} list in all namespaces",
            "list",
            self.custom.list_cluster_custom_object,
            GROUP,
            self.version,
            PLURALS[kind],
        )
        return builtins.list(result.get("items") or [])

    def create(self, ref: ObjectRef, body: dict[str, Any]) -> dict[str, Any]:
        body = dict(body, apiVersion=self.api_version, kind=ref.kind)
        result: dict[str, Any] = self._call(
            ref,
            "create",
            self.custom.create_namespaced_custom_object,
            GROUP,
            self.version,
            ref.namespace,
            ref.plural,
            body,
        )
        return result

    def replace(self, ref: ObjectRef, body: dict[str, Any]) -> dict[str, Any]:
        """PUT ``body``; it must carry the ``metadata.resourceVersion`` it was read at."""
        body = dict(body, apiVersion=self.api_version, kind=ref.kind)
        result: dict[str, Any] = self._call(
            ref,
            "replace",
            self.custom.replace_namespaced_custom_object,
            GROUP,
            self.version,
            ref.namespace,
            ref.plural,
            ref.name,
            body,
        )
        return result

    def delete(self, ref: ObjectRef, resource_version: str | None = None) -> dict[str, Any]:
        """Delete; with ``resource_version`` only if nobody changed the object since (else 409).

        Returns the server's answer: an object with finalizers is only marked (its
        ``metadata.deletionTimestamp`` set) and stays until they are done — see
        :meth:`wait_deleted`.
        """
        options = k8s.V1DeleteOptions(
            preconditions=k8s.V1Preconditions(resource_version=resource_version)
            if resource_version
            else None
        )
        result: dict[str, Any] = self._call(
            ref,
            "delete",
            self.custom.delete_namespaced_custom_object,
            GROUP,
            self.version,
            ref.namespace,
            ref.plural,
            ref.name,
            body=options,
        )
        return result if isinstance(result, dict) else {}

    def wait_deleted(self, ref: ObjectRef, resource_version: str, timeout: float) -> bool:
        """True once the object is gone (a watch from ``resource_version`` sees it deleted),
        False if it is still there after ``timeout`` seconds (finalizers not done)."""
        stream = k8s_watch.Watch()
        try:
            for event in stream.stream(
                self.custom.list_namespaced_custom_object,
                GROUP,
                self.version,
                ref.namespace,
                ref.plural,
                field_selector=f"metadata.name={ref.name}",
                resource_version=resource_version,
                timeout_seconds=max(1, round(timeout)),
                _request_timeout=timeout + self.timeout,
            ):
                if event.get("type") == "DELETED":
                    return True
        except INTERRUPTS:
            raise
        except Exception as exc:
            raise translate(exc, ref, "watch", timeout) from exc
        finally:
            stream.stop()
        return self.get_or_none(ref) is None


def being_deleted(obj: Mapping[str, Any] | None) -> str | None:
    """Why ``obj`` is going away (deletionTimestamp and finalizers), or None if it is not."""
    view = KObject(obj)
    if not view.deleting:
        return None
    finalizers = ", ".join(view.metadata.get("finalizers") or []) or "none"
    since = view.metadata["deletionTimestamp"]
    return f"being deleted since {since} (waiting for finalizers: {finalizers})"
