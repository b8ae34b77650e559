"""Which API server a client trusts: the SHA-256 fingerprint of a CA certificate.

The embedded mesh makes a new self-signed certificate (its own CA) at every start and
records its fingerprint in ``mesh.json`` (``api_ca_sha256``). A client built from a
kubeconfig whose CA has that fingerprint, with TLS verification on, can only be talking to
that very mesh: the fingerprint names one mesh *instance*, where a URL or a path would also
name the next mesh started in the same directory. The change ledger records the same
fingerprint for every API server (``api.ca_sha256``), so a restore can tell a stopped mesh's
changes from the running one's.

Pure apart from reading a file when asked.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

__all__ = ["ca_fingerprint", "file_fingerprint"]


def ca_fingerprint(pem: bytes | str) -> str | None:
    """``sha256:<hex>`` of the first certificate in ``pem``; None when there is none."""
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    begin = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----", begin)
    if begin < 0 or end < 0:
        return None
    block = text[begin : end + len("-----END CERTIFICATE-----")]
    try:
        der = ssl.PEM_cert_to_DER_cert(block)
    except ValueError:
        return None
    return "sha256:" + hashlib.sha256(der).hexdigest()


def file_fingerprint(path: str | Path | None) -> str | None:
    """The fingerprint of the CA file a client was given (None: no file, or not a cert)."""
    if not path:
        return None
    try:
        return ca_fingerprint(Path(path).read_bytes())
    except OSError:
        return None
