"""`trace bench --json --only X` at tiny sizes: every part reports the issue's fixed keys, in their shapes,
with figures that are positive and agree with each other. Speed itself is never asserted: it is measured."""

from __future__ import annotations

import json
from typing import Any

import pytest

from traceability.cli import main
from traceability.config import Settings


def _bench(tmp_path: Any, capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = main(["bench", "--json", *argv], Settings(var_dir=tmp_path))
    out = capsys.readouterr().out
    assert code == 0, out
    report: dict[str, Any] = json.loads(out)
    return report


def _percentiles(figures: dict[str, Any]) -> None:
    assert set(figures) >= {"p50", "p99"}
    assert 0 < figures["p50"] <= figures["p99"]


def test_gas_per_event_is_keyed_by_batch_size_and_falls_as_batches_grow(tmp_path, capsys):
    report = _bench(tmp_path, capsys, "--only", "gas")
    gas = report["gas_per_event"]
    assert list(gas) == ["1", "16", "256", "1024"]
    for row in report["gas"]:
        assert gas[str(row["batch_size"])] == row["gas_per_tx"] / row["batch_size"]
    assert gas["1"] > gas["16"] > gas["256"] > gas["1024"] > 0


def test_gas_table_without_json_prints_one_row_per_batch_size(tmp_path, capsys):
    assert main(["bench", "--only", "gas", "--sizes", "1,4"], Settings(var_dir=tmp_path)) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [r[0] for r in rows if r and r[0] in ("1", "4")] == ["1", "4"]


def test_recorded_events_per_s_on_both_databases_single_and_batch_with_nothing_refused(tmp_path, capsys):
    report = _bench(tmp_path, capsys, "--only", "recorded", "--load-clients", "2", "--record-duration", "2")
    rates = report["recorded_events_per_s"]
    assert set(rates) == {"sqlite_single", "sqlite_batch", "postgres_single", "postgres_batch"}
    runs = report["recorded"]["runs"]
    assert report["recorded"]["clients"] == 2 and report["recorded"]["batch_size"] == 500
    for name, rate in rates.items():
        run = runs[name]
        assert run["errors"] == 0, run  # every generated event is valid: the server takes them all
        assert rate > 0 and run["events"] > 0
        assert rate == pytest.approx(run["events"] / run["seconds"], rel=0.01)
        if name.endswith("_single"):
            assert run["requests"] == run["events"]
        else:
            assert run["requests"] * 500 >= run["events"] > (run["requests"] - 2) * 500


def test_anchored_events_per_s_with_latency_beside_the_one_event_a_transaction_baseline(tmp_path, capsys):
    report = _bench(
        tmp_path,
        capsys,
        *("--only", "anchored", "--load-clients", "2", "--duration", "20", "--baseline-duration", "15"),
    )
    anchored, baseline = report["anchored"], report["baseline"]
    assert report["anchored_events_per_s"] > 0 and baseline["anchored_events_per_s"] > 0
    _percentiles(report["anchor_latency_s"])
    _percentiles(baseline["anchor_latency_s"])
    for run in (anchored, baseline):
        assert run["record_errors"] == 0
        assert 0 < run["events_anchored"] <= run["events_recorded"]
        assert run["anchored_events_per_s"] == round(run["events_anchored"] / run["seconds"], 1)
    defaults = {name: Settings.model_fields[name].default for name in anchored["settings"]}
    assert set(defaults) == {"batch_max", "batch_interval_s", "confirmations"}
    assert anchored["settings"] == defaults  # the worker ran at the defaults of config.py
    assert baseline["batch_max"] == 1 and anchored["block_time_s"] == 1.0
    ratio = report["anchored_events_per_s"] / baseline["anchored_events_per_s"]
    assert report["anchored_vs_baseline"] == round(ratio, 1)
    # The worker alone, draining whole batches recorded before it started.
    drain = report["drain"]
    assert (
        drain["batches"] > 0
        and drain["events"] == drain["batches"] * Settings.model_fields["batch_max"].default
    )
    # (seconds are reported to the hundredth, the rate from the unrounded seconds)
    assert report["anchor_drain_events_per_s"] == pytest.approx(drain["events"] / drain["seconds"], rel=0.01)


def test_rss_is_sampled_as_events_arrive_and_reported_after_anchoring_and_requests(tmp_path, capsys):
    report = _bench(
        tmp_path,
        capsys,
        *("--only", "rss", "--load-clients", "2", "--rss-events", "2000", "--rss-sample-every", "1000"),
        *("--rss-farmers", "3"),
    )
    samples = report["rss_samples"]
    assert [s["at"] for s in samples] == [
        "start",
        "recorded",
        "recorded",
        "anchored",
        "after page and verify requests",
    ]
    assert [s["events"] for s in samples] == [0, 1000, 2000, 2000, 2000]
    assert all(s["serve"] > 0 and s["worker"] > 0 for s in samples)
    assert report["rss_mb"] == {"serve": samples[-1]["serve"], "worker": samples[-1]["worker"]}
    details = report["rss"]
    assert details["events"] == details["anchored"] == 2000 and details["record_errors"] == 0
    assert details["probe_answers"] == {"200": 10}  # five pages and five verdicts of anchored lots
    assert details["farmers"] == 6
    peak = details["peak_mb"]  # read in a thread: never below a sample taken meanwhile
    assert peak["serve"] >= max(s["serve"] for s in samples[1:]) > 0
    assert peak["worker"] >= max(s["worker"] for s in samples[1:]) > 0
    assert peak["risk_learn"] >= max(s["risk_learn"] for s in samples)


@pytest.mark.parametrize(
    "argv", [["--duration", "0"], ["--sizes", "1,x"], ["--only", "ledger"], ["--rss-events", "-5"]]
)
def test_bad_sizes_and_parts_are_refused_before_anything_runs(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", *argv], Settings(var_dir=tmp_path))
    assert exit_.value.code == 2
    assert "trace bench" in capsys.readouterr().err
