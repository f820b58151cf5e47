"""docs/benchmarks.md is what tools/render_benchmarks.py renders from the
committed bench/results.json, and that file is one whole `bench/run.py all`
run of this repository: every benchmark, from a commit in this history."""

import json
import subprocess
from pathlib import Path

from bench.run import BENCHES
from tools import render_benchmarks

ROOT = Path(__file__).resolve().parent.parent


def test_page_is_rendered_from_the_results():
    data = json.loads(render_benchmarks.RESULTS.read_text())
    assert render_benchmarks.PAGE.read_text() == render_benchmarks.render(data), \
        "docs/benchmarks.md is out of date: run python tools/render_benchmarks.py"


def test_results_are_one_whole_run_of_this_history():
    data = json.loads(render_benchmarks.RESULTS.read_text())
    assert set(data["results"]) == set(BENCHES)
    assert data["total_wall_s"] < 600, "bench/run.py all must finish in under 10 minutes"
    r = subprocess.run(["git", "merge-base", "--is-ancestor", data["revision"], "HEAD"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, "results from %s, not a commit of this branch: %s" % (
        data["revision"], r.stderr)


def test_render_names_a_missing_benchmark_and_fails_on_a_stale_page(tmp_path):
    data = json.loads(render_benchmarks.RESULTS.read_text())
    del data["results"]["modbus"]
    text = render_benchmarks.render(data)
    assert "## modbus\n\nNot in this run." in text
    res, page = tmp_path / "r.json", tmp_path / "b.md"
    res.write_text(json.dumps(data))
    page.write_text(render_benchmarks.PAGE.read_text())
    assert render_benchmarks.main(["--results", str(res), "--out", str(page), "--check"]) == 1
    assert render_benchmarks.main(["--results", str(res), "--out", str(page)]) == 0
    assert render_benchmarks.main(["--results", str(res), "--out", str(page), "--check"]) == 0
