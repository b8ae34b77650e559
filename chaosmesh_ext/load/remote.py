"""Running fortio inside the mesh, reached through the Kubernetes API.

Istio applies faults and breakers in the *client's* sidecar, so the load must start in a pod
of the mesh: the fortio pod on a cluster, the ``fortio`` workload on the embedded mesh. Both
are reached the same way, with the official client's generated methods:

- fortio's REST API through the API server's service proxy
  (``/api/v1/namespaces/{ns}/services/fortio:8080/proxy/fortio/rest/run?...``);
- on a cluster, when that path is not there, ``fortio load -json - ...`` exec'd in the pod;
- Envoy's stats through the pod proxy on pilot-agent's port 15020 (``stats/prometheus``),
  with ``pilot-agent request GET stats/prometheus`` exec'd in istio-proxy as the fallback.

Every call carries a ``_request_timeout``; failures raise :class:`RemoteError` saying what
was tried and why it failed.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from chaosmesh_ext._interrupts import INTERRUPTS
from chaosmesh_ext._kobject import KObject
from chaosmesh_ext.errors import LoadError

# Characters the client must leave alone in the proxied path: the query string is ours,
# already percent-encoded, and the apiserver hands it to fortio unchanged.
_PROXY_SAFE = "/?&=%:"
CONNECT_TIMEOUT = 5.0


class RemoteError(LoadError, RuntimeError):
    """The load could not be run (or the stats read) inside the mesh."""


@contextmanager
def _proxy_core(api: k8s.ApiClient) -> Iterator[k8s.CoreV1Api]:
    """A CoreV1Api whose path parameters keep ``/?&=%:`` (for proxied paths with a query).

    Works on a copy of the configuration, so the caller's client is left as it was.
    """
    conf = copy.copy(api.configuration)
    conf.safe_chars_for_path_param = _PROXY_SAFE
    clone = k8s.ApiClient(configuration=conf)
    clone.default_headers.update(api.default_headers)
    try:
        yield k8s.CoreV1Api(clone)
    finally:
        clone.close()  # type: ignore[no-untyped-call]  # the client's close() has no annotations


def rest_query(params: Mapping[str, Any]) -> str:
    """fortio REST parameters as a query string (repeatable ``H``; booleans as ``on``)."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None or value is False:
            continue
        if value is True:
            value = "on"
        if isinstance(value, list | tuple):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return urlencode(pairs, quote_via=quote, safe="")


def _body_text(resp: Any) -> str:
    data = resp.data if hasattr(resp, "data") else resp
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)


def _api_error_text(exc: ApiException) -> str:
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else (exc.body or "")
    try:
        doc = json.loads(body)
    except ValueError:
        return f"HTTP {exc.status} {exc.reason}: {body[:300]}"
    if isinstance(doc, dict):
        if doc.get("error"):
            return f"fortio said: {doc.get('message')}: {doc.get('exception')}"
        if doc.get("message"):
            return f"HTTP {exc.status}: {doc['message']}"
    return f"HTTP {exc.status} {exc.reason}"


def transport_error(api: k8s.ApiClient, exc: BaseException) -> str:
    """A connection failure or timeout toward the API server, in one short sentence."""
    from urllib3.exceptions import MaxRetryError, ReadTimeoutError

    host = getattr(api.configuration, "host", "?")
    cause: BaseException = exc
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        cause = exc.reason
    text = str(cause)
    # urllib3 prefixes its pool's repr ("HTTPConnectionPool(host=..., port=...): "): drop it.
    text = text.split(": ", 1)[1] if text.startswith("HTTP") and ": " in text else text
    if isinstance(cause, ReadTimeoutError | TimeoutError):
        return f"the Kubernetes API at {host} did not answer in time ({text})"
    return f"cannot reach the Kubernetes API at {host}: {text}"[:400]


def run_via_service_proxy(
    api: k8s.ApiClient,
    params: Mapping[str, Any],
    *,
    service: str = "fortio",
    port: int = 8080,
    namespace: str = "default",
    timeout: float = 60.0,
) -> dict[str, Any]:
    """POST-less fortio REST run (GET with query) through the service proxy; the result JSON."""
    path = "fortio/rest/run?" + rest_query(params)
    where = f"service {namespace}/{service}:{port} (API service proxy)"
    try:
        with _proxy_core(api) as core:
            resp = core.connect_get_namespaced_service_proxy_with_path(
                f"{service}:{port}",
                namespace,
                path,
                _preload_content=False,
                _request_timeout=(CONNECT_TIMEOUT, timeout),
            )
            text = _body_text(resp)
    except ApiException as exc:
        raise ProxyUnavailable(where, exc.status or 0, _api_error_text(exc)) from None
    except INTERRUPTS:
        raise
    except Exception as exc:  # urllib3 timeouts and connection errors
        raise RemoteError(f"fortio via {where}: {transport_error(api, exc)}") from None
    try:
        result = json.loads(text)
    except ValueError:
        raise RemoteError(
            f"fortio via {where} answered something that is not JSON: {text[:300]}"
        ) from None
    if not isinstance(result, dict):
        raise RemoteError(f"fortio via {where} answered {type(result).__name__}, not a result")
    if result.get("error"):
        raise RemoteError(f"fortio via {where}: {result.get('message')}: {result.get('exception')}")
    return result


