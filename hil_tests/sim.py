"""Model-in-the-loop: plant + strategy in one process, no firmware, no bus.

run() steps the plant every scenario step (default 1 s), runs the strategy every
strategy period on a snapshot of the plant's points, applies its commands, and
scores the run in the KPI frame. Same scenario and seed -> same result.

With poll_s, the run goes through a modelled fieldbus (a slow line, the HIL
bench at 60x) to check a loop's tuning without the bench: the strategy sees
the plant's points as a poll every poll_s delivered them, meas_delay_s old,
runs on its next period after a new poll (never on old news, like the
service), and its commands reach the plant cmd_delay_s later.
"""

import json
import time
from collections import deque
from pathlib import Path

from controller.accounting import KpiFrame
from controller.errors import UserError
from controller.loops import strategy_class
from hil_tests.plants import plant_class
from hil_tests.scenario import load_scenario

PRICES = Path(__file__).resolve().parent / "plants" / "params" / "prices.toml"
M_CO2 = 44.01


def load_prices(path=PRICES):
    """{"prices": {...}, "co2": {...}} from prices.toml; a missing or negative figure is an error."""
    import tomllib
    with open(path, "rb") as f:
        d = tomllib.load(f)
    need = {"prices": ("electricity_per_kwh", "nh3_per_kg", "limestone_per_kg"),
            "co2": ("grid_kg_per_kwh", "nh3_kg_per_kg")}
    for sec, keys in need.items():
        for k in keys:
            v = d.get(sec, {}).get(k)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
                raise ValueError("%s: [%s] %s = %r: expected a number >= 0" % (path, sec, k, v))
    return d


def add_costs(res, so2_removed_kmol, prices=None):
    """cost (electricity, NH3, limestone) and co2_total_kg (electricity x grid
    factor + NH3 x its production footprint + one CO2 per SO2 removed) into res."""
    d = prices or load_prices()
    pr, co = d["prices"], d["co2"]
    kwh, nh3, ls = res["energy_kwh"], res.get("nh3_kg", 0.0), res.get("limestone_kg", 0.0)
    res["cost"] = round(kwh * pr["electricity_per_kwh"] + nh3 * pr["nh3_per_kg"]
                        + ls * pr["limestone_per_kg"], 2)
    res["co2_process_kg"] = round(so2_removed_kmol * M_CO2, 3)
    res["co2_total_kg"] = round(kwh * co["grid_kg_per_kwh"] + nh3 * co["nh3_kg_per_kg"]
                                + so2_removed_kmol * M_CO2, 3)
    return res


TRACE = {
    "fan": [("flow_m3s", "truth"), ("demand_m3s", "truth"), ("power_kw", "kw")],
    "pump": [("flow_m3s", "truth"), ("demand_m3s", "truth"), ("power_kw", "kw")],
    "compressor": [("pressure_barg", "truth"), ("min_pressure_barg", "truth"),
                   ("demand_m3min", "truth"), ("power_kw", "kw")],
    "scr": [("nox_out_mg_nm3", "truth"), ("nox_in_mg_nm3", "truth"), ("slip_ppm", "truth"),
            ("nh3_kgh", "truth"), ("temp_c", "truth"), ("o2_pct", "truth")],
    "fgd": [("so2_out_mg_nm3", "truth"), ("ph", "truth"), ("so2_in_mg_nm3", "truth"),
            ("power_kw", "kw"), ("o2_pct", "truth")],
}
# The manipulated variables a trend row carries when the commands are at hand:
# row key -> (device, command point), or a function of the commands.
MV = {
    "fan": {"speed_ref_pct": ("drive", "speed_ref_pct"), "damper_cmd_pct": ("drive", "damper_cmd_pct")},
    "compressor": {"vsd_speed_ref_pct": ("vsd", "speed_ref_pct"),
                   "machines_loaded": lambda c: sum(bool(c.get(m, {}).get("load_cmd"))
                                                    for m in ("c1", "c2", "c3"))},
    "scr": {"valve_cmd_pct": lambda c: c.get("scr", {}).get("valve_cmd_pct", 0.0)
            if c.get("scr", {}).get("dosing_enable", 1) else 0.0},
    "fgd": {"pumps_on": lambda c: sum(bool(c.get("fgd", {}).get("pump%d_run" % i))
                                      for i in range(1, 6)),
            "feeder_cmd_pct": ("fgd", "feeder_cmd_pct"), "blower_cmd_pct": ("fgd", "blower_cmd_pct")},
}
MV["pump"] = MV["fan"]


