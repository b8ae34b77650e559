"""Warnings at run time for edits that are valid but almost certainly a mistake — real
``chaos run`` against the Kubernetes API emulator, then ``chaosmesh journal show``.

- ``set_retries`` on a route whose own fault aborts: Envoy never retries an injected abort;
- a fault ``percentage`` below 1: ``0.3`` means 0.3 %, not 30 %.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.chaos_run import chaos_run
from tests.support.cli import chaosmesh
from tests.support.kapi import RunningEmulator


def _action(name: str, func: str, **arguments: Any) -> dict[str, Any]:
    return {
        "type": "action",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosmesh_ext.actions",
            "func": func,
            "arguments": arguments,
        },
    }


def test_retries_on_an_aborting_route_and_a_tiny_percentage_are_warned_about(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    experiment = {
        "title": "retries meet an abort on the same route",
        "description": "valid, and useless",
        "method": [
            _action("abort-reviews", "inject_abort", virtual_service="reviews", route="default",
                    percentage=50),
            _action("retry-reviews", "set_retries", virtual_service="reviews", route="default",
                    attempts=3),
            _action("delay-a-third", "inject_delay", virtual_service="reviews", route="jason",
                    delay="1s", percentage=0.3),
            _action("retry-jason", "set_retries", virtual_service="reviews", route="jason",
                    attempts=2),
        ],
        "rollbacks": [_action("restore", "restore")],
    }  # fmt: skip
    run = chaos_run(experiment, tmp_path, env={"KUBECONFIG": str(seeded.kubeconfig)})
    journal = run.journal_path
    runs = {r["activity"]["name"]: r for r in run.journal["run"]}
    assert all(r["status"] == "succeeded" for r in runs.values())
    retry = runs["retry-reviews"]["output"]["warnings"]
    assert retry == [
        "VirtualService default/reviews: spec.http[1] aborts and retries: the sidecar answers "
        "an injected abort before routing, so Envoy never retries it; to exercise these "
        "retries, inject the abort on the called service's VirtualService"
    ]
    assert runs["delay-a-third"]["output"]["warnings"] == [
        "percentage 0.3 means 0.3 % of requests, not 30 %: Istio's percentage is out of 100 "
        "(write 30 for 30 %)"
    ]
    # A delay does not stop retries, and the abort's own percentage is fine: no warning.
    assert "warnings" not in runs["retry-jason"]["output"]
    assert "warnings" not in runs["abort-reviews"]["output"]
    text = run.log
    assert "set_retries: VirtualService default/reviews: spec.http[1] aborts and retries" in text
    assert "inject_delay: percentage 0.3 means 0.3 % of requests, not 30 %" in text
    out = chaosmesh("journal", "show", str(journal)).stdout
    assert "→ warning: percentage 0.3 means 0.3 % of requests" in out
