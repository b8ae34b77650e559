"""Checking a gateway's HTTPS server: an HTTPS GET that sends a chosen SNI name and reports
the certificate it was served (test certificates, not verified), and the Secret to give it."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
from typing import Any

from cryptography import x509


def https_get(port: int, host: str, path: str = "/") -> tuple[int, str, str]:
    """(status, body, served certificate's subject) of GET ``path`` on 127.0.0.1:``port``
    with SNI and Host ``host``."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # test certificates: the subject is returned instead
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as sock,
    ):
        der = sock.getpeercert(binary_form=True) or b""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.sock = sock
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        body = response.read().decode()
    subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    return response.status, body, subject


def tls_secret(cert_pem: bytes, key_pem: bytes, name: str, namespace: str) -> dict[str, Any]:
    """A ``kubernetes.io/tls`` Secret as ``kubectl create secret tls`` writes it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {
            "tls.crt": base64.b64encode(cert_pem).decode(),
            "tls.key": base64.b64encode(key_pem).decode(),
        },
    }
