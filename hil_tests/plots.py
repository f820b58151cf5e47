"""Trend figures an engineer reads (`greenedge sim --plot`, docs/plots/, the demo report).

One figure per plant and scenario, every run on the same axes (the baseline
beside the strategy, same scenario and seed):
- the controlled variable with its limit or target as a labelled line: for SCR
  and FGD the outlet at the reference O2 (6 %), thin, and its clock-hour means
  as steps (the figure a permit is judged on), the emission limit as a line;
  the compressor header with the users' minimum; fan and pump flow with the
  demand;
- the electrical power (or NH3 flow) the saving is made of;
- the manipulated variables (speed, damper, valve, pumps running, feeder,
  blower, machines loaded);
- units on every axis, plant time in hours.

figure() returns the matplotlib Figure (tests read its content: axes labels,
the limit line, the runs' legends); save() writes it as a PNG.
"""

import math
from pathlib import Path

O2_REF = 6.0

# Panels per plant: (y label with unit, [(trace key, line style)], kind).
# kind: "emission" (instantaneous at ref O2 + hourly steps + limit), "line".
PANELS = {
    "fan": [("flow [m3/s]", "flow_m3s", "flow"), ("electrical power [kW]", "power_kw", "line"),
            ("speed reference [%]", "speed_ref_pct", "line"),
            ("damper command [%]", "damper_cmd_pct", "line")],
    "pump": [("flow [m3/s]", "flow_m3s", "flow"), ("electrical power [kW]", "power_kw", "line"),
             ("speed reference [%]", "speed_ref_pct", "line"),
             ("throttle command [%]", "damper_cmd_pct", "line")],
    "compressor": [("header pressure [bar(g)]", "pressure_barg", "pressure"),
                   ("electrical power [kW]", "power_kw", "line"),
                   ("fixed machines loaded [-]", "machines_loaded", "line"),
                   ("VSD speed reference [%]", "vsd_speed_ref_pct", "line")],
    "scr": [("outlet NOx [mg/Nm3, 6 % O2]", "nox_out_mg_nm3", "emission"),
            ("NH3 flow [kg/h]", "nh3_kgh", "line"), ("NH3 slip [ppm]", "slip_ppm", "line"),
            ("NH3 valve command [%]", "valve_cmd_pct", "line")],
    "fgd": [("outlet SO2 [mg/Nm3, 6 % O2]", "so2_out_mg_nm3", "emission"),
            ("slurry pH [-]", "ph", "line"), ("electrical power [kW]", "power_kw", "line"),
            ("recirculation pumps running [-]", "pumps_on", "line"),
            ("limestone feeder, blower [%]", "feeder_cmd_pct", "feeder_blower")],
}
COLORS = {"optimized": "tab:green", "best-practice": "tab:blue", "baseline": "tab:blue",
          "typical": "0.55", "hil": "tab:green"}


def at_ref(c, o2, ref=O2_REF):
    return c * (21.0 - ref) / (21.0 - o2) if (o2 is not None and o2 < 21.0) else float("nan")


def hourly_steps(trace, key, o2_key="o2_pct"):
    """[(hour start h, mean at the reference O2)] of the trace's rows per clock
    hour (the rows are one a minute): for a trace whose run's KPI frame is not
    at hand (the HIL bench). The sim passes its frame's CEMS hours instead."""
    by = {}
    for r in trace:
        if key not in r or o2_key not in r:
            continue
        v = at_ref(r[key], r[o2_key])
        if math.isfinite(v):
            h = math.floor(r["t_h"] - 1e-9)
            by.setdefault(h, []).append(v)
    return [(h, sum(v) / len(v)) for h, v in sorted(by.items()) if len(v) >= 45]


def kpi_hours(kpi):
    """[(hour start h, mean)] of a KPI frame's valid closed clock hours (None if it has none)."""
    hrs = getattr(getattr(kpi, "hourly", None), "closed", None)
    if not hrs:
        return None
    return [(p.start_s / 3600.0, p.mean) for p in hrs if p.mean is not None]


def _steps(ax, hours, **kw):
    if not hours:
        return None
    xs, ys = [], []
    for h, m in hours:
        xs += [h, h + 1.0]
        ys += [m, m]
    return ax.plot(xs, ys, drawstyle="steps-post", **kw)[0]


def figure(plant, runs, scenario, limits):
    """runs: [(label, trace rows, hourly [(h, mean)] or None)], the baseline first.
    limits: {"nox": mg, "so2": mg, "p_min": bar(g)}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    # A panel whose variable no run traced (the HIL bench's rows carry no commands) is left out.
    panels = [p for p in PANELS[plant] if any(tr and p[1] in tr[0] for _, tr, _ in runs)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.4 * len(panels)), sharex=True,
                             squeeze=False)
    axes = [a[0] for a in axes]
    for ax, (ylabel, key, kind) in zip(axes, panels):
        for label, trace, hours in runs:
            t = [r["t_h"] for r in trace]
            c = COLORS.get(label, None)
            if kind == "emission":
                inst = [at_ref(r[key], r.get("o2_pct", O2_REF)) for r in trace]
                ax.plot(t, inst, lw=0.5, alpha=0.45, color=c, label="%s, 1-min" % label)
                if hours is None:
                    hours = hourly_steps(trace, key)
                _steps(ax, hours, lw=2.0, color=c, label="%s, hourly mean at %g %% O2"
                       % (label, O2_REF))
            elif kind == "feeder_blower":
                ax.plot(t, [r.get("feeder_cmd_pct", math.nan) for r in trace], lw=1, color=c,
                        label="%s feeder" % label)
                ax.plot(t, [r.get("blower_cmd_pct", math.nan) for r in trace], lw=1, color=c,
                        ls="--", label="%s blower" % label)
            else:
                ax.plot(t, [r.get(key, math.nan) for r in trace], lw=1, color=c, label=label,
                        drawstyle="steps-post" if key in ("pumps_on", "machines_loaded") else None)
        if kind == "emission":
            lim = limits["nox" if plant == "scr" else "so2"]
            ax.axhline(lim, color="r", lw=1.2, ls="--",
                       label="limit %g mg/Nm3 (hourly mean, %g %% O2)" % (lim, O2_REF))
            ax.annotate("limit %g" % lim, xy=(0.005, lim), xycoords=("axes fraction", "data"),
                        color="r", fontsize=8, va="bottom")
            top = max([lim * 1.3] + [m for _, tr, hs in runs for _, m in (hs or [])])
            ax.set_ylim(0, top)
        if kind == "pressure":
            pm = limits["p_min"]
            ax.axhline(pm, color="r", lw=1.2, ls="--", label="users' minimum %g bar(g)" % pm)
            ax.annotate("minimum %g" % pm, xy=(0.005, pm), xycoords=("axes fraction", "data"),
                        color="r", fontsize=8, va="bottom")
        if kind == "flow" and runs and runs[0][1] and "demand_m3s" in runs[0][1][0]:
            tr = runs[0][1]
            ax.plot([r["t_h"] for r in tr], [r["demand_m3s"] for r in tr], color="k", lw=0.8,
                    ls=":", label="demand")
        if key in ("pumps_on", "machines_loaded"):
            from matplotlib.ticker import MaxNLocator
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right" if kind == "emission" else "upper right", ncol=2)
    axes[-1].set_xlabel("plant time [h]")
    fig.suptitle("%s, %s: %s" % (plant, scenario, " vs ".join(r[0] for r in runs)))
    fig.tight_layout()
    return fig


def save(fig, path):
    import matplotlib.pyplot as plt
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
