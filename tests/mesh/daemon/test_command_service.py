"""A user's own service as a ``command`` workload, calling another service through the mesh
the way the README shows: the outbound table from its environment, the service's name in
``Host``, its identity headers. Real Envoy sits between the two, so the callee's
VirtualService (a fault matched on ``sourceLabels``) acts on the user's calls."""

from __future__ import annotations

import sys
import time

import pytest

from .conftest import Mesh, request

pytestmark = pytest.mark.envoy

# The README's snippet, grown into a service: GET / calls backend:9090 and reports.
FRONTEND = """\
import http.client, http.server, json, os

SOURCE = json.loads(os.environ["CHAOSMESH_SOURCE"])
IDENTITY = {
    "x-chaosmesh-source-workload": SOURCE["workload"],
    "x-chaosmesh-source-namespace": SOURCE["namespace"],
    **{"x-chaosmesh-src-label-" + k.lower().replace("/", "-").replace(".", "-"): v
       for k, v in SOURCE["labels"].items()},
}


def call_backend():
    port = 9090
    with open(os.environ["CHAOSMESH_OUTBOUND_FILE"]) as handle:
        host, listen = json.load(handle)[str(port)].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(listen), timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": f"backend:{port}", **IDENTITY})
        answer = conn.getresponse()
        return answer.status, answer.read().decode().splitlines()[0]
    finally:
        conn.close()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status, first = call_backend()
        me = " ".join(os.environ[k] for k in ("POD_NAME", "POD_NAMESPACE", "SERVICE_VERSION"))
        body = f"{me}\\nbackend {status}: {first}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

APP = """\
apiVersion: v1
kind: Service
metadata: {{name: frontend}}
spec:
  selector: {{app: frontend}}
  ports: [{{port: 8000}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: frontend}}
spec:
  template:
    metadata:
      labels: {{app: frontend, version: v7, tier: canary}}
      annotations:
        chaosmesh.io/workload: command
        chaosmesh.io/command: "{python} {script}"
    spec:
      containers: [{{name: app, image: example/frontend:7}}]
---
apiVersion: v1
kind: Service
metadata: {{name: backend}}
spec:
  selector: {{app: backend}}
  ports: [{{port: 9090}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: backend}}
spec:
  template:
    metadata:
      labels: {{app: backend, version: v1}}
    spec:
      containers: [{{name: app, image: example/backend:1}}]
"""

# Only calls from pods labelled tier=canary are aborted: the label headers must arrive.
ABORT_FOR_CANARY = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend}
spec:
  hosts: [backend]
  http:
  - match:
    - sourceLabels: {tier: canary}
    fault:
      abort: {httpStatus: 418, percentage: {value: 100}}
    route:
    - destination: {host: backend}
  - route:
    - destination: {host: backend}
"""


def test_a_command_service_calls_through_the_mesh_with_its_documented_env(
    mesh_up, tmp_path
) -> None:
    script = tmp_path / "frontend.py"
    script.write_text(FRONTEND)
    mesh: Mesh = mesh_up([], extra={"app.yaml": APP.format(python=sys.executable, script=script)})
    url = mesh.service("frontend")["url"]
    status, _, body = request(url, host="frontend:8000")
    assert status == 200
    assert body.decode().splitlines() == [
        "frontend-0 default v7",
        "backend 200: backend backend-0 version=v1",
    ]
    mesh.kubectl("apply", "-f", "-", stdin=ABORT_FOR_CANARY)
    status, _, body = request(url, host="frontend:8000")
    assert body.decode().splitlines()[1] == "backend 418: fault filter abort"
    # Envoy logged the user's calls as coming from the frontend workload (the log is flushed
    # asynchronously: poll, bounded).
    deadline = time.monotonic() + 10
    while True:
        calls = [e for e in mesh.access_log() if str(e.get("authority")).startswith("backend")]
        if len(calls) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [e["response_code"] for e in calls] == [200, 418]
    assert {e["source_workload"] for e in calls} == {"frontend"}
