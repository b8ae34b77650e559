"""A fresh self-signed certificate for the embedded API, so it can be served over TLS.

Kubernetes clients send credentials only over TLS: kubectl (client-go) drops the kubeconfig's
token for an ``http://`` server. The mesh therefore serves its API over HTTPS on 127.0.0.1
with a certificate made at each start (an EC P-256 key, SAN ``IP:127.0.0.1``, valid 30
days) that the kubeconfig pins as ``certificate-authority-data``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VALID_DAYS = 30
# The certificate is made in a short-lived child process: importing `cryptography` costs the
# long-running daemon about 14 MB of memory it would never give back.
MAKE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ServingCert:
    cert_pem: bytes  # also the CA clients trust (self-signed)
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def client_context(cert_pem: bytes) -> ssl.SSLContext:
    """A client context that trusts exactly this mesh's certificate."""
    return ssl.create_default_context(cadata=cert_pem.decode())


def make_in_child(
    directory: Path, host: str = "127.0.0.1", name: str = "api", common_name: str = "chaosmesh-api"
) -> ServingCert:
    """``make`` in a child process (same files, same result), keeping this process lean."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaosmesh_ext.mesh.api.tls",
            str(directory),
            host,
            name,
            common_name,
        ],
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"could not make the {name} certificate: {proc.stderr.strip()}")
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    return ServingCert(cert_path.read_bytes(), cert_path, key_path)


def make(
    directory: Path, host: str = "127.0.0.1", name: str = "api", common_name: str = "chaosmesh-api"
) -> ServingCert:
    """Write ``<name>.crt`` and ``<name>.key`` (mode 0600) into ``directory``: a self-signed
    certificate for ``common_name`` with ``host`` as its IP address."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # Key identifiers: strict verifiers (Python 3.13's default context) require them.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    _write_private(key_path, key_pem)
    _write_private(cert_path, cert_pem)
    return ServingCert(cert_pem, cert_path, key_path)


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with a file that is mode 0600 from its first byte."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


if __name__ == "__main__":
    make(Path(sys.argv[1]), *sys.argv[2:5])
