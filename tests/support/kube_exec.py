"""A small Kubernetes API emulator for the cluster-only paths of the load probes.

It plays a cluster where the fortio pod runs *real* fortio and pilot-agent and nothing else
helps: no fortio Service to proxy to (404), a sidecar whose stats port answers 503 through
the pod proxy, and ``pods/{name}/exec`` served over a WebSocket exactly as kube-apiserver
serves it (subprotocol ``v5.channel.k8s.io`` or ``v4.channel.k8s.io``; one binary frame per
write, first byte the channel: 1 stdout, 2 stderr, 3 a v1 ``Status`` as JSON). The exec'd
command runs as a local process with ``bin_dir`` first on ``PATH``, where a test puts its
stand-in ``fortio`` / ``pilot-agent`` scripts.

Test code only: the product's embedded API server deliberately has no exec. Binds
127.0.0.1 on an OS-assigned port; ``stop()`` kills any command still running, by pid.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
COMMAND_TIMEOUT = 30.0  # the emulator's own bound on an exec'd command


@dataclass
class ExecCall:
    namespace: str
    pod: str
    container: str | None
    command: list[str]
    protocol: str


@dataclass
class Cluster:
    """What the emulated cluster holds and how its paths behave."""

    bin_dir: Path
    namespace: str = "default"
    pods: list[str] = field(default_factory=lambda: ["fortio-deploy-7c9d8b6f4-x2x7k"])
    pod_proxy_status: int = 503  # the sidecar's :15020 through the pod proxy
    hang_exec: bool = False  # accept the exec request and never answer the upgrade
    execs: list[ExecCall] = field(default_factory=list)
    running: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    released: threading.Event = field(default_factory=threading.Event)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _frame(payload: bytes) -> bytes:
    """One unmasked binary WebSocket frame (servers never mask)."""
    head = bytearray([0x82])
    size = len(payload)
    if size < 126:
        head.append(size)
    elif size < 1 << 16:
        head.append(126)
        head += size.to_bytes(2, "big")
    else:
        head.append(127)
        head += size.to_bytes(8, "big")
    return bytes(head) + payload


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cluster: Cluster

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, code: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        c = self.cluster
        # /api/v1/namespaces/{ns}/...
        if parts[:3] != ["api", "v1", "namespaces"] or len(parts) < 5:
            self._json(404, _status(404, "NotFound", "the server could not find the resource"))
            return
        ns, kind = parts[3], parts[4]
        if kind == "pods" and len(parts) == 5:
            items = [
                {
                    "metadata": {"name": p, "namespace": ns, "labels": {"app": "fortio"}},
                    "status": {"phase": "Running"},
                }
                for p in (c.pods if ns == c.namespace else [])
            ]
            self._json(200, {"kind": "PodList", "apiVersion": "v1", "items": items})
        elif kind == "services" and len(parts) > 6 and parts[6] == "proxy":
            name = parts[5].split(":")[0]
            self._json(404, _status(404, "NotFound", f'services "{name}" not found'))
        elif kind == "pods" and len(parts) > 6 and parts[6] == "proxy":
            code = c.pod_proxy_status
            self._json(code, _status(code, "ServiceUnavailable", "error trying to reach service"))
        elif kind == "pods" and len(parts) == 7 and parts[6] == "exec":
            self._exec(ns, parts[5], parse_qs(url.query))
        else:
            self._json(404, _status(404, "NotFound", "the server could not find the resource"))

    def _exec(self, ns: str, pod: str, query: dict[str, list[str]]) -> None:
        c = self.cluster
        offered = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        protocol = next((p for p in offered if p in PROTOCOLS), "")
        key = self.headers.get("Sec-WebSocket-Key", "")
        if self.headers.get("Upgrade", "").lower() != "websocket" or not key or not protocol:
            self._json(400, _status(400, "BadRequest", "exec needs a channel.k8s.io WebSocket"))
            return
        if ns != c.namespace or pod not in c.pods:
            self._json(404, _status(404, "NotFound", f'pods "{pod}" not found'))
            return
        command = query.get("command", [])
        container = query["container"][0] if query.get("container") else None
        c.execs.append(ExecCall(ns, pod, container, command, protocol))
        if c.hang_exec:
            c.released.wait(60)  # hold the upgrade until the emulator stops
            self.close_connection = True
            return
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.wfile.flush()
        out, err, status = self._run(command)
        for channel, data in ((1, out), (2, err)):
            for start in range(0, len(data), 32 * 1024):  # several frames, as a real stream
                self.wfile.write(_frame(bytes([channel]) + data[start : start + 32 * 1024]))
        self.wfile.write(_frame(bytes([3]) + json.dumps(status).encode()))
        self.wfile.write(b"\x88\x02\x03\xe8")  # close frame, 1000 normal closure
        self.wfile.flush()
        self.close_connection = True

    def _run(self, command: list[str]) -> tuple[bytes, bytes, dict[str, Any]]:
        c = self.cluster
        env = {**os.environ, "PATH": f"{c.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        try:
            proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
            )
        except OSError as exc:
            msg = f'failed to exec in container: exec: "{command[0]}": {exc.strerror}'
            return b"", b"", {"metadata": {}, "status": "Failure", "message": msg}
        c.running[proc.pid] = proc
        try:
            out, err = proc.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=5)
        finally:
            c.running.pop(proc.pid, None)
        if proc.returncode == 0:
            return out, err, {"metadata": {}, "status": "Success"}
        code = proc.returncode
        return (
            out,
            err,
            {
                "metadata": {},
                "status": "Failure",
                "message": f"command terminated with non-zero exit code: exit code {code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
            },
        )


class KubeExecEmulator:
    def __init__(self, cluster: Cluster) -> None:
        handler = type("Handler", (_Handler,), {"cluster": cluster})
        self.cluster = cluster
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> KubeExecEmulator:
        self._thread.start()
        return self

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e\n  cluster:\n"
            f"    server: {self.url}\ncontexts:\n- name: e\n  context:\n    cluster: e\n"
            "    user: e\ncurrent-context: e\nusers:\n- name: e\n  user: {}\n"
        )
        return path

    def stop(self) -> None:
        self.cluster.released.set()
        for proc in list(self.cluster.running.values()):
            proc.kill()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)
