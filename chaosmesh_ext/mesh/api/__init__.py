"""The embedded mesh's Kubernetes-style API: store, HTTP server, discovery, tables, proxy.

``Store`` keeps objects with kube-apiserver's write semantics and calls the daemon's
validate/apply hooks; ``ApiServer`` serves it over HTTP on 127.0.0.1.
"""

from .server import ApiServer
from .status import ApiError, Cause
from .store import ApplyRejected, Store

__all__ = ["ApiError", "ApiServer", "ApplyRejected", "Cause", "Store"]
