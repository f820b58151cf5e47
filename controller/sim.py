"""Model-in-the-loop: plant + strategy in one process, no firmware, no bus.

run() steps the plant every scenario step (default 1 s), runs the strategy every
strategy period on a snapshot of the plant's points, applies its commands, and
scores the run in the KPI frame. Same scenario and seed -> same result.
"""

import time
from pathlib import Path

from controller.accounting import KpiFrame
from controller.loops import strategy_class
from hil_tests.plants import plant_class
from hil_tests.scenario import load_scenario

TRACE = {
    "fan": [("flow_m3s", "truth"), ("demand_m3s", "truth"), ("power_kw", "kw")],
    "pump": [("flow_m3s", "truth"), ("demand_m3s", "truth"), ("power_kw", "kw")],
    "compressor": [("pressure_barg", "truth"), ("min_pressure_barg", "truth"),
                   ("demand_m3min", "truth"), ("power_kw", "kw")],
    "scr": [("nox_out_mg_nm3", "truth"), ("nox_in_mg_nm3", "truth"), ("slip_ppm", "truth"),
            ("nh3_kgh", "truth"), ("temp_c", "truth")],
    "fgd": [("so2_out_mg_nm3", "truth"), ("ph", "truth"), ("so2_in_mg_nm3", "truth"),
            ("power_kw", "kw")],
}


def run(plant, strategy="baseline", scenario=None, hours=None, seed=None, plot_dir=None,
        trace_every_s=60.0, trace=None):
    """trace: a list to receive the trend rows (every trace_every_s) without plotting."""
    strat_cls = strategy_class(plant, strategy)
    cls = plant_class(plant)
    sc = load_scenario(scenario or "%s_standard" % plant, cls.SPEC, hours, seed, plant)
    strat = strat_cls()
    pl = cls(plant, sc, options=strat.plant_options)
    kpi = KpiFrame(plant)
    dt = sc.step_s
    every = max(1, int(round(strat.period_s / dt)))
    steps = int(round(sc.hours * 3600.0 / dt))
    keep = plot_dir is not None or trace is not None
    trace = [] if trace is None else trace
    cmds = {}
    t0 = time.perf_counter()
    t = 0.0
    for k in range(steps):
        if k % every == 0:
            cmds = strat.run(t, pl.measure())
            for dev, points in cmds.items():
                for name, value in points.items():
                    pl.actuate(dev, name, value)
        pl.step(t, dt)
        truth = pl.truth()
        kpi.add(t, dt, truth, cmds)
        t += dt
        if keep and k % int(max(1, trace_every_s / dt)) == 0:
            row = {"t_h": t / 3600}
            for key, kind in TRACE[plant]:
                row[key] = sum(truth["power_kw"].values()) if kind == "kw" else truth[key]
            trace.append(row)
    wall = time.perf_counter() - t0
    res = {"plant": plant, "strategy": strategy, "scenario": sc.name, "hours": sc.hours,
           "seed": sc.seed}
    res.update(kpi.result(wall))
    if plot_dir is not None:
        res["plots"] = plot(trace, plant, strategy, sc.name, Path(plot_dir), kpi)
    return res


def plot(trace, plant, strategy, scenario, out_dir, kpi):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out_dir.mkdir(parents=True, exist_ok=True)
    keys = [k for k, _ in TRACE[plant]]
    fig, axes = plt.subplots(len(keys), 1, figsize=(10, 2.2 * len(keys)), sharex=True)
    t = [r["t_h"] for r in trace]
    for ax, key in zip(axes, keys):
        ax.plot(t, [r[key] for r in trace], lw=1)
        ax.set_ylabel(key, fontsize=8)
        ax.grid(alpha=0.3)
        if key == "nox_out_mg_nm3":
            ax.axhline(kpi.nox_limit * 0.8, color="r", lw=0.8, ls="--")  # ~limit at 6 % O2
        if key == "so2_out_mg_nm3":
            ax.axhline(kpi.so2_limit, color="r", lw=0.8, ls="--")
    axes[-1].set_xlabel("plant time [h]")
    fig.suptitle("%s / %s / %s" % (plant, strategy, scenario))
    fig.tight_layout()
    path = out_dir / ("%s_%s_%s.png" % (plant, strategy, scenario))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [str(path)]