def trace_row(plant, t_s, truth, cmds=None):
    """One trend row {t_h, the plant's TRACE keys} from the plant's truths, and its
    manipulated variables (MV) from cmds {device: {point: value}} when given."""
    row = {"t_h": t_s / 3600}
    for key, kind in TRACE[plant]:
        row[key] = sum(truth["power_kw"].values()) if kind == "kw" else truth[key]
    if cmds is not None:
        for key, how in MV[plant].items():
            v = how(cmds) if callable(how) else cmds.get(how[0], {}).get(how[1])
            row[key] = float(v) if v is not None else float("nan")
    return row


def run(plant, strategy="baseline", scenario=None, hours=None, seed=None, plot_dir=None,
        trace_every_s=60.0, trace=None, poll_s=None, meas_delay_s=0.0, cmd_delay_s=0.0,
        params=None, observe=None, plant_params=None, kpi_out=None):
    """plant_params: values that replace the plant's own (params/PLANT.toml) for this
    run, e.g. a family member's drawn physics (hil_tests/family.py); the strategy
    keeps its nominal constants.
    kpi_out: a list to receive the run's KPI frame (its CEMS hours for a plot).
    plot_dir: the trend figure (hil_tests/plots.py) with the best-practice
    baseline on the same axes (run first on the same scenario and seed).
    trace: a list to receive the trend rows (every trace_every_s) without plotting.
    poll_s, meas_delay_s, cmd_delay_s: the modelled fieldbus (module doc).
    params: the strategy's tuning (a loop's config params).
    observe(t_s, plant, meas, cmds): called after every plant step with the
    plant, the latest measurement taken (what the strategy last saw, or was
    sent) and the commands in force (the fault campaign's invariants)."""
    for name, v in (("poll_s", poll_s), ("meas_delay_s", meas_delay_s),
                    ("cmd_delay_s", cmd_delay_s)):
        if v is not None and not (v >= 0 and v < 3600):
            raise ValueError("%s = %r: expected 0 to 3600 s" % (name, v))
    if poll_s is not None and poll_s <= 0:
        raise ValueError("poll_s = %r: expected > 0 s" % (poll_s,))
    strat_cls = strategy_class(plant, strategy)
    cls = plant_class(plant)
    sc = load_scenario(scenario or "%s_standard" % plant, cls.SPEC, hours, seed, plant)
    strat = strat_cls(params)
    pp = None
    if plant_params:
        from hil_tests.plants.base import load_params
        pp = load_params(plant, cls.PARAMS)
        unknown = set(plant_params) - set(pp)
        if unknown:
            raise ValueError("plant %s has no parameter %s" % (plant, ", ".join(sorted(unknown))))
        pp.update(plant_params)
    pl = cls(plant, sc, params=pp, options=strat.plant_options)
    kpi = KpiFrame(plant)
    dt = sc.step_s
    every = max(1, int(round(strat.period_s / dt)))
    steps = int(round(sc.hours * 3600.0 / dt))
    keep = plot_dir is not None or trace is not None
    trace = [] if trace is None else trace
    cmds = {}
    bus = _Bus(poll_s, meas_delay_s, cmd_delay_s) if poll_s is not None else None
    t0 = time.perf_counter()
    t = 0.0
    meas = None
    so2_removed = 0.0
    for k in range(steps):
        if bus is not None:
            meas = pl.measure()
            out = bus.cycle(t, meas, strat if k % every == 0 else None)
            if out is not None:
                cmds = out
                for dev, points in cmds.items():
                    for name, value in points.items():
                        pl.actuate(dev, name, value)
        elif k % every == 0:
            meas = pl.measure()
            cmds = strat.run(t, meas)
            for dev, points in cmds.items():
                for name, value in points.items():
                    pl.actuate(dev, name, value)
        pl.step(t, dt)
        truth = pl.truth()
        kpi.add(t, dt, truth, cmds)
        so2_removed += truth.get("so2_absorbed_kmol_s", 0.0) * dt
        if observe is not None:
            observe(t, pl, meas, cmds)
        t += dt
        if keep and k % int(max(1, trace_every_s / dt)) == 0:
            trace.append(trace_row(plant, t, truth, pl.cmd))
    wall = time.perf_counter() - t0
    res = {"plant": plant, "strategy": strategy, "scenario": sc.name, "hours": sc.hours,
           "seed": sc.seed}
    res.update(kpi.result(wall))
    add_costs(res, so2_removed)
    if kpi_out is not None:
        kpi_out.append(kpi)
    if plot_dir is not None:
        others = []
        if strategy not in ("best-practice", "baseline"):
            btr, bk = [], []
            run(plant, "best-practice", scenario, hours, seed, trace=btr, trace_every_s=trace_every_s,
                poll_s=poll_s, meas_delay_s=meas_delay_s, cmd_delay_s=cmd_delay_s,
                plant_params=plant_params, kpi_out=bk)
            others.append(("best-practice", btr, bk[0]))
        res["plots"] = plot(trace, plant, strategy, sc.name, Path(plot_dir), kpi, others)
    return res


