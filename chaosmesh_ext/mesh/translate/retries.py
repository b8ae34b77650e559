"""VirtualService ``retries`` -> Envoy RetryPolicy (istiod's route/retry/retry.go).

Since Istio 1.24 the default policy no longer lists 503 as retriable: a 503 from the upstream
is retried only when ``retryOn`` names it (``5xx``, ``gateway-error`` or ``503``).
"""

from __future__ import annotations

from http import HTTPStatus

from .model import JSON
from .names import duration

DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
PREVIOUS_HOSTS = {
    "name": "envoy.retry_host_predicates.previous_hosts",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3"
        ".PreviousHostsPredicate"
    },
}
PREVIOUS_PRIORITIES = {
    "name": "envoy.retry_priorities.previous_priorities",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3"
        ".PreviousPrioritiesConfig",
        "update_frequency": 2,
    },
}
_KNOWN_STATUS = {s.value for s in HTTPStatus}


def default_policy(consistent_hash: bool = False) -> JSON:
    """What a route gets when its VirtualService says nothing about retries; with a
    consistent hash, retries stay on the hashed host (no previous-hosts predicate)."""
    policy: JSON = {
        "retry_on": DEFAULT_RETRY_ON,
        "num_retries": 2,
        "retry_host_predicate": [dict(PREVIOUS_HOSTS)],
        "host_selection_retry_max_attempts": 5,
    }
    if consistent_hash:
        del policy["retry_host_predicate"]
    return policy


def parse_retry_on(text: str) -> tuple[str, list[int]]:
    """Split ``retryOn`` into Envoy's retry_on string and retriable status codes."""
    words: list[str] = []
    codes: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part.isdigit() and int(part) in _KNOWN_STATUS:
            codes.append(int(part))
        else:
            words.append(part)
    return ",".join(words), codes


def retry_policy(retries: JSON | None, where: str, consistent_hash: bool = False) -> JSON | None:
    """istiod's ConvertPolicy: None -> default; attempts <= 0 -> no policy at all."""
    policy = default_policy(consistent_hash)
    if retries is None:
        return policy
    attempts = int(retries.get("attempts") or 0)
    if attempts <= 0:
        return None
    policy["num_retries"] = attempts
    if retries.get("retryOn"):
        retry_on, codes = parse_retry_on(str(retries["retryOn"]))
        if codes and "retriable-status-codes" not in retry_on:
            retry_on = ",".join(filter(None, [retry_on, "retriable-status-codes"]))
        policy["retry_on"] = retry_on
        if codes:
            policy["retriable_status_codes"] = codes
    if retries.get("perTryTimeout"):
        policy["per_try_timeout"] = duration(retries["perTryTimeout"], f"{where}.perTryTimeout")
    if retries.get("retryIgnorePreviousHosts") is not None:
        if retries["retryIgnorePreviousHosts"]:
            policy["retry_host_predicate"] = [dict(PREVIOUS_HOSTS)]
        else:
            policy.pop("retry_host_predicate", None)
    if retries.get("retryRemoteLocalities"):
        policy["retry_priority"] = dict(PREVIOUS_PRIORITIES)
    if retries.get("backoff"):
        policy["retry_back_off"] = {
            "base_interval": duration(retries["backoff"], f"{where}.backoff")
        }
    return policy
