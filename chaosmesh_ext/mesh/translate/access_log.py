"""The HCM access logs: Istio's default text line (plus attempts) and a JSON-lines twin.

Envoy has no command operator for the listener's name, so each listener gets its own JSON
format with the name as a literal. The source workload arrives as a request header that is
moved into dynamic metadata before the upstream sees it (see ``listeners.py``).
"""

from __future__ import annotations

import os

from ..paths import ACCESS_JSONL, ACCESS_LOG
from .model import JSON

FILE_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
METADATA_NAMESPACE = "chaosmesh"

# Istio's EnvoyTextLogFormat, with the attempt count added before the newline.
ISTIO_TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME% attempts=%UPSTREAM_REQUEST_ATTEMPT_COUNT%\n"
)


def json_format(listener: str) -> JSON:
    """The keys docs/CONTRACTS.md promises for ``access.jsonl``."""
    return {
        "start_time": "%START_TIME%",
        "method": "%REQ(:METHOD)%",
        "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "authority": "%REQ(:AUTHORITY)%",
        "response_code": "%RESPONSE_CODE%",
        "response_flags": "%RESPONSE_FLAGS%",
        "duration_ms": "%DURATION%",
        # What the upstream itself took; the metrics exporter reports it for
        # reporter="destination", so an injected delay shows at the source only, as on Istio.
        "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
        "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
        "upstream_host": "%UPSTREAM_HOST%",
        "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
        "route_name": "%ROUTE_NAME%",
        "listener": listener,
        "source_workload": f"%DYNAMIC_METADATA({METADATA_NAMESPACE}:source_workload)%",
        "source_namespace": f"%DYNAMIC_METADATA({METADATA_NAMESPACE}:source_namespace)%",
        "bytes_received": "%BYTES_RECEIVED%",
        "bytes_sent": "%BYTES_SENT%",
    }


def access_logs(directory: str | None, listener: str) -> list[JSON]:
    """The two file loggers for one HCM (none when the snapshot has no log directory)."""
    if not directory:
        return []
    return [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": FILE_LOG_TYPE,
                "path": os.path.join(directory, ACCESS_LOG),
                "log_format": {"text_format_source": {"inline_string": ISTIO_TEXT_FORMAT}},
            },
        },
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": FILE_LOG_TYPE,
                "path": os.path.join(directory, ACCESS_JSONL),
                "log_format": {"json_format": json_format(listener)},
            },
        },
    ]
