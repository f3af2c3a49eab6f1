"""`trace bench --only web`: the page and verify latency figures come from a real `trace serve` process."""

from __future__ import annotations

import json

from traceability.cli import main
from traceability.config import Settings


def test_web_figures_are_measured_against_a_served_lineage_of_twenty_events(tmp_path, capsys):
    code = main(
        ["bench", "--only", "web", "--json", "--clients", "2", "--requests", "3"], Settings(var_dir=tmp_path)
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["lineage_events"] == 20 and report["verdict"] == "warning"  # anchored, not certified
    for name in ("page_ms", "verify_ms"):
        figures = report[name]
        assert figures["requests"] == 6 and figures["errors"] == 0
        assert 0 < figures["p50"] <= figures["p99"]
        assert figures["client"]["p50"] >= figures["p50"]  # the client's time includes the server's
    assert 5_000 < report["page_bytes"]["total"] <= 30 * 1024


def test_scaling_figures_verify_longer_lineages_in_the_same_round_trips(tmp_path, capsys):
    code = main(["bench", "--only", "scaling", "--json", "--lineages", "4,16"], Settings(var_dir=tmp_path))
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and set(report) == {"scaling"}
    short, long = report["scaling"]["4"], report["scaling"]["16"]
    assert short["rpc_calls"] == long["rpc_calls"] <= 5  # round trips grow with batches, not events
    assert 3 * short["bundle_bytes"] < long["bundle_bytes"]  # the bundle grows with the events it carries
    assert 0 < short["ms"] and 0 < long["ms"]
