"""fortio's flags: Go's syntax, one table for the CLI, REST and probes, and what each does.

The command-line tests run the installed ``chaosmesh`` entry point against a real local
HTTP target and check what the target received.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext import probes
from chaosmesh_ext.load.fortio_flags import (
    FLAGS,
    NO_EFFECT,
    REFUSED,
    SUPPORTED,
    Extension,
    load_input,
    parse_command_line,
)
from chaosmesh_ext.load.options import COMMAND_LINE, LoadInput, LoadOptionError, normalize
from chaosmesh_ext.load.rest import serve
from tests.support.cli import CHAOSMESH_BIN
from tests.support.load_target import Reply, Target

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "FORTIO-FLAGS.md"


def _load(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHAOSMESH_BIN, "load", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


# --- syntax -----------------------------------------------------------------------------------


def test_go_flag_syntax() -> None:
    parsed = parse_command_line(
        ["-c", "2", "--qps=0", "-k", "-keepalive=false", "-H", "a: 1", "--H", "b: 2", "URL",
         "-loglevel", "Warning", "--", "-not-a-flag"]
    )  # fmt: skip
    assert parsed.values == {
        "c": "2",
        "qps": "0",
        "k": True,
        "keepalive": False,
        "H": ["a: 1", "b: 2"],
        "loglevel": "Warning",
    }
    assert parsed.args == ["URL", "-not-a-flag"]
    # a negative number is a value, not a flag; -https-insecure is -k
    assert parse_command_line(["-qps", "-1", "-https-insecure"]).values == {"qps": "-1", "k": True}
    extensions = [Extension("via", False, ""), Extension("open-loop", True, "")]
    ours = parse_command_line(["-via", "mesh", "--open-loop"], extensions)
    assert ours.values == {"via": "mesh", "open-loop": True}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-loglvl", "x"], "-loglvl: not a flag of fortio load"),
        (["-cqps", "1"], "-cqps: not a flag of fortio load"),  # never -c -q -p -s
        (["-qps"], "-qps: flag needs an argument"),
        (["-k=maybe"], "-k: invalid boolean value 'maybe'"),
        (["---c", "1"], "bad flag syntax"),
    ],
)
def test_bad_syntax_names_the_whole_flag(argv: list[str], message: str) -> None:
    with pytest.raises(LoadOptionError, match=re.escape(message)):
        parse_command_line(argv)


# --- the table and its page -------------------------------------------------------------------


def test_every_flag_is_on_the_docs_page_in_its_class() -> None:
    text = DOC.read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    by_class: dict[str, set[str]] = {SUPPORTED: set(), NO_EFFECT: set(), REFUSED: set()}
    for section in sections:
        title = section.splitlines()[0] if section else ""
        names = set(re.findall(r"^\| `-([^`]+)`", section, flags=re.M))
        if title.startswith(("Supported", "Output")):
            by_class[SUPPORTED] |= names
        elif title.startswith("Accepted, no effect"):
            by_class[NO_EFFECT] |= names
        elif title.startswith("Refused"):
            by_class[REFUSED] |= names
    for flag in FLAGS.values():
        assert flag.name in by_class[flag.support], f"-{flag.name} not listed as {flag.support}"
        assert flag.text.replace("|", "/") in text, f"-{flag.name}: text differs from the table"
    assert sum(len(v) for v in by_class.values()) == len(FLAGS)


def test_the_flags_fortio_users_bring_are_known() -> None:
    # the list, and what fortio's own docs use most
    for name in ("loglevel", "quiet", "k", "a", "abort-on", "uniform", "jitter",
                 "connection-reuse", "resolve", "stdclient", "sequential-warmup",
                 "httpbufferkb", "content-type", "user", "profile", "json", "labels"):  # fmt: skip
        assert name in FLAGS


def test_one_mapping_for_every_front_end() -> None:
    given = load_input(
        "http://h:8000/", {"abort_on": 503, "https-insecure": "on", "http1_0": True, "c": 2}
    ).given
    assert (given.abort_on, given.insecure, given.http10, given.c) == (503, True, True, 2)
    ignored = load_input("http://h/", {"stdclient": True, "profile": "x"})
    assert [n.split(":")[0] for n in ignored.ignored] == ["-stdclient", "-profile"]
    assert load_input("http://h/", {"h2": "off"}).given.url == "http://h/"  # asks for nothing
    with pytest.raises(LoadOptionError, match=r"^h2: HTTP/2 is not supported"):
        load_input("http://h/", {"h2": True}, prefix="")
    with pytest.raises(LoadOptionError, match=r"^nosuch: not a flag of fortio load"):
        load_input("http://h/", {"nosuch": 1}, prefix="")


def test_flag_values_are_checked_before_any_call() -> None:
    def options(**values: object) -> None:
        normalize(load_input("http://h/", values).given, COMMAND_LINE)

    with pytest.raises(LoadOptionError, match="-user: invalid user credentials"):
        options(user="nopassword")
    with pytest.raises(LoadOptionError, match="-connection-reuse: expected min:max"):
        options(**{"connection-reuse": "1:2:3"})
    with pytest.raises(LoadOptionError, match="-calc-qps: needs both -n and -t"):
        options(**{"calc-qps": True, "n": 10})
    with pytest.raises(LoadOptionError, match="-payload-file: cannot read /nonexistent"):
        options(**{"payload-file": "/nonexistent"})
    with pytest.raises(LoadOptionError, match="-cert/-key"):
        options(cert="/tmp/c.pem")
    built = normalize(
        load_input("http://h/", {"calc-qps": True, "n": "20", "t": "4s"}).given, COMMAND_LINE
    )
    assert (built.qps, built.exactly, built.duration) == (5.0, 20, 5.0)


# --- the command line, end to end -------------------------------------------------------------


def test_the_runbooks_command_verbatim(make_target: Callable[..., Target]) -> None:
    t = make_target(lambda i, *_: Reply(503 if i % 4 == 1 else 200))
    proc = _load("-c", "2", "-qps", "0", "-n", "20", "-loglevel", "Warning", t.url + "/get")
    assert proc.returncode == 0, proc.stderr
    assert "Code 200 : 15 (75.0 %)" in proc.stdout and "Code 503 : 5 (25.0 %)" in proc.stdout
    # fortio at -loglevel Warning: one warning line per non-OK answer, nothing at Info
    warnings = [line for line in proc.stderr.splitlines() if " W Non ok http code 503" in line]
    assert len(warnings) == 5
    assert " I " not in proc.stderr
    quiet = _load("-c", "2", "-qps", "0", "-n", "8", "-quiet", t.url + "/get")
    assert quiet.returncode == 0 and "Non ok" not in quiet.stderr


def test_an_unknown_or_refused_flag_is_named_and_nothing_is_sent(target: Target) -> None:
    proc = _load("-loglvl", "Warning", "-n", "5", target.url)
    assert proc.returncode == 2
    assert "-loglvl: not a flag of fortio load" in proc.stderr
    assert "No such option" not in proc.stderr
    refused = _load("-h2", "-n", "5", target.url)
    assert refused.returncode == 2 and "-h2: HTTP/2 is not supported" in refused.stderr
    assert target.connections == 0


def test_a_flag_with_no_effect_is_accepted_with_a_warning(target: Target) -> None:
    proc = _load("-stdclient", "-httpbufferkb", "128", "-n", "3", "-c", "1", target.url)
    assert proc.returncode == 0, proc.stderr
    assert "-stdclient: no effect here" in proc.stderr
    assert "-httpbufferkb: no effect here" in proc.stderr
    assert target.count == 3


def test_request_shaping_flags_reach_the_server(target: Target, tmp_path: Path) -> None:
    body = tmp_path / "body.bin"
    body.write_bytes(b"x" * 77)
    proc = _load("-n", "2", "-c", "1", "-user", "alice:s3cret", "-content-type", "application/json",
                 "-payload-file", str(body), "-json", "-", target.url + "/p")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    seen = target.seen[-1]
    assert seen.method == "POST" and seen.body == b"x" * 77
    assert seen.headers["authorization"] == "Basic YWxpY2U6czNjcmV0"
    assert seen.headers["content-type"] == "application/json"
    result = json.loads(proc.stdout)
    assert result["ContentType"] == "application/json"
    assert "s3cret" not in proc.stdout  # credentials stay out of the result


def test_connection_flags(make_target: Callable[..., Target]) -> None:
    t = make_target()
    proc = _load("-n", "6", "-c", "1", "-keepalive=false", "-json", "-", t.url)
    assert proc.returncode == 0, proc.stderr
    assert t.connections == 6 and all(s.headers.get("connection") == "close" for s in t.seen)
    assert json.loads(proc.stdout)["DisableKeepAlive"] is True

    reuse = make_target()
    proc = _load("-n", "6", "-c", "1", "-connection-reuse", "2:2", reuse.url)
    assert proc.returncode == 0, proc.stderr
    assert reuse.connections == 3

    old = make_target()
    proc = _load("-n", "2", "-c", "1", "-http1.0", old.url)
    assert proc.returncode == 0, proc.stderr
    assert [s.version for s in old.seen] == ["HTTP/1.0"] * 2
    assert "host" not in old.seen[0].headers

    # -resolve: connect to this address, keep the URL's name in Host
    named = make_target()
    proc = _load("-n", "2", "-c", "1", "-resolve", "127.0.0.1",
                 f"http://load-target.invalid:{named.port}/r")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert named.seen[0].headers["host"] == f"load-target.invalid:{named.port}"


def test_abort_on_stops_the_run_and_a_saves_the_result(
    make_target: Callable[..., Target], tmp_path: Path
) -> None:
    t = make_target(lambda i, *_: Reply(503 if i == 4 else 200))
    proc = _load("-n", "50", "-c", "1", "-qps", "0", "-abort-on", "503", "-a", "-data-dir",
                 str(tmp_path), "-labels", "abort test", "-runid", "7", t.url)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert t.count == 5 and "Aborted run because of http code 503" in proc.stderr
    (saved,) = tmp_path.glob("*.json")
    result = json.loads(saved.read_text())
    assert saved.name == f"{result['ID']}.json" and result["ID"].endswith("_7_abort_test")
    assert (result["AbortOn"], result["RunID"]) == (503, 7)
    assert f"Successfully wrote {saved.stat().st_size} bytes" in proc.stderr


# --- REST parameters and probe arguments ------------------------------------------------------


def test_rest_takes_the_same_names(make_target: Callable[..., Target]) -> None:
    t = make_target(lambda i, *_: Reply(503 if i == 2 else 200))
    server = serve()
    try:
        query = f"url={t.url}&n=20&c=1&qps=-1&abort-on=503&keepalive=off"
        with urllib.request.urlopen(f"{server.url}rest/run?{query}", timeout=30) as resp:
            result = json.loads(resp.read())
        assert result["AbortOn"] == 503 and result["DisableKeepAlive"] is True
        assert sum(result["RetCodes"].values()) == 3 and t.connections == 3
        bad = urllib.request.Request(f"{server.url}rest/run?url={t.url}&h2=on")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=30)
        assert "h2: HTTP/2 is not supported" in refused.value.read().decode()
    finally:
        server.shutdown()


def test_the_probe_takes_the_same_names(
    make_target: Callable[..., Target], caplog: pytest.LogCaptureFixture
) -> None:
    t = make_target(lambda i, *_: Reply(503 if i == 3 else 200))
    flags = {"abort-on": 503, "sequential_warmup": True, "stdclient": True}
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        result = probes.fortio_load(t.url, n=30, c=1, via="local", **flags)
    assert result["count"] == 4 and result["AbortOn"] == 503
    assert "-stdclient" not in caplog.text and "stdclient: no effect here" in caplog.text
    with pytest.raises(ActivityFailed, match=r"fortio_load .*: grpc: gRPC load is not supported"):
        probes.fortio_load(t.url, n=3, via="local", grpc=True)
    with pytest.raises(ActivityFailed, match=r"abort_onn: not a flag of fortio load"):
        probes.fortio_load(t.url, n=3, via="local", abort_onn=503)
    assert LoadInput(url="x").log_errors is False  # probes never log each error
