"""fortio's REST API on our engine, over real HTTP: defaults, sync, async, status, stop, data."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from chaosmesh_ext.load.rest import RestServer, serve
from tests.support.load_target import Reply, Target


@pytest.fixture
def rest(tmp_path) -> Iterator[RestServer]:  # type: ignore[no-untyped-def]
    server = serve(data_dir=tmp_path / "data")
    try:
        yield server
    finally:
        server.shutdown()


def _get(url: str, timeout: float = 30.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _post(url: str, body: dict[str, Any], timeout: float = 30.0) -> tuple[int, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_sync_run_returns_fortio_json(rest: RestServer, target: Target) -> None:
    status, res = _get(f"{rest.url}rest/run?url={quote(target.url)}/get&c=2&qps=-1&n=20")
    assert status == 200
    assert res["RunType"] == "HTTP" and res["RetCodes"] == {"200": 20}
    assert res["RequestedQPS"] == "max" and res["NumThreads"] == 2
    assert res["RunID"] >= 1 and target.count == 20


def test_post_json_with_string_values_and_jsonpath(rest: RestServer, target: Target) -> None:
    body = {"metadata": {"url": target.url, "c": "1", "qps": "-1", "n": "3", "H": ["X-A: b"]}}
    status, res = _post(f"{rest.url}rest/run?jsonPath=.metadata", body)
    assert status == 200 and res["RetCodes"] == {"200": 3}
    assert target.seen[0].headers["x-a"] == "b"


def test_defaults_are_fortios_and_async_status_stop_work(rest: RestServer, target: Target) -> None:
    # No qps, c or t: fortio's REST defaults are 8 qps, 4 connections, 5 s.
    status, started = _get(f"{rest.url}rest/run?url={quote(target.url)}&async=on&labels=dflt")
    assert status == 200 and started["message"] == "started"
    run_id = started["RunID"]
    assert started["ResultURL"].endswith(f"/fortio/data/{started['ResultID']}.json")
    deadline = time.monotonic() + 10
    while True:
        _, st = _get(f"{rest.url}rest/status?runid={run_id}")
        entry = st["Statuses"].get(str(run_id))
        if (entry and entry["State"] == 2) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert entry["State"] == 2  # running
    assert entry["RunnerOptions"]["QPS"] == 8 and entry["RunnerOptions"]["NumThreads"] == 4
    assert entry["RunnerOptions"]["Duration"] == 5_000_000_000
    _, stopped = _get(f"{rest.url}rest/stop?runid={run_id}&wait=on")
    assert stopped["Count"] == 1 and stopped["message"] == "stopped"
    # A stopped run leaves status, and its result is saved under /fortio/data/.
    _, st = _get(f"{rest.url}rest/status")
    assert str(run_id) not in st["Statuses"]
    status, saved = _get(started["ResultURL"])
    assert status == 200
    assert saved["RequestedQPS"] == "8" and saved["NumThreads"] == 4
    assert saved["Labels"] == "dflt" and saved["ID"] == started["ResultID"]
    # stopped early: far fewer than 8 qps x 5 s calls
    assert saved["DurationHistogram"]["Count"] < 40


def test_bad_parameters_are_400_naming_the_parameter(rest: RestServer, target: Target) -> None:
    status, err = _get(f"{rest.url}rest/run?url={quote(target.url)}&qps=abc")
    assert status == 400 and err["error"] is True and "qps" in err["exception"]
    status, err = _get(f"{rest.url}rest/run?qps=10")
    assert status == 400 and "URL is required" in err["exception"]
    status, err = _get(f"{rest.url}rest/run?url={quote(target.url)}&t=forever")
    assert status == 400 and err["exception"].startswith("t:")
    assert target.count == 0


def test_unreachable_target_is_an_error_reply(rest: RestServer) -> None:
    status, res = _get(f"{rest.url}rest/run?url={quote('http://127.0.0.1:1/')}&n=2")
    assert status == 200 and res["error"] is True
    assert "127.0.0.1:1" in res["exception"]


def test_classification_extension_counts_versions(rest: RestServer, make_target) -> None:  # type: ignore[no-untyped-def]
    t = make_target(lambda i, *_: Reply(body=b'{"version": "v2"}' if i % 10 == 0 else b"v1 here"))
    regex = quote(r"(?P<version>v\d)")
    status, res = _get(
        f"{rest.url}rest/run?url={quote(t.url)}&c=1&qps=-1&n=50&classify_regex={regex}"
    )
    assert status == 200 and res["Classification"] == {"v1": 45, "v2": 5}


def test_saved_result_names_are_checked(rest: RestServer) -> None:
    status, err = _get(f"{rest.url}data/..%2Fetc%2Fpasswd")
    assert status in (400, 404) and err["error"] is True
