"""One options path: the command line, the REST server and the probes share ``normalize``.

Each front end keeps fortio's rules for its own input (how options are named, what a missing
or zero value means); the same input gives the same LoadOptions wherever the rules agree.
"""

from __future__ import annotations

import pytest

from chaosmesh_ext.load.options import (
    ACTIVITY,
    COMMAND_LINE,
    DEFAULT_CONNECTIONS,
    DEFAULT_QPS,
    REST,
    InputRules,
    LoadInput,
    LoadOptionError,
    normalize,
)

URL = "http://httpbin:8000/get"


@pytest.mark.parametrize("rules", [COMMAND_LINE, REST, ACTIVITY])
def test_the_same_run_reads_the_same_everywhere(rules: InputRules) -> None:
    given = LoadInput(url=URL, c="3", qps="50", n="20", timeout="2s", p="50,99", headers=["X-A: 1"])
    options = normalize(given, rules)
    assert (options.connections, options.qps, options.exactly, options.timeout) == (3, 50, 20, 2)
    assert options.percentiles == [50.0, 99.0] and options.headers == [("X-A", "1")]


def test_rest_reads_zero_as_fortios_defaults_and_the_others_as_max_speed() -> None:
    rest = normalize(LoadInput(url=URL, c="0", qps="0"), REST)
    assert (rest.connections, rest.qps) == (DEFAULT_CONNECTIONS, DEFAULT_QPS)
    assert normalize(LoadInput(url=URL, qps=0), ACTIVITY).qps == 0  # max speed
    assert normalize(LoadInput(url=URL, qps="0"), COMMAND_LINE).qps == 0
    assert normalize(LoadInput(url=URL), COMMAND_LINE).qps == DEFAULT_QPS


def test_run_until_stopped_only_where_someone_can_stop_it() -> None:
    assert normalize(LoadInput(url=URL, t="0"), COMMAND_LINE).duration < 0
    assert normalize(LoadInput(url=URL, t="on"), REST).duration < 0
    with pytest.raises(LoadOptionError, match=r"^t: must be greater than 0, got 0s$"):
        normalize(LoadInput(url=URL, t="0s"), ACTIVITY)


@pytest.mark.parametrize(("rules", "option"), [(COMMAND_LINE, "-n/-t"), (ACTIVITY, "n/t")])
def test_errors_name_the_option_as_the_front_end_spells_it(rules: InputRules, option: str) -> None:
    with pytest.raises(LoadOptionError) as info:
        normalize(LoadInput(url=URL, n=5, t="1s"), rules)
    assert info.value.option == option
    # fortio's REST API takes both, and -n wins.
    assert normalize(LoadInput(url=URL, n=5, t="1s"), REST).exactly == 5


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (LoadInput(url=URL, c=0), "-c: number of connections must be at least 1, got 0"),
        (LoadInput(url=URL, n="0"), "-n: must be at least 1 call, got 0"),
        (LoadInput(url=URL, t="-1s"), "-t: must not be negative, got -1s"),
        (LoadInput(url=URL, p="50,x"), "-p: percentile 'x' is not a number"),
        (LoadInput(url=URL, r="fine"), "-r: must be a number, got 'fine'"),
        (LoadInput(url=" "), "url: URL is required"),
    ],
)
def test_bad_command_line_input_is_refused_before_any_load(given: LoadInput, message: str) -> None:
    with pytest.raises(LoadOptionError, match="^" + message.replace("(", r"\(")):
        normalize(given, COMMAND_LINE)


def test_headers_as_a_mapping_or_as_lines() -> None:
    from_map = normalize(LoadInput(url=URL, headers={"X-A": "1"}), ACTIVITY)
    from_lines = normalize(LoadInput(url=URL, headers=["X-A: 1"]), ACTIVITY)
    assert from_map.headers == from_lines.headers == [("X-A", "1")]
    with pytest.raises(LoadOptionError, match=r"^-H: expected 'Name: value'"):
        normalize(LoadInput(url=URL, headers=["no colon"]), ACTIVITY)


@pytest.mark.parametrize(
    ("written", "called"),
    [
        ("http://127.0.0.1:8080//productpage", "http://127.0.0.1:8080/productpage"),
        ("http://127.0.0.1:8080///a?x=//y", "http://127.0.0.1:8080/a?x=//y"),
        ("http://gw//", "http://gw/"),
        ("http://gw/a//b", "http://gw/a//b"),  # only the join after the host
        ("http://gw", "http://gw"),
    ],
)
def test_an_activity_url_built_from_a_base_with_a_slash_is_joined(
    written: str, called: str
) -> None:
    assert normalize(LoadInput(url=written, n=1), ACTIVITY).url == called
    # A command line is sent as typed, as fortio does.
    assert normalize(LoadInput(url=written, n=1), COMMAND_LINE).url == written