class ProxyUnavailable(RemoteError):
    """The service proxy answered with an HTTP error (``.status``)."""

    def __init__(self, where: str, status: int, detail: str) -> None:
        super().__init__(f"fortio via {where}: {detail}")
        self.status = status


def find_pod(api: k8s.ApiClient, namespace: str, selector: str, *, timeout: float = 10.0) -> str:
    """The name of a running pod matching ``selector`` (e.g. ``app=fortio``)."""
    core = k8s.CoreV1Api(api)
    try:
        # Raw JSON: only names, labels and phase are needed, and the typed model rejects
        # pods with fields it considers mandatory but some servers leave out.
        resp = core.list_namespaced_pod(
            namespace,
            label_selector=selector,
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT, timeout),
        )
        pods = json.loads(_body_text(resp)).get("items") or []
    except ApiException as exc:
        raise RemoteError(
            f"listing pods {selector!r} in {namespace}: {_api_error_text(exc)}"
        ) from None
    except INTERRUPTS:
        raise
    except Exception as exc:
        raise RemoteError(
            f"listing pods {selector!r} in {namespace}: {transport_error(api, exc)}"
        ) from None
    running = [
        KObject(p) for p in pods if (p.get("status") or {}).get("phase") in (None, "Running")
    ]
    names = [pod.name for pod in running if pod.name and not pod.deleting]
    if not names:
        raise RemoteError(f"no running pod with labels {selector!r} in namespace {namespace}")
    return sorted(names)[0]


