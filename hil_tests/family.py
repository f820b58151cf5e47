"""A seeded family of plants that differ from their nominal models (model mismatch).

`greenedge sim --family N --spread S --seed K [--plant P]` draws N plants per
plant type whose physics (the PHYSICS keys below: kinetics, dead times, curves,
static heads, leak rates, the NTU correlation, efficiencies) lie within
+-S of the nominal values in hil_tests/plants/params/P.toml, runs the strategy
and its baseline on the same drawn plant (same scenario, same scenario seed),
and reports each member and the family: savings (worst, p10, p50, p90, mean),
the constraint KPIs at their worst, exceedance hours summed over the family.

The strategies keep their nominal constants (their class constants or the
config): what a strategy believes about the plant is not drawn, only the plant.
docs/models.md, "Model mismatch", lists where a strategy holds a copy of a
plant constant and what it does about it.

Draws: member i of plant P takes u = uniform(-S, +S) per key from
numpy.random.default_rng([seed, crc32(P), i]), keys in sorted order, so a member
is the same whatever N is and whichever plants run. A value is drawn as
- "rel": nominal x (1 + u);
- "excess": 1 + (nominal - 1) x (1 + u) (a ratio above one, e.g. the shut-off
  head over the design head: +-20 % of 1.25 would be a flat curve at 1.0);
- "complement": 1 - (1 - nominal) x (1 + u) (a fraction close to one, e.g. the
  purity of fully oxidised gypsum: its impurity is what varies);
and clipped to the parameter's valid range (hil_tests/plants/*.py PARAMS).
Not drawn: nameplate sizes and ratings (machine flows and powers, design
flows, catalyst volume, pump count), the scenario (loads, inlet
concentrations, demand), instrument noise, drift and calibration schedules,
absolute temperatures and pH reference points (+-20 % of 370 degC or pH 5.5 is
no plausible plant).
"""

import time
import zlib

import numpy as np

from hil_tests import sim
from hil_tests.plants import plant_class

PLANT_ORDER = ("fan", "pump", "compressor", "scr", "fgd")
_FAN = {"shutoff_ratio": "excess", "static_fraction": "rel", "peak_efficiency": "rel",
        "efficiency_curvature": "rel", "motor_const_loss_frac": "rel", "damper_k": "rel",
        "speed_tau_s": "rel"}
PHYSICS = {
    "fan": _FAN,
    "pump": _FAN,
    "compressor": {k: "rel" for k in ("power_per_bar", "unload_start_frac", "unload_end_frac",
                                      "blowdown_tau_s", "volume_m3", "leak_frac", "speed_tau_s")},
    "scr": {k: "rel" for k in ("Ka", "Kd_ref", "Kr_ref", "Ko_ref", "omega", "Ed0_j_mol",
                               "Er_j_mol", "Eo_j_mol", "alpha", "o2_full_pct", "o2_half_pct",
                               "analyzer_dead_time_s", "analyzer_lag_s", "nox_in_dead_time_s",
                               "nox_in_lag_s", "o2_dead_time_s", "o2_lag_s", "flow_lag_s",
                               "temp_lag_s")},
    "fgd": dict({k: "rel" for k in ("ntu0", "ntu_pumps_exp", "ntu_ph_slope", "M_ref_kmol",
                                    "tau_bleed_h", "pump_kw", "blower_kw_max", "feeder_max_kmol_s",
                                    "blower_air_max_nm3h", "ox_k", "solids_tau_h",
                                    "analyzer_dead_time_s", "analyzer_lag_s", "so2_in_dead_time_s",
                                    "so2_in_lag_s", "o2_dead_time_s", "o2_lag_s", "ph_dead_time_s",
                                    "ph_lag_s", "flow_lag_s", "run_fb_delay_s", "feed_lag_s")},
                gypsum_purity_max="complement"),
}
# What the strategy saves, per plant (lower is better).
SAVING = {"fan": "energy_kwh", "pump": "energy_kwh", "compressor": "energy_kwh",
          "scr": "nh3_kg", "fgd": "energy_kwh"}
