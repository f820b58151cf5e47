"""The trend figures (`greenedge sim --plot`, docs/plots/, the demo report):
their content, not their pixels: units on every axis, the limit as a labelled
line, the hourly means at 6 % O2 as steps equal to the CEMS hours, the baseline
on the same axes as the strategy, the manipulated variables."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

from hil_tests import plots, sim

ROOT = Path(__file__).resolve().parent.parent


def _runs(plant, hours=3.0):
    runs, kpis = [], {}
    for s in ("best-practice", "optimized"):
        tr, kk = [], []
        sim.run(plant, s, hours=hours, trace=tr, kpi_out=kk)
        runs.append((s, tr, plots.kpi_hours(kk[0])))
        kpis[s] = kk[0]
    return runs, kpis


def _lines(ax, needle):
    return [ln for ln in ax.get_lines() if needle in (ln.get_label() or "")]


def _units_everywhere(fig):
    axes = fig.get_axes()
    assert axes
    for ax in axes:
        y = ax.get_ylabel()
        assert "[" in y and y.endswith("]"), y
    assert axes[-1].get_xlabel() == "plant time [h]"


@pytest.mark.parametrize("plant,limit,key", [("scr", 50.0, "NOx"), ("fgd", 35.0, "SO2")])
def test_emission_figure(plant, limit, key):
    runs, kpis = _runs(plant)
    fig = plots.figure(plant, runs, "%s_standard" % plant, sim.limits(kpis["optimized"]))
    try:
        _units_everywhere(fig)
        ax = fig.get_axes()[0]
        assert key in ax.get_ylabel() and "6 % O2" in ax.get_ylabel()
        lim = _lines(ax, "limit")
        assert len(lim) == 1 and "limit %g mg/Nm3" % limit in lim[0].get_label()
        assert set(lim[0].get_ydata()) == {limit}
        assert any(t.get_text() == "limit %g" % limit for t in ax.texts)   # on the figure too
        for s in ("best-practice", "optimized"):
            steps = _lines(ax, "%s, hourly mean at 6 %% O2" % s)
            assert len(steps) == 1 and steps[0].get_drawstyle() == "steps-post"
            hours = [(p.start_s / 3600, p.mean) for p in kpis[s].hourly.closed if p.mean is not None]
            assert len(hours) >= 2
            ys = list(steps[0].get_ydata())
            assert ys[0::2] == pytest.approx([m for _, m in hours])   # the CEMS hours, as they are
            assert list(steps[0].get_xdata())[0::2] == pytest.approx([h for h, _ in hours])
            assert _lines(ax, "%s, 1-min" % s)
        # the manipulated variables, both runs on the same axes
        mv = [a for a in fig.get_axes() if "command [%]" in a.get_ylabel()
              or "pumps running" in a.get_ylabel() or "feeder, blower [%]" in a.get_ylabel()]
        assert mv
        for a in mv:
            labels = " ".join(ln.get_label() for ln in a.get_lines())
            assert "best-practice" in labels and "optimized" in labels
            assert any(any(math.isfinite(v) for v in ln.get_ydata()) for ln in a.get_lines())
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)


def test_compressor_and_pump_figures():
    import matplotlib.pyplot as plt
    runs, kpis = _runs("compressor", 1.0)
    fig = plots.figure("compressor", runs, "compressor_standard", sim.limits(kpis["optimized"]))
    _units_everywhere(fig)
    ax = fig.get_axes()[0]
    m = _lines(ax, "minimum")
    assert len(m) == 1 and set(m[0].get_ydata()) == {6.0} and "6 bar(g)" in m[0].get_label()
    assert [a.get_ylabel() for a in fig.get_axes()][2:] == ["fixed machines loaded [-]",
                                                            "VSD speed reference [%]"]
    plt.close(fig)
    runs, kpis = _runs("pump", 1.0)
    fig = plots.figure("pump", runs, "pump_standard", sim.limits(kpis["optimized"]))
    _units_everywhere(fig)
    assert _lines(fig.get_axes()[0], "demand")
    sp = [a for a in fig.get_axes() if a.get_ylabel() == "speed reference [%]"][0]
    ys = {ln.get_label(): ln.get_ydata() for ln in sp.get_lines()}
    assert set(ys["best-practice"]) == {100.0}          # the throttled train runs flat out
    assert min(ys["optimized"]) < 100.0                 # the VSD does not
    plt.close(fig)


def test_hil_trace_without_commands_leaves_the_mv_panels_out():
    tr = []
    sim.run("scr", "optimized", hours=1.5, trace=tr)
    rows = [{k: v for k, v in r.items() if k != "valve_cmd_pct"} for r in tr]   # as the bench's
    fig = plots.figure("scr", [("hil", rows, None)], "scr_standard",
                       {"nox": 50.0, "so2": 35.0, "p_min": None})
    labels = [a.get_ylabel() for a in fig.get_axes()]
    assert "NH3 valve command [%]" not in labels
    steps = _lines(fig.get_axes()[0], "hourly mean at 6 % O2")
    assert len(steps) == 1 and len(steps[0].get_ydata()) == 2   # one whole hour from the rows
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_sim_plot_writes_the_figure_with_the_baseline(tmp_path):
    out = subprocess.run([sys.executable, "-m", "controller.cli", "sim", "--plant", "fgd",
                          "--strategy", "optimized", "--hours", "1", "--plot", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    png = tmp_path / "fgd_optimized_fgd_standard.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20000


def test_demo_report_figure_has_the_baseline_beside_the_chain(tmp_path, monkeypatch):
    """The demo report's figure (hil_tests/demo.py write_report): the full chain's
    trend with the model-in-the-loop baseline on the same axes, the limit line."""
    from hil_tests import demo
    seen = {}
    real = plots.save

    def spy(fig, path):
        seen[Path(path).name] = [(a.get_ylabel(), [ln.get_label() for ln in a.get_lines()])
                                 for a in fig.get_axes()]
        return real(fig, path)
    monkeypatch.setattr(plots, "save", spy)
    res, traces, base, base_traces = {}, {}, {}, {}
    for who, store, tr_store in (("optimized", res, traces), ("baseline", base, base_traces)):
        tr = []
        store["scr"] = sim.run("scr", who, hours=1.5, trace=tr)
        tr_store["scr"] = tr
    hil = {"plants": res, "plant_hours": 1.5, "speedup": 60.0, "wall_s": 90.0}
    summary = demo.summarize(hil, base, res, ["scr"])
    report = demo.write_report(tmp_path, summary, hil, base, res, traces, ["scr"], base_traces)
    text = Path(report).read_text()
    assert "![scr_hil_scr_standard](scr_hil_scr_standard.png)" in text
    assert (tmp_path / "scr_hil_scr_standard.png").exists()
    axes = seen["scr_hil_scr_standard.png"]
    top = " | ".join(axes[0][1])
    assert "baseline, hourly mean at 6 % O2" in top and "hil, hourly mean at 6 % O2" in top
    assert "limit 50 mg/Nm3" in top
    assert ("NH3 valve command [%]", ["baseline", "hil"]) in axes
