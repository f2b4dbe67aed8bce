"""The benchmarks' bookkeeping: ratios, verdicts, the printed table and the results file.

Nothing here is timed; the benchmarks themselves run with ``make bench``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.complaints import PHONE_STAMP, complaint_bodies, complaint_requests
from bench.figures import Figure, Target, read_figures, render_markdown, render_table, write_results
from bench.load import LoadPlan, StampedRequests, percentile
from services.intake.domain import ComplaintIn


def throughput(value: float | None, baseline: float | None) -> Figure:
    return Figure(
        "intake PostgreSQL throughput",
        "req/s",
        value,
        baseline,
        "bare FastAPI",
        Target(at_least=1_500, ratio_at_least=0.40),
    )


def test_ratio_is_value_over_the_baseline_of_the_same_run() -> None:
    assert throughput(1_600, 3_200).ratio == pytest.approx(0.5)


def test_a_figure_passes_only_when_every_bound_holds() -> None:
    assert throughput(1_600, 3_200).verdict == "pass"
    assert throughput(1_400, 3_200).verdict == "miss"  # below the absolute bound
    assert throughput(1_600, 5_000).verdict == "miss"  # 32% of the baseline


def test_a_ratio_target_without_a_baseline_is_a_miss_not_a_pass() -> None:
    assert throughput(1_600, None).verdict == "miss"
    assert throughput(1_600, 0).ratio is None


def test_nothing_measured_or_nothing_asked_is_not_judged() -> None:
    assert throughput(None, 3_200).verdict == "n/a"
    assert Figure("p50", "ms", 3.0, 1.0, "bare").verdict == "n/a"


def test_upper_bounds_judge_latency_and_memory() -> None:
    latency = Figure("p99", "ms", 30.0, 5.0, "bare", Target(at_most=25))
    assert latency.verdict == "miss"
    assert latency.ratio == pytest.approx(6.0)
    assert Figure("rss", "MB", 150.0, 60.0, "bare", Target(at_most=200)).verdict == "pass"


def test_the_table_has_one_line_per_figure_under_its_header() -> None:
    table = render_table([throughput(1_600, 3_200), throughput(None, None)])
    header, rule, first, second = table.splitlines()
    assert header.split() == ["figure", "value", "baseline", "ratio", "target", "result"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert "1,600 req/s" in first
    assert "3,200 (bare FastAPI)" in first
    assert "50%" in first
    assert "≥ 1,500 req/s, ≥ 40% of baseline" in first
    assert first.endswith("pass")
    assert second.endswith("n/a")
    assert "—" in second


def test_ratios_past_ten_times_read_as_multiples() -> None:
    row = render_table([Figure("p99", "ms", 1_500.0, 3.0, "bare")]).splitlines()[2]
    assert "500×" in row
    assert "%" not in row


def test_the_markdown_table_has_the_same_rows() -> None:
    lines = render_markdown([throughput(1_600, 3_200)]).splitlines()
    assert len(lines) == 3
    assert lines[2].startswith("| intake PostgreSQL throughput | 1,600 req/s |")


def test_results_file_keeps_figures_ratios_and_verdicts(tmp_path: Path) -> None:
    figures = [throughput(1_600, 3_200), Figure("p99", "ms", 30.0, 5.0, "bare", Target(at_most=25))]
    path = write_results(tmp_path, "intake", mode="quick", figures=figures, details={"n": 1})
    document = json.loads(path.read_text(encoding="utf-8"))
    assert path.name == "intake.json"
    assert document["mode"] == "quick"
    assert document["details"] == {"n": 1}
    assert [f["verdict"] for f in document["figures"]] == ["pass", "miss"]
    assert document["figures"][0]["ratio"] == pytest.approx(0.5)
    assert read_figures(path) == figures


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_every_complaint_body_is_valid_once_stamped() -> None:
    for body in complaint_bodies(50):
        ComplaintIn.model_validate_json(body.replace(PHONE_STAMP, b"12345678"))


def test_each_request_gets_its_own_stamp_of_the_same_width() -> None:
    requests = complaint_requests(8000, count=4)
    plan = LoadPlan(8000, requests, 1.0, 10, stamp=PHONE_STAMP, first_stamp=99_999_998)
    sequence = StampedRequests(plan)
    taken = [sequence.take() for _ in range(8)]
    stamped = [r for r in taken if b'"138' in r]
    assert all(PHONE_STAMP not in r for r in taken)
    assert all(len(r) == len(requests[n % 4]) for n, r in enumerate(taken))
    assert stamped
    phones = [r.split(b'"phone": "')[1][:11] for r in stamped]
    assert len(set(phones)) == len(phones)