# The KPIs each member keeps, and how the family's worst is taken.
WORST = {
    "fan": (("demand_met_frac", "min"),),
    "pump": (("demand_met_frac", "min"),),
    "compressor": (("pressure_min_bar", "min"), ("time_below_min_s", "max")),
    "scr": (("nox_exceed_hours", "sum"), ("nox_hourly_max_mg_nm3", "max"),
            ("nox_std_mg_nm3", "max"), ("nh3_slip_p95_ppm", "max"), ("nox_hours_invalid", "sum")),
    "fgd": (("so2_exceed_hours", "sum"), ("so2_hourly_max_mg_nm3", "max"),
            ("gypsum_purity_min_pct", "min"), ("sulfite_max_pct", "max"),
            ("ph_in_band_frac", "min"), ("so2_hours_invalid", "sum")),
}
KEEP = ("energy_kwh", "cost", "co2_total_kg", "nh3_kg", "recirc_pump_kwh", "limestone_kg")
# The aims on the family (docs/results.md): (label, test on the plant's family summary).
AIMS = {
    "fan": (("demand met >= 0.995 (worst plant)",
             lambda f: f["worst"]["strategy"]["demand_met_frac"] >= 0.995),),
    "pump": (("demand met >= 0.995 (worst plant)",
              lambda f: f["worst"]["strategy"]["demand_met_frac"] >= 0.995),),
    "compressor": (("p_min >= 6.0 bar(g) (worst plant)",
                    lambda f: f["worst"]["strategy"]["pressure_min_bar"] >= 6.0),
                   (">= 10 % less energy (median)", lambda f: f["saving_pct"]["p50"] >= 10.0)),
    "scr": (("0 NOx exceedance hours (family)",
             lambda f: f["worst"]["strategy"]["nox_exceed_hours"] == 0),
            (">= 5 % less NH3 (median)", lambda f: f["saving_pct"]["p50"] >= 5.0),
            ("outlet NOx std <= 1/2 of baseline (median)", lambda f: f["nox_std_ratio_p50"] <= 0.5),
            ("slip p95 <= 2.5 ppm (median)", lambda f: f["slip_p95_p50"] <= 2.5)),
    "fgd": (("0 SO2 exceedance hours (family)",
             lambda f: f["worst"]["strategy"]["so2_exceed_hours"] == 0),
            (">= 15 % less pumps + blower (median)", lambda f: f["saving_pct"]["p50"] >= 15.0),
            ("gypsum purity >= 90 % (worst plant)",
             lambda f: f["worst"]["strategy"]["gypsum_purity_min_pct"] >= 90.0),
            ("sulphite <= 0.5 % (worst plant)",
             lambda f: f["worst"]["strategy"]["sulfite_max_pct"] <= 0.5)),
}


def _value(kind, nominal, u):
    if kind == "rel":
        return nominal * (1.0 + u)
    if kind == "excess":
        return 1.0 + (nominal - 1.0) * (1.0 + u)
    if kind == "complement":
        return 1.0 - (1.0 - nominal) * (1.0 + u)
    raise ValueError("unknown draw %r" % (kind,))


def nominal(plant):
    """The plant's nominal parameters (its params TOML over the code's defaults)."""
    from hil_tests.plants.base import load_params
    return load_params(plant, plant_class(plant).PARAMS)


def draw(plant, i, spread, seed, nom=None):
    """Member i's drawn physics {key: value} (module doc)."""
    if not 0.0 <= spread < 1.0:
        raise ValueError("spread = %r: expected 0 to < 1" % (spread,))
    nom = nom if nom is not None else nominal(plant)
    spec = plant_class(plant).PARAMS
    keys = sorted(PHYSICS[plant])
    rng = np.random.default_rng([int(seed), zlib.crc32(plant.encode()), int(i)])
    u = rng.uniform(-spread, spread, len(keys))
    out = {}
    for k, uk in zip(keys, u):
        _, lo, hi = spec[k]
        out[k] = float(min(max(_value(PHYSICS[plant][k], nom[k], float(uk)), lo), hi))
    return out


def percentiles(xs):
    """worst (lowest), p10, p50, p90 (numpy's linear interpolation) and mean of xs."""
    a = np.asarray(xs, dtype=float)
    return {"worst": round(float(a.min()), 3), "p10": round(float(np.percentile(a, 10)), 3),
            "p50": round(float(np.percentile(a, 50)), 3),
            "p90": round(float(np.percentile(a, 90)), 3), "mean": round(float(a.mean()), 3)}


def _pick(res, plant):
    keys = KEEP + tuple(k for k, _ in WORST[plant])
    return {k: res[k] for k in keys if k in res}


def _worst(members, plant, who):
    out = {}
    for key, how in WORST[plant]:
        vals = [m[who][key] for m in members if m[who].get(key) is not None]
        if not vals:
            out[key] = None
        elif how == "sum":
            out[key] = round(sum(vals), 4)
        else:
            out[key] = (min if how == "min" else max)(vals)
    return out


def summarise(plant, members):
    """The family's aggregates from its members (each with "strategy", "baseline",
    "saving_pct"): savings percentiles, the worst of each constraint KPI for the
    strategy and the baseline, exceedance hours summed, the aims."""
    f = {"n": len(members), "saving_key": SAVING[plant],
         "saving_pct": percentiles([m["saving_pct"] for m in members]),
         "worst": {w: _worst(members, plant, w) for w in ("strategy", "baseline")}}
    f["worst_member"] = min(members, key=lambda m: m["saving_pct"])["i"]
    for who in ("strategy", "baseline"):
        for key in ("nox_exceed_hours", "so2_exceed_hours"):
            if key in f["worst"][who]:
                f.setdefault("exceed_hours", {})[who] = f["worst"][who][key]
    if plant == "scr":
        f["nox_std_ratio_p50"] = round(float(np.median(
            [m["strategy"]["nox_std_mg_nm3"] / m["baseline"]["nox_std_mg_nm3"] for m in members])), 4)
        f["slip_p95_p50"] = round(float(np.median(
            [m["strategy"]["nh3_slip_p95_ppm"] for m in members])), 4)
    f["aims"] = {label: bool(test(f)) for label, test in AIMS[plant]}
    return f


