"""fortio's histogram and percentiles, checked against values worked out by hand."""

from __future__ import annotations

import pytest

from chaosmesh_ext.load.stats import (
    NUM_BUCKETS,
    Histogram,
    bucket_index,
    calc_percentile,
    go_g,
    parse_percentiles,
    print_histogram,
    subtract,
)


def test_values_on_an_edge_fall_in_the_bucket_below() -> None:
    # Intervals are ]start, end]: 12 ms belongs to ]11, 12], 12.5 ms to ]12, 14].
    assert bucket_index(12.0) == bucket_index(11.5)
    assert bucket_index(12.5) == bucket_index(14.0)
    assert bucket_index(12.0) != bucket_index(12.5)
    assert bucket_index(0.0) == 0 and bucket_index(-3.0) == 0
    assert bucket_index(100000.5) == NUM_BUCKETS - 1
    # Above 1000 the table lookup ends and fortio searches: 2500 -> ]2000, 3000].
    assert bucket_index(2500.0) == bucket_index(3000.0) != bucket_index(2000.0)


def test_export_and_percentiles_match_the_hand_computation() -> None:
    h = Histogram(0.0, 0.001)
    for v in (0.0005, 0.0015, 0.0015, 0.0035, 0.012):
        h.record(v)
    e = h.export([10, 50, 90, 99, 100])
    buckets = [(b["Start"], b["End"], b["Percent"], b["Count"]) for b in e["Data"]]
    # First bucket starts at Min, last ends at Max; only non-empty buckets are listed.
    assert buckets == [
        (0.0005, 0.001, 20.0, 1),
        (0.001, 0.002, 60.0, 2),
        (0.003, 0.004, 80.0, 1),
        (pytest.approx(0.011), 0.012, 100.0, 1),
    ]
    p = {x["Percentile"]: x["Value"] for x in e["Percentiles"]}
    assert p[10] == 0.0005  # <= 100/Count -> Min
    assert p[50] == pytest.approx(0.001 + (50 - 20) / (60 - 20) * 0.001)  # 0.00175
    assert p[90] == pytest.approx(0.011 + (90 - 80) / (100 - 80) * 0.001)  # 0.0115
    assert p[99] == pytest.approx(0.01195)
    assert p[100] == 0.012
    assert e["Count"] == 5 and e["Min"] == 0.0005 and e["Max"] == 0.012
    assert e["Avg"] == pytest.approx(0.019 / 5)


def test_overflow_bucket_ends_at_max_and_percentile_uses_it() -> None:
    h = Histogram(0.0, 0.001)
    h.record(0.002)
    h.record(150.0)  # 150 s: beyond the last edge (100 s)
    e = h.export([75])
    assert e["Data"][-1]["Start"] == pytest.approx(100.0)
    assert e["Data"][-1]["End"] == 150.0
    # p75: pp = 50, interpolate in ]100, 150] -> 100 + 25/50 * 50
    assert calc_percentile(e, 75) == pytest.approx(125.0)


def test_empty_histogram_has_no_data() -> None:
    e = Histogram().export([50])
    assert e["Count"] == 0 and e["Data"] is None and e["Percentiles"] is None
    assert print_histogram(e, "Error cases") == ["Error cases : no data"]


def test_transfer_merges_counts_and_buckets() -> None:
    a, b = Histogram(), Histogram()
    a.record(0.001)
    b.record(0.004)
    b.record(0.0005)
    a.transfer(b)
    e = a.export([50])
    assert (e["Count"], e["Min"], e["Max"]) == (3, 0.0005, 0.004)
    assert sum(x["Count"] for x in e["Data"]) == 3
    assert b.count == 0 and not any(b.hdata)


def test_printed_lines_are_fortios() -> None:
    h = Histogram()
    for v in (0.0005, 0.0015, 0.0015, 0.0035, 0.012):
        h.record(v)
    lines = print_histogram(h.export([50, 99.9]), "Aggregated Function Time")
    assert lines[0].startswith("Aggregated Function Time : count 5 avg 0.0038 +/- ")
    assert lines[1] == "# range, mid point, percentile, count"
    assert lines[2] == ">= 0.0005 <= 0.001 , 0.00075 , 20.00, 1"
    assert lines[3] == "> 0.001 <= 0.002 , 0.0015 , 60.00, 2"
    assert lines[-2] == "# target 50% 0.00175"
    assert lines[-1].startswith("# target 99.9% 0.0119")


def test_go_g_formatting() -> None:
    assert go_g(0.0032) == "0.0032"
    assert go_g(1e6) == "1e+06"
    assert go_g(123456.0) == "123456"
    assert go_g(5.0) == "5"
    assert go_g(2.5e-05) == "2.5e-05"
    assert go_g(0.123456789, 4) == "0.1235"


def test_parse_percentiles() -> None:
    assert parse_percentiles("50,75,90,99,99.9") == [50, 75, 90, 99, 99.9]
    with pytest.raises(ValueError, match="abc"):
        parse_percentiles("50,abc")
    with pytest.raises(ValueError, match="between 0 and 100"):
        parse_percentiles("150")


def test_subtract_leaves_the_successful_calls_histogram() -> None:
    # fortio records every call in one histogram and the failed ones again in another:
    # a breaker's 503s come back in ~1 ms, the admitted calls take 40-60 ms.
    everything, errors, ok = Histogram(0.0, 0.001), Histogram(0.0, 0.001), Histogram(0.0, 0.001)
    for ms in (0.8, 1.2, 1.5, 2.2):
        everything.record(ms / 1000)
        errors.record(ms / 1000)
    for ms in (41.0, 44.0, 47.0, 52.0, 58.0, 61.0):
        everything.record(ms / 1000)
        ok.record(ms / 1000)
    left = subtract(everything.export(), errors.export())
    expected = ok.export()
    assert left["Count"] == 6
    assert [(b["Count"], b["Percent"]) for b in left["Data"]] == [
        (b["Count"], b["Percent"]) for b in expected["Data"]
    ]
    # Interior edges agree; only the outer ones are bucket edges instead of Min/Max.
    assert calc_percentile(left, 50) == pytest.approx(calc_percentile(expected, 50), abs=0.002)
    assert calc_percentile(left, 99) == pytest.approx(0.0608, abs=0.005)
    assert subtract(everything.export(), everything.export())["Count"] == 0
    assert subtract(errors.export(), None)["Count"] == 4