def _exec_error_text(exc: BaseException) -> str:
    """A short reason for a failed exec handshake (the client's text carries raw headers)."""
    if isinstance(exc, ApiException):
        reason = str(exc.reason or "")
        # websocket-client: "Handshake status 404 Not Found -+-+- {headers} -+-+- body"
        status = re.search(r"Handshake status (\d{3})(?: ([^-]*?))?\s*-\+-\+-", reason)
        if status:
            return f"the API server refused the exec upgrade: HTTP {status.group(1)}" + (
                f" {status.group(2).strip()}" if status.group(2) else ""
            )
        return _api_error_text(exc) if exc.status else reason[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


def _exec_status(raw: str) -> tuple[int | None, str]:
    """The exit code and message from the exec status channel (3): a v1 Status as JSON."""
    try:
        doc = json.loads(raw) if raw.strip() else None
    except ValueError:
        return None, raw[:300]
    if not isinstance(doc, dict):
        return None, ""
    if doc.get("status") == "Success":
        return 0, ""
    causes = (doc.get("details") or {}).get("causes") or []
    for cause in causes:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            try:
                return int(str(cause.get("message"))), str(doc.get("message") or "")
            except (TypeError, ValueError):
                break
    # A Failure without an exit code: the command never ran (not found, container gone, ...).
    return -1, str(doc.get("message") or doc.get("reason") or "exec failed")


def exec_in_pod(
    api: k8s.ApiClient,
    pod: str,
    namespace: str,
    *,
    command: Sequence[str],
    container: str | None = None,
    timeout: float = 60.0,
) -> str:
    """Run ``command`` in the pod (``kubectl exec``); its stdout. Fails on non-zero exit.

    Bounded by ``timeout`` (plus the connect timeout) as a whole: the client's WebSocket has
    no timeout of its own, so the exchange runs in a helper thread that is abandoned, its
    socket closed, when the time is up.
    """
    from kubernetes.stream import stream

    where = f"exec in pod {namespace}/{pod}"
    core = k8s.CoreV1Api(api)
    kwargs: dict[str, Any] = {"container": container} if container else {}
    box: dict[str, Any] = {}

    def exchange() -> None:
        try:
            ws = stream(
                core.connect_get_namespaced_pod_exec,
                pod,
                namespace,
                command=list(command),
                stdout=True,
                stderr=True,
                stdin=False,
                tty=False,
                _preload_content=False,
                _request_timeout=(CONNECT_TIMEOUT, timeout),
                **kwargs,
            )
        except INTERRUPTS:
            raise
        except Exception as exc:
            box["error"] = _exec_error_text(exc)
            return
        box["ws"] = ws
        try:
            ws.run_forever(timeout=timeout)
            box["finished"] = not ws.is_open()
            box["out"] = ws.read_stdout() or ""
            box["err"] = ws.read_stderr() or ""
            box["status"] = ws.read_channel(3) or ""
        except INTERRUPTS:
            raise
        except Exception as exc:
            box["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            ws.close()

    worker = threading.Thread(target=exchange, name=f"exec {namespace}/{pod}", daemon=True)
    worker.start()
    worker.join(timeout + CONNECT_TIMEOUT)
    if worker.is_alive():
        ws = box.get("ws")
        if ws is not None:
            ws.close()
        raise RemoteError(
            f"{where}: {command[0]} did not finish within {timeout + CONNECT_TIMEOUT:g}s"
            + ("" if ws is not None else " (the exec connection was never established)")
        )
    if "error" in box:
        raise RemoteError(f"{where}: {box['error']}")
    if not box.get("finished"):
        raise RemoteError(f"{where}: {command[0]} did not finish within {timeout:g}s")
    code, message = _exec_status(box.get("status", ""))
    if code is None:
        raise RemoteError(f"{where}: {command[0]} ended without an exit status")
    if code != 0:
        stderr = str(box.get("err", "")).strip()[-300:]
        what = f"exited {code}" if code > 0 else "could not run"
        raise RemoteError(
            f"{where}: {' '.join(command[:2])} {what}: {stderr or message or 'no output'}"
        )
    return str(box.get("out", ""))


def fortio_cli_args(params: Mapping[str, Any]) -> list[str]:
    """``fortio load`` flags for the same run the REST parameters describe."""
    args: list[str] = []
    for key in (
        "c", "qps", "n", "t", "timeout", "p", "payload", "X", "labels", "resolve",
        "connection-reuse", "abort-on", "offset",
    ):  # fmt: skip
        value = params.get(key)
        if value is not None and value != "":
            args += [f"-{key}", str(value)]
    for header in params.get("H") or []:
        args += ["-H", str(header)]
    for key in ("jitter", "uniform", "nocatchup", "sequential-warmup", "https-insecure",
                "halfclose", "http1.0"):  # fmt: skip
        if params.get(key) in (True, "on"):
            args.append(f"-{key}")
    if params.get("keepalive") == "off":
        args.append("-keepalive=false")
    return args


def run_via_exec(
    api: k8s.ApiClient,
    params: Mapping[str, Any],
    *,
    namespace: str,
    pod: str,
    container: str | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """``fortio load -json - ... URL`` in the fortio pod; the parsed result."""
    command = ["fortio", "load", "-json", "-", *fortio_cli_args(params), str(params["url"])]
    text = exec_in_pod(api, pod, namespace, command=command, container=container, timeout=timeout)
    start = text.find("{")
    try:
        result = json.loads(text[start:]) if start >= 0 else None
    except ValueError:
        result = None
    if not isinstance(result, dict):
        raise RemoteError(f"fortio in pod {namespace}/{pod} printed no JSON result: {text[:300]}")
    return result


def read_envoy_stats(
    api: k8s.ApiClient,
    pod: str,
    namespace: str,
    *,
    timeout: float = 10.0,
    exec_fallback: bool = True,
) -> str:
    """The sidecar's stats in Prometheus text: pod proxy to pilot-agent :15020, else exec."""
    try:
        with _proxy_core(api) as core:
            resp = core.connect_get_namespaced_pod_proxy_with_path(
                f"{pod}:15020",
                namespace,
                "stats/prometheus",
                _preload_content=False,
                _request_timeout=(CONNECT_TIMEOUT, timeout),
            )
            return _body_text(resp)
    except ApiException as exc:
        first = _api_error_text(exc)
    except INTERRUPTS:
        raise
    except Exception as exc:
        first = transport_error(api, exc)
    if not exec_fallback:
        raise RemoteError(f"Envoy stats of pod {namespace}/{pod} via the pod proxy: {first}")
    try:
        return exec_in_pod(
            api,
            pod,
            namespace,
            command=["pilot-agent", "request", "GET", "stats/prometheus"],
            container="istio-proxy",
            timeout=timeout,
        )
    except RemoteError as exc:
        raise RemoteError(
            f"Envoy stats of pod {namespace}/{pod}: pod proxy failed ({first}); exec failed ({exc})"
        ) from None