def run_family(n, spread=0.2, seed=0, plants=None, strategy="optimized", baseline="best-practice",
               scenario=None, hours=None, progress=None):
    """The family report (module doc): {"family": settings, "plants": {P: {"members": [...],
    "family": aggregates, "wall_s"}}}. scenario: one name for a single plant, else
    each plant's standard day. progress(plant, i, member): called after each member."""
    if not (isinstance(n, int) and n >= 1):
        raise ValueError("family = %r: expected a whole number >= 1" % (n,))
    plants = tuple(plants or PLANT_ORDER)
    if scenario is not None and len(plants) != 1:
        raise ValueError("a scenario names one plant's day: give --plant too")
    rep = {"family": {"n": n, "spread": spread, "seed": seed, "strategy": strategy,
                      "baseline": baseline, "hours": hours}, "plants": {}}
    t_all = time.perf_counter()
    for plant in plants:
        t0 = time.perf_counter()
        nom = nominal(plant)
        members = []
        for i in range(n):
            drawn = draw(plant, i, spread, seed, nom)
            m = {"i": i, "params": drawn}
            for who, strat in (("strategy", strategy), ("baseline", baseline)):
                r = sim.run(plant, strat, scenario, hours, plant_params=drawn)
                m[who] = _pick(r, plant)
                m["scenario"], m["hours"] = r["scenario"], r["hours"]
            key = SAVING[plant]
            m["saving_pct"] = round(100.0 * (1.0 - m["strategy"][key] / m["baseline"][key]), 3) \
                if m["baseline"][key] else 0.0
            members.append(m)
            if progress is not None:
                progress(plant, i, m)
        rep["plants"][plant] = {"members": members, "family": summarise(plant, members),
                                "nominal": {k: nom[k] for k in sorted(PHYSICS[plant])},
                                "wall_s": round(time.perf_counter() - t0, 2)}
    rep["wall_s"] = round(time.perf_counter() - t_all, 2)
    return rep


def print_report(rep, out=print):
    fam = rep["family"]
    out("family of %d at +-%g %% (seed %s): %s vs %s, %.1f s"
        % (fam["n"], 100 * fam["spread"], fam["seed"], fam["strategy"], fam["baseline"],
           rep["wall_s"]))
    for plant, pr in rep["plants"].items():
        f = pr["family"]
        s = f["saving_pct"]
        out("  %-10s %s saving %%: worst %.1f  p10 %.1f  p50 %.1f  p90 %.1f  (%.1f s)"
            % (plant, f["saving_key"], s["worst"], s["p10"], s["p50"], s["p90"], pr["wall_s"]))
        for key, v in f["worst"]["strategy"].items():
            out("  %-10s   worst %-24s %s (baseline %s)" % ("", key, v, f["worst"]["baseline"][key]))
        for label, ok in f["aims"].items():
            out("  %-10s   aim %-40s %s" % ("", label, "met" if ok else "NOT MET"))


def cmd_sim(a):
    """`greenedge sim`: one model-in-the-loop run (hil_tests/sim.py), or with
    --family N a family of drawn plants (here: sim does not import family)."""
    if getattr(a, "family", None) is not None:
        return cmd_family(a)
    return sim.cmd_sim(a)


def cmd_family(a):
    """`greenedge sim --family N`: a seeded family of drawn plants (hil_tests/family.py)."""
    import json
    import sys
    from controller.errors import UserError
    if a.plot or a.poll_s is not None:
        raise UserError("--family runs model-in-the-loop without --plot or --poll-s")
    strategy = a.strategy or "optimized"
    if strategy in ("baseline", "best-practice"):
        raise UserError("--family compares a strategy with best-practice: give --strategy "
                        "optimized or typical")

    def progress(plant, i, m):
        if not a.json:
            print("  %s #%d: saving %.1f %%" % (plant, i, m["saving_pct"]), file=sys.stderr)
    try:
        rep = run_family(a.family, a.spread, a.seed if a.seed is not None else 0,
                         plants=(a.plant,) if a.plant else None, strategy=strategy,
                         scenario=a.scenario, hours=a.hours, progress=progress)
    except ValueError as e:
        raise UserError(str(e))
    if a.json:
        print(json.dumps(rep, sort_keys=True))
    else:
        print_report(rep)
    return 0