class _Bus:
    """The modelled fieldbus between a plant and its strategy (module doc)."""

    def __init__(self, poll_s, meas_delay_s, cmd_delay_s):
        self.poll_s, self.d_meas, self.d_cmd = poll_s, meas_delay_s, cmd_delay_s
        self.hist = deque()   # (t, measurement), the oldest one still due first
        self.sent = deque()   # (t, commands) on their way to the plant
        self.next_poll = 0.0
        self.fresh = None

    def cycle(self, t, meas, strat):
        """One plant step: a poll if due, the strategy if it runs this step
        and has news, and the commands that arrive now (or None)."""
        eps = 1e-9
        self.hist.append((t, meas))
        while len(self.hist) > 1 and self.hist[1][0] <= t - self.d_meas + eps:
            self.hist.popleft()
        if t >= self.next_poll - eps:
            self.fresh = self.hist[0][1]
            self.next_poll += self.poll_s
        if strat is not None and self.fresh is not None:
            self.sent.append((t, strat.run(t, self.fresh)))
            self.fresh = None
        out = None
        while self.sent and self.sent[0][0] <= t - self.d_cmd + eps:
            out = self.sent.popleft()[1]
        return out


def plot(trace, plant, strategy, scenario, out_dir, kpi, others=()):
    """The run's trend figure (hil_tests/plots.py) as out_dir/PLANT_STRATEGY_SCENARIO.png;
    others: [(label, trace, KPI frame)] drawn first on the same axes (the baseline)."""
    from hil_tests import plots
    runs = [(lab, tr, plots.kpi_hours(k)) for lab, tr, k in others]
    runs.append((strategy, trace, plots.kpi_hours(kpi)))
    fig = plots.figure(plant, runs, scenario, limits(kpi))
    return [plots.save(fig, Path(out_dir) / ("%s_%s_%s.png" % (plant, strategy, scenario)))]


def limits(kpi):
    """The limits a figure draws, from a KPI frame."""
    from hil_tests.plants import plant_class
    from hil_tests.plants.base import load_params
    p_min = load_params("compressor", plant_class("compressor").PARAMS)["min_pressure_barg"] \
        if kpi.plant == "compressor" else None
    return {"nox": kpi.nox_limit, "so2": kpi.so2_limit, "p_min": p_min}


def cmd_sim(a):
    """`greenedge sim`: one model-in-the-loop run, printed as a table or JSON."""
    if a.poll_s is None and (a.meas_delay_s or a.cmd_delay_s):
        raise UserError("--meas-delay-s and --cmd-delay-s model a fieldbus: give --poll-s too")
    if a.plant is None:
        raise UserError("--plant is required (or --family N for every plant)")
    if a.strategy is None:
        a.strategy = "baseline"
    try:
        r = run(a.plant, a.strategy, a.scenario, a.hours, a.seed, a.plot,
                poll_s=a.poll_s, meas_delay_s=a.meas_delay_s, cmd_delay_s=a.cmd_delay_s)
    except ValueError as e:  # ConfigError is one: file, key and line
        raise UserError(str(e))
    if a.json:
        print(json.dumps(r, sort_keys=True))
        return 0
    print("%s / %s / %s: %.1f h simulated in %.2f s" % (r["plant"], r["strategy"], r["scenario"],
                                                          r["hours"], r["wall_s"]))
    for k, v in r.items():
        if k not in ("plant", "strategy", "scenario", "hours", "wall_s"):
            print("  %-28s %s" % (k, v))
    return 0
