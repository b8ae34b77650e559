"""What a review shows of a real run: the values its ``${name}`` forms stood for and the URL
each load really called — through ``chaos run`` with the safety-net control and
``chaosmesh journal show/report``.

An experiment writes ``"url": "${base}/productpage"``; with ``base`` ending in ``/`` that
used to call ``//productpage`` (a 404) while the journal showed only ``${base}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext.journal import load_journal
from tests.support.chaos_run import SAFETY_NET, chaos_run, running_target
from tests.support.cli import chaosmesh
from tests.support.load_target import Reply, Target


@pytest.fixture
def flaky() -> Iterator[Target]:
    """200 for the first ten calls (hypothesis before, method), 503 after."""
    with running_target(lambda i, *_: Reply(200 if i < 10 else 503)) as target:
        yield target


def _load(name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "type": "probe",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosmesh_ext.probes",
            "func": "fortio_load",
            "arguments": {"url": "${base}/productpage", "n": 5, "c": 1, "via": "local",
                          "ns": "${ns}", **arguments},
        },
    }  # fmt: skip


def test_journal_shows_the_values_and_the_url_the_run_used(flaky: Target, tmp_path: Path) -> None:
    checked = _load("productpage-ok")
    checked["tolerance"] = {
        "type": "probe",
        "name": "slo",
        "provider": {"type": "python", "module": "chaosmesh_ext.tolerances", "func": "slo",
                     "arguments": {"expect_codes": [200]}},
    }  # fmt: skip
    experiment = {
        "title": "productpage answers",
        "description": "the URL is built from a base ending in a slash",
        "configuration": {
            "mesh_target": "kubernetes",
            "base": {"type": "env", "key": "TEST_BASE_URL"},
            "ns": "shop",
            "api_token": {"type": "env", "key": "TEST_TOKEN"},  # never copied into the journal
        },
        "controls": [SAFETY_NET],
        "steady-state-hypothesis": {"title": "200s", "probes": [checked]},
        "method": [_load("productpage-under-fault", headers={"x-token": "${api_token}"})],
    }
    run = chaos_run(
        experiment, tmp_path, env={"TEST_BASE_URL": flaky.url + "/", "TEST_TOKEN": "s3cr3t"}
    )
    journal = run.journal_path
    assert {s.path for s in flaky.seen} == {"/productpage"}  # not //productpage
    assert run.journal["deviated"] is True
    assert "s3cr3t" not in journal.read_text()
    url = f"{flaky.url}/productpage"
    assert f"slo not met for {url}: unexpected codes 503 x5" in run.log

    out = chaosmesh("journal", "show", str(journal)).stdout
    after = out.split("after: not met", 1)[1]
    assert f"url {url}" in after.splitlines()[2]  # under the probe that was not met
    method = out.split("\nMethod\n", 1)[1]
    assert "url=http://127.0.0.1:" in method and "${base}" not in method and "ns=shop" in method
    # A credential-looking name stays unresolved (and out of the journal).
    assert load_journal(journal).method[0].arguments["headers"] == {"x-token": "${api_token}"}
    assert f"→ {url}: 5 calls" in method
    page = tmp_path / "report.html"
    chaosmesh("journal", "report", str(journal), "-o", str(page))
    assert "ns=shop" in page.read_text() and "${ns}" not in page.read_text()
